"""The optional extras: which modules each provides, and the one error when one is missing.

Standard library only, like the rest of the ground floor: the CLI checks an
extra before any work starts (:func:`require_extra` looks modules up with
``importlib.util.find_spec``, which imports nothing), and the lazy imports deep
in the code (:mod:`ssjf.predict._deps`) name the same extra through
:func:`extra_for_module`. ``tests/core/test_extras.py`` keeps this map and the
extras in ``pyproject.toml`` from drifting apart.
"""

from __future__ import annotations

import importlib.util

#: extra -> {import name: the distribution that provides it}: what ``require_extra`` checks.
#: Helpers that the code uses only when present (uvloop, httptools, the bundled MiniLM
#: weights) are in pyproject but not here: nothing fails without them.
EXTRA_MODULES: dict[str, dict[str, str]] = {
    "predict": {"sklearn": "scikit-learn", "scipy": "scipy"},
    "encoders": {"torch": "torch", "sentence_transformers": "sentence-transformers"},
    "finetune": {"transformers": "transformers", "datasets": "datasets"},
    "gateway": {
        "fastapi": "fastapi",
        "uvicorn": "uvicorn",
        "httpx": "httpx",
        "prometheus_client": "prometheus-client",
    },
    "plot": {"matplotlib": "matplotlib"},
    "parquet": {"pyarrow": "pyarrow"},
}

#: extra -> the extras it includes (``ssjf[predict]`` inside ``encoders`` in pyproject).
EXTRA_INCLUDES: dict[str, tuple[str, ...]] = {
    "encoders": ("predict",),
    "finetune": ("encoders",),
}

#: One line per extra: what installing it enables (README's table says the same).
EXTRA_ENABLES: dict[str, str] = {
    "predict": "the TF-IDF predictor family (the default), train/evaluate/predict, "
    "simulate --predictor",
    "encoders": "the sentence-embedding families (embed-*, tfidf-embed)",
    "finetune": "the fine-tuned transformer families (finetune-*), lmsys chat data",
    "gateway": "ssjf serve, bench serve, bench gateway-overhead",
    "plot": "--plot figures",
    "parquet": "--records FILE.parquet",
}


class MissingExtra(ImportError):
    """An optional extra is not installed; the message is one line that says what to install."""

    def __init__(self, extra: str, what: str, missing: list[str]) -> None:
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'ssjf[{extra}]'",
            name=missing[0] if missing else None,
        )


def extra_modules(extra: str) -> dict[str, str]:
    """Import name -> distribution for ``extra`` and every extra it includes."""
    if extra not in EXTRA_MODULES:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRA_MODULES)}")
    mods: dict[str, str] = {}
    for inner in EXTRA_INCLUDES.get(extra, ()):
        mods.update(extra_modules(inner))
    mods.update(EXTRA_MODULES[extra])
    return mods


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, looked up without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails, or a broken sys.modules entry
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` (includes too) that cannot be found; empty when installed."""
    return [m for m in extra_modules(extra) if not installed(m)]


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` can be found.

    ``what`` names the thing that needs it, e.g. ``"ssjf simulate --predictor"``.
    """
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(extra, what, missing)


def extra_for_module(module: str) -> str | None:
    """The extra that provides ``module`` (a dotted name is looked up by its top level)."""
    top = module.partition(".")[0]
    for extra, mods in EXTRA_MODULES.items():
        if top in mods:
            return extra
    return None
