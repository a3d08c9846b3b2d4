"""The experiment runner on small synthetic workloads: comparisons hold together."""

from __future__ import annotations

import pytest

from ssjf.bench.runner import PolicyEntry, RunSettings, parse_policies, run_experiment
from ssjf.workload.build import synthetic_pool


def test_parse_policies() -> None:
    assert [e.label for e in parse_policies("fcfs, sjf,fcfs")] == ["fcfs", "sjf"]
    with pytest.raises(ValueError, match="unknown policy"):
        parse_policies("fcfs,lottery")


def test_serial_oracle_beats_fcfs_and_figures_are_consistent() -> None:
    pool = synthetic_pool(2000)
    settings = RunSettings(
        engine="serial",
        cost="paper",
        requests=300,
        seeds=(0, 1),
        load=0.9,
        records=True,
        keep_results=True,
    )
    res = run_experiment(pool, parse_policies("fcfs,ssjf,sjf"), settings)
    rows = {r["policy"]: r for r in res.rows}
    assert rows["fcfs"]["jct_change_vs_fcfs"] == 0.0
    assert rows["sjf"]["jct_mean"] < rows["fcfs"]["jct_mean"]
    assert rows["sjf"]["oracle_gain_fraction"] == pytest.approx(1.0)
    # SSJF's share of the oracle gain matches its per-seed definition.
    per = [r for r in res.per_seed if r["policy"] == "ssjf"]
    assert rows["ssjf"]["oracle_gain_fraction"] == pytest.approx(
        sum(r["oracle_gain_fraction"] for r in per) / len(per)
    )
    # Same jobs for every policy: identical throughput-relevant totals (work conserved).
    assert rows["fcfs"]["completed"] == rows["sjf"]["completed"] == 300
    assert len(res.records) == 6 and len(res.records[0]["jct"]) == 300
    assert len(res.jcts["sjf"]) == 2


def test_variant_estimates_share_jobs() -> None:
    pool = synthetic_pool(1000)
    settings = RunSettings(engine="serial", cost="paper", requests=200, seeds=(0,), load=0.9)
    entries = [
        PolicyEntry("fcfs", "fcfs"),
        PolicyEntry("sjf", "sjf"),
        PolicyEntry("ssjf-truth", "ssjf", estimates="truth"),
    ]
    from ssjf.estimate import LengthEstimate

    res = run_experiment(
        pool,
        entries,
        settings,
        variants={"truth": lambda p: [LengthEstimate(float(x)) for x in p.output_tokens]},
    )
    rows = {r["policy"]: r for r in res.rows}
    # SSJF with perfect predictions is oracle SJF.
    assert rows["ssjf-truth"]["jct_mean"] == pytest.approx(rows["sjf"]["jct_mean"])
