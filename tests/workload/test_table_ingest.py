"""Generic tables as users' logs write them: ISO or epoch arrivals, a unit option, odd bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssjf.workload.build import WorkloadSpec, load_pool
from ssjf.workload.sources import load_table, parse_columns


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_iso_arrivals_load_relative_and_sorted(tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "log.jsonl",
        [
            {"output_tokens": 5, "ts": "2025-12-06T06:08:33.538Z"},
            {"output_tokens": 7, "ts": "2025-12-06T07:08:32.038+01:00"},
        ],
    )
    pool = load_table(f, parse_columns("arrival=ts"))
    assert pool.timestamps is not None
    np.testing.assert_allclose(pool.timestamps, [0.0, 1.5])
    assert pool.output_tokens.tolist() == [7, 5]
    assert pool.meta["notes"] == []


def test_epoch_ms_is_detected_with_a_note(tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "log.jsonl",
        [{"output_tokens": 5, "ts": 1765001312038}, {"output_tokens": 5, "ts": 1765001313038}],
    )
    pool = load_table(f, {"arrival": "ts"})
    assert pool.timestamps is not None
    np.testing.assert_allclose(pool.timestamps, [0.0, 1.0])
    (note,) = pool.meta["notes"]
    assert "log.jsonl" in note and "'ts'" in note and "milliseconds" in note


def test_timestamp_unit_in_the_workload_spec(tmp_path: Path) -> None:
    # Relative milliseconds: too small to detect, so the spec says so.
    f = _jsonl(
        tmp_path / "rel.jsonl", [{"output_tokens": 5, "t": 0}, {"output_tokens": 5, "t": 250}]
    )
    spec = WorkloadSpec.parse(f"jsonl:{f}:arrival=t,timestamp_unit=ms")
    assert spec.columns == {"arrival": "t", "timestamp_unit": "ms"}
    pool = load_pool(spec)
    assert pool.timestamps is not None
    np.testing.assert_allclose(pool.timestamps, [0.0, 0.25])
    assert pool.meta["notes"] == []
    # Without the option the same numbers are seconds.
    plain = load_pool(WorkloadSpec.parse(f"jsonl:{f}:arrival=t"))
    assert plain.timestamps is not None and plain.timestamps[-1] == 250.0


def test_bad_timestamp_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="timestamp_unit=minutes"):
        parse_columns("arrival=t,timestamp_unit=minutes")


def test_invalid_utf8_bytes_become_replacement_characters(tmp_path: Path) -> None:
    f = tmp_path / "bytes.csv"
    f.write_bytes(b"prompt,output_tokens\ncaf\xe9,5\nok,3\n")
    pool = load_table(f)
    assert pool.prompts == ["caf\ufffd", "ok"]
