"""Per-model residual heads: a model's own style on top of the shared prompt order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssjf.predict import load_predictor, make_predictor
from ssjf.predict.residual import ResidualHeads

KINDS = {
    # kind: (words, length for "verbose-coder", length for "terse-coder")
    "essay": (("essay", "story", "report"), 400.0, 400.0),
    "fact": (("name", "number", "word"), 20.0, 20.0),
    # The two models disagree: one writes a tutorial, the other a one-liner.
    "code": (("python", "function", "script"), 400.0, 20.0),
}
MODELS = ("verbose-coder", "terse-coder")


def styled(n_prompts: int, seed: int) -> tuple[list[str], list[float], list[str]]:
    rng = np.random.default_rng(seed)
    prompts, lengths, names = [], [], []
    for i in range(n_prompts):
        kind = list(KINDS)[i % 3]
        words, *per_model = KINDS[kind]
        filler = " ".join(rng.choice(["the", "a", "cat", "city", "data", "rain"], size=4))
        prompt = f"please {words[(i // 3) % 3]} about {filler} {i}"
        for m, base in zip(MODELS, per_model, strict=True):
            prompts.append(prompt)
            lengths.append(float(max(1, round(base * rng.lognormal(0, 0.2)))))
            names.append(m)
    return prompts, lengths, names


def ratio(pred, model: str, kind: str, other: str) -> float:
    """Geometric-mean estimate of ``kind`` prompts over ``other`` prompts, for ``model``."""
    prompts, _, _ = styled(30, seed=1)
    distinct = prompts[:: len(MODELS)]
    kinds = [next(k for k, (words, *_) in KINDS.items() if p.split()[1] in words) for p in distinct]
    logp = np.log(pred.predict_points(distinct, [model] * len(distinct)))
    mean = {k: logp[[i for i, c in enumerate(kinds) if c == k]].mean() for k in (kind, other)}
    return float(np.exp(mean[kind] - mean[other]))


def test_heads_learn_what_one_model_does_differently() -> None:
    train = styled(150, seed=0)
    shared = make_predictor("tfidf", residual_alpha=None).fit(*train)
    headed = make_predictor("tfidf", residual_alpha=0.3, residual_min_records=20).fit(*train)
    assert sorted(headed.residual.names) == sorted(MODELS)
    # True ratios: terse code/fact = 1, verbose code/essay = 1. One shared order puts
    # code between facts and essays for both models.
    assert ratio(shared, "terse-coder", "code", "fact") > 4
    assert ratio(shared, "verbose-coder", "code", "essay") < 0.3
    assert ratio(headed, "terse-coder", "code", "fact") < 2.5
    assert ratio(headed, "verbose-coder", "code", "essay") > 0.4


def test_unseen_model_keeps_the_shared_estimate_and_round_trip(tmp_path: Path) -> None:
    prompts, lengths, models = styled(90, seed=2)
    pred = make_predictor("tfidf", residual_alpha=1.0, residual_min_records=20)
    pred.fit(prompts, lengths, models)
    q = ["please python about rain", "please story about a cat", "x" * 100_000]
    assert pred.predict(q, ["never-seen"] * 3) == pred.predict(q)
    pred.save(tmp_path / "p")
    again = load_predictor(tmp_path / "p")
    for mods in (None, ["terse-coder", "verbose-coder", "never-seen"]):
        assert again.predict(q, mods) == pred.predict(q, mods)
    assert again.residual.names == pred.residual.names


def test_small_models_and_unconditioned_fits_get_no_heads() -> None:
    prompts, lengths, models = styled(90, seed=3)
    # Only "terse-coder" keeps enough records for a head.
    keep = [i for i, m in enumerate(models) if m == "terse-coder" or i < 60]
    sub = ([prompts[i] for i in keep], [lengths[i] for i in keep], [models[i] for i in keep])
    pred = make_predictor("tfidf", residual_alpha=1.0, residual_min_records=60).fit(*sub)
    assert pred.residual.names == ["terse-coder"]
    none = make_predictor("tfidf", residual_alpha=1.0, conditioning="none").fit(*sub)
    assert none.residual.names == []
    # One model: nothing to deviate from, no head.
    only = [i for i, m in enumerate(models) if m == "terse-coder"]
    single = make_predictor("tfidf", residual_alpha=1.0, residual_min_records=10)
    single.fit([prompts[i] for i in only], [lengths[i] for i in only], [models[i] for i in only])
    assert single.residual.names == []


def test_heads_apply_and_state() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    row = np.repeat(np.arange(40), 2)
    models = ["a", "b"] * 40
    # Model "a" depends on feature 0, model "b" on nothing.
    resid = np.where(np.array(models) == "a", 2.0 * x[row, 0], 0.0)
    heads = ResidualHeads(alpha=1e-3, min_records=10, folds=3)
    oof = heads.fit(x, row, resid, models)
    a = np.array(models) == "a"
    assert np.corrcoef(oof[a], resid[a])[0, 1] > 0.99  # out of fold, still learned
    assert np.allclose(oof[~a], 0.0, atol=0.2)
    out = heads.apply(x[:3], ["a", "zzz", None])
    assert out[0] == pytest.approx(2.0 * x[0, 0], abs=0.05)
    assert out[1] == out[2] == 0.0
    again = ResidualHeads()
    again.set_state(heads.state())
    assert np.array_equal(again.apply(x, ["a", "b"] * 20), heads.apply(x, ["a", "b"] * 20))
    empty = ResidualHeads()
    empty.set_state({})
    assert np.array_equal(empty.apply(x, ["a"] * 40), np.zeros(40))
