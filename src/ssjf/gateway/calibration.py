"""Self-calibration in the gateway: which estimates it corrects, which answers teach it.

The same :class:`~ssjf.calibration.Calibrator` as the simulator's, fed from the
engine's ``usage.completion_tokens`` when a request finishes. What it learns
from, and why:

- only 200 answers whose usage was read (a failed or abandoned request says
  nothing about its length);
- only estimates of the calibrated kind: the predictor's when there is one (a
  fallback after a predictor timeout is another estimator, with its own
  errors), else the fallback constant itself, which calibration then turns
  into each model's typical length;
- only single sequences (``n``, ``best_of`` and batched prompts report one sum
  for several answers) whose length the client did not force (``min_tokens``,
  ``ignore_eos``: a client could otherwise inflate a model's scale for everyone);
- a length stopped by its limit (``finish_reason`` "length", or the count
  reaching ``max_tokens``) is censored: a lower bound, never the true length.

Updates happen on the event loop when a response ends: a sorted insert into a
bounded window; the Kaplan-Meier pass (O(window)) reruns at an estimate once
1/64 of the window is new (tens of microseconds per request on average).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ssjf.calibration import CalibrationSettings, Calibrator
from ssjf.estimate import LengthEstimate

if TYPE_CHECKING:
    from ssjf.gateway.config import GatewayConfig


def taught_length(
    *,
    status: int | None,
    actual: int | None,
    limit: int | None,
    length_finish: bool,
    n: int,
    min_output: int,
) -> tuple[int, bool] | None:
    """(length, censored) of a finished request that may teach a length model, else None.

    The one rule behind calibration and retraining (module doc): a 200 whose usage was
    read, one sequence, a length the client did not force; stopped by its limit, the
    length is only a lower bound (censored).
    """
    if actual is None or status != 200 or n != 1 or min_output > 0:
        return None
    return actual, length_finish or (limit is not None and actual >= limit)


def calibration_settings(config: GatewayConfig) -> CalibrationSettings:
    """The calibration settings of a gateway config (``calibration_*``)."""
    return CalibrationSettings(
        window=config.calibration_window,
        prior_count=config.calibration_prior_count,
        sigma=config.calibration_sigma,
        max_models=config.calibration_max_models,
        tolerance=config.calibration_tolerance,
    )


class GatewayCalibration:
    """The gateway's calibrator and its rules (see the module doc)."""

    def __init__(self, settings: CalibrationSettings, has_predictor: bool) -> None:
        self.calibrator = Calibrator(settings)
        #: Estimate sources it corrects and learns from.
        self.sources = frozenset({"predictor"} if has_predictor else {"fallback"})

    def apply(
        self, est: LengthEstimate, source: str, model: str | None
    ) -> tuple[LengthEstimate, float | None]:
        """(calibrated estimate, raw point to learn from later); raw None: not calibrated."""
        if source not in self.sources:
            return est, None
        return self.calibrator.estimate(est, model), est.point

    def learn(
        self,
        *,
        model: str | None,
        raw: float | None,
        status: int,
        actual: int | None,
        limit: int | None,
        length_finish: bool,
        n: int,
        min_output: int,
    ) -> bool:
        """Feed one finished request if it qualifies; True when it did."""
        taught = taught_length(
            status=status, actual=actual, limit=limit, length_finish=length_finish, n=n,
            min_output=min_output,
        )  # fmt: skip
        if raw is None or taught is None:
            return False
        self.calibrator.observe(model, raw, *taught)
        return True


class CalibrationCollector:
    """Prometheus gauges read at scrape time: the calibrated scale of each model.

    ``ssjf_gateway_calibration_scale{model_name}`` (labels through the metrics'
    :class:`~ssjf.gateway.metrics.LabelBudget`, so bounded; a label shared by
    several models, such as "other", shows the first) and the pooled scale.
    """

    def __init__(self, calibration: GatewayCalibration, label: Callable[[object], str]) -> None:
        self._cal = calibration
        self._label = label

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        pooled, pooled_n, groups = self._cal.calibrator.snapshot()
        scale = GaugeMetricFamily(
            "ssjf_gateway_calibration_scale",
            "multiplier of predicted lengths learnt from completions, per model",
            labels=["model_name"],
        )
        count = GaugeMetricFamily(
            "ssjf_gateway_calibration_completions",
            "completions in the model's calibration window",
            labels=["model_name"],
        )
        seen: set[str] = set()
        for model, s, n in groups:
            label = self._label(model)
            if label in seen:
                continue
            seen.add(label)
            scale.add_metric([label], s)
            count.add_metric([label], float(n))
        yield scale
        yield count
        yield GaugeMetricFamily(
            "ssjf_gateway_calibration_pooled_scale",
            "multiplier of predicted lengths learnt from all completions",
            value=pooled,
        )
        yield GaugeMetricFamily(
            "ssjf_gateway_calibration_pooled_completions",
            "completions in the pooled calibration window",
            value=float(pooled_n),
        )

    def describe(self) -> Iterator[Any]:
        return iter(())
