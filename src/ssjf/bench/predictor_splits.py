"""The generalization splits of `ssjf bench predictor --splits`: data a predictor cannot have seen.

Each split yields one or more *trainings*: a training set and the test sets it is
scored on. A family trains once per training.

- ``in-dist``: 25% of the prompt ids of alpaca_eval and of flask held out
  (seed :data:`~ssjf.predict.split.DEFAULT_SEED`); tests are those held-out records.
- ``unseen-models``: generator families (:data:`HELD_OUT_FAMILIES`, matched by
  :func:`~ssjf.bench.policies_workloads.in_families`, which ignores punctuation so
  gpt-4o, chatgpt-4o-latest and gpteacher's gpt-4 count) answer the tests: the
  held-out prompt ids (25%, same seed) of alpaca_eval, flask and zeroeval, only
  these families' records. Every record of these families is removed from every
  training collection.
- ``cross-collection``: each of :data:`CROSS_TARGETS` is tested whole by a
  training that never sees it nor its sibling (:data:`SIBLINGS`: zeroeval's gsm
  questions are routellm_gsm8k's).

Recipes say what else trains: ``legacy`` is the data today's figures were
measured with (the train side of alpaca_eval + flask plus all of sharegpt;
alpaca_eval + flask alone for cross-collection), ``diverse`` adds every other
collection the split's rules allow. In every training, records whose prompt
text is a test prompt of the split (:func:`~ssjf.predict.split.drop_prompts`,
which also sees through zeroeval's and routellm's fixed templates) are dropped
and counted: FLASK repeats AlpacaEval prompts, zeroeval shares 11 questions with
flask and all of its gsm questions with routellm_gsm8k.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssjf.bench.policies_workloads import UNSEEN_FAMILIES, in_families
from ssjf.predict.data import PROMPT_DATASET_UNIT, PROMPT_DATASETS, LengthData
from ssjf.predict.split import DEFAULT_SEED, drop_prompts, split_by_prompt

SPLITS: tuple[str, ...] = ("in-dist", "unseen-models", "cross-collection")
RECIPES: tuple[str, ...] = ("legacy", "diverse")
DEFAULT_RECIPE = "diverse"
#: Collections whose held-out prompt ids are the tests of ``in-dist`` / ``unseen-models``.
IN_DIST_TESTS: tuple[str, ...] = ("alpaca_eval", "flask")
UNSEEN_TESTS: tuple[str, ...] = ("alpaca_eval", "flask", "zeroeval")
#: Trained on whole by the legacy recipe of ``in-dist`` / ``unseen-models``.
LEGACY_EXTRA: tuple[str, ...] = ("sharegpt",)
#: Trained on by the legacy recipe of ``cross-collection``.
LEGACY_CROSS: tuple[str, ...] = ("alpaca_eval", "flask")
CROSS_TARGETS: tuple[str, ...] = ("sharegpt", "zeroeval", "gpteacher")
#: Collections holding the same questions: one is never trained on while the other is tested.
SIBLINGS: dict[str, tuple[str, ...]] = {
    "zeroeval": ("routellm_gsm8k",),
    "routellm_gsm8k": ("zeroeval",),
}
HELD_OUT_FAMILIES: tuple[str, ...] = UNSEEN_FAMILIES

SPLIT_DEFINITIONS: dict[str, str] = {
    "in-dist": "test: 25% of the prompt ids of alpaca_eval and flask (split seed); "
    "train: the other prompt ids plus the recipe's other collections",
    "unseen-models": "test: the held-out prompt ids (25%, split seed) of alpaca_eval, flask "
    "and zeroeval, answered by the held-out generator families only; train: the other "
    "prompt ids plus the recipe's other collections, with every record of a held-out family "
    "removed from every collection",
    "cross-collection": "one training per target (sharegpt, zeroeval, gpteacher): the target "
    "tested whole, trained without it (and without routellm_gsm8k for zeroeval: the same "
    "GSM8K questions)",
}
RECIPE_DEFINITIONS: dict[str, str] = {
    "legacy": "today's training data: the train side of alpaca_eval + flask plus all of "
    "sharegpt (cross-collection: alpaca_eval + flask only)",
    "diverse": "the train side plus every other collection the split allows",
}
LEAKAGE_RULE = (
    "training records whose prompt text (prompt_key, templates unwrapped) equals a test "
    "prompt of the split are dropped, in every collection"
)


@dataclass(slots=True)
class Training:
    """One fit of a family and the tests it is scored on."""

    split: str
    recipe: str
    #: The cross-collection target; None for the one training of the other splits.
    target: str | None
    train: LengthData
    #: collection -> the test records.
    tests: dict[str, LengthData]
    #: collection -> every record of the test prompts (all generators): what the
    #: cross-model reference reads.
    pools: dict[str, LengthData]
    describe: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``split`` or ``split:target``."""
        return self.split if self.target is None else f"{self.split}:{self.target}"


def parse_choice(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    """Comma-separated names from ``known`` (or ``all``); ValueError naming a bad one."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise ValueError(f"no {what} given; known: {', '.join(known)}, all")
    if names == ("all",):
        return tuple(known)
    for n in names:
        if n not in known:
            raise ValueError(f"unknown {what} {n!r}; known: {', '.join(known)}, all")
    return tuple(dict.fromkeys(names))


def parse_splits(text: str) -> tuple[str, ...]:
    """``in-dist,unseen-models,cross-collection`` or ``all``."""
    return parse_choice(text, SPLITS, "split")


def check_recipe(recipe: str) -> str:
    """``recipe`` if it is one of :data:`RECIPES`; ValueError otherwise."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return recipe


def needed_collections(splits: Sequence[str], recipe: str) -> list[str]:
    """The collections the splits read, in :data:`PROMPT_DATASETS` order."""
    if recipe == "diverse":
        return list(PROMPT_DATASETS)
    need: set[str] = set()
    if "in-dist" in splits:
        need |= {*IN_DIST_TESTS, *LEGACY_EXTRA}
    if "unseen-models" in splits:
        need |= {*UNSEEN_TESTS, *LEGACY_EXTRA}
    if "cross-collection" in splits:
        need |= {*CROSS_TARGETS, *LEGACY_CROSS}
    return [n for n in PROMPT_DATASETS if n in need]


def load_collections(names: Sequence[str]) -> dict[str, LengthData]:
    """Each named prompt collection, loaded once."""
    from ssjf.predict.data import load_prompt_dataset

    return {n: load_prompt_dataset(n) for n in names}


def _source(dataset: str) -> str:
    return dataset.split("/", 1)[0]


def _finish(
    split: str,
    recipe: str,
    target: str | None,
    parts: dict[str, LengthData],
    tests: dict[str, LengthData],
    pools: dict[str, LengthData],
    families: Sequence[str] | None,
) -> Training:
    """Join the training parts, drop held-out families and test prompt texts, describe."""
    train = LengthData(unit=PROMPT_DATASET_UNIT)
    for part in parts.values():
        train.extend(part)
    by_family = 0
    if families:
        keep = [i for i, m in enumerate(train.models) if not in_families(m, families)]
        by_family = len(train) - len(keep)
        train = train.subset(keep)
    held = [p for te in tests.values() for p in te.prompts]
    train, by_text = drop_prompts(train, held)
    sizes = Counter(_source(d) for d in train.datasets)
    describe: dict[str, Any] = {
        "training": split if target is None else f"{split}:{target}",
        "recipe": recipe,
        "train_records": len(train),
        "train_by_collection": {n: sizes[n] for n in parts if sizes[n]},
        "dropped_by_text": by_text,
        "dropped_by_family": by_family,
        "test_records": {n: len(te) for n, te in tests.items()},
        "test_generators": {n: te.model_names for n, te in tests.items()},
    }
    return Training(split, recipe, target, train, tests, pools, describe)


def _in_dist(
    recipe: str, data: Mapping[str, LengthData], test_frac: float, seed: int
) -> list[Training]:
    parts, tests = {}, {}
    for name in IN_DIST_TESTS:
        parts[name], tests[name] = split_by_prompt(data[name], test_frac, seed)
    extra = LEGACY_EXTRA if recipe == "legacy" else [n for n in data if n not in tests]
    parts.update({n: data[n] for n in extra})
    return [_finish("in-dist", recipe, None, parts, tests, dict(tests), None)]


def _unseen_models(
    recipe: str,
    data: Mapping[str, LengthData],
    test_frac: float,
    seed: int,
    families: Sequence[str],
) -> list[Training]:
    if not families:
        raise ValueError("unseen-models needs at least one held-out generator family")
    parts, tests, pools = {}, {}, {}
    for name in UNSEEN_TESTS:
        train_side, held = split_by_prompt(data[name], test_frac, seed)
        keep = [i for i, m in enumerate(held.models) if in_families(m, families)]
        tests[name], pools[name] = held.subset(keep), held
        if recipe == "diverse" or name in IN_DIST_TESTS:
            parts[name] = train_side
    extra = LEGACY_EXTRA if recipe == "legacy" else [n for n in data if n not in tests]
    parts.update({n: data[n] for n in extra})
    return [_finish("unseen-models", recipe, None, parts, tests, pools, families)]


def _cross_collection(recipe: str, data: Mapping[str, LengthData]) -> list[Training]:
    out = []
    for target in CROSS_TARGETS:
        banned = {target, *SIBLINGS.get(target, ())}
        names = LEGACY_CROSS if recipe == "legacy" else tuple(data)
        parts = {n: data[n] for n in names if n not in banned}
        tests = {target: data[target]}
        out.append(_finish("cross-collection", recipe, target, parts, tests, dict(tests), None))
    return out


def build_trainings(
    split: str,
    recipe: str,
    data: Mapping[str, LengthData],
    *,
    test_frac: float = 0.25,
    seed: int = DEFAULT_SEED,
    families: Sequence[str] = HELD_OUT_FAMILIES,
) -> list[Training]:
    """The trainings of ``split`` under ``recipe`` from the loaded collections ``data``.

    ``data`` must hold :func:`needed_collections`; the diverse recipe trains on
    every collection in it that the split allows.
    """
    check_recipe(recipe)
    need = needed_collections((split,), "legacy")  # diverse adds whatever else is loaded
    missing = [n for n in need if n not in data]
    if missing:
        raise ValueError(f"split {split!r} needs the collections {', '.join(missing)}")
    if split == "in-dist":
        return _in_dist(recipe, data, test_frac, seed)
    if split == "unseen-models":
        return _unseen_models(recipe, data, test_frac, seed, families)
    if split == "cross-collection":
        return _cross_collection(recipe, data)
    raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
