"""The predictor interface, the family registry, and save/load of predictor directories.

A predictor maps prompts (and, optionally, the name of the LLM that will answer
them) to :class:`~ssjf.estimate.LengthEstimate` objects. A saved predictor is a
directory::

    config.json   {"family": ..., "params": {...}, "format": 1,
                   "training": {...metadata...}, "metrics": {...}}
    weights*      whatever the family stores (npz, safetensors, json; never pickles)

``load_predictor(dir)`` reads ``config.json["family"]``, builds the registered
class with ``params`` and lets it read its weights.

Registration is one-directional: a family module imports this one and decorates
its class with ``@register_predictor("name")``; this module never imports a
family. The package :mod:`ssjf.predict` imports the built-in family modules,
and Python runs a package before any of its submodules, so every import of
``ssjf.predict.base`` (or ``ssjf.predict``) sees all built-in families. A
plug-in family outside ssjf registers the same way, when its module is imported.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.registry import Registry

#: Version of the on-disk layout; bump when a loader can no longer read old dirs.
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"

P = TypeVar("P", bound="Predictor")


class PredictorError(ValueError):
    """A predictor was misused (unfitted, bad params) or a saved one cannot be read."""


class Predictor(ABC):
    """Output-length predictor: ``fit`` on (prompt, length[, model]) and ``predict`` in batches.

    Subclasses set ``family`` (done by :func:`register_predictor`), take their
    hyper-parameters as keyword arguments (JSON-serialisable: they are saved in
    ``config.json``), and implement ``fit``, ``predict_log`` or ``predict``, and
    ``_save_weights`` / ``_load_weights``.
    """

    family: ClassVar[str] = ""
    #: The extra (``pip install 'ssjf[EXTRA]'``) this family needs, checked by the CLI
    #: before any work starts (:mod:`ssjf.extras`); None: the core is enough.
    needs_extra: ClassVar[str | None] = "predict"
    #: Per-family defaults used by ``ssjf bench predictor`` (kept small and fast).
    bench_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        #: Free-form facts about the training run (data, sizes, time, models seen).
        self.training: dict[str, Any] = {}
        #: Evaluation results attached by ``ssjf train`` / ``ssjf evaluate``.
        self.metrics: dict[str, Any] = {}
        self.fitted = False

    # ------------------------------------------------------------------ API
    @abstractmethod
    def fit(
        self: P,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Sequence[str | None] | None = None,
    ) -> P:
        """Train on prompts and their true output lengths (tokens), optionally per model."""

    def fit_records(
        self: P,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Sequence[str | None] | None,
        datasets: Sequence[str],
    ) -> P:
        """``fit``, telling families whose ``fit`` reads collections (``datasets=``, e.g.
        the score families' ``balance``) which collection each record comes from."""
        import inspect

        if "datasets" in inspect.signature(self.fit).parameters:
            return self.fit(prompts, lengths, models, datasets=datasets)  # type: ignore[call-arg]
        return self.fit(prompts, lengths, models)

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        """One estimate per prompt; unknown or missing model names use the unconditioned estimate."""
        points = self.predict_points(prompts, models)
        return [LengthEstimate(point=float(p)) for p in points]

    def predict_points(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Point predictions (tokens) as a float array; the fast path for batch scoring."""
        return np.array([e.point for e in self.predict(prompts, models)], dtype=float)

    @abstractmethod
    def _save_weights(self, path: Path) -> None:
        """Write the fitted state into directory ``path`` (config.json is written by the base)."""

    @abstractmethod
    def _load_weights(self, path: Path) -> None:
        """Read the fitted state written by ``_save_weights``."""

    def save(self, path: str | Path) -> None:
        """Write this fitted predictor to directory ``path`` (created if missing)."""
        self._check_fitted()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self._save_weights(out)
        config = {
            "family": self.family,
            "format": FORMAT_VERSION,
            "params": self.params,
            "training": self.training,
            "metrics": self.metrics,
        }
        (out / CONFIG_FILE).write_text(json.dumps(_jsonable(config), indent=2) + "\n")

    def save_metrics(self, path: str | Path) -> None:
        """Rewrite only the metrics in an existing predictor directory."""
        cfg_path = Path(path) / CONFIG_FILE
        config = json.loads(cfg_path.read_text())
        config["metrics"] = self.metrics
        cfg_path.write_text(json.dumps(_jsonable(config), indent=2) + "\n")

    # -------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not self.fitted:
            raise PredictorError(f"predictor {self.family!r} is not fitted; call fit() first")

    @staticmethod
    def _models_for(n: int, models: Sequence[str | None] | None) -> list[str | None]:
        """Normalise the optional ``models`` argument to a list of length ``n``."""
        if models is None:
            return [None] * n
        if len(models) != n:
            raise PredictorError(f"got {n} prompts but {len(models)} model names")
        return list(models)

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "unfitted"
        return f"<{type(self).__name__} family={self.family!r} {state} params={self.params}>"


_REGISTRY: Registry[type[Predictor]] = Registry("predictor family", "family", PredictorError)


def register_predictor(family: str) -> Callable[[type[P]], type[P]]:
    """Class decorator: register a :class:`Predictor` subclass under ``family``."""
    return _REGISTRY.register(family)


def available_predictors() -> dict[str, type[Predictor]]:
    """All registered families: the built-in ones plus any plug-in imported so far."""
    return _REGISTRY.as_dict()


def make_predictor(family: str, **params: Any) -> Predictor:
    """An unfitted predictor of ``family`` with hyper-parameters ``params``."""
    cls = _REGISTRY.get(family)
    try:
        return cls(**params)
    except TypeError as exc:
        raise PredictorError(f"bad parameters for predictor {family!r}: {exc}") from None


def load_predictor(path: str | Path) -> Predictor:
    """Load a predictor saved with :meth:`Predictor.save` (reads ``config.json["family"]``)."""
    root = Path(path)
    cfg_path = root / CONFIG_FILE
    if not cfg_path.is_file():
        raise PredictorError(f"{root}: not a saved predictor (no {CONFIG_FILE})")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictorError(f"{cfg_path}: invalid JSON: {exc}") from None
    if not isinstance(config, dict) or "family" not in config:
        raise PredictorError(f"{cfg_path}: missing field 'family'")
    if int(config.get("format", 1)) > FORMAT_VERSION:
        raise PredictorError(
            f"{cfg_path}: format {config['format']} is newer than this ssjf ({FORMAT_VERSION})"
        )
    predictor = make_predictor(str(config["family"]), **dict(config.get("params") or {}))
    predictor._load_weights(root)
    predictor.training = dict(config.get("training") or {})
    predictor.metrics = dict(config.get("metrics") or {})
    predictor.fitted = True
    return predictor


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and NaN/inf so ``json.dumps`` writes valid JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
