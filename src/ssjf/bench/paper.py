"""The SSJF paper replay: its BERT predictor's classes on LMSYS/vicuna-13b, policy by policy.

Rows: FCFS, oracle SJF, SSJF with the paper's 5-class and 3-class predictions,
on the serial engine (the paper's setting and cost model) and then on the batch
and continuous engines, every policy on the same engine, workload and seed.
"""

from __future__ import annotations

import numpy as np

from ssjf.bench.runner import PolicyEntry, Progress, RunSettings, run_experiment
from ssjf.estimate import LengthEstimate
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.sources import PAPER_CLASS_EDGES, Pool, class_points, load_paper_predictions

#: (engine, cost model) pairs: the paper's serial setting first, then batching.
PAPER_ENGINES: tuple[tuple[str, str], ...] = (
    ("serial", "paper"),
    ("batch:4", "paper"),
    ("batch:8", "paper"),
    ("continuous:32", "affine"),
)
#: 0.8 and 0.95 bracket the paper's (unstated) load; 0.9 is where its figures land.
PAPER_LOADS: tuple[float, ...] = (0.8, 0.9, 0.95)

ENTRIES: tuple[PolicyEntry, ...] = (
    PolicyEntry("fcfs", "fcfs"),
    PolicyEntry("sjf", "sjf"),
    PolicyEntry("ssjf-5class", "ssjf"),
    PolicyEntry("ssjf-3class", "ssjf", estimates="3class"),
)


def paper_pool() -> Pool:
    """The 5-class file with the 3-class predictions of the same rows alongside."""
    five = load_paper_predictions(5)
    three = load_paper_predictions(3)
    if not np.array_equal(five.output_tokens, three.output_tokens):
        raise ValueError(
            "the 5-class and 3-class prediction files do not list the same requests "
            "(their output_token_length columns differ)"
        )
    five.columns["predicted_class_3"] = three.columns["predicted_class"]
    return five


def three_class_estimates(pool: Pool) -> list[LengthEstimate]:
    """The 3-class predictor's estimates (bucket midpoints) for the sampled rows."""
    points = [LengthEstimate(point=p) for p in class_points(PAPER_CLASS_EDGES[3])]
    return [points[int(c)] for c in pool.columns["predicted_class_3"]]


def run_paper(
    *,
    engines: tuple[tuple[str, str], ...] = PAPER_ENGINES,
    loads: tuple[float, ...] = PAPER_LOADS,
    requests: int = 10_000,
    seeds: tuple[int, ...] = (0, 1, 2),
    pool: Pool | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Aggregated rows and per-seed rows for every engine and load."""
    pool = pool if pool is not None else paper_pool()
    rows: list[dict[str, object]] = []
    per_seed: list[dict[str, object]] = []
    total = len(engines) * len(loads) * len(seeds) * len(ENTRIES)
    offset = 0
    for engine, cost in engines:
        for load in loads:
            settings = RunSettings(
                engine=engine,
                cost=cost,
                requests=requests,
                seeds=seeds,
                load=load,
                arrival=ArrivalSpec("poisson"),
            )
            base = offset

            where = f"{engine} load {load:g}"

            def report(
                done: int, _total: int, label: str, base: int = base, where: str = where
            ) -> None:
                if progress is not None:
                    progress(base + done, total, f"{where} {label}")

            res = run_experiment(
                pool,
                ENTRIES,
                settings,
                variants={"3class": three_class_estimates},
                progress=report,
            )
            offset += len(seeds) * len(ENTRIES)
            rows.extend(res.rows)
            per_seed.extend(res.per_seed)
    return rows, per_seed
