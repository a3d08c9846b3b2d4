"""Workloads: data files, arrival processes, request sources, and their combination."""

from ssjf.datadir import DataError, cache_dir, data_dir, data_file, find_data_file
from ssjf.workload.arrivals import (
    ArrivalSpec,
    gamma_arrivals,
    parse_timestamps,
    poisson_arrivals,
    scale_trace,
    uniform_arrivals,
)
from ssjf.workload.sources import (
    Pool,
    class_points,
    load_alpaca,
    load_azure,
    load_paper_predictions,
    load_prompts,
    load_table,
    parse_columns,
)

__all__ = [
    "ArrivalSpec",
    "DataError",
    "Pool",
    "cache_dir",
    "class_points",
    "data_dir",
    "data_file",
    "find_data_file",
    "gamma_arrivals",
    "load_alpaca",
    "load_azure",
    "load_paper_predictions",
    "load_prompts",
    "load_table",
    "parse_columns",
    "parse_timestamps",
    "poisson_arrivals",
    "scale_trace",
    "uniform_arrivals",
]
