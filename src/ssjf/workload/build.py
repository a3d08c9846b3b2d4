"""Workloads: arrivals from one process or trace + requests from a source + estimates.

``build_workload`` is deterministic in its seed: the same spec, size, seed,
engine and load give the same jobs, bit for bit.

Layering: jobs are the ground floor's :class:`~ssjf.job.Job`; the simulator is
used only to turn a load into a rate (:func:`ssjf.sim.capacity_rps`), and it
never imports a workload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.job import Job
from ssjf.request import Request
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.sources import (
    Pool,
    load_azure,
    load_paper_predictions,
    load_prompts,
    load_table,
    parse_columns,
)

if TYPE_CHECKING:
    from ssjf.sim.cost import CostModel
    from ssjf.sim.engines import Engine

#: Default AlpacaEval generator: a widely used model with varied lengths.
DEFAULT_GENERATOR = "gpt4_1106_preview"

_PROMPT_SETS = {
    "alpaca": "prompts/alpaca_eval.jsonl.gz",
    "flask": "prompts/flask.jsonl.gz",
    "sharegpt": "prompts/sharegpt_sample.jsonl.gz",
}

WORKLOAD_HELP = (
    "azure-conv | azure-code | alpaca[:GENERATOR] | flask[:GENERATOR] | sharegpt | "
    "paper:5class | paper:3class | jsonl:FILE[:FIELD=COL,...] | csv:FILE[:FIELD=COL,...] | synthetic"
)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A parsed workload name (see :data:`WORKLOAD_HELP`)."""

    kind: str
    arg: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> WorkloadSpec:
        """Parse a workload name such as ``alpaca:gpt4_1106_preview`` or ``paper:5class``."""
        text = spec.strip()
        kind, _, arg = text.partition(":")
        kind = kind.lower()
        if kind in ("azure-conv", "azure-code", "synthetic", "sharegpt") and not arg:
            return cls(kind=kind)
        if kind in ("alpaca", "flask"):
            return cls(kind=kind, arg=arg or (DEFAULT_GENERATOR if kind == "alpaca" else None))
        if kind == "paper":
            classes = arg.lower().removesuffix("class").removesuffix("-")
            if classes not in ("3", "5"):
                raise ValueError(f"workload {spec!r}: use paper:5class or paper:3class")
            return cls(kind="paper", arg=classes)
        if kind in ("jsonl", "csv"):
            if not arg:
                raise ValueError(f"workload {spec!r}: give a file, e.g. {kind}:requests.{kind}")
            path, columns = arg, {}
            head, sep, tail = arg.rpartition(":")
            if sep and "=" in tail:
                path, columns = head, parse_columns(tail)
            return cls(kind="table", arg=path, columns=columns)
        raise ValueError(f"unknown workload {spec!r}; use {WORKLOAD_HELP}")

    def __str__(self) -> str:
        if self.kind == "paper":
            return f"paper:{self.arg}class"
        if self.kind == "table":
            return f"table:{self.arg}"
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def synthetic_pool(size: int = 20_000, seed: int = 12345) -> Pool:
    """A SYNTHETIC pool: log-normal prompt and output lengths (used when no data exists).

    Output lengths: median 150 tokens, heavy right tail, capped at 2048; each
    record carries a noisy estimate (true x exp(N(0, 0.6))), a stand-in for a
    predictor with roughly the rank quality of a small proxy model.
    """
    rng = np.random.default_rng(seed)
    out = np.clip(np.round(rng.lognormal(np.log(150), 0.9, size)), 1, 2048).astype(np.int64)
    prompt = np.clip(np.round(rng.lognormal(np.log(300), 1.0, size)), 1, 8192).astype(np.int64)
    noisy = out * np.exp(rng.normal(0.0, 0.6, size))
    return Pool(
        name="synthetic",
        prompt_tokens=prompt,
        output_tokens=out,
        estimates=[LengthEstimate(point=float(v)) for v in noisy],
        meta={"synthetic": True, "token_unit": "synthetic tokens"},
    )


def load_pool(spec: WorkloadSpec | str) -> Pool:
    """Load every record of a workload's source."""
    s = WorkloadSpec.parse(spec) if isinstance(spec, str) else spec
    if s.kind == "azure-conv":
        return load_azure("conv")
    if s.kind == "azure-code":
        return load_azure("code")
    if s.kind in _PROMPT_SETS:
        return load_prompts(s.arg, _PROMPT_SETS[s.kind])
    if s.kind == "paper":
        return load_paper_predictions(int(s.arg or 5))
    if s.kind == "table":
        return load_table(Path(s.arg or ""), s.columns)
    if s.kind == "synthetic":
        return synthetic_pool()
    raise ValueError(f"unknown workload kind {s.kind!r}")


def sample_indices(
    n_pool: int, n: int, rng: np.random.Generator, *, contiguous: bool, replace: bool = False
) -> np.ndarray:
    """``n`` record indices: a random contiguous window (traces) or a random sample.

    The sample is drawn without replacement, in file order, so asking for more
    records than the pool holds is an error; ``replace=True`` draws with
    replacement (a bootstrap, in random order) instead.
    """
    if n_pool <= 0:
        raise ValueError("cannot sample from an empty pool")
    if contiguous:
        if n > n_pool:
            raise ValueError(f"the trace has {n_pool} records, fewer than the {n} requested")
        start = int(rng.integers(0, n_pool - n + 1))
        return np.arange(start, start + n)
    if replace:
        return rng.integers(0, n_pool, size=n)
    if n > n_pool:
        raise ValueError(
            f"the source has {n_pool} records, fewer than the {n} requested; ask for at most "
            f"{n_pool}, or resample with replacement"
        )
    return np.sort(rng.choice(n_pool, size=n, replace=False))


def noisy_estimates(
    true: np.ndarray, sigma: float, rng: np.random.Generator
) -> list[LengthEstimate]:
    """SYNTHETIC estimates: true length x exp(N(0, sigma)) (a stand-in predictor)."""
    noisy = np.asarray(true, dtype=np.float64) * np.exp(rng.normal(0.0, sigma, len(true)))
    return [LengthEstimate(point=float(v)) for v in noisy]


def make_jobs(
    pool: Pool, arrivals: np.ndarray, estimates: Sequence[LengthEstimate] | None
) -> list[Job]:
    """One simulator job per record, with arrival times and the scheduler-visible estimates."""
    jobs: list[Job] = []
    prompts = pool.prompts
    models = pool.models
    for i in range(len(pool)):
        req = Request(
            id=i,
            arrival=float(arrivals[i]),
            prompt_tokens=int(pool.prompt_tokens[i]),
            estimate=estimates[i] if estimates is not None else None,
            prompt=prompts[i] if prompts is not None else None,
            model=models[i] if models is not None else None,
        )
        jobs.append(Job(request=req, output_tokens=int(pool.output_tokens[i])))
    return jobs


#: Predicts estimates for a sampled pool (e.g. a trained predictor); returns one per record.
EstimateFn = Callable[[Pool], Sequence[LengthEstimate]]


@dataclass(slots=True)
class Workload:
    """Jobs ready to simulate plus how they were made."""

    jobs: list[Job]
    pool: Pool
    arrivals: np.ndarray
    rate_rps: float
    capacity_rps: float | None
    describe: dict[str, Any]


def build_workload(
    pool: Pool,
    n: int,
    seed: int,
    *,
    engine: Engine | None = None,
    cost: CostModel | None = None,
    load: float | None = 0.8,
    rate: float | None = None,
    arrival: ArrivalSpec | None = None,
    estimates: str | EstimateFn = "source",
    arrival_pool: Pool | None = None,
    replace: bool = False,
) -> Workload:
    """Sample ``n`` requests from ``pool`` and give them arrivals and estimates.

    Arrivals come from ``arrival`` (default Poisson); ``trace`` uses the
    timestamps of ``arrival_pool`` (or of ``pool`` itself), a random contiguous
    window, rate-scaled. The rate is ``rate`` if given, else ``load`` x the
    engine's saturated capacity on these very jobs (``ssjf.sim.capacity_rps``).
    ``estimates``: ``"source"`` (the source's own predictions, else none),
    ``"none"``, ``"noisy:SIGMA"`` (synthetic, labelled), or a function of the pool.
    ``replace`` draws the requests with replacement (see :func:`sample_indices`).
    """
    arrival = arrival or ArrivalSpec()
    rng = np.random.default_rng(seed)
    times_src = arrival_pool if arrival_pool is not None else pool
    use_trace = arrival.kind == "trace"
    if use_trace and times_src.timestamps is None:
        raise ValueError(f"arrival process 'trace' needs timestamps; {times_src.name} has none")
    same_trace = use_trace and arrival_pool is None
    idx = sample_indices(len(pool), n, rng, contiguous=same_trace, replace=replace)
    sample = pool.take(idx)
    # Estimates.
    est: Sequence[LengthEstimate] | None
    label: str
    if callable(estimates):
        est, label = list(estimates(sample)), "predictor"
    elif estimates == "source":
        est, label = sample.estimates, ("source" if sample.estimates is not None else "none")
    elif estimates == "none":
        est, label = None, "none"
    elif estimates.startswith("noisy:"):
        sigma = float(estimates.split(":", 1)[1])
        est, label = (
            noisy_estimates(sample.output_tokens, sigma, rng),
            f"SYNTHETIC noisy truth (sigma={sigma:g})",
        )
    else:
        raise ValueError(f"unknown estimates {estimates!r}: use source, none, noisy:SIGMA")
    if est is not None and len(est) != len(sample):
        raise ValueError(f"got {len(est)} estimates for {len(sample)} requests")
    # Rate: explicit, or a utilisation of the engine's capacity on these jobs.
    capacity = None
    if rate is None:
        if load is None or engine is None or cost is None:
            raise ValueError("give either a rate, or a load with an engine and a cost model")
        if not load > 0:
            raise ValueError(f"load must be > 0, got {load}")
        # Imported here: the simulator is needed only to turn a load into a rate, and
        # `ssjf --help` reads WORKLOAD_HELP from this module without paying for it.
        from ssjf.sim.capacity import capacity_rps

        capacity = float(capacity_rps(engine, cost, make_jobs(sample, np.zeros(n), est)))
        rate = load * capacity
    trace = None
    if use_trace:
        assert times_src.timestamps is not None
        if same_trace:
            trace = sample.timestamps
        else:
            window = sample_indices(len(times_src), n, rng, contiguous=True)
            trace = times_src.timestamps[window]
    times = arrival.generate(n, rate, rng, trace=trace)
    jobs = make_jobs(sample, times, est)
    describe = {
        "source": pool.name,
        "requests": n,
        "seed": seed,
        "arrivals": str(arrival) + (f" ({times_src.name})" if use_trace else ""),
        "rate_rps": rate,
        "load": load if capacity is not None else None,
        "capacity_rps": capacity,
        "estimates": label,
        "synthetic": bool(pool.meta.get("synthetic", False)),
    }
    return Workload(
        jobs=jobs,
        pool=sample,
        arrivals=times,
        rate_rps=float(rate),
        capacity_rps=capacity,
        describe=describe,
    )
