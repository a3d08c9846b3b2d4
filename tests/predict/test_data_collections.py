"""The newer shared collections (ZeroEval, GPTeacher, Alpaca, Code Alpaca, RouteLLM GSM8K).

Loaded by name, and through the generic loader in their own record form
(``instruction`` / ``generator``), so a user's file in that form trains as-is.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ssjf.datadir import ASSEMBLED, data_dir
from ssjf.predict.data import (
    PROMPT_DATASET_DOMAINS,
    PROMPT_DATASETS,
    load_data,
    load_prompt_dataset,
    load_records_file,
)

NEW = ("zeroeval", "gpteacher", "alpaca5k", "codealpaca2k", "routellm_gsm8k")


def test_every_collection_has_a_domain_and_a_documented_origin() -> None:
    assert set(PROMPT_DATASET_DOMAINS) == set(PROMPT_DATASETS)
    for file, _sub in PROMPT_DATASETS.values():
        assert f"prompts/{file}" in ASSEMBLED  # the "cannot download" message names the source
    assert {PROMPT_DATASET_DOMAINS[n] for n in ("gpteacher", "alpaca5k", "codealpaca2k")} == {
        "synthetic"
    }
    assert PROMPT_DATASET_DOMAINS["sharegpt"] == "user"


def test_generic_file_in_the_collections_record_form(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl.gz"
    rows = [
        {"prompt_id": "a", "generator": "m1", "instruction": "Say hi", "output_tokens": "3"},
        {"prompt_id": "a", "generator": "m2", "instruction": "Say hi", "output_tokens": 5},
        # The project's own names win when both are present.
        {"prompt": "p", "instruction": "i", "model": "x", "generator": "y", "output_tokens": 2},
        {"instruction": "", "generator": "m1", "output_tokens": 4},
    ]
    with gzip.open(f, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    data = load_records_file(f)
    assert data.prompts == ["Say hi", "Say hi", "p"]
    assert data.models == ["m1", "m2", "x"]
    assert data.lengths == [3, 5, 2]
    assert data.prompt_ids == ["a", "a", "p"]
    assert any("field 'instruction': empty text" in i for i in data.issues)


@pytest.mark.skipif(data_dir() is None, reason="SSJF_DATA_DIR not set")
@pytest.mark.parametrize("name", NEW)
def test_new_collections_load_by_name_with_ids_generators_and_tasks(name: str) -> None:
    data = load_data(name)
    assert len(data) > 1000 and not data.issues
    assert all(pid.startswith(f"{name}:") for pid in data.prompt_ids[:50])
    assert all(d == name or d.startswith(f"{name}/") for d in data.datasets)
    assert all(m for m in data.models)
    if name == "zeroeval":
        assert len(data.model_names) == 57
        assert {d.split("/")[1] for d in data.datasets} == {
            "gsm",
            "crux",
            "math-l5",
            "numersense-v2",
        }
    if name == "routellm_gsm8k":
        assert len(data.model_names) == 2 and len(set(data.prompt_ids)) == 1319
    # The same file read as a generic path gives the same records (ids unprefixed).
    if name in ("alpaca5k", "codealpaca2k"):
        path = data_dir() / "prompts" / PROMPT_DATASETS[name][0]  # type: ignore[operator]
        generic = load_records_file(path)
        assert generic.prompts == data.prompts and generic.lengths == data.lengths


@pytest.mark.skipif(data_dir() is None, reason="SSJF_DATA_DIR not set")
def test_alias_is_the_same_collection() -> None:
    assert load_prompt_dataset("sharegpt_sample").prompts == load_prompt_dataset("sharegpt").prompts
