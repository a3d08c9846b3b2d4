"""Engine and cost-model registries: spec parsing, generated help, and docs/extending.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ssjf.sim import AffineCost, paper_linear, parse_cost_model, parse_engine
from ssjf.sim.registry import COSTS, ENGINES, cost_help, engine_help

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def test_every_builtin_is_registered_and_listed_in_help() -> None:
    assert {"serial", "batch", "continuous", "continuous-step"} <= set(ENGINES.as_dict())
    assert {"paper", "affine", "table"} <= set(COSTS.as_dict())
    for usage in ("'serial'", "'batch:B[:timeout=S][:group][:kv=T]", "'continuous:N[:tokens=T]"):
        assert usage in engine_help()
    for usage in ("'paper'", "'affine'", "'affine:FILE.json'", "'table:MODEL/HARDWARE/TP'"):
        assert usage in cost_help()


def test_unknown_names_list_the_registered_specs() -> None:
    with pytest.raises(ValueError, match=r"unknown engine 'gpu'; engine specs: 'serial'"):
        parse_engine("gpu")
    with pytest.raises(ValueError, match=r"unknown cost model 'quadratic'; cost specs: .*'paper'"):
        parse_cost_model("quadratic")


def test_cost_specs_are_case_insensitive_and_paper_takes_no_argument() -> None:
    assert parse_cost_model(" PAPER ") == paper_linear()
    assert parse_cost_model("affine:") == parse_cost_model("affine")
    assert isinstance(parse_cost_model("affine"), AffineCost)
    with pytest.raises(ValueError, match="'paper' takes no arguments"):
        parse_cost_model("paper:2")
    with pytest.raises(ValueError, match="TP must be an integer"):
        parse_cost_model("table:llama2-70b/a100-80gb/eight")


def test_engine_errors_from_constructors_name_the_spec() -> None:
    with pytest.raises(ValueError, match=r"engine spec 'continuous:0': .*max_num_seqs"):
        parse_engine("continuous:0")
    with pytest.raises(ValueError, match="'serial' takes no arguments"):
        parse_engine("serial:2")


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_docs_have_one_example_per_kind() -> None:
    blocks = _doc_blocks()
    for decorator in ("register_policy", "register_engine", "register_cost", "register_backend",
                      "register_predictor"):  # fmt: skip
        assert sum(f"@{decorator}(" in b for b in blocks) == 1, decorator


@pytest.mark.parametrize("index", range(5))
def test_docs_extending_examples_run(index: int, tmp_path: Path) -> None:
    # A fresh interpreter each: the examples register names for good.
    code = _doc_blocks()[index]
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
