"""Replayable workloads: real prompts with real output lengths, and arrival times."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One request to replay: a prompt and the exact number of tokens to generate.

    ``max_tokens`` is sent with ``ignore_eos: true`` so the engine generates exactly
    that many tokens: the real length some model gave this prompt (capped).
    """

    id: str
    prompt: str
    max_tokens: int
    #: The uncapped real length (tokens of the data's tokenizer), for reporting.
    true_tokens: int = 0
    #: Group key for train/test splits (the same prompt must not be on both sides).
    prompt_id: str = ""


#: Where the AlpacaEval prompts live under the data directory (ssjf.workload.data).
ALPACA_EVAL = "prompts/alpaca_eval.jsonl.gz"


def alpaca_path() -> Path:
    """The AlpacaEval prompts file (data dir, else cache); DataError naming where it looked."""
    from ssjf.workload.data import data_file

    return data_file(ALPACA_EVAL)


def read_alpaca_records(path: Path, generator: str | None) -> list[dict[str, object]]:
    """Records of one generator (None: every generator), validated; errors name the
    file, line and field."""
    out: list[dict[str, object]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            if generator is not None and rec.get("generator") != generator:
                continue
            if generator is None and not isinstance(rec.get("generator"), str):
                raise ValueError(f"{path}:{lineno}: field 'generator' missing or not str")
            for name, typ in (("instruction", str), ("output_tokens", int), ("prompt_id", int)):
                if not isinstance(rec.get(name), typ):
                    raise ValueError(
                        f"{path}:{lineno}: field {name!r} missing or not {typ.__name__}"
                    )
            out.append(rec)
    if not out:
        raise ValueError(f"{path}: no records for generator {generator!r}")
    return out


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """One answer to learn a length from: which prompt, which model, how long."""

    prompt: str
    model: str
    tokens: float


def load_alpaca_training(
    prompt_ids: Collection[str],
    path: Path | None = None,
    generators: Collection[str] | None = None,
    max_tokens_cap: int | None = None,
) -> list[TrainingRecord]:
    """Every answer to the given prompts (by ``prompt_id``), of every generator or of
    ``generators``, lengths cut at ``max_tokens_cap``: what a predictor may learn
    from while the other prompts stay unseen."""
    ids = set(prompt_ids)
    out = []
    for rec in read_alpaca_records(path or alpaca_path(), None):
        gen = str(rec["generator"])
        if str(rec["prompt_id"]) not in ids or (generators is not None and gen not in generators):
            continue
        tokens = int(rec["output_tokens"])  # type: ignore[call-overload]
        if max_tokens_cap is not None:
            tokens = min(tokens, max_tokens_cap)
        out.append(TrainingRecord(prompt=str(rec["instruction"]), model=gen, tokens=float(tokens)))
    return out


def load_alpaca_workload(
    path: Path | None = None,
    generator: str = "gpt-3.5-turbo-1106",
    max_tokens_cap: int = 512,
) -> list[WorkItem]:
    """All prompts of one AlpacaEval generator, with its real lengths capped at the cap."""
    recs = read_alpaca_records(path or alpaca_path(), generator)
    items = []
    for rec in recs:
        true = int(rec["output_tokens"])  # type: ignore[call-overload]
        items.append(
            WorkItem(
                id=f"alpaca-{rec['prompt_id']}",
                prompt=str(rec["instruction"]),
                max_tokens=max(1, min(true, max_tokens_cap)),
                true_tokens=true,
                prompt_id=str(rec["prompt_id"]),
            )
        )
    return items


def split_by_prompt(
    items: Sequence[WorkItem], n_test: int, seed: int = 0
) -> tuple[list[WorkItem], list[WorkItem]]:
    """Split into (train, test) by prompt id, ``n_test`` distinct prompts in test.

    The serving bench's split: a count of test prompts (not a fraction), picked by
    :func:`ssjf.predict.split.pick_ids`; the test items are then shuffled.
    """
    from ssjf.predict.split import pick_ids

    n_ids = len({it.prompt_id for it in items})
    if n_test > n_ids:
        raise ValueError(f"asked for {n_test} test prompts but only {n_ids} exist")
    test_ids = pick_ids([it.prompt_id for it in items], n_test, seed)
    train = [it for it in items if it.prompt_id not in test_ids]
    test = [it for it in items if it.prompt_id in test_ids]
    random.Random(seed).shuffle(test)  # arrival order independent of prompt ids
    return train, test


def poisson_arrivals(n: int, rate: float, seed: int = 0) -> list[float]:
    """``n`` Poisson arrival times (seconds from 0) at ``rate`` per second, as a list.

    :func:`ssjf.workload.arrivals.poisson_arrivals` drawn from
    ``numpy.random.default_rng(seed)``: the replay takes a seed, the simulator a generator.
    """
    import numpy as np

    from ssjf.workload.arrivals import poisson_arrivals as draw

    return [float(t) for t in draw(n, rate, np.random.default_rng(seed))]
