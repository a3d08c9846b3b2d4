"""Metrics: per-request records, per-policy summaries, comparisons, seed aggregation."""

from ssjf.metrics.compare import (
    MIN_ORACLE_GAIN,
    add_comparisons,
    aggregate,
    oracle_gain_fraction,
    relative_change,
)
from ssjf.metrics.records import RECORD_COLUMNS, record_columns, write_records
from ssjf.metrics.summary import SLO, RunArrays, summarize

__all__ = [
    "MIN_ORACLE_GAIN",
    "RECORD_COLUMNS",
    "SLO",
    "RunArrays",
    "add_comparisons",
    "aggregate",
    "oracle_gain_fraction",
    "record_columns",
    "relative_change",
    "summarize",
    "write_records",
]
