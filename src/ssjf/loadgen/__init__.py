"""Load generation against OpenAI-compatible servers: workloads, Poisson replay, stats."""

from ssjf.loadgen.client import RequestResult, closed_loop, replay, send_one
from ssjf.loadgen.stats import LatencySummary, summarize
from ssjf.loadgen.workload import WorkItem, load_alpaca_workload, poisson_arrivals

__all__ = [
    "LatencySummary",
    "RequestResult",
    "WorkItem",
    "closed_loop",
    "load_alpaca_workload",
    "poisson_arrivals",
    "replay",
    "send_one",
    "summarize",
]
