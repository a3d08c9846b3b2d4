"""The event-driven simulator: engine models, cost models, ``simulate()``."""

from ssjf.sim.capacity import capacity_rps
from ssjf.sim.cost import AffineCost, CostModel, default_affine, paper_linear
from ssjf.sim.engines import (
    BatchEngine,
    ContinuousEngine,
    Engine,
    SerialEngine,
    StepContinuousEngine,
    parse_engine,
)
from ssjf.sim.job import Job
from ssjf.sim.parse import parse_cost_model
from ssjf.sim.result import SimResult
from ssjf.sim.simulate import simulate
from ssjf.sim.table_cost import TableCost

__all__ = [
    "AffineCost",
    "BatchEngine",
    "ContinuousEngine",
    "CostModel",
    "Engine",
    "Job",
    "SerialEngine",
    "SimResult",
    "StepContinuousEngine",
    "TableCost",
    "capacity_rps",
    "default_affine",
    "paper_linear",
    "parse_cost_model",
    "parse_engine",
    "simulate",
]
