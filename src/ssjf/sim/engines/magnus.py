"""Magnus batch serving (Cheng et al. 2024): similar predicted lengths, memory-sized batches, HRRN.

Request-level batching like :class:`~ssjf.sim.engines.batch.BatchEngine` (a
batch runs to its longest member; every member completes when it returns), but
the engine decides both which requests go together and which batch goes next.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ssjf.request import Request
from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.padded import (
    check_fits,
    check_oom,
    halves,
    kv_to_fit,
    run_padded,
    unfit_alone,
)
from ssjf.sim.engines.serving_time import ServingTimeModel, batch_features

#: ~16K tokens of KV cache: a 7-8B model in 16-bit on one 24 GB GPU (~15 GB of
#: weights, ~1 GB of activations, the rest at ~0.5 MB per token).
DEFAULT_KV_TOKENS = 16_384


@dataclass(frozen=True, slots=True)
class _Batch:
    """A candidate batch: member indices and what the scheduler may know of it."""

    members: list[int]
    features: tuple[float, ...]  # batch_features of the PREDICTED shape
    oldest: float  # earliest arrival among the members


def predicted_output(req: Request) -> int:
    """Tokens the batcher reserves for ``req``: its predicted remaining output, at least 1."""
    return max(1, math.ceil(req.predicted_remaining))


@dataclass(frozen=True, slots=True)
class MagnusEngine(Engine):
    """Magnus's batcher, serving-time estimator and HRRN batch scheduler over one KV budget.

    Whenever the engine is idle and requests wait:

    1. **Batcher.** Waiting requests are sorted by predicted (remaining) output
       length (ties: arrival, then index) and cut greedily into consecutive
       batches: a request joins the current batch while the padded batch still
       fits the budget BY PREDICTION — ``members x (longest prompt + longest
       predicted output) <= kv_tokens`` — and, if set, while the batch has at
       most ``max_batch`` members and its longest prediction is at most
       ``band`` x its shortest. (Magnus's batcher places each request where it
       wastes the least memory access; sorting then cutting at the memory limit
       is the same idea in one pass.)
    2. **Serving-time estimator.** :class:`ServingTimeModel`: least squares of
       the seconds of completed batches on their predicted shape, fitted only on
       batches completed by now (causal). Batches aborted by overflow do not
       inform it (their time is not a serving time).
    3. **HRRN.** The batch with the highest response ratio ``(wait + est) /
       est`` runs, ``wait`` being how long its oldest member has waited: older
       work rises, so nothing starves. Ties (and the start, before any batch
       completed): smaller estimate, then older member. The other candidates
       dissolve and are formed again, with new arrivals, at the next decision.

    Predictions can be wrong: a batch that outgrows the budget at run time is
    aborted and split in halves that run next, its unfinished members
    restarting (``oom=restart``) or keeping their tokens (``oom=keep``) —
    exactly the rules of :mod:`ssjf.sim.engines.padded`, which the fixed-size
    ``batch:B:kv=T`` also follows, so the two compare under the same memory.

    The run's policy does not order anything here: Magnus is its own scheduler
    (HRRN over batches), so ``ssjf simulate --engine magnus:...`` accepts any
    policy name and gives the same schedule for all of them (the queue only
    holds the waiting requests; its starvation guard never fires). Requests
    need a predicted length (an estimate, or at least ``max_tokens``).
    """

    kv_tokens: int = DEFAULT_KV_TOKENS
    max_batch: int | None = None  # no cap but memory unless asked: Magnus sizes by memory
    band: float | None = None  # no length band unless asked: sorting already groups lengths
    window: int = 256  # recent completed batches the estimator fits on
    oom: str = "restart"  # the overflow rule; the same default as batch:B:kv=T
    margin: float = 0.0  # memory reserved beyond the prediction (fraction); Magnus reserves none

    def __post_init__(self) -> None:
        if self.kv_tokens < 1:
            raise ValueError(f"MagnusEngine.kv_tokens must be >= 1, got {self.kv_tokens}")
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError(f"MagnusEngine.max_batch must be >= 1, got {self.max_batch}")
        if self.band is not None and not self.band >= 1:
            raise ValueError(f"MagnusEngine.band must be >= 1, got {self.band}")
        if self.window < 1:
            raise ValueError(f"MagnusEngine.window must be >= 1, got {self.window}")
        check_oom(self.oom, "MagnusEngine")
        if not self.margin >= 0:
            raise ValueError(f"MagnusEngine.margin must be >= 0, got {self.margin}")

    @property
    def spec(self) -> str:
        return (
            f"magnus:{self.kv_tokens}"
            + (f":max={self.max_batch}" if self.max_batch is not None else "")
            + (f":band={self.band:g}" if self.band is not None else "")
            + (f":margin={self.margin:g}" if self.margin else "")
            + (f":window={self.window}" if self.window != 256 else "")
            + (f":oom={self.oom}" if self.oom != "restart" else "")
        )

    def unfit(self, prompts: list[int], lengths: list[int]) -> list[int]:
        return unfit_alone(prompts, lengths, self.kv_tokens)

    def fit_fix(self, prompts: list[int], lengths: list[int]) -> str | None:
        if not self.unfit(prompts, lengths):
            return None
        kv = kv_to_fit(prompts, lengths)
        return MagnusEngine(kv, self.max_batch, self.band, self.window, self.oom, self.margin).spec

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        check_fits(
            prompts, lengths, self.kv_tokens, self.spec, self.fit_fix(prompts, lengths) or ""
        )

    def run(self, ctx: RunContext) -> None:
        """Form, choose and run batches until every request completed."""
        for r in ctx.reqs:
            if r.estimate is None and r.max_tokens is None:
                raise ValueError(
                    f"{self.spec}: request {r.id!r} has no predicted length (no estimate, no "
                    "max_tokens); Magnus sizes batches by predictions: give estimates"
                )
        model = ServingTimeModel(self.window)
        arrivals = ctx.arrivals()
        split: deque[list[int]] = deque()  # halves of an overflowed batch, run first
        n = len(ctx.order)
        done = 0
        t = 0.0
        while done < n:
            if split:
                arrivals.admit(t)
                members = split.popleft()
                features = self._shape(ctx, members)
            else:
                t = arrivals.until_work(t)
                chosen = self.choose(self.form(ctx), model, t)
                members, features = chosen.members, chosen.features
                for i in members:
                    ctx.queue.remove(ctx.reqs[i])
            start = t
            t, left = run_padded(ctx, members, t, self.kv_tokens, self.oom)
            if not left:
                model.observe(features, t - start, t)
            done += len(members) - len(left)
            split.extendleft(reversed(halves(left)) if left else ())

    def form(self, ctx: RunContext) -> list[_Batch]:
        """The batcher: waiting requests by predicted length, cut where memory (or a cap) ends."""
        index, prompts, kv = ctx.index, ctx.prompts, self.kv_tokens
        reserve = 1.0 + self.margin
        waiting = sorted(
            ((predicted_output(r), r.arrival, index[id(r)], r) for r in ctx.queue),
            key=lambda e: e[:3],
        )
        out: list[_Batch] = []
        cur: list[int] = []
        pmax = shortest = longest = total = 0
        oldest = math.inf
        for pred, arrival, i, r in waiting:
            p = prompts[i] + r.generated
            m = len(cur) + 1
            if cur and (
                m * (max(pmax, p) + math.ceil(pred * reserve)) > kv
                or (self.max_batch is not None and m > self.max_batch)
                or (self.band is not None and pred > self.band * shortest)
            ):
                out.append(_Batch(cur, batch_features(len(cur), longest, total), oldest))
                cur, pmax, total, oldest = [], 0, 0, math.inf
            if not cur:
                shortest = pred
            cur.append(i)
            pmax, longest, total = max(pmax, p), pred, total + p
            oldest = min(oldest, arrival)
        if cur:
            out.append(_Batch(cur, batch_features(len(cur), longest, total), oldest))
        return out

    @staticmethod
    def choose(batches: list[_Batch], model: ServingTimeModel, now: float) -> _Batch:
        """HRRN over candidate batches; smaller estimate, then older member, on ties."""

        def rank(b: _Batch) -> tuple[float, float, float]:
            est = model.predict(b.features, now)
            if est is None or est <= 0:  # nothing learnt yet: shortest predicted batch first
                return (0.0, b.features[1], b.oldest)
            return (-(max(0.0, now - b.oldest) + est) / est, est, b.oldest)

        return min(batches, key=rank)

    def _shape(self, ctx: RunContext, members: list[int]) -> tuple[float, ...]:
        """Predicted features of a given set of members (a split half)."""
        reqs, prompts = ctx.reqs, ctx.prompts
        longest = max(predicted_output(reqs[i]) for i in members)
        total = sum(prompts[i] + reqs[i].generated for i in members)
        return batch_features(len(members), longest, total)
