"""`ssjf bench predictor --online`: the learning curve of a predictor serving unfamiliar traffic.

The stream (:mod:`ssjf.bench.online_stream`) is dominated by generators the
shipped predictor never saw. Every seed replays the same jobs (serial engine,
the paper's cost, Poisson arrivals at ``load``) under:

- ``fcfs`` and oracle ``sjf`` (the scale of every share);
- ``shipped``: SSJF on the shipped predictor's estimates, nothing learnt;
- ``calibrated``: the same with self-calibration
  (:class:`~ssjf.sim.calibration.CalibrationFeedback`);
- ``retrained``: retraining from completions plus calibration on top
  (:class:`~ssjf.sim.retrain.RetrainFeedback`); each retrain fits synchronously in
  simulated time (no time charged for the fit; the gateway fits in the background).

Windows of ``window`` requests in arrival order partition each run
(:mod:`ssjf.bench.windows`): pooled Kendall tau-b of the estimates the requests
were scheduled with against their true lengths, the share of oracle SJF's
mean-JCT gain over FCFS on the same requests, mean and p99 JCT, max wait, and the retrains
triggered there. "After N completions" takes, per seed, every request that
arrived once every arm of that run had N completions (one cut for all labels). Per-seed figures are averaged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ssjf.bench.online_stream import (
    OnlineData,
    load_online_data,
    repeats,
    sample_stream,
    stream_jobs,
)
from ssjf.bench.windows import Pick, jct_figures, pooled_tau, window_bounds
from ssjf.calibration import CalibrationSettings
from ssjf.predict.base import Predictor
from ssjf.retrain import Retrainer, RetrainSettings
from ssjf.sim.calibration import CalibrationFeedback
from ssjf.sim.retrain import ReplayEvent, RetrainFeedback

#: Arms that schedule with a predictor, in report order.
ARMS: tuple[str, ...] = ("shipped", "calibrated", "retrained")
#: The scale of every share: FCFS (0) and oracle SJF (1).
BASELINES: tuple[str, ...] = ("fcfs", "sjf")
#: The issue's bar: after the first mark, calibration and retraining reach this x shipped's.
TARGET_RATIO = 2.0
#: Reports progress: (runs done, runs in all, label of the run just finished).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class OnlineConfig:
    """What to replay; defaults are the documented run."""

    requests: int = 3000
    seeds: tuple[int, ...] = (0, 1, 2)
    window: int = 200
    #: "After N completions" summaries: the issue judges after 200 and by 1,000.
    marks: tuple[int, ...] = (200, 1000)
    load: float = 0.9
    family: str = "tfidf"  # the default family: what ships
    #: RetrainSettings spec: the library's defaults (first retrain after 200 completions,
    #: then every 500), not tuned on this stream (every=200 gained ~0.02 tau on an
    #: unreported seed of the same pools: a choice too close to the test to make here).
    retrain: str = "on"
    calibration: str = "on"  # CalibrationSettings spec
    seen_share: float = 0.2  # held-out alpaca_eval answers by trained-on generators
    arms: tuple[str, ...] = ARMS
    max_train: int | None = None  # subsample the training records (tests, quick runs)
    retrain_settings: RetrainSettings = field(init=False)
    calibration_settings: CalibrationSettings = field(init=False)

    def __post_init__(self) -> None:
        if self.requests < 2:
            raise ValueError(f"online requests must be >= 2, got {self.requests}")
        if self.window < 1:
            raise ValueError(f"online window must be >= 1 request, got {self.window}")
        if not self.seeds:
            raise ValueError("online replay needs at least one seed")
        bad = [m for m in self.marks if not 1 <= m < self.requests]
        if bad or list(self.marks) != sorted(set(self.marks)):
            raise ValueError(
                f"online marks {list(self.marks)} must increase within [1, requests="
                f"{self.requests})"
            )
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise ValueError(f"online arms {list(self.arms)}: use some of {', '.join(ARMS)}")
        if not math.isfinite(self.load) or self.load <= 0:
            raise ValueError(f"online load must be > 0, got {self.load}")
        object.__setattr__(self, "retrain_settings", RetrainSettings.parse(self.retrain))
        object.__setattr__(
            self, "calibration_settings", CalibrationSettings.parse(self.calibration)
        )


@dataclass(slots=True)
class SeedRun:
    """One seed's runs, every array in arrival order."""

    seed: int
    lengths: np.ndarray
    unseen: np.ndarray  # bool: the request's generator is absent from training
    arrival: np.ndarray
    jct: dict[str, np.ndarray]
    wait: dict[str, np.ndarray]  # first wait in the queue (arrival to first admission)
    completion: dict[str, np.ndarray]
    estimate: dict[str, np.ndarray]  # the points the requests were scheduled with
    events: list[dict[str, Any]]
    repeat: np.ndarray  # bool: the prompt's text arrived earlier in the stream


def _feedback(
    arm: str, cfg: OnlineConfig, data: OnlineData, predictor: Predictor
) -> CalibrationFeedback | RetrainFeedback | None:
    """A fresh feedback for one run of ``arm`` (None: nothing learnt)."""
    if arm == "calibrated":
        return CalibrationFeedback(cfg.calibration_settings)
    if arm == "retrained":
        rt = Retrainer(predictor, cfg.retrain_settings, base=data.train)
        return RetrainFeedback(rt, cfg.calibration_settings)
    return None


def _event_row(seed: int, ev: ReplayEvent) -> dict[str, Any]:
    row = {"seed": seed, "arrival_index": ev.arrivals, "time": ev.time,
           "completions": ev.completions, **asdict(ev.event)}  # fmt: skip
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def run_seed(
    cfg: OnlineConfig,
    data: OnlineData,
    predictor: Predictor,
    seed: int,
    step: Callable[[str], None] | None = None,
) -> SeedRun:
    """Sample seed ``seed``'s stream and replay it under FCFS, SJF and every arm."""
    from ssjf.sim import SerialEngine, paper_linear, simulate

    rng = np.random.default_rng(seed)
    stream = sample_stream(data, cfg.requests, cfg.seen_share, rng)
    jobs = stream_jobs(stream, predictor, cfg.load, rng)
    engine, cost = SerialEngine(), paper_linear()
    unseen_models = set(data.unseen.model_names)
    arrival = np.array([j.request.arrival for j in jobs])
    order = np.argsort(arrival, kind="stable")
    run = SeedRun(
        seed=seed,
        lengths=np.array([j.output_tokens for j in jobs], dtype=float)[order],
        unseen=np.array([j.request.model in unseen_models for j in jobs], dtype=bool)[order],
        arrival=arrival[order],
        jct={}, wait={}, completion={}, estimate={}, events=[],
        repeat=np.array(repeats([stream.prompts[i] for i in order]), dtype=bool),
    )  # fmt: skip
    for label in (*BASELINES, *cfg.arms):
        fb = _feedback(label, cfg, data, predictor)
        policy = label if label in BASELINES else "ssjf"
        res = simulate(jobs, engine, policy, cost=cost, feedback=fb)
        run.jct[label] = res.jct[order]
        run.wait[label] = res.queueing_delay[order]
        run.completion[label] = res.completion[order]
        run.estimate[label] = res.predicted_tokens[order]
        if isinstance(fb, RetrainFeedback):
            run.events = [_event_row(seed, ev) for ev in fb.events]
        if step is not None:
            step(label)
    return run


def _after(run: SeedRun, labels: Sequence[str], n_done: int) -> np.ndarray:
    """Requests that arrived once every one of ``labels`` had ``n_done`` completions.

    One cut for every arm of a run, so arms are compared on the same requests (each
    arm's schedule reaches its ``n_done``-th completion at its own time).
    """
    t = max(np.sort(run.completion[lb])[n_done - 1] for lb in labels)
    return run.arrival > t


def _arm_figures(runs: list[SeedRun], label: str, picks: list[Pick]) -> dict[str, float | None]:
    """Figures of ``label`` on the picked requests (FCFS and SJF on the same ones)."""
    jcts = {k: [r.jct[k] for r in runs] for k in (label, *BASELINES)}
    row: dict[str, float | None] = dict(jct_figures(jcts, picks)[label])
    row["requests"] = float(np.mean([r.lengths[p].size for r, p in zip(runs, picks, strict=True)]))
    # The longest first wait (mean over seeds): what a starved request saw.
    waits = [r.wait[label][p] for r, p in zip(runs, picks, strict=True)]
    maxes = [float(np.max(w)) for w in waits if w.size]
    row["wait_max"] = float(np.mean(maxes)) if maxes else None
    for key in ("tau", "tau_unseen", "tau_seen", "tau_fresh", "tau_repeat"):
        row[key] = None
    if label not in BASELINES:
        ests = [r.estimate[label] for r in runs]
        ys = [r.lengths for r in runs]
        row["tau"] = pooled_tau(ests, ys, picks)
        for key, attr, want in (
            ("tau_unseen", "unseen", True),
            ("tau_seen", "unseen", False),
            ("tau_fresh", "repeat", False),
            ("tau_repeat", "repeat", True),
        ):
            sub = [_and(p, getattr(r, attr) == want) for r, p in zip(runs, picks, strict=True)]
            row[key] = pooled_tau(ests, ys, sub)
    return row


def _and(pick: Pick, mask: np.ndarray) -> np.ndarray:
    sel = np.zeros(mask.size, dtype=bool)
    sel[pick] = True
    return sel & mask


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b where both are known and b > 0 (a ratio to a non-positive baseline says nothing)."""
    return a / b if a is not None and b is not None and b > 0 else None


def summarize(cfg: OnlineConfig, runs: list[SeedRun]) -> dict[str, Any]:
    """Windows, "after N completions" spans, ratios vs ``shipped`` and the issue's checks."""
    labels = (*BASELINES, *cfg.arms)
    n = min(r.lengths.size for r in runs)
    windows = []
    for k, (start, stop) in enumerate(window_bounds(n, cfg.window)):
        picks: list[Pick] = [slice(start, stop)] * len(runs)
        retrains = [e for r in runs for e in r.events if start <= e["arrival_index"] < stop]
        windows.append({"window": k, "start": start, "stop": stop,
                        "arms": {lb: _arm_figures(runs, lb, picks) for lb in labels},
                        "retrains": retrains})  # fmt: skip
    spans: dict[str, dict[str, dict[str, float | None]]] = {
        "whole_run": {lb: _arm_figures(runs, lb, [slice(0, n)] * len(runs)) for lb in labels}
    }
    for mark in cfg.marks:
        picks_after: list[Pick] = [_after(r, cfg.arms, mark) for r in runs]
        spans[f"after_{mark}"] = {lb: _arm_figures(runs, lb, picks_after) for lb in labels}
    ratios: dict[str, dict[str, dict[str, float | None]]] = {}
    if "shipped" in cfg.arms:
        for span, figs in spans.items():
            base = figs["shipped"]
            ratios[span] = {
                arm: {
                    "tau": _ratio(figs[arm]["tau"], base["tau"]),
                    "oracle_gain_share": _ratio(
                        figs[arm]["oracle_gain_share"], base["oracle_gain_share"]
                    ),
                }
                for arm in cfg.arms
                if arm != "shipped"
            }
    return {"windows": windows, "spans": spans, "ratios_vs_shipped": ratios,
            "checks": _checks(cfg, spans)}  # fmt: skip


def _twice(arm: float | None, shipped: float | None) -> bool | None:
    """``arm`` >= 2x ``shipped`` and positive (so a shipped figure <= 0 is beaten by any gain)."""
    if arm is None or shipped is None:
        return None
    return arm > 0 and arm >= TARGET_RATIO * shipped


def _ahead(a: float | None, b: float | None) -> bool | None:
    return None if a is None or b is None else a > b


def _all(results: list[bool | None]) -> bool | None:
    return None if None in results else all(results)


def _checks(
    cfg: OnlineConfig, spans: dict[str, dict[str, dict[str, float | None]]]
) -> dict[str, bool | None]:
    """The issue's bar, computed on pooled tau and the oracle share: calibration and
    retraining >= 2x shipped after the first mark; retraining ahead of calibration by the last."""
    out: dict[str, bool | None] = {}
    if not cfg.marks:
        return out
    first, last = f"after_{cfg.marks[0]}", f"after_{cfg.marks[-1]}"
    keys = ("tau", "oracle_gain_share")
    if "shipped" in cfg.arms:
        base = spans[first]["shipped"]
        for arm in (a for a in cfg.arms if a != "shipped"):
            got = spans[first][arm]
            out[f"{arm}_2x_shipped_{first}"] = _all([_twice(got[k], base[k]) for k in keys])
    if {"retrained", "calibrated"} <= set(cfg.arms):
        a, b = spans[last]["retrained"], spans[last]["calibrated"]
        out[f"retrained_beats_calibrated_{last}"] = _all([_ahead(a[k], b[k]) for k in keys])
    return out


def run_online(
    cfg: OnlineConfig,
    *,
    data: OnlineData | None = None,
    predictor: Predictor | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay every seed; see the module doc. ``data`` / ``predictor`` default to the
    shared collections and the default family trained on ``data.train``. JSON-ready."""
    from ssjf.predict.base import make_predictor

    t0 = time.perf_counter()
    if data is None:
        data = load_online_data(max_train=cfg.max_train)
    fit_s = 0.0
    if predictor is None:
        predictor = make_predictor(cfg.family)
        t1 = time.perf_counter()
        predictor.fit_records(
            data.train.prompts, data.train.lengths, data.train.models, data.train.datasets
        )
        fit_s = time.perf_counter() - t1
    total = len(cfg.seeds) * (len(BASELINES) + len(cfg.arms))
    done = 0
    runs: list[SeedRun] = []
    for seed in cfg.seeds:

        def step(label: str, seed: int = seed) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, f"seed {seed} {label}")

        runs.append(run_seed(cfg, data, predictor, seed, step))
    out = summarize(cfg, runs)
    out["stream"] = {
        **data.describe,
        "shipped_family": predictor.family,
        "shipped_fit_s": fit_s,
        "repeat_prompt_share": float(np.mean([r.repeat.mean() for r in runs])),
        "unseen_request_share": float(np.mean([r.unseen.mean() for r in runs])),
    }
    out["events"] = [e for r in runs for e in r.events]
    out["wall_s"] = time.perf_counter() - t0
    return out


def config_dict(cfg: OnlineConfig) -> dict[str, Any]:
    """The settings as JSON (the parsed retrain and calibration settings spelled out)."""
    out = {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}
    out["seeds"] = list(cfg.seeds)
    out["retrain_settings"] = asdict(cfg.retrain_settings)
    out["calibration_settings"] = asdict(cfg.calibration_settings)
    out.update(engine="serial", cost="paper (0.1 s + 0.02 s/token)", arrivals="poisson",
               policy="ssjf")  # fmt: skip
    return out
