"""Fine-tuned transformer predictors: one registered family per formulation.

``finetune-regression`` (``loss=l1|mse``), ``finetune-bucket`` (``n_classes=5|3``,
``point=class|expected``), ``finetune-ordinal`` (CORAL), ``finetune-pairwise``
(``loss=logistic|margin``) and ``finetune-listwise`` (ListMLE) share everything
but the formulation: an encoder (``encoder=`` hub name, local directory, or
``all-MiniLM-L6-v2`` bundled offline), mean pooling, a head, and the trainer.

Training data are (prompt, length, model) records. They are grouped into
*examples*, one per distinct encoder input, each carrying the lengths of all
its answers: with ``conditioning="none"`` one example per prompt (AlpacaEval's 40
answers per prompt become one soft target: 40x cheaper and a far less noisy
ranking target); with ``conditioning="prefix"`` (the paper's "all models" mode)
one example per (model, prompt) with the input ``"[model] prompt"`` plus one
``"[any] prompt"`` example per prompt aggregated over models, which is what a
model never seen in training (or ``None``) gets. ``target_model`` trains a
per-model predictor on that model's records only.

This module imports no torch at import time; the heavy parts load on ``fit``/``load``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.predict.base import Predictor, PredictorError, register_predictor
from ssjf.predict.finetune.formulations import Formulation, make_formulation
from ssjf.predict.finetune.text import as_text, model_prefix

#: Hyper-parameters common to every fine-tuned family, with the reason for each default.
COMMON_DEFAULTS: dict[str, Any] = {
    "encoder": "all-MiniLM-L6-v2",  # bundled offline; 22M params; "bert-base-uncased" for the paper
    "max_length": 128,  # word pieces; covers the median prompt of every dataset here 2-5x
    "truncation": "head+tail",  # keep the task statement and the final question
    "conditioning": "none",  # "none" | "prefix" (model name as input text)
    "target_model": None,  # train on one model's records only (a per-model predictor)
    "epochs": 4,  # early stopping on held-out prompts usually ends it sooner
    "batch_size": 32,
    "lr": 3e-4,  # top layers only: 2 epochs at 1e-4 left validation loss still falling
    "head_lr": 3e-3,
    "train_layers": 2,  # top layers fine-tuned; the rest frozen and cached (CPU budget)
    "val_fraction": 0.1,  # prompts held out for early stopping
    "patience": 2,
    "dropout": 0.1,
    "seed": 0,
    "device": "auto",  # CUDA when present
    "threads": None,  # torch CPU threads (None: leave torch's setting)
    "progress": False,
    "predict_batch": 64,
}

_FILES = {"state": "finetune.json", "head": "head.safetensors", "encoder": "encoder"}


class FineTunePredictor(Predictor):
    """Encoder + head fine-tuned in one formulation (see module docstring)."""

    formulation: ClassVar[str] = ""
    needs_extra: ClassVar[str | None] = "finetune"
    #: Family-specific parameters and their defaults.
    extra_defaults: ClassVar[dict[str, Any]] = {}
    #: Bounded settings for `ssjf bench predictor` (~10 min on 2 busy CPU cores).
    bench_params: ClassVar[dict[str, Any]] = {"epochs": 4, "max_length": 128, "train_layers": 1}

    def __init__(self, **params: Any) -> None:
        params = self._pick_formulation(params)
        allowed = {**COMMON_DEFAULTS, **self.extra_defaults}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise TypeError(f"unknown parameter(s) {unknown}; known: {sorted(allowed)}")
        merged = {**allowed, **params}
        if merged["conditioning"] not in ("none", "prefix"):
            raise TypeError(
                f"conditioning must be 'none' or 'prefix', got {merged['conditioning']!r}"
            )
        super().__init__(**merged)
        self.form: Formulation = make_formulation(
            self.formulation, **{k: merged[k] for k in self.extra_defaults if k != "formulation"}
        )
        self.models_seen: list[str] = []
        self._tokenizer: Any = None
        self._model: Any = None

    def _pick_formulation(self, params: dict[str, Any]) -> dict[str, Any]:
        """Hook for the generic ``finetune`` family (formulation chosen by a parameter)."""
        return params

    # ------------------------------------------------------------ inputs
    def _prefix(self, model: str | None) -> str:
        if self.params["conditioning"] != "prefix":
            return ""
        return model_prefix(model if model in self._seen else None)

    @property
    def _seen(self) -> set[str]:
        return set(self.models_seen)

    def _encode(self, texts: Sequence[str], prefixes: Sequence[str]) -> list[list[int]]:
        from ssjf.predict.finetune.text import encode

        return encode(
            self._tokenizer,
            texts,
            prefixes,
            int(self.params["max_length"]),
            self.params["truncation"],
        )

    def _examples(
        self, prompts: Sequence[str], lengths: np.ndarray, models: Sequence[str | None]
    ) -> tuple[list[str], list[str], list[np.ndarray], list[str]]:
        """Group records into (text, prefix, answer lengths, prompt group) examples."""
        by_key: dict[tuple[str, str], list[float]] = {}
        conditioned = self.params["conditioning"] == "prefix"
        for p, n, m in zip(prompts, lengths, models, strict=True):
            by_key.setdefault((model_prefix(None) if conditioned else "", p), []).append(n)
            if conditioned and m is not None:
                by_key.setdefault((model_prefix(m), p), []).append(n)
        keys = list(by_key)
        return (
            [k[1] for k in keys],
            [k[0] for k in keys],
            [np.asarray(by_key[k], dtype=float) for k in keys],
            [k[1] for k in keys],
        )

    # --------------------------------------------------------------- fit
    def fit(
        self,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Sequence[str | None] | None = None,
    ) -> FineTunePredictor:
        """Fine-tune the encoder and head on the records (see module docstring)."""
        from ssjf.predict.finetune.encoders import load_encoder, resolve_encoder
        from ssjf.predict.finetune.model import LengthModel
        from ssjf.predict.finetune.train import TrainConfig, train

        t0 = time.perf_counter()
        texts_all = [as_text(p) for p in prompts]
        arr = np.asarray(lengths, dtype=float)
        if len(texts_all) != len(arr):
            raise PredictorError(f"got {len(texts_all)} prompts but {len(arr)} lengths")
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise PredictorError("lengths must be a non-empty list of finite numbers >= 0")
        mods = self._models_for(len(texts_all), models)
        target = self.params["target_model"]
        if target is not None:
            keep = [i for i, m in enumerate(mods) if m == target]
            if not keep:
                raise PredictorError(f"target_model {target!r} has no training records")
            texts_all = [texts_all[i] for i in keep]
            arr, mods = arr[keep], [None] * len(keep)
        self.models_seen = sorted({m for m in mods if m is not None})
        texts, prefixes, groups, group_ids = self._examples(texts_all, arr, mods)

        p = self.params
        enc_name = resolve_encoder(str(p["encoder"]))
        self._tokenizer, encoder = load_encoder(enc_name)
        self.form.prepare(arr)
        import torch

        torch.manual_seed(int(p["seed"]))
        head = self.form.make_head(int(encoder.config.hidden_size))
        targets = self.form.targets(groups)
        self.form.init_head(head, targets)
        self._model = LengthModel(encoder, head, float(p["dropout"]))
        ids = self._encode(texts, prefixes)
        config = TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            lr=float(p["lr"]),
            head_lr=float(p["head_lr"]),
            train_layers=int(p["train_layers"]),
            val_fraction=float(p["val_fraction"]),
            patience=int(p["patience"]),
            seed=int(p["seed"]),
            device=str(p["device"]),
            threads=p["threads"],
            progress=bool(p["progress"]),
        )
        tag = f"{enc_name}|{p['max_length']}|{p['truncation']}"
        res = train(
            self._model, self.form, ids, targets, group_ids,
            self._pad_id, config, cache_tag=tag,
        )  # fmt: skip
        assert res.outputs is not None
        self.form.finish(res.outputs, groups)
        self.fitted = True
        self.training = {
            "records": len(arr),
            "examples": len(texts),
            "prompts": len(set(group_ids)),
            "models": self.models_seen,
            "encoder": str(p["encoder"]),
            "steps": res.steps,
            "best_val_loss": res.best_val,
            "val_losses": res.val_loss,
            "final_train_loss": float(np.mean(res.train_loss[-10:])) if res.train_loss else None,
            "stopped_early": res.stopped_early,
            "cached_frozen_layers": res.cached,
            "device": res.device,
            "train_seconds": res.seconds,
            "fit_seconds": time.perf_counter() - t0,
        }
        return self

    @property
    def _pad_id(self) -> int:
        pad = self._tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    @property
    def _device(self) -> Any:
        from ssjf.predict.finetune.train import pick_device

        return pick_device(str(self.params["device"]))

    # ----------------------------------------------------------- predict
    def _outputs(self, prompts: Sequence[str], models: Sequence[str | None] | None) -> np.ndarray:
        """Raw head outputs per prompt; identical (prefix, prompt) inputs run once."""
        from ssjf.predict.finetune.train import predict_outputs

        self._check_fitted()
        mods = self._models_for(len(prompts), models)
        keys = [(self._prefix(m), as_text(p)) for p, m in zip(prompts, mods, strict=True)]
        uniq = list(dict.fromkeys(keys))
        if not uniq:
            return np.zeros((0, self.form.n_outputs))
        ids = self._encode([k[1] for k in uniq], [k[0] for k in uniq])
        out = predict_outputs(
            self._model, ids, self._pad_id, self._device, int(self.params["predict_batch"])
        )
        row = {k: i for i, k in enumerate(uniq)}
        return out[[row[k] for k in keys]]

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        """One estimate (point + quantiles) per prompt."""
        out = self._outputs(prompts, models)
        return self.form.estimates(out) if len(out) else []

    def predict_points(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Point predictions in tokens."""
        out = self._outputs(prompts, models)
        if not len(out):
            return np.zeros(0)
        return np.maximum(np.expm1(self.form.log_points(out)), 0.0)

    # ------------------------------------------------------------ persist
    def _save_weights(self, path: Path) -> None:
        from safetensors.torch import save_file

        from ssjf.predict.finetune.encoders import quiet_transformers

        quiet_transformers()
        enc_dir = path / _FILES["encoder"]
        self._model.encoder.save_pretrained(enc_dir)
        self._tokenizer.save_pretrained(enc_dir)
        head = {k: v.detach().cpu().contiguous() for k, v in self._model.head.state_dict().items()}
        save_file(head, str(path / _FILES["head"]))
        state = {
            "formulation": self.formulation,
            "models_seen": self.models_seen,
            **self.form.state(),
        }
        (path / _FILES["state"]).write_text(json.dumps(state, indent=1) + "\n")

    def _load_weights(self, path: Path) -> None:
        from safetensors.torch import load_file

        from ssjf.predict.finetune.encoders import load_encoder
        from ssjf.predict.finetune.model import LengthModel

        state_path = path / _FILES["state"]
        if not state_path.is_file():
            raise PredictorError(f"{path}: missing {_FILES['state']}")
        state = json.loads(state_path.read_text())
        self.models_seen = list(state.get("models_seen", []))
        self.form.load_state(state)
        self._tokenizer, encoder = load_encoder(str(path / _FILES["encoder"]))
        head = self.form.make_head(int(encoder.config.hidden_size))
        head.load_state_dict(load_file(str(path / _FILES["head"])))
        self._model = LengthModel(encoder, head, float(self.params["dropout"])).eval()
        self._model.to(self._device)


@register_predictor("finetune-regression")
class FineTuneRegression(FineTunePredictor):
    """Regression on log length (paper: L1 or MSE)."""

    formulation = "regression"
    extra_defaults: ClassVar[dict[str, Any]] = {"loss": "l1"}
    #: MSE ranked better than L1-from-the-median in our runs (docs/predictors_finetune.md).
    bench_params: ClassVar[dict[str, Any]] = {**FineTunePredictor.bench_params, "loss": "mse"}


@register_predictor("finetune-bucket")
class FineTuneBucket(FineTunePredictor):
    """Percentile-bucket classifier (paper: 5 classes at 25/50/75/99th percentiles, or 3)."""

    formulation = "bucket"
    extra_defaults: ClassVar[dict[str, Any]] = {
        "n_classes": 5,
        "percentiles": None,
        "point": "class",
    }


@register_predictor("finetune-ordinal")
class FineTuneOrdinal(FineTunePredictor):
    """Ordinal classifier with CORAL cumulative logits."""

    formulation = "ordinal"
    extra_defaults: ClassVar[dict[str, Any]] = {"n_classes": 5, "percentiles": None}


@register_predictor("finetune-pairwise")
class FineTunePairwise(FineTunePredictor):
    """Pairwise "which is longer" ranking, calibrated to tokens."""

    formulation = "pairwise"
    extra_defaults: ClassVar[dict[str, Any]] = {"loss": "logistic", "margin": 1.0, "min_gap": 0.0}


@register_predictor("finetune-listwise")
class FineTuneListwise(FineTunePredictor):
    """Listwise ranking (ListMLE), calibrated to tokens."""

    formulation = "listwise"
    extra_defaults: ClassVar[dict[str, Any]] = {}


_BY_FORMULATION: dict[str, type[FineTunePredictor]] = {
    c.formulation: c
    for c in (
        FineTuneRegression,
        FineTuneBucket,
        FineTuneOrdinal,
        FineTunePairwise,
        FineTuneListwise,
    )
}


@register_predictor("finetune")
class FineTuneAny(FineTunePredictor):
    """Any formulation chosen by ``formulation=`` (what ``ssjf train --formulation`` passes)."""

    formulation = "bucket"

    def _pick_formulation(self, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        name = params.pop("formulation", None) or "bucket"
        if name not in _BY_FORMULATION:
            raise TypeError(f"formulation must be one of {sorted(_BY_FORMULATION)}, got {name!r}")
        # Instance attributes shadow the class defaults: this instance is that formulation.
        self.formulation = name  # type: ignore[misc]
        self.extra_defaults = {"formulation": name, **_BY_FORMULATION[name].extra_defaults}  # type: ignore[misc]
        return {**params, "formulation": name}
