"""Online retraining in the gateway: completions in, a better predictor swapped in.

The same :class:`~ssjf.retrain.Retrainer` as the simulator's replay, fed from
the engine's ``usage.completion_tokens`` when a request finishes, under the
rules that feed calibration (:mod:`ssjf.gateway.calibration`): only 200
answers whose usage was read, single sequences (``n`` = 1), lengths the client
did not force (``min_tokens``, ``ignore_eos``); a length stopped by its limit
is censored. Unlike calibration it learns from every estimate source (the
label is the true length, whoever predicted it); a censored length is imputed
from the served estimate only when that came from the predictor.

Fits run in the :class:`~ssjf.retrain.BackgroundRetrainer`'s thread; nothing on
the request path waits for one. A swap is applied on the event loop: the
:class:`~ssjf.gateway.predictor_runner.PredictorRunner` gets the new predictor
(one attribute assignment, read once per batch) and the calibrator starts
afresh, since its ratios referred to the old predictor's points (requests
admitted before the swap and finishing after it still teach it one ratio each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ssjf.calibration import Calibrator
from ssjf.gateway.calibration import taught_length
from ssjf.gateway.config import ConfigError
from ssjf.retrain import BackgroundRetrainer, Completion, Retrainer, RetrainEvent, RetrainSettings
from ssjf.stats import kendall_tau_b

if TYPE_CHECKING:
    from ssjf.gateway.calibration import GatewayCalibration
    from ssjf.gateway.config import GatewayConfig
    from ssjf.gateway.dispatcher import Ticket
    from ssjf.gateway.predictor_runner import PredictorRunner
    from ssjf.gateway.schemas import ParsedRequest
    from ssjf.predict.records import LengthData

log = logging.getLogger("ssjf.gateway")

#: Outcomes of a retrain (the label values of ssjf_gateway_retrain_events_total).
OUTCOMES = ("swapped", "kept", "failed")


def retrain_settings(config: GatewayConfig) -> RetrainSettings:
    """The retrain settings of a gateway config (``retrain_*``); ValueError when inconsistent."""
    return RetrainSettings(
        every=config.retrain_every,
        min_records=config.retrain_min_records,
        holdout=config.retrain_holdout,
        max_records=config.retrain_max_records,
        min_gain=config.retrain_min_gain,
    )


def load_base_data(specs: list[str]) -> LengthData | None:
    """The records every candidate trains on besides traffic (``ssjf.predict.data.load_data``)."""
    if not specs:
        return None
    from ssjf.predict.data import load_data
    from ssjf.predict.records import LengthData

    data = LengthData()
    for spec in specs:
        try:
            data.extend(load_data(spec))
        except (OSError, ValueError) as e:
            raise ConfigError(f"retrain_base_data {spec!r}: {e}") from None
    return data


class GatewayRetraining:
    """The gateway's background retrainer, its feeding rules and its swap (module doc)."""

    def __init__(
        self,
        config: GatewayConfig,
        runner: PredictorRunner,
        calibration: GatewayCalibration | None,
        base: LengthData | None = None,
    ) -> None:
        from ssjf.predict.base import Predictor

        predictor = runner.predictor
        if not isinstance(predictor, Predictor):
            raise ConfigError(
                "retrain needs a predictor of an ssjf.predict family (it refits the same "
                f"family on traffic), got {type(predictor).__name__}"
            )
        try:
            settings = retrain_settings(config)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.runner = runner
        self.calibration = calibration
        self.retrainer = Retrainer(predictor, settings, base=base)
        self.background = BackgroundRetrainer(self.retrainer, self._from_worker)
        #: Outcome -> retrains so far; the last event (None before the first).
        self.outcomes: Counter[str] = Counter()
        self.last: RetrainEvent | None = None
        #: (raw predicted point, true length) of recent uncensored predictor estimates.
        self.recent: deque[tuple[float, int]] = deque(maxlen=settings.holdout)
        self._loop: asyncio.AbstractEventLoop | None = None

    def learn(
        self,
        parsed: ParsedRequest,
        ticket: Ticket,
        source: str | None,
        *,
        status: int | None,
        actual: int | None,
        length_finish: bool,
    ) -> bool:
        """Feed one finished request if it qualifies (calibration's rules); True when it did."""
        taught = taught_length(
            status=status, actual=actual, limit=parsed.work_limit, length_finish=length_finish,
            n=parsed.n, min_output=parsed.min_output,
        )  # fmt: skip
        if taught is None:
            return False
        actual, censored = taught
        served = ticket.req.estimate if source == "predictor" else None
        if self._loop is None:
            # Fed outside a loop (tests): swaps are applied once a loop feeds it.
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        self.background.observe(Completion(parsed.prompt, parsed.model, actual, censored, served))
        if served is not None and not censored:
            raw = ticket.calibration_base if ticket.calibration_base is not None else served.point
            self.recent.append((raw, actual))
        return True

    def drift_tau(self) -> float:
        """Pooled Kendall tau of the predictor's raw points on recent uncensored completions."""
        pairs = list(self.recent)
        if len(pairs) < 2:
            return math.nan
        return kendall_tau_b([p for p, _ in pairs], [a for _, a in pairs])

    def _from_worker(self, event: RetrainEvent) -> None:
        """In the retrain thread: hand the event (and the predictor now serving) to the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning(
                "retrain %s: no event loop to apply it on (gateway stopping)", event.outcome
            )
            return
        with contextlib.suppress(RuntimeError):  # the loop closed since the check
            loop.call_soon_threadsafe(self._apply, event, self.retrainer.predictor)

    def _apply(self, event: RetrainEvent, predictor: Any) -> None:
        """On the event loop: count the event; on a swap, serve the new predictor."""
        self.outcomes[event.outcome] += 1
        self.last = event
        if event.swapped:
            self.runner.predictor = predictor
            self.recent.clear()  # the drift window measured the old predictor's points
            if self.calibration is not None:
                self.calibration.calibrator = Calibrator(self.calibration.calibrator.settings)
        log.info(
            "retrain %s after %d completions: holdout tau %.3f serving, %.3f candidate "
            "(%d records, %.1f s); predictor version %d%s",
            event.outcome, event.completions, event.serving_tau, event.candidate_tau,
            event.trained_on, event.fit_s, event.version,
            f": {event.error}" if event.error else "",
        )  # fmt: skip

    async def aclose(self) -> None:
        """Stop taking retrains and wait for the one under way, off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.background.close)


class RetrainCollector:
    """Prometheus metrics read at scrape time: retrain events, version, holdout taus, drift."""

    def __init__(self, retraining: GatewayRetraining) -> None:
        self._rt = retraining

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        rt = self._rt
        events = CounterMetricFamily(
            "ssjf_gateway_retrain_events",
            "retrains of the predictor on served completions, by outcome",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            events.add_metric([outcome], float(rt.outcomes[outcome]))
        yield events
        yield GaugeMetricFamily(
            "ssjf_gateway_predictor_version",
            "retrained predictors swapped in since start (0: the one loaded)",
            value=float(rt.retrainer.version),
        )
        yield GaugeMetricFamily(
            "ssjf_gateway_retrain_completions",
            "completions fed to the retrainer",
            value=float(rt.retrainer.completions),
        )
        yield GaugeMetricFamily(
            "ssjf_gateway_retrain_running",
            "1 while a retrain runs",
            value=float(rt.background.running),
        )
        last = rt.last
        tau = GaugeMetricFamily(
            "ssjf_gateway_retrain_holdout_tau",
            "pooled Kendall tau on the last retrain's holdout (NaN before one)",
            labels=["predictor"],
        )
        mae = GaugeMetricFamily(
            "ssjf_gateway_retrain_holdout_mae_tokens",
            "mean absolute error on the last retrain's holdout (NaN before one)",
            labels=["predictor"],
        )
        tau.add_metric(["serving"], last.serving_tau if last else math.nan)
        tau.add_metric(["candidate"], last.candidate_tau if last else math.nan)
        mae.add_metric(["serving"], last.serving_mae if last else math.nan)
        mae.add_metric(["candidate"], last.candidate_mae if last else math.nan)
        yield tau
        yield mae
        yield GaugeMetricFamily(
            "ssjf_gateway_retrain_fit_seconds",
            "seconds the last retrain's fit took (NaN before one)",
            value=last.fit_s if last else math.nan,
        )
        yield GaugeMetricFamily(
            "ssjf_gateway_prediction_tau_recent",
            "pooled Kendall tau of predicted vs true lengths on recent uncensored completions "
            "(drift: it falls when traffic leaves what the predictor knows)",
            value=rt.drift_tau(),
        )

    def describe(self) -> Iterator[Any]:
        return iter(())
