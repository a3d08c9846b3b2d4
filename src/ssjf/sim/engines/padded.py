"""One padded (static) batch under an optional KV budget, and the rule for overflowing it.

Shared by :class:`~ssjf.sim.engines.batch.BatchEngine` and
:class:`~ssjf.sim.engines.magnus.MagnusEngine`, so a fixed-size batch and a
Magnus batch pay for memory by the very same rule.

Memory. A padded batch of ``m`` members reserves ``m`` equal slots, each as long
as the longest (effective) prompt plus the tokens generated so far, so after
``s`` output tokens it holds ``m * (max_prompt + s)`` tokens of KV cache. With a
budget of ``kv`` tokens a slot holds ``room = kv // m - max_prompt`` output
tokens: the batch fits iff ``m * (max_prompt + longest_output) <= kv``.

Overflow (out of memory at run time). Engines that know no lengths (fixed size)
or only predicted ones (Magnus) can start a batch that will not fit. Such a
batch runs normally until its slots are full (``room`` tokens each), then the
next step cannot allocate: the batch is aborted at that moment. Members that
had finished by then complete at the abort; each other member counts one
preemption and comes back to the engine, which splits them into two halves run
next, one after the other. What the unfinished members keep is the engine's
``oom`` setting, the same for both engines:

* ``restart`` (default): nothing. A static batch that runs out of memory fails
  as a whole; the partial outputs and KV of its unfinished members are gone, and
  they start over. This is what makes fixed-size engines pick small batches.
* ``keep``: their generated tokens (preemption by recompute, as in the
  continuous engine: the next run prefills prompt + generated tokens again).
  Kinder to large, optimistic batches of either engine.

A half that overflows again is split again; a batch of one always fits
(requests that fit the budget alone are checked up front), so every request
completes. A batch whose prompts alone do not fit (``room < 1``) is split before
it starts, at no cost.
"""

from __future__ import annotations

import math

from ssjf.sim.engines.base import RunContext


def unfit_alone(prompts: list[int], lengths: list[int], kv: int) -> list[int]:
    """Indices of the requests whose prompt + output exceed ``kv`` even in a batch of one."""
    return [i for i, (p, n) in enumerate(zip(prompts, lengths, strict=True)) if p + n > kv]


def kv_to_fit(prompts: list[int], lengths: list[int]) -> int:
    """The smallest budget that serves every request alone."""
    return max((p + n for p, n in zip(prompts, lengths, strict=True)), default=1)


def check_fits(prompts: list[int], lengths: list[int], kv: int, spec: str, fix: str) -> None:
    """Raise ``ValueError`` naming the first request that cannot fit ``kv`` alone, and the fix."""
    bad = unfit_alone(prompts, lengths, kv)
    if bad:
        i = bad[0]
        raise ValueError(
            f"request #{i}: {prompts[i]} prompt + {lengths[i]} output tokens exceed the "
            f"KV budget of {kv} tokens of {spec} ({len(bad)} such request(s)); use --engine {fix}"
        )


#: The overflow rules (see the module docstring); ``restart`` first: the default.
OOM_RULES = ("restart", "keep")


def check_oom(oom: str, owner: str) -> None:
    """Raise ``ValueError`` unless ``oom`` names an overflow rule."""
    if oom not in OOM_RULES:
        raise ValueError(f"{owner}.oom must be one of {', '.join(OOM_RULES)}; got {oom!r}")


def run_padded(
    ctx: RunContext, members: list[int], t: float, kv: int | None, oom: str = "restart"
) -> tuple[float, list[int]]:
    """Run ``members`` as one padded batch from ``t``; returns (end time, members aborted by overflow).

    ``kv=None``: no budget (never overflows). Aborted members are returned in
    the order given, with their progress kept (see the module docstring).
    """
    reqs, prompts, lengths, cost = ctx.reqs, ctx.prompts, ctx.lengths, ctx.cost
    m = len(members)
    eff = [prompts[i] + reqs[i].generated for i in members]  # recompute re-prefills generated
    rem = [lengths[i] - reqs[i].generated for i in members]
    longest = max(rem)
    run = longest if kv is None else min(longest, kv // m - max(eff))
    if run < 1:
        if m == 1:  # engines check single requests up front; this is a bug if reached
            raise ValueError(f"request #{members[0]} cannot fit the KV budget of {kv} tokens alone")
        return t, list(members)  # nothing ran, nothing lost: not a preemption
    total_prompt = sum(eff)
    first_scheduled, first_token = ctx.first_scheduled, ctx.first_token
    for i in members:
        if math.isnan(first_scheduled[i]):
            first_scheduled[i] = t
    t += cost.step_time(total_prompt, m, 0, m)
    first = t
    t += cost.decode_run_time(m, total_prompt, run - 1)
    left: list[int] = []
    for i, r, e in zip(members, rem, eff, strict=True):
        if math.isnan(first_token[i]):
            first_token[i] = first
        if r <= run:
            ctx.finish(i, t)
            reqs[i].generated = lengths[i]
        else:
            reqs[i].generated = reqs[i].generated + run if oom == "keep" else 0
            reqs[i].preemptions += 1
            ctx.recomputed[i] += e + run  # its whole cache is dropped, whichever rule
            left.append(i)
    return t, left


def halves(members: list[int]) -> list[list[int]]:
    """The two halves an overflowing batch is split into (first half the larger)."""
    k = (len(members) + 1) // 2
    return [members[:k], members[k:]] if len(members) > 1 else [members]
