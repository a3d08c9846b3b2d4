"""`ssjf bench calibration`: how self-calibration learns an unseen model, window by window.

The stream is the ``unseen-models`` workload of `ssjf bench policies` (a tfidf
predictor trained without the claude and gpt4 generator families serves a
queue mixing them with as many seen generators), plus a CONSTRUCTED harder one,
``unseen-models-x3``: the same requests with the held-out generators' true
lengths multiplied by 3 (a "reasoning" model answering 3x longer while its
prompts look ordinary, so the predictor ranks its requests short). Every
policy replays the same sampled jobs per seed (:func:`run_experiment`).

The curve cuts each run into windows of ``window`` requests in arrival order
(window k = requests k*w .. k*w+w-1; the last may be shorter, so the windows
partition the run). Per window, figures are per-seed values averaged over
seeds; the share of the oracle's gain compares the seed-mean JCTs on those
requests, (FCFS - policy) / (FCFS - oracle SJF), and is null where the oracle
gains less than :data:`~ssjf.metrics.compare.MIN_ORACLE_GAIN` there. The
"after warm-up" figures take every request from ``warmup`` on: by then the
calibrator has seen about that many completions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ssjf.bench.policies_matrix import default_policy, engine_preset
from ssjf.bench.policies_workloads import BenchWorkload, WorkloadConfig, build_workloads
from ssjf.bench.runner import ExperimentResult, RunSettings, parse_policies, run_experiment
from ssjf.bench.windows import span_figures, window_bounds
from ssjf.estimate import LengthEstimate
from ssjf.stats import kendall_tau_b
from ssjf.workload.pool import Pool

#: The streams: the bench's workload, and the constructed harder one.
STREAMS: tuple[str, ...] = ("unseen-models", "unseen-models-x3")
#: How much longer the held-out generators answer in the constructed stream.
HARDER_FACTOR = 3
#: Figures of one window (or span) and policy, in order.
WINDOW_FIELDS: tuple[str, ...] = (
    "jct_mean",
    "jct_p99",
    "oracle_gain_share",
    "p99_vs_fcfs",
    "held_out_scale",
)
#: Reports progress: (runs done, runs in all, label of the run just finished).
Progress = Callable[[int, int, str], None]


def curve_policies() -> tuple[str, ...]:
    """FCFS, oracle SJF, SSJF and the default policy, the last two with and without calibration."""
    dp = default_policy()
    return ("fcfs", "sjf", "ssjf", "ssjf:calibrate=true", dp, f"{dp}:calibrate=true")


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    """What to run; defaults are the documented run (docs/results.md)."""

    streams: tuple[str, ...] = STREAMS
    engines: tuple[str, ...] = ("serial", "continuous")  # presets of `ssjf bench policies`
    requests: int = 3000
    seeds: tuple[int, ...] = (0, 1, 2)
    window: int = 200
    warmup: int = 200  # "after the first 200 completions"
    load: float = 0.9
    policies: tuple[str, ...] = field(default_factory=curve_policies)
    training: WorkloadConfig = field(default_factory=WorkloadConfig)

    def __post_init__(self) -> None:
        unknown = [s for s in self.streams if s not in STREAMS]
        if unknown or not self.streams:
            raise ValueError(f"streams {list(self.streams)}: use {', '.join(STREAMS)}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1 request, got {self.window}")
        if not 0 <= self.warmup < self.requests:
            raise ValueError(
                f"warmup (--window on the command line) must be in [0, requests), "
                f"got {self.warmup} for {self.requests} requests"
            )
        if not self.seeds:
            raise ValueError("give at least one seed")
        missing = {"fcfs", "sjf"} - set(self.policies)
        if missing:
            raise ValueError(f"policies must include {sorted(missing)} (every share needs them)")


def quick_config() -> CalibrationConfig:
    """--quick: both streams, the serial engine, a few hundred requests (tests)."""
    return CalibrationConfig(
        engines=("serial",),
        requests=240,
        seeds=(0,),
        window=60,
        warmup=60,
        training=WorkloadConfig(max_train=1000),
    )


def stretch_held_out(wl: BenchWorkload, factor: int = HARDER_FACTOR) -> BenchWorkload:
    """The CONSTRUCTED stream: held-out generators' true lengths x ``factor``, estimates kept."""
    held = set(wl.describe["held_out_generators"])
    models = wl.pool.models or []
    mask = np.array([m in held for m in models], dtype=bool)
    out = wl.pool.output_tokens.copy()
    out[mask] *= factor
    pool = replace(wl.pool, name=f"{wl.pool.name}; held-out lengths x{factor} (constructed)",
                   output_tokens=out)  # fmt: skip
    describe = {
        **wl.describe,
        "workload": "unseen-models-x3",
        "constructed": True,
        # Over the whole queue the ranks change; within each group (seen, held out) they don't.
        "estimate_tau": kendall_tau_b([e.point for e in wl.pool.estimates or []], out),
        "construction": f"the unseen-models queue with the held-out generators' true "
        f"lengths multiplied by {factor} (a reasoning model answering {factor}x longer "
        "while its prompts look ordinary); estimates unchanged",
    }
    return replace(wl, name="unseen-models-x3", pool=pool, describe=describe)


def build_streams(cfg: CalibrationConfig) -> list[BenchWorkload]:
    """The configured streams, from one trained ``unseen-models`` workload."""
    base = build_workloads(["unseen-models"], cfg.training)[0]
    base.describe["constructed"] = False
    make = {"unseen-models": lambda: base, "unseen-models-x3": lambda: stretch_held_out(base)}
    return [make[s]() for s in cfg.streams]


class _Capture:
    """The runner's estimate function: keeps each seed's sampled models and raw estimates."""

    def __init__(self) -> None:
        self.models: list[list[str | None]] = []
        self.raw: list[list[LengthEstimate]] = []

    def __call__(self, sample: Pool) -> list[LengthEstimate]:
        assert sample.estimates is not None
        self.models.append(list(sample.models or [None] * len(sample)))
        self.raw.append(list(sample.estimates))
        return self.raw[-1]


def _raw_point(est: LengthEstimate) -> float:
    # Calibrator.estimate scales max(point, 1) for point estimates, the point itself otherwise.
    return est.point if est.quantiles else max(est.point, 1.0)


def _cell(
    res: ExperimentResult, cap: _Capture, held: set[str], cfg: CalibrationConfig
) -> dict[str, Any]:
    """Windows and spans of one (stream, engine) from the runner's records."""
    labels = [r["policy"] for r in res.rows]
    jcts: dict[str, list[np.ndarray]] = {k: [] for k in labels}
    scales: dict[str, list[np.ndarray]] = {k: [] for k in labels if "calibrate=true" in k}
    seeds = list(cfg.seeds)
    for rec in res.records:
        seed_i = seeds.index(rec["seed"][0])
        arrival = np.asarray(rec["arrival"], dtype=float)
        order = np.argsort(arrival, kind="stable")
        label = rec["policy"][0]
        jcts[label].append(np.asarray(rec["jct"], dtype=float)[order])
        if label in scales:
            raw = np.array([_raw_point(e) for e in cap.raw[seed_i]])
            is_held = np.array([m in held for m in cap.models[seed_i]], dtype=bool)
            scale = np.asarray(rec["predicted_tokens"], dtype=float) / raw
            scales[label].append(np.where(is_held, scale, np.nan)[order])
    n = min(len(a) for v in jcts.values() for a in v)
    windows = []
    for k, (start, stop) in enumerate(window_bounds(n, cfg.window)):
        figs = span_figures(jcts, start, stop, scales=scales)
        windows.append({"window": k, "start": start, "stop": stop, "policies": figs})
    return {
        "policies": labels,
        "windows": windows,
        "whole_run": span_figures(jcts, 0, n, scales=scales),
        "after_warmup": span_figures(jcts, cfg.warmup, n, scales=scales),
        "rows": res.rows,
    }


def run_curves(cfg: CalibrationConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Every stream x engine; see the module doc. Returns a JSON-ready dict."""
    entries = parse_policies(",".join(cfg.policies))
    presets = [engine_preset(e) for e in cfg.engines]
    streams = build_streams(cfg)
    total = len(streams) * len(presets) * len(cfg.seeds) * len(entries)
    done = 0
    cells: list[dict[str, Any]] = []
    for wl in streams:
        held = set(wl.describe["held_out_generators"])
        for preset in presets:
            settings = RunSettings(
                engine=preset.engine,
                cost=preset.cost,
                requests=cfg.requests,
                seeds=cfg.seeds,
                load=cfg.load,
                keep_results=True,
                records=True,
                resample=cfg.requests > len(wl.pool),
            )
            base = done

            def step(i: int, _n: int, label: str, base: int = base) -> None:
                if progress is not None:
                    progress(base + i, total, label)

            cap = _Capture()
            res = run_experiment(wl.pool, entries, settings, estimate_fn=cap, progress=step)
            done += len(cfg.seeds) * len(entries)
            cell = _cell(res, cap, held, cfg)
            cells.append({"stream": wl.name, "engine": preset.name, "engine_spec": preset.engine,
                          "cost": preset.cost, **cell})  # fmt: skip
    return {
        "streams": [wl.describe for wl in streams],
        "cells": cells,
    }
