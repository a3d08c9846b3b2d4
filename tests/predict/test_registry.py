"""Family registration runs one way (family module -> base) and still reaches every caller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ssjf.datadir import DataError
from ssjf.predict import available_predictors
from ssjf.predict.records import LengthData, Reporter

BUILT_IN = {
    "constant",
    "input-length",
    "tfidf",
    "tfidf-embed",
    "embed-ridge",
    "embed-quantile",
    "embed-bucket",
    "finetune",
    "finetune-regression",
    "finetune-bucket",
    "finetune-ordinal",
    "finetune-pairwise",
    "finetune-listwise",
}


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_only_base_sees_every_built_in_family_without_torch() -> None:
    code = (
        "import sys\n"
        "from ssjf.predict.base import available_predictors\n"
        "print(' '.join(sorted(available_predictors())), 'torch' in sys.modules)"
    )
    *names, torch_loaded = _fresh(code).split()
    assert set(names) >= BUILT_IN
    assert torch_loaded == "False"


def test_importing_ssjf_loads_no_numpy() -> None:
    assert _fresh("import sys, ssjf; print('numpy' in sys.modules)") == "False"


def test_registry_in_process_has_the_built_ins() -> None:
    assert set(available_predictors()) >= BUILT_IN


def test_reporter_collects_a_bounded_report_or_raises_when_strict() -> None:
    data = LengthData()
    rep = Reporter(data, strict=False, limit=2)
    for line in range(3):
        rep.bad(f"f.jsonl:{line}", "prompt", "missing")
    assert rep.count == 3
    assert data.issues == [
        "f.jsonl:0: field 'prompt': missing",
        "f.jsonl:1: field 'prompt': missing",
    ]
    with pytest.raises(DataError, match=r"f\.jsonl:9: field 'model': missing"):
        Reporter(LengthData(), strict=True).bad("f.jsonl:9", "model", "missing")
