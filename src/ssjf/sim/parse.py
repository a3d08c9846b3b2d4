"""Cost-model spec strings (``--cost`` on the command line), parsed through the registry."""

from __future__ import annotations

from ssjf.sim import table_cost as _table_cost  # noqa: F401  (registers ``table``)
from ssjf.sim.cost import CostModel
from ssjf.sim.registry import COSTS, cost_help


def parse_cost_model(spec: str) -> CostModel:
    """Build a cost model from a spec such as ``paper`` or ``table:llama2-70b/a100-80gb/8``."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in COSTS:
        raise ValueError(f"unknown cost model {spec!r}; {cost_help()}")
    return COSTS.get(kind).from_spec(spec, arg)
