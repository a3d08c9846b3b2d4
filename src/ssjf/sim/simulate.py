"""Run a policy on an engine model over a set of jobs."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssjf.policies import Policy, make_policy, policy_class
from ssjf.queue import StarvationGuard, WaitingQueue
from ssjf.request import Request
from ssjf.service import ServiceTime
from ssjf.sim.cost import CostModel
from ssjf.sim.engines.base import Engine, Feedback, RunContext
from ssjf.sim.job import Job
from ssjf.sim.preemption import PreemptionRule
from ssjf.sim.result import SimResult


def fresh_request(req: Request) -> Request:
    """A copy with no progress, so the same jobs replay under every policy."""
    return Request(
        id=req.id,
        arrival=req.arrival,
        prompt_tokens=req.prompt_tokens,
        max_tokens=req.max_tokens,
        estimate=req.estimate,
        prompt=req.prompt,
        model=req.model,
    )


def simulate(
    jobs: Sequence[Job],
    engine: Engine,
    policy: str | Policy,
    *,
    cost: CostModel,
    guard: StarvationGuard | None = None,
    policy_params: dict[str, Any] | None = None,
    feedback: Feedback | None = None,
    preemption: PreemptionRule | None = None,
) -> SimResult:
    """Replay ``jobs`` through ``engine`` with requests ordered by ``policy``.

    Deterministic: the same inputs give identical arrays. Oracle policies (named
    by string) get the true lengths through a lookup on the fresh request copies;
    a ``Policy`` instance is used as given (it cannot see this run's copies).
    ``feedback`` (fresh for each run) sees arrivals and completions as they happen.
    ``preemption`` lets a waiting request displace a running one (engines that
    cannot preempt refuse it).
    """
    start = time.perf_counter()
    reqs = [fresh_request(j.request) for j in jobs]
    lengths = [j.output_tokens for j in jobs]
    index = {id(r): i for i, r in enumerate(reqs)}
    for r in reqs:
        if not math.isfinite(r.arrival) or r.arrival < 0:
            raise ValueError(f"request {r.id!r}: arrival must be finite and >= 0")
    if isinstance(policy, str):
        truth_len = lengths

        def truth(req: Request) -> float:
            return float(truth_len[index[id(req)]])

        cls_oracle = _is_oracle(policy)
        params = dict(policy_params or {})
        if policy_class(policy).takes_service:
            # Price service time as this run's engine does, unless the caller did.
            params.setdefault("service", ServiceTime.from_cost(cost))
        pol = make_policy(policy, truth=truth if cls_oracle else None, **params)
    else:
        if policy_params:
            raise ValueError("policy_params only apply when the policy is given by name")
        pol = policy
    prompts = [max(r.prompt_tokens, 1) for r in reqs]
    engine.validate(prompts, lengths)
    if preemption is not None and not engine.preempts:
        raise ValueError(
            f"engine {engine.spec!r} cannot preempt; drop the preemption rule "
            "(preemption works on serial and continuous engines)"
        )
    n = len(reqs)
    arrivals = np.fromiter((r.arrival for r in reqs), float, n)
    order = np.argsort(arrivals, kind="stable").tolist()  # by (arrival, index)
    nan = math.nan
    ctx = RunContext(
        reqs=reqs,
        prompts=prompts,
        lengths=lengths,
        order=order,
        queue=WaitingQueue(pol, guard, ServiceTime.from_cost(cost)),
        policy=pol,
        cost=cost,
        index=index,
        first_scheduled=[nan] * n,
        first_token=[nan] * n,
        completion=[nan] * n,
        feedback=feedback,
        preemption=preemption,
    )
    if n:
        engine.run(ctx)
    return SimResult(
        policy=pol.name,
        engine=engine.spec,
        arrival=arrivals,
        first_scheduled=np.asarray(ctx.first_scheduled, dtype=float),
        first_token=np.asarray(ctx.first_token, dtype=float),
        completion=np.asarray(ctx.completion, dtype=float),
        prompt_tokens=np.fromiter((r.prompt_tokens for r in reqs), np.int64, n),
        output_tokens=np.asarray(lengths, dtype=np.int64),
        predicted_tokens=np.fromiter(
            (r.estimate.point if r.estimate is not None else nan for r in reqs), float, n
        ),
        preemptions=np.fromiter((r.preemptions for r in reqs), np.int64, n),
        recomputed_tokens=np.asarray(ctx.recomputed, dtype=np.int64),
        promotions=ctx.queue.promotions,
        wall_s=time.perf_counter() - start,
    )


def _is_oracle(name: str) -> bool:
    from ssjf.policies import available_policies

    cls = available_policies().get(name)
    return bool(cls is not None and cls.oracle)
