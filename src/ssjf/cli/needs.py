"""Up-front extra checks for the commands: fail in one line before loading any data.

Plain extras are checked with :func:`ssjf.extras.require_extra` (``what`` names
the command and option, e.g. ``"ssjf simulate --plot"``); these helpers add the
extras that follow from an option's value. Each raises
:class:`ssjf.extras.MissingExtra`, which :func:`ssjf.cli.main` turns into
``error: ...`` on stderr and exit status 2. Modules are looked up, not imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ssjf.extras import extra_modules, require_extra


def need_family(family: str, what: str) -> None:
    """The extra a predictor family needs ('predict' for an unknown one: the command names it)."""
    from ssjf.predict import available_predictors

    cls = available_predictors().get(family)
    extra = "predict" if cls is None else cls.needs_extra
    if extra is not None:
        require_extra(extra, what if cls is None else f"{what} (family {family})")


def need_families(families: Iterable[str], what: str) -> None:
    """The extras of several families, the widest first: one error names the extra that
    covers them all when the chain is predict < encoders < finetune."""
    from ssjf.predict import available_predictors

    known = available_predictors()
    needed = {known[f].needs_extra if f in known else "predict" for f in families}
    for extra in sorted((e for e in needed if e), key=lambda e: -len(extra_modules(e))):
        require_extra(extra, what)


def saved_family(predictor_dir: str | Path) -> str | None:
    """The family named in a saved predictor's config.json; None when it cannot be read."""
    try:
        config = json.loads((Path(predictor_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    family = config.get("family") if isinstance(config, dict) else None
    return family if isinstance(family, str) else None


def need_saved_predictor(predictor_dir: str | Path, what: str) -> None:
    """The extra a saved predictor's family needs ('predict' when the directory is unreadable:
    the command then reports what is wrong with it)."""
    family = saved_family(predictor_dir)
    if family is None:
        require_extra("predict", what)
    else:
        need_family(family, what)


def need_data(specs: Iterable[str], what: str) -> None:
    """Datasets read through Hugging Face ``datasets`` (``lmsys[:FILE]``) need 'finetune'."""
    if any(spec.startswith("lmsys") for spec in specs):
        require_extra("finetune", f"{what} --data lmsys")


def need_records(path: Path | None, what: str) -> None:
    """``--records FILE.parquet`` needs 'parquet'."""
    if path is not None and path.suffix.lower() == ".parquet":
        require_extra("parquet", f"{what} --records .parquet")
