"""The stream of `ssjf bench predictor --online`: traffic unlike the shipped predictor's data.

The shipped predictor is the default family trained on today's training data:
alpaca_eval (the 75% of prompt ids that :func:`~ssjf.predict.split.split_by_prompt`
keeps for training) + flask + sharegpt, minus every record whose prompt text is a
stream prompt (:func:`~ssjf.predict.split.drop_prompts`; FLASK carries AlpacaEval
prompts under other ids). The same records are the retrainer's base.

The stream mixes two pools: zeroeval answers by generators that are NOT among
the training models ("unseen": most of zeroeval's 57 names, benchmark prompts
in a fixed reasoning-then-JSON format), and ~``seen_share`` held-out
alpaca_eval answers (seen models, unseen prompts). Each seed draws its requests
from both pools without replacement, shuffles them, and gives them Poisson
arrivals at ``load`` x the serial engine's capacity under the paper's cost
(0.1 s + 0.02 s/token), as :func:`ssjf.bench.predictor.e2e_capture` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.predict.base import Predictor
from ssjf.predict.data import LengthData, load_prompt_dataset
from ssjf.predict.split import DEFAULT_SEED, drop_prompts, split_by_prompt
from ssjf.sim import Job
from ssjf.workload.arrivals import poisson_arrivals

#: Collections the shipped predictor trains on (alpaca_eval: its training side only).
TRAIN_SETS: tuple[str, ...] = ("alpaca_eval", "flask", "sharegpt")
#: Where the unseen generators' traffic comes from.
UNSEEN_SET = "zeroeval"


@dataclass(slots=True)
class OnlineData:
    """The shipped predictor's training records and the stream's two pools."""

    train: LengthData
    unseen: LengthData  # answers by generators absent from ``train``
    seen: LengthData  # held-out answers by generators present in ``train``
    describe: dict[str, Any] = field(default_factory=dict)


def load_online_data(
    test_frac: float = 0.25, split_seed: int = DEFAULT_SEED, max_train: int | None = None
) -> OnlineData:
    """Load and split the collections (see the module doc); ``max_train`` subsamples training."""
    alpaca_train, alpaca_test = split_by_prompt(
        load_prompt_dataset("alpaca_eval"), test_frac, split_seed
    )
    train = LengthData(unit=alpaca_train.unit).extend(alpaca_train)
    for name in TRAIN_SETS[1:]:
        train.extend(load_prompt_dataset(name))
    zero = load_prompt_dataset(UNSEEN_SET)
    # Every zeroeval prompt (a superset of the stream's) and every held-out prompt leave
    # training, so the shipped predictor has seen no stream prompt under any id.
    train, dropped = drop_prompts(train, [*zero.prompts, *alpaca_test.prompts])
    if max_train is not None and len(train) > max_train:
        keep = np.random.default_rng(split_seed).choice(len(train), max_train, replace=False)
        train = train.subset(sorted(keep.tolist()))
    trained = set(train.model_names)
    unseen = zero.subset(i for i, m in enumerate(zero.models) if m not in trained)
    seen = alpaca_test.subset(i for i, m in enumerate(alpaca_test.models) if m in trained)
    describe = {
        "train_sets": list(TRAIN_SETS),
        "train_records": len(train),
        "train_dropped_stream_prompts": dropped,
        "train_models": len(trained),
        "unseen_set": UNSEEN_SET,
        "unseen_generators": unseen.model_names,
        "zeroeval_generators_in_training": sorted(set(zero.model_names) & trained),
        "unseen_records": len(unseen),
        "seen_set": f"alpaca_eval held out ({test_frac:.0%} of prompt ids, seed {split_seed})",
        "seen_records": len(seen),
    }
    return OnlineData(train=train, unseen=unseen, seen=seen, describe=describe)


def sample_stream(
    data: OnlineData, n: int, seen_share: float, rng: np.random.Generator
) -> LengthData:
    """``n`` records, ``round(seen_share * n)`` of them from the seen pool, shuffled."""
    if not 0.0 <= seen_share <= 1.0:
        raise ValueError(f"seen_share must be in [0, 1], got {seen_share}")
    n_seen = round(seen_share * n)
    n_unseen = n - n_seen
    for name, pool, k in (("unseen", data.unseen, n_unseen), ("seen", data.seen, n_seen)):
        if k > len(pool):
            raise ValueError(
                f"the stream needs {k} {name} records but the pool holds {len(pool)}; "
                "ask for fewer requests (--online-requests)"
            )
    out = data.unseen.subset(rng.choice(len(data.unseen), n_unseen, replace=False).tolist())
    out.extend(data.seen.subset(rng.choice(len(data.seen), n_seen, replace=False).tolist()))
    return out.subset(rng.permutation(len(out)).tolist())


def stream_jobs(
    stream: LengthData, predictor: Predictor, load: float, rng: np.random.Generator
) -> list[Job]:
    """One job per record, in arrival order, with the shipped predictor's estimates and
    Poisson arrivals at ``load`` x the serial engine's capacity (paper cost)."""
    from ssjf.predict.baselines import approx_tokens
    from ssjf.request import Request
    from ssjf.sim import SerialEngine, capacity_rps, paper_linear

    if not load > 0.0:
        raise ValueError(f"load must be > 0, got {load}")
    ests = predictor.predict(stream.prompts, stream.models)
    jobs = [
        Job(
            Request(
                id=k,
                arrival=0.0,
                prompt_tokens=approx_tokens(p),
                estimate=e,
                prompt=p,
                model=m,
            ),
            int(y),
        )
        for k, (p, m, y, e) in enumerate(
            zip(stream.prompts, stream.models, stream.lengths, ests, strict=True)
        )
    ]
    rate = load * capacity_rps(SerialEngine(), paper_linear(), jobs)
    for job, t in zip(jobs, poisson_arrivals(len(jobs), rate, rng), strict=True):
        job.request.arrival = float(t)
        job.request.enqueued_at = float(t)
    return jobs


def repeats(prompts: list[str]) -> list[bool]:
    """Whether each prompt's text (:func:`~ssjf.predict.split.prompt_key`) arrived earlier in
    the stream: another generator's answer to it may already be in the traffic log, which a
    retrained predictor can learn from and a calibrator cannot."""
    from ssjf.predict.split import prompt_key

    seen: set[str] = set()
    out = []
    for p in prompts:
        k = prompt_key(p)
        out.append(k in seen)
        seen.add(k)
    return out
