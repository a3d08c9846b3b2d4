"""`ssjf bench predictor --splits`: the generalization splits' table and JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def _fmt(value: object, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def parse_split_options(splits: str, recipe: str | None) -> tuple[tuple[str, ...], str]:
    """``--splits`` and ``--recipe`` checked up front: a bad name is a usage error (exit 2)."""
    from ssjf.bench.predictor_splits import DEFAULT_RECIPE, check_recipe, parse_splits

    try:
        return parse_splits(splits), check_recipe(recipe or DEFAULT_RECIPE)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--splits/--recipe") from None


def rows_table(result: dict[str, Any]) -> Table:
    """One line per (split, dataset, family); ``/ref`` is tau_mean over the cross-model reference."""
    meta = result["meta"]
    table = Table(title=f"ssjf bench predictor --splits ({meta['recipe']} training)")
    cols = ["split", "dataset", "family", "n", "gens", "tau mean", "tau pooled"]
    cols += ["MAE (tok)", "cov 80%", "ref", "/ref", "p50 ms", "fit s"]
    for col in cols:
        left = col in ("split", "dataset", "family")
        table.add_column(col, justify="left" if left else "right")
    for r in result["rows"]:
        table.add_row(
            r["split"],
            r["dataset"],
            r["family"],
            _fmt(r["n_test"], ",d"),
            _fmt(r["generators"], "d"),
            _fmt(r["tau_mean"], ".3f"),
            _fmt(r["tau_pooled"], ".3f"),
            _fmt(r["mae"], ".1f"),
            _fmt(r["coverage"], ".0%"),
            _fmt(r["cross_model_ref"], ".3f"),
            _fmt(r["ref_fraction"], ".2f"),
            _fmt(r["latency_p50_ms"], ".2f"),
            _fmt(r["fit_s"], ".0f"),
        )
    return table


def run_splits(
    splits: str,
    recipe: str | None,
    families: tuple[str, ...] | None,
    *,
    seed: int,
    latency: int,
    json_out: Path | None,
) -> None:
    """Check the options, run the splits, print the table, write the JSON."""
    from ssjf.bench.predictor_generalization import GeneralizationConfig, run_generalization
    from ssjf.predict.base import _jsonable
    from ssjf.predict.data import DataError

    chosen, recipe = parse_split_options(splits, recipe)
    err = Console(stderr=True, soft_wrap=True)
    cfg = GeneralizationConfig(
        splits=chosen, recipe=recipe, families=families, seed=seed, latency_single=latency
    )
    try:
        result = run_generalization(cfg, report=err.print)
    except DataError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out = Console(width=None if Console().is_terminal else 180)
    out.print(rows_table(result))
    for what, why in result["failures"].items():
        out.print(f"[red]{what} failed:[/red] {why}")
    meta = result["meta"]
    for t in meta["trainings"]:
        out.print(
            f"{t['training']}: train {t['train_records']:,} records "
            f"({', '.join(f'{k} {v:,}' for k, v in t['train_by_collection'].items())}); "
            f"dropped {t['dropped_by_text']:,} by text, {t['dropped_by_family']:,} by family"
        )
    out.print(f"wall time {meta['wall_s']:.0f} s; token unit {meta['token_unit']}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
