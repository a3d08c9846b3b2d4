"""Request sources: Azure traces, prompt collections, paper predictions, generic tables."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ssjf.workload.data import DataError, find_data_file
from ssjf.workload.sources import (
    PAPER_CLASS_EDGES,
    class_points,
    load_azure,
    load_paper_predictions,
    load_prompts,
    load_table,
    parse_columns,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:46.5000000,374,44\n"
    "2023-11-16 18:15:48.0000000,396,0\n"
    "2023-11-16 18:15:47.0000000,10,7\n"
)


def test_azure_parses_sorts_and_clamps(tmp_path: Path) -> None:
    pool = load_azure("conv", _write(tmp_path / "a.csv", AZURE))
    assert pool.timestamps is not None
    np.testing.assert_allclose(pool.timestamps, [0.0, 0.5, 1.5])
    assert pool.prompt_tokens.tolist() == [374, 10, 396]
    # 0 generated tokens becomes 1: every job emits at least one token.
    assert pool.output_tokens.tolist() == [44, 7, 1]


@pytest.mark.parametrize(
    ("row", "field", "line"),
    [
        ("2023-11-16 18:15:49,12,abc", "GeneratedTokens", 5),
        ("2023-11-16 18:15:49,12,3.5", "GeneratedTokens", 5),
        ("2023-11-16 18:15:49,-4,3", "ContextTokens", 5),
        ("not a time,12,3", "TIMESTAMP", 5),
        ("2023-11-16 18:15:49,,3", "ContextTokens", 5),
    ],
)
def test_azure_bad_rows_name_file_line_field(
    tmp_path: Path, row: str, field: str, line: int
) -> None:
    path = _write(tmp_path / "bad.csv", AZURE + row + "\n")
    with pytest.raises(DataError) as exc:
        load_azure("conv", path)
    assert exc.value.field == field
    assert exc.value.line == line
    assert str(path) in str(exc.value)


def test_azure_missing_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:49,3\n")
    with pytest.raises(DataError, match="GeneratedTokens") as exc:
        load_azure("conv", path)
    assert exc.value.line == 1


def _jsonl_gz(path: Path, records: list[dict[str, object]]) -> Path:
    with gzip.open(path, "wt") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return path


def test_prompts_filtered_by_generator(tmp_path: Path) -> None:
    recs = [
        {
            "prompt_id": p,
            "generator": g,
            "instruction": f"q{p}",
            "prompt_tokens": 5,
            "output_tokens": 10 * p + len(g),
        }
        for p in range(3)
        for g in ("a", "bb")
    ]
    path = _jsonl_gz(tmp_path / "x.jsonl.gz", recs)
    pool = load_prompts("bb", path=path)
    assert pool.output_tokens.tolist() == [2, 12, 22]
    assert pool.prompts == ["q0", "q1", "q2"]
    assert pool.models == ["bb"] * 3
    assert pool.prompt_ids is not None and pool.prompt_ids.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match=r"generator 'zz'.*a, bb"):
        load_prompts("zz", path=path)


def test_prompts_bad_json_and_bad_count(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt_id": 0, "instruction": "q", "prompt_tokens": 1, "output_tokens": 2}\n{oops\n'
    )
    with pytest.raises(DataError, match="line 2"):
        load_prompts(None, path=path)
    path.write_text(
        '{"prompt_id": 0, "instruction": "q", "prompt_tokens": 1, "output_tokens": "many"}\n'
    )
    with pytest.raises(DataError) as exc:
        load_prompts(None, path=path)
    assert exc.value.field == "output_tokens" and exc.value.line == 1


def test_class_points_are_bucket_midpoints_and_increasing() -> None:
    assert class_points(PAPER_CLASS_EDGES[5]) == (21.0, 91.5, 217.5, 398.5, 607.5)
    assert class_points(PAPER_CLASS_EDGES[3]) == (70.5, 322.0, 684.0)
    pts = class_points((10.0, 20.0, math.inf))
    assert list(pts) == sorted(pts)


def test_paper_predictions(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.csv",
        ",output_token_length,predicted_length,latency,model\n0,40,0,0.02,v\n1,300,2,0.01,v\n",
    )
    pool = load_paper_predictions(3, path)
    assert pool.output_tokens.tolist() == [40, 300]
    assert pool.estimates is not None
    assert [e.point for e in pool.estimates] == [70.5, 684.0]
    bad = _write(tmp_path / "b.csv", ",output_token_length,predicted_length\n0,40,3\n")
    with pytest.raises(DataError, match="out of range") as exc:
        load_paper_predictions(3, bad)
    assert exc.value.field == "predicted_length"


def test_table_csv_with_declared_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "ts,ctx,gen,guess\n3,10,5,4.5\n1,20,6,7\n")
    cols = parse_columns("prompt_tokens=ctx,output_tokens=gen,arrival=ts,predicted=guess")
    pool = load_table(path, cols)
    # Sorted by arrival.
    assert pool.output_tokens.tolist() == [6, 5]
    assert pool.prompt_tokens.tolist() == [20, 10]
    assert pool.timestamps is not None and pool.timestamps.tolist() == [0.0, 2.0]
    assert pool.estimates is not None and [e.point for e in pool.estimates] == [7.0, 4.5]


def test_table_jsonl_defaults_and_errors(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        '{"output_tokens": 3, "prompt": "hi"}\n\n{"output_tokens": 4, "prompt": "yo"}\n',
    )
    pool = load_table(path)
    assert pool.output_tokens.tolist() == [3, 4]
    assert pool.prompts == ["hi", "yo"]
    assert pool.prompt_tokens.tolist() == [0, 0]
    with pytest.raises(DataError, match="missing column") as exc:
        load_table(path, {"output_tokens": "gen"})
    assert exc.value.field == "gen"
    neg = _write(tmp_path / "n.jsonl", '{"output_tokens": 3}\n{"output_tokens": -1}\n')
    with pytest.raises(DataError) as exc:
        load_table(neg)
    assert exc.value.line == 2 and exc.value.field == "output_tokens"


@pytest.mark.parametrize("bad", ["prompt_tokens", "nope=x", "output_tokens="])
def test_parse_columns_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_columns(bad)


def test_pool_take_keeps_columns_aligned(tmp_path: Path) -> None:
    pool = load_azure("conv", _write(tmp_path / "a.csv", AZURE))
    sub = pool.take(np.array([2, 0]))
    assert sub.output_tokens.tolist() == [1, 44]
    assert sub.timestamps is not None and sub.timestamps.tolist() == [1.5, 0.0]


needs_data = pytest.mark.skipif(
    find_data_file("predictions/ssjf_lmsys_vicuna13b_5class.csv") is None,
    reason="real data not found: set SSJF_DATA_DIR (e.g. ../shared/data)",
)


@needs_data
def test_real_paper_predictions_match_readme() -> None:
    pool = load_paper_predictions(5)
    assert len(pool) == 85_482
    classes = pool.columns["predicted_class"]
    edges = PAPER_CLASS_EDGES[5]
    lo = np.concatenate([[0.0], np.asarray(edges[:-1])])
    hi = np.asarray(edges)
    correct = (pool.output_tokens > lo[classes]) & (pool.output_tokens <= hi[classes])
    # data/README.md: 60.0% accuracy for the 5-class predictor.
    assert correct.mean() == pytest.approx(0.60, abs=0.01)


def _has(rel: str) -> bool:
    return find_data_file(rel) is not None


@pytest.mark.skipif(
    not _has("traces/azure_llm_2023_conv.csv"), reason="real data not found: set SSJF_DATA_DIR"
)
def test_real_azure_conv_matches_readme() -> None:
    pool = load_azure("conv")
    assert len(pool) == 19_366
    assert pool.timestamps is not None
    # One hour, about 5.5 requests per second.
    assert 3000 < pool.timestamps[-1] < 3700
    assert np.all(np.diff(pool.timestamps) >= 0)


@pytest.mark.skipif(
    not _has("prompts/alpaca_eval.jsonl.gz"), reason="real data not found: set SSJF_DATA_DIR"
)
def test_real_alpaca_one_generator() -> None:
    from ssjf.workload.sources import load_alpaca

    pool = load_alpaca("gpt4_1106_preview")
    assert len(pool) == 805
    assert pool.prompt_ids is not None and len(set(pool.prompt_ids.tolist())) == 805
    assert pool.prompts is not None and all(isinstance(p, str) for p in pool.prompts)
