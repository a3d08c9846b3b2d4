"""Online retraining: refit the predictor from served completions, compare, swap atomically.

Calibration (:mod:`ssjf.calibration`) rescales a model's lengths within
seconds, but cannot reorder prompts the predictor misjudges. A
:class:`Retrainer` buffers completed requests (prompt, model, true or censored
length) and, after ``min_records`` and then every ``every`` new ones, fits a
fresh predictor of the serving one's class and parameters on the base data
plus the traffic, keeping the most recent ``holdout`` completions out of its
training. Both predictors are scored on that holdout; the candidate replaces
the serving one (one reference assignment, so a reader sees the old or the new
predictor, never half of one) only if its pooled Kendall tau is higher by more
than ``min_gain``. One component serves the simulator's online replay and the
gateway (:mod:`ssjf.gateway.retrain`).

Choices, and why:

- **Censoring.** A request stopped at its limit only says ``length >= limit``.
  It trains with the conditional expectation ``limit + estimate.remaining(limit)``
  of its serving estimate (>= limit + 1); served without one (a fallback), the
  serving predictor's estimate at retrain time stands in. It never enters the
  holdout's tau, which needs true lengths.
- **An honest holdout.** The holdout is the *most recent* completions (what the
  next requests look like); records anywhere in the training set whose prompt
  text equals a holdout prompt (:func:`ssjf.predict.split.prompt_key`) are
  dropped, so the candidate cannot win by memorising repeated prompts. It is
  capped at half the buffer, so the first retrain still learns from traffic.
- **Pooled tau.** What a mixed queue sees: one order over every model's
  requests. Undefined (NaN) candidate tau keeps the serving predictor; a
  serving predictor whose points are all tied orders nothing and counts as 0.
- **Never raises.** A fit or evaluation that fails is an event with ``error``
  set; the serving predictor is untouched.
- **Threads.** ``observe`` may be called from any thread (a lock around the
  buffer); ``retrain`` runs one at a time and calls the serving predictor's
  ``predict_points`` on the holdout from its own thread: the built-in families
  predict without mutating their state (the encoder families share a bounded
  embedding cache; a predict racing its rare full clear fails, which the
  gateway's runner turns into fallbacks and a retrain into a failed event).
  :class:`BackgroundRetrainer` runs it off the caller's thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssjf.estimate import LengthEstimate
from ssjf.numeric_spec import parse_numeric_spec
from ssjf.stats import kendall_tau_b, mean

if TYPE_CHECKING:
    from ssjf.predict.base import Predictor
    from ssjf.predict.records import LengthData

log = logging.getLogger("ssjf.retrain")

#: The collection name served traffic trains under (for families that balance collections).
TRAFFIC_DATASET = "traffic"
#: Retrain events a :class:`Retrainer` keeps (older ones are dropped).
MAX_EVENTS = 1024
#: Keys of a retrain spec (short names for the command line) -> setting names.
SPEC_KEYS = {"every": "every", "min_records": "min_records", "min": "min_records",
             "holdout": "holdout", "max_records": "max_records", "max": "max_records",
             "max_prompt_chars": "max_prompt_chars", "prompt_chars": "max_prompt_chars",
             "max_buffer_chars": "max_buffer_chars", "buffer_chars": "max_buffer_chars",
             "max_models": "max_models", "models": "max_models",
             "min_gain": "min_gain", "gain": "min_gain"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RetrainSettings:
    """When and how the retrainer refits; every default says why."""

    #: New completions between retrains after the first: a tfidf refit on ~20k records
    #: takes seconds, so every 500 keeps up with a busy gateway without fitting constantly.
    every: int = 500
    #: Completions before the first retrain: fewer teach little and make a noisy holdout.
    min_records: int = 200
    #: Most recent completions kept out of the candidate's training to compare the two
    #: predictors (at most half the buffer): 200 uncensored pairs put tau within ~±0.05.
    holdout: int = 200
    #: Traffic buffer bound (oldest dropped): memory, and a fit that keeps to recent traffic.
    max_records: int = 20_000
    #: Prompts longer than this are cut before buffering. Only absurd ones: the families
    #: cut text themselves but read the *full* prompt's length features, which a cut
    #: here would distort (a candidate fitted on 4,000-character prompts extrapolated
    #: to long ones: MAE 476 vs 82 tokens, review).
    max_prompt_chars: int = 100_000
    #: Prompt characters kept in all (oldest completions dropped first): the memory bound
    #: (1 to 4 bytes a character: 64M characters is 64-256 MB).
    max_buffer_chars: int = 64_000_000
    #: Distinct model names trained as themselves; later new names train unconditioned
    #: (clients choose names: a flood of them must not make the fit O(records x names)).
    max_models: int = 256
    #: The candidate must beat the serving predictor's pooled holdout tau by more than
    #: this. Tau on 200 pairs has a standard error of ~0.05, and every swap restarts the
    #: calibration: a small margin keeps steady traffic from swapping on noise.
    min_gain: float = 0.02

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"retrain every must be >= 1, got {self.every!r}")
        if self.holdout < 2:
            raise ValueError(
                f"retrain holdout must be >= 2 (a tau needs pairs), got {self.holdout!r}"
            )
        if self.min_records < 4:
            raise ValueError(f"retrain min_records must be >= 4, got {self.min_records!r}")
        if self.max_records < max(self.min_records, self.holdout):
            raise ValueError(
                f"retrain max_records ({self.max_records!r}) must be >= min_records "
                f"({self.min_records!r}) and >= holdout ({self.holdout!r})"
            )
        if self.max_buffer_chars < self.max_prompt_chars or self.max_models < 0:
            raise ValueError(
                f"retrain max_buffer_chars ({self.max_buffer_chars!r}) must be >= "
                f"max_prompt_chars ({self.max_prompt_chars!r}), max_models >= 0"
            )
        if self.max_prompt_chars < 1:
            raise ValueError(
                f"retrain max_prompt_chars must be >= 1, got {self.max_prompt_chars!r}"
            )
        if not math.isfinite(self.min_gain) or not 0 <= self.min_gain < 2:
            raise ValueError(f"retrain min_gain must be in [0, 2), got {self.min_gain!r}")

    @classmethod
    def parse(cls, spec: str) -> RetrainSettings:
        """``"on"`` (or empty) -> defaults; ``"every=200:holdout=100"`` (``:`` or ``,``)."""
        return parse_numeric_spec(cls, spec, SPEC_KEYS, "retrain", ":,")


@dataclass(frozen=True, slots=True)
class Completion:
    """One served request: its prompt, model and generated length (a lower bound if censored)."""

    prompt: str
    model: str | None
    length: int
    #: Stopped by its limit (max_tokens): the true length is at least ``length``.
    censored: bool
    #: The estimate it was served with: imputes a censored length (None: the limit, or,
    #: inside a retrain, the serving predictor's estimate).
    estimate: LengthEstimate | None = None

    def training_length(self) -> float:
        """The length to train on: the true one, or E[length | length >= limit] if censored."""
        if not self.censored or self.estimate is None:
            return float(self.length)
        # remaining(g) is finite and > 0 for g > 0 (LengthEstimate): above the limit.
        return self.length + max(self.estimate.remaining(self.length), 0.0)


@dataclass(frozen=True, slots=True)
class RetrainEvent:
    """One retrain: what was compared, the outcome, and the version now serving."""

    #: Completions observed when the buffer was snapshot.
    completions: int
    #: Records the candidate was fitted on (base + traffic, minus holdout prompts).
    trained_on: int
    #: Uncensored holdout completions both predictors were scored on.
    holdout: int
    serving_tau: float
    candidate_tau: float
    serving_mae: float
    candidate_mae: float
    swapped: bool
    #: Version serving after this event (unchanged unless swapped).
    version: int
    fit_s: float
    #: Why the retrain failed (the serving predictor is untouched); None on success.
    error: str | None = None

    @property
    def outcome(self) -> str:
        """``"swapped"``, ``"kept"`` or ``"failed"`` (a bounded label for metrics)."""
        return "failed" if self.error is not None else "swapped" if self.swapped else "kept"


class Retrainer:
    """Buffers completions and refits, compares and swaps the serving predictor (module doc)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: RetrainSettings | None = None,
        *,
        base: LengthData | None = None,
    ) -> None:
        self.settings = settings or RetrainSettings()
        self._predictor = predictor
        self.base = base
        #: +1 per swap (0: the predictor it started with).
        self.version = 0
        #: The most recent events (bounded: a gateway retrains for weeks).
        self.events: deque[RetrainEvent] = deque(maxlen=MAX_EVENTS)
        self._buffer: deque[Completion] = deque()
        self._chars = 0  # prompt characters in the buffer
        self._models: set[str] = set()  # names trained as themselves (max_models)
        self._lock = threading.Lock()  # the buffer and the counters below
        self._fit_lock = threading.Lock()  # one retrain at a time
        self._seen = 0
        self._last: int | None = None  # completions at the last retrain's snapshot
        self._base_keys: list[str] | None = None

    @property
    def predictor(self) -> Predictor:
        """The serving predictor (replaced by one reference assignment on a swap)."""
        return self._predictor

    @property
    def completions(self) -> int:
        """Completions observed so far (including those dropped from the buffer)."""
        return self._seen

    def observe(self, c: Completion) -> bool:
        """Buffer one completion (bounded: see the settings); True when a retrain is due."""
        if c.length < 0:
            raise ValueError(f"completion length must be >= 0, got {c.length!r}")
        s = self.settings
        prompt = _cut(c.prompt, s.max_prompt_chars)
        with self._lock:
            model = c.model
            if model is not None and model not in self._models:
                if len(self._models) < s.max_models:
                    self._models.add(model)
                else:
                    model = None
            if prompt is not c.prompt or model != c.model:
                c = Completion(prompt, model, c.length, c.censored, c.estimate)
            buf = self._buffer
            buf.append(c)
            self._chars += len(c.prompt)
            while len(buf) > s.max_records or self._chars > s.max_buffer_chars:
                self._chars -= len(buf.popleft().prompt)
            self._seen += 1
            return self._due()

    def _due(self) -> bool:
        if self._last is None:
            return self._seen >= self.settings.min_records
        return self._seen - self._last >= self.settings.every

    def retrain(self) -> RetrainEvent:
        """Snapshot, fit a candidate, compare on the holdout, swap if better; never raises."""
        with self._fit_lock:
            with self._lock:
                records = list(self._buffer)
                seen = self._last = self._seen
            serving = self._predictor
            t0 = time.perf_counter()
            try:
                event = self._retrain(serving, records, seen, t0)
            except Exception as e:  # a failed fit must never take the serving predictor down
                event = RetrainEvent(
                    completions=seen, trained_on=0, holdout=0, serving_tau=math.nan,
                    candidate_tau=math.nan, serving_mae=math.nan, candidate_mae=math.nan,
                    swapped=False, version=self.version, fit_s=time.perf_counter() - t0,
                    error=f"{type(e).__name__}: {e}",
                )  # fmt: skip
                log.warning("retrain after %d completions failed: %s", seen, event.error)
            self.events.append(event)
            return event

    def _retrain(
        self, serving: Predictor, records: list[Completion], seen: int, t0: float
    ) -> RetrainEvent:
        from ssjf.predict.split import prompt_key

        h = min(self.settings.holdout, len(records) // 2)
        train, hold = records[: len(records) - h], records[len(records) - h :]
        hold_keys = {prompt_key(c.prompt) for c in hold}
        prompts: list[str] = []
        lengths: list[float] = []
        models: list[str | None] = []
        datasets: list[str] = []
        base = self.base
        if base is not None:
            if self._base_keys is None:  # once: the base data never changes
                # Keyed as the traffic is buffered (cut alike), so a holdout prompt is
                # recognised in the base data too.
                cut = self.settings.max_prompt_chars
                self._base_keys = [prompt_key(_cut(p, cut)) for p in base.prompts]
            for i, key in enumerate(self._base_keys):
                if key not in hold_keys:
                    prompts.append(base.prompts[i])
                    lengths.append(float(base.lengths[i]))
                    models.append(base.models[i])
                    datasets.append(base.datasets[i] if i < len(base.datasets) else "base")
        train = [c for c in train if prompt_key(c.prompt) not in hold_keys]
        # A censored completion served without a predictor estimate (a fallback after a
        # timeout): the serving predictor's estimate imputes it, as if it had been served.
        blind = [i for i, c in enumerate(train) if c.censored and c.estimate is None]
        if blind:
            ests = serving.predict(
                [train[i].prompt for i in blind], [train[i].model for i in blind]
            )
            for i, est in zip(blind, ests, strict=True):
                c = train[i]
                train[i] = Completion(c.prompt, c.model, c.length, True, est)
        for c in train:
            prompts.append(c.prompt)
            lengths.append(c.training_length())
            models.append(c.model)
            datasets.append(TRAFFIC_DATASET)
        if not lengths:
            raise ValueError("no training records left after removing the holdout's prompts")
        candidate = type(serving)(**serving.params)
        # Families that read collections (e.g. `balance`) see traffic as one.
        candidate.fit_records(prompts, lengths, models, datasets)
        fit_s = time.perf_counter() - t0
        scored = [c for c in hold if not c.censored]
        h_prompts = [c.prompt for c in scored]
        h_models = [c.model for c in scored]
        truth = [float(c.length) for c in scored]
        s_tau, s_mae = _score(serving.predict_points(h_prompts, h_models), truth)
        c_tau, c_mae = _score(candidate.predict_points(h_prompts, h_models), truth)
        better = math.isfinite(c_tau) and c_tau > (s_tau if math.isfinite(s_tau) else 0.0) + (
            self.settings.min_gain
        )
        # Lengths all tied on the holdout: no order to judge, keep the serving predictor.
        swapped = better and len(set(truth)) > 1
        if swapped:
            candidate.training["retrain"] = {
                "version": self.version + 1, "completions": seen, "records": len(lengths),
                "holdout_tau": c_tau, "serving_tau": s_tau,
            }  # fmt: skip
            self._predictor = candidate  # the swap: one reference assignment
            self.version += 1
        return RetrainEvent(
            completions=seen, trained_on=len(lengths), holdout=len(scored), serving_tau=s_tau,
            candidate_tau=c_tau, serving_mae=s_mae, candidate_mae=c_mae, swapped=swapped,
            version=self.version, fit_s=fit_s,
        )  # fmt: skip


def _cut(prompt: str, limit: int) -> str:
    """``prompt`` cut to ``limit`` characters (head and tail), or the same object."""
    if len(prompt) <= limit:
        return prompt
    from ssjf.predict.truncate import truncate_text

    return truncate_text(prompt, limit)


def _score(points: object, truth: list[float]) -> tuple[float, float]:
    """(pooled Kendall tau-b, MAE) of predicted points against true lengths."""
    pred = [float(p) for p in points]  # type: ignore[attr-defined]
    if len(pred) != len(truth):
        raise ValueError(f"predictor returned {len(pred)} points for {len(truth)} prompts")
    if len(truth) < 2:
        return math.nan, math.nan
    tau = kendall_tau_b(pred, truth)
    return tau, mean([abs(p - t) for p, t in zip(pred, truth, strict=True)])


class BackgroundRetrainer:
    """Runs a :class:`Retrainer`'s retrains in one worker thread, at most one at a time.

    ``observe`` buffers and, when a retrain is due and none runs, submits one;
    it never waits for a fit. ``on_event`` is called in the worker thread after
    each retrain (an exception there is logged, never lost silently).
    """

    def __init__(
        self, retrainer: Retrainer, on_event: Callable[[RetrainEvent], None] | None = None
    ) -> None:
        self.retrainer = retrainer
        self.on_event = on_event
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssjf-retrain")
        self._lock = threading.Lock()
        self._running = False
        self._closed = False

    @property
    def predictor(self) -> Predictor:
        """The serving predictor."""
        return self.retrainer.predictor

    @property
    def running(self) -> bool:
        """Whether a retrain is under way."""
        return self._running

    def observe(self, c: Completion) -> None:
        """Buffer one completion; start a retrain in the worker when one is due and none runs."""
        due = self.retrainer.observe(c)
        if not due:
            return
        with self._lock:
            if self._running or self._closed:
                return  # due stays true: the next completion after this job starts one
            self._running = True
            self._executor.submit(self._run)

    def _run(self) -> None:
        try:
            event = self.retrainer.retrain()
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:
                    log.exception("retrain on_event callback failed")
        finally:
            with self._lock:
                self._running = False

    def close(self) -> None:
        """Stop taking jobs and wait for the one under way (if any)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)


__all__ = ["BackgroundRetrainer", "Completion", "RetrainEvent", "RetrainSettings", "Retrainer"]
