"""Getting a loaded pool ready to replay: requests that cannot fit, file order, sample size.

Applied once, before any seed or policy runs, so every policy of a run sees the
very same records: skipping an oversized request for one policy and not another
would bias the comparison. Each decision comes back as one line for the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ssjf.workload.order import grouping, shuffled
from ssjf.workload.pool import Pool

if TYPE_CHECKING:
    from ssjf.sim.engines import Engine


@dataclass(slots=True)
class Prepared:
    """The pool to sample from, how many requests to draw, and what the user should know."""

    pool: Pool
    requests: int
    #: Facts about how the data was read (e.g. a guessed timestamp unit).
    notes: list[str] = field(default_factory=list)
    #: Changes to what was asked, or orders that skew results.
    warnings: list[str] = field(default_factory=list)


def drop_unfit(pool: Pool, engine: Engine) -> tuple[Pool, str | None]:
    """``pool`` without the records ``engine`` can never serve, and a line saying so (None if none)."""
    prompts = np.maximum(np.asarray(pool.prompt_tokens), 1).tolist()  # as the simulator counts
    lengths = np.asarray(pool.output_tokens).tolist()
    bad = engine.unfit(prompts, lengths)
    if not bad:
        return pool, None
    fix = engine.fit_fix(prompts, lengths)
    hint = f"; --engine {fix} keeps them" if fix else ""
    if len(bad) == len(pool):
        raise ValueError(f"no request of {pool.name} fits the engine {engine.spec}{hint}")
    keep = np.setdiff1d(np.arange(len(pool)), np.asarray(bad, dtype=np.int64))
    line = (
        f"skipped {len(bad):,} of {len(pool):,} records too large for {engine.spec} "
        f"(for every policy alike){hint}"
    )
    return pool.take(keep), line


def prepare_pool(
    pool: Pool,
    requests: int,
    *,
    engine: Engine | None = None,
    file_order: bool = True,
    shuffle: bool = False,
    seed: int = 0,
    resample: bool = False,
) -> Prepared:
    """Drop what ``engine`` cannot serve, check or shuffle the order, fit ``requests`` to the pool.

    ``file_order``: requests reach the queue in the pool's order (arrivals are
    generated, not the records' own timestamps), so a grouped order matters.
    Without ``resample``, ``requests`` beyond the pool's size become the whole pool.
    """
    if shuffle and not file_order:
        raise ValueError(
            "--shuffle reorders the rows, but trace arrivals follow the records' own "
            "timestamps; pick generated arrivals (e.g. --arrivals poisson) to shuffle"
        )
    out = Prepared(pool=pool, requests=requests, notes=list(pool.meta.get("notes", [])))
    if engine is not None:
        out.pool, line = drop_unfit(out.pool, engine)
        if line:
            out.warnings.append(line)
    if shuffle:
        out.pool = shuffled(out.pool, seed)
    elif file_order:
        why = grouping(out.pool)
        if why:
            out.warnings.append(
                f"{pool.name}: rows {why} replay in file order; --shuffle mixes them"
            )
    size = len(out.pool)
    # A trace replays a contiguous window of its own timestamps: never resampled.
    if requests > size and not (resample and file_order):
        how = f" (--resample draws {requests:,} with replacement)" if file_order else ""
        out.warnings.append(
            f"{pool.name} has {size:,} usable records, fewer than -n {requests:,}: "
            f"using each once{how}"
        )
        out.requests = size
    return out
