"""Timestamp columns: ISO 8601, numbers in a unit (given or detected), errors that point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.workload.data import DataError
from ssjf.workload.timestamps import detect_unit, parse_timestamps, read_timestamps

# 2025-12-06T06:08:32Z, the complaint's log.
EPOCH_US = 1_765_001_312_000_000


def test_iso_with_z_and_offsets_are_relative_seconds() -> None:
    t = parse_timestamps(
        [
            "2025-12-06T06:08:32.038Z",
            "2025-12-06T07:08:33.038+01:00",  # one second later, written in another zone
            "2025-12-06 06:08:32.538",  # no offset: UTC
            "2025-12-06T01:08:34-0500",
        ]
    )
    np.testing.assert_allclose(t, [0.0, 1.0, 0.5, 1.962], atol=1e-9)


def test_explicit_unit_scales_numbers() -> None:
    for unit, scale in (("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        got = read_timestamps([10 * scale, 12.5 * scale, 11 * scale], unit=unit)
        np.testing.assert_allclose(got.seconds, [0.0, 2.5, 1.0])
        assert got.unit == unit and not got.detected and got.note("f", "ts") is None


def test_epoch_milliseconds_are_detected_and_said() -> None:
    got = read_timestamps(["1765001312038", "1765001312738"], file="log.jsonl")
    np.testing.assert_allclose(got.seconds, [0.0, 0.7])
    assert got.unit == "ms" and got.detected
    note = got.note("log.jsonl", "ts")
    assert note is not None and "milliseconds" in note and "timestamp_unit=" in note
    assert "\n" not in note


@pytest.mark.parametrize(
    ("largest", "unit"),
    [(0.5, "s"), (3600.0, "s"), (1.7e9, "s"), (1.7e12, "ms"), (1.7e15, "us"), (1.7e18, "ns")],
)
def test_detect_unit_by_magnitude(largest: float, unit: str) -> None:
    assert detect_unit(largest) == unit


def test_small_numbers_stay_seconds_without_a_note() -> None:
    got = read_timestamps([0, 1.5, 3])
    assert got.unit == "s" and got.note(None, "t") is None


def test_nanosecond_epochs_keep_their_precision() -> None:
    base = EPOCH_US * 1000
    got = parse_timestamps([base, base + 1, base + 1_000_000_001])
    np.testing.assert_allclose(got, [0.0, 1e-9, 1.000000001], rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", ["yesterday", "nan", "inf", "2025-13-06T00:00:00Z", True, None])
def test_bad_value_names_file_line_field(bad: object) -> None:
    with pytest.raises(DataError) as exc:
        parse_timestamps(["2025-12-06T06:08:32Z", bad], file="t.csv", lines=[2, 3], field="ts")
    msg = str(exc.value)
    assert "t.csv" in msg and "line 3" in msg and "'ts'" in msg and "ISO 8601" in msg


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="timestamp unit 'min'"):
        read_timestamps([1, 2], unit="min")


def _iso(us: int, offset_min: int, sep: str) -> str:
    tz = timezone(timedelta(minutes=offset_min))
    dt = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
    text = dt.astimezone(tz).isoformat(sep=sep)
    return text.replace("+00:00", "Z") if offset_min == 0 else text


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 10 * 86_400 * 1_000_000), min_size=1, max_size=20),
    zones=st.lists(st.integers(-12 * 60, 14 * 60), min_size=20, max_size=20),
    sep=st.sampled_from(["T", " "]),
)
def test_iso_and_every_unit_agree(offsets: list[int], zones: list[int], sep: str) -> None:
    """ISO strings (any offset) and epoch numbers in s/ms/us/ns give the same relative seconds."""
    us = [EPOCH_US + o for o in offsets]
    want = (np.asarray(us) - min(us)) / 1e6
    iso = [_iso(u, z, sep) for u, z in zip(us, zones, strict=False)]
    np.testing.assert_allclose(parse_timestamps(iso), want, rtol=0, atol=1e-6)
    as_units = {
        "s": [f"{u // 1_000_000}.{u % 1_000_000:06d}" for u in us],
        "ms": [f"{u // 1000}.{u % 1000:03d}" for u in us],
        "us": us,
        "ns": [u * 1000 for u in us],
    }
    for unit, values in as_units.items():
        explicit = parse_timestamps(values, unit=unit)
        np.testing.assert_allclose(explicit, want, rtol=0, atol=1e-6, err_msg=unit)
        # Epoch-sized numbers need no unit: the magnitude tells.
        detected = read_timestamps(values)
        assert detected.unit == unit
        np.testing.assert_allclose(detected.seconds, want, rtol=0, atol=1e-6, err_msg=unit)
