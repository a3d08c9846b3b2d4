"""Cost-model spec strings (``--cost`` on the command line)."""

from __future__ import annotations

from pathlib import Path

from ssjf.sim.cost import AffineCost, CostModel, default_affine, paper_linear

_HELP = "cost specs: 'paper' | 'affine' | 'affine:FILE.json' | 'table:MODEL/HARDWARE/TP'"
SPLITWISE_CSV = "perf/splitwise_perf_model.csv"


def _splitwise_path() -> Path:
    from ssjf.workload.data import data_file  # data dir, cache, else download

    return Path(data_file(SPLITWISE_CSV))


def parse_cost_model(spec: str) -> CostModel:
    """Build a cost model from a spec such as ``paper`` or ``table:llama2-70b/a100-80gb/8``."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "paper" and not arg:
        return paper_linear()
    if kind == "affine":
        return AffineCost.from_file(arg) if arg else default_affine()
    if kind == "table":
        from ssjf.sim.table_cost import TableCost

        parts = arg.split("/")
        if len(parts) != 3:
            raise ValueError(f"cost spec {spec!r}: expected 'table:MODEL/HARDWARE/TP'")
        model, hardware, tp = parts
        try:
            tp_int = int(tp)
        except ValueError:
            raise ValueError(f"cost spec {spec!r}: TP must be an integer, got {tp!r}") from None
        return TableCost(_splitwise_path(), model, hardware, tp_int)
    raise ValueError(f"unknown cost model {spec!r}; {_HELP}")
