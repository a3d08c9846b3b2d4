"""Predictor data as logs write it: censored lengths dropped and counted, U+FFFD kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssjf.predict.chat_data import load_sharegpt_json
from ssjf.predict.data import is_censored, load_data, load_records_file


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rec", "length", "censored"),
    [
        ({"truncated": True}, 10, True),
        ({"truncated": "true"}, 10, True),
        ({"truncated": 1}, 10, True),
        ({"truncated": False, "max_tokens": 100}, 10, False),
        ({"truncated": "false"}, 10, False),
        ({"max_tokens": 64}, 64, True),  # stopped by its limit
        ({"max_tokens": "64"}, 63, False),
        ({"max_tokens": None}, 10_000, False),
        ({}, 10, False),
    ],
)
def test_is_censored(rec: dict[str, object], length: int, censored: bool) -> None:
    assert is_censored(rec, length) is censored


def test_traffic_log_truncated_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    # The gateway's traffic log format (ssjf.gateway.traffic_log).
    rows = [
        {"prompt": "a", "output_tokens": 12, "model": "m", "max_tokens": 256, "truncated": False},
        {"prompt": "b", "output_tokens": 256, "model": "m", "max_tokens": 256, "truncated": True},
        {"prompt": "c", "output_tokens": 40, "model": "m", "max_tokens": 40},
        {"prompt": "d", "output_tokens": 7, "model": "m"},
    ]
    f = _jsonl(tmp_path / "traffic.jsonl", rows)
    data = load_records_file(f, strict=True)
    assert data.prompts == ["a", "d"] and data.censored == 2
    kept = load_data(str(f), keep_censored=True)
    assert kept.prompts == ["a", "b", "c", "d"] and kept.censored == 0


def test_censored_count_survives_extend_and_subset(tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "t.jsonl",
        [
            {"prompt": "a", "output_tokens": 3},
            {"prompt": "b", "output_tokens": 9, "truncated": True},
        ],
    )
    data = load_records_file(f)
    data.extend(load_records_file(f))
    assert data.censored == 2 and data.subset([0]).censored == 2


def test_csv_truncated_column(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("prompt,output_tokens,truncated\na,5,False\nb,9,True\n")
    data = load_records_file(f)
    assert data.prompts == ["a"] and data.censored == 1


def test_replacement_character_is_a_valid_prompt(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "t.jsonl", [{"prompt": "caf\ufffd au lait", "output_tokens": 3}])
    data = load_records_file(f, strict=True)
    assert data.prompts == ["caf\ufffd au lait"]


def test_sharegpt_json_keeps_replacement_characters(tmp_path: Path) -> None:
    conv = [
        {
            "id": "x",
            "conversations": [
                {"from": "human", "value": "hello"},
                {"from": "gpt", "value": "hi there"},
                {"from": "human", "value": "caf\ufffd?"},
                {"from": "gpt", "value": "yes"},
            ],
        }
    ]
    f = tmp_path / "s.json"
    # A cut multi-byte character in the file itself: decoded to U+FFFD, not refused.
    f.write_bytes(
        json.dumps(conv, ensure_ascii=False).encode("utf-8").replace(b"hello", b"hell\xc3")
    )
    data = load_sharegpt_json(f, strict=True)
    assert data.prompts == ["hell\ufffd", "caf\ufffd?"]
