"""Fine-tuned transformer families on a tiny local encoder: training, conditioning,
save/load round trips and determinism (seconds each, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from scipy.stats import kendalltau  # noqa: E402

from ssjf.predict import PredictorError, load_predictor, make_predictor  # noqa: E402
from ssjf.predict.finetune import FAMILIES  # noqa: E402
from ssjf.predict.finetune.encoders import load_encoder, resolve_encoder  # noqa: E402
from ssjf.predict.finetune.model import LengthModel  # noqa: E402
from ssjf.predict.finetune.tiny import build_tiny_encoder  # noqa: E402
from ssjf.predict.finetune.train import pad, split_groups  # noqa: E402

from .factories import synthetic  # noqa: E402

#: Settings that overfit the toy data in a few dozen steps of a 2-layer, 32-wide encoder.
FAST = {
    "epochs": 12,
    "batch_size": 16,
    "lr": 3e-3,
    "head_lr": 3e-2,
    "train_layers": 0,
    "val_fraction": 0.0,
    "threads": 1,
    "max_length": 24,
}
CLASS_PARAMS = {"n_classes": 3}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny matrices on a shared machine: one thread is ~10x faster than two.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[float], list[str]]:
    return synthetic(n_prompts=40)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, data: tuple) -> str:
    prompts = data[0]
    return str(build_tiny_encoder(tmp_path_factory.mktemp("tiny"), prompts, vocab_size=200))


def _params(family: str, tiny: str, **extra: object) -> dict:
    params: dict = {"encoder": tiny, **FAST, **extra}
    if family in ("finetune-bucket", "finetune-ordinal"):
        params.update(CLASS_PARAMS)
    return params


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_learns_short_from_long(family: str, tiny: str, data: tuple) -> None:
    prompts, lengths, _ = data
    model = make_predictor(family, **_params(family, tiny)).fit(prompts, lengths)
    pts = model.predict_points(prompts)
    is_long = np.array([p.startswith(("please essay", "please story", "please explain",
                                      "please detailed", "please report")) for p in prompts])  # fmt: skip
    assert pts[is_long].min() > pts[~is_long].max(), family
    tau = kendalltau(pts, lengths).statistic
    assert tau > 0.45, (family, tau)
    # Same batch both ways: padding to a different length moves float32 sums by ~1e-6.
    ests = model.predict(prompts[:4])
    for e, p in zip(ests, model.predict_points(prompts[:4]), strict=True):
        assert e.point == pytest.approx(p)
        assert e.quantiles and e.quantile(0.1) <= e.quantile(0.9)
    assert model.training["examples"] == len(set(prompts))  # one example per prompt
    assert model.training["steps"] > 0


def test_prefix_conditioning_orders_models_and_falls_back(tiny: str, data: tuple) -> None:
    prompts, lengths, models = data
    model = make_predictor(
        "finetune-regression", **_params("finetune-regression", tiny, conditioning="prefix")
    ).fit(prompts, lengths, models)
    assert model.training["models"] == ["m-long", "m-short"]
    # One example per (model, prompt) plus one generic example per prompt.
    assert model.training["examples"] == 3 * len(set(prompts))
    uniq = list(dict.fromkeys(prompts))
    short = model.predict_points(uniq, ["m-short"] * len(uniq))
    long_ = model.predict_points(uniq, ["m-long"] * len(uniq))
    assert np.mean(np.log(long_) - np.log(short)) > 0.3  # m-long writes twice as much
    unknown = model.predict_points(uniq, ["never-seen"] * len(uniq))
    none = model.predict_points(uniq, None)
    np.testing.assert_array_equal(unknown, none)


def test_target_model_trains_a_per_model_predictor(tiny: str, data: tuple) -> None:
    prompts, lengths, models = data
    model = make_predictor(
        "finetune-regression", **_params("finetune-regression", tiny, target_model="m-long")
    ).fit(prompts, lengths, models)
    assert model.training["records"] == models.count("m-long")
    with pytest.raises(PredictorError, match="no training records"):
        make_predictor("finetune-regression", encoder=tiny, target_model="x").fit(
            prompts, lengths, models
        )


@pytest.mark.parametrize("family", ["finetune-bucket", "finetune-pairwise", "finetune-ordinal"])
def test_save_load_round_trip_is_identical(
    family: str, tiny: str, data: tuple, tmp_path: Path
) -> None:
    prompts, lengths, models = data
    params = _params(family, tiny, epochs=2, conditioning="prefix")
    model = make_predictor(family, **params).fit(prompts, lengths, models)
    model.save(tmp_path / "p")
    assert (tmp_path / "p" / "encoder" / "config.json").is_file()
    loaded = load_predictor(tmp_path / "p")
    assert loaded.family == family
    probe = [*prompts[:6], "an unseen prompt about rain"]
    names = [*models[:6], "unknown-model"]
    assert loaded.predict(probe, names) == model.predict(probe, names)
    assert loaded.training["steps"] == model.training["steps"]


def test_training_is_deterministic(tiny: str, data: tuple) -> None:
    prompts, lengths, _ = data
    params = _params("finetune-listwise", tiny, epochs=2)
    a = make_predictor("finetune-listwise", **params).fit(prompts, lengths).predict_points(prompts)
    b = make_predictor("finetune-listwise", **params).fit(prompts, lengths).predict_points(prompts)
    np.testing.assert_array_equal(a, b)


def test_cached_top_layer_training_matches_the_full_forward(tiny: str, data: tuple) -> None:
    tok, enc = load_encoder(tiny)
    model = LengthModel(enc, torch.nn.Linear(enc.config.hidden_size, 1)).eval()
    x, m = pad([[2, 5, 6, 7, 3], [2, 8, 3]], tok.pad_token_id)
    with torch.no_grad():
        full = model(x, m)
        split = model.upper(model.lower(x, m, 1), m, 1)
    torch.testing.assert_close(full, split)
    # A predictor trained on the cached path: validation checked, the best state kept.
    prompts, lengths, _ = data
    params = _params("finetune-regression", tiny, train_layers=1, val_fraction=0.25, patience=99)
    fitted = make_predictor("finetune-regression", **params).fit(prompts, lengths)
    assert fitted.training["cached_frozen_layers"] is True
    val = fitted.training["val_losses"]
    assert len(val) >= 10 and all(np.isfinite(val))
    assert fitted.training["best_val_loss"] == min(val)


def test_validation_split_is_by_prompt() -> None:
    groups = [f"p{i // 3}" for i in range(60)]  # 20 prompts, 3 records each
    mask = split_groups(groups, 0.25, seed=0)
    held = {g for g, v in zip(groups, mask, strict=True) if v}
    assert len(held) == 5
    assert all(v == (g in held) for g, v in zip(groups, mask, strict=True))


def test_bad_parameters_and_unfitted_use_fail_clearly(tiny: str) -> None:
    with pytest.raises(PredictorError, match="unknown parameter"):
        make_predictor("finetune-bucket", learning_rate=1.0)
    with pytest.raises(PredictorError, match="conditioning"):
        make_predictor("finetune-bucket", conditioning="suffix")
    with pytest.raises(PredictorError, match="not fitted"):
        make_predictor("finetune-regression", encoder=tiny).predict(["hi"])


def test_encoder_resolution(tiny: str) -> None:
    assert resolve_encoder(tiny) == str(Path(tiny).resolve())
    assert resolve_encoder("bert-base-uncased") == "bert-base-uncased"  # hub name for users
    bundled = resolve_encoder("all-MiniLM-L6-v2")
    assert (
        bundled == "sentence-transformers/all-MiniLM-L6-v2"
        or Path(bundled, "config.json").is_file()
    )


def test_generic_family_takes_the_formulation_as_a_parameter(
    tiny: str, data: tuple, tmp_path: Path
) -> None:
    prompts, lengths, _ = data
    model = make_predictor("finetune", formulation="ordinal", **_params("finetune-ordinal", tiny))
    assert model.params["formulation"] == "ordinal"
    model.fit(prompts, lengths)
    model.save(tmp_path / "g")
    loaded = load_predictor(tmp_path / "g")
    assert loaded.family == "finetune" and loaded.form.name == "ordinal"
    assert loaded.predict(prompts[:3]) == model.predict(prompts[:3])
    with pytest.raises(PredictorError, match="formulation"):
        make_predictor("finetune", formulation="poisson")
    with pytest.raises(PredictorError, match="unknown parameter"):
        make_predictor("finetune", formulation="listwise", n_classes=5)


def test_progress_bar_works_alone_and_under_a_callers_live_display(tiny: str, data: tuple) -> None:
    from rich.progress import Progress

    prompts, lengths, _ = data
    params = _params("finetune-regression", tiny, epochs=1, progress=True)
    alone = make_predictor("finetune-regression", **params).fit(prompts, lengths)
    with Progress():  # e.g. `ssjf train`'s spinner: ours must step aside, not crash
        nested = make_predictor("finetune-regression", **params).fit(prompts, lengths)
    np.testing.assert_array_equal(alone.predict_points(prompts), nested.predict_points(prompts))
