"""The preemption rule itself, the serial engine's use of it, and its plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssjf.bench.runner import PolicyEntry, RunSettings, run_experiment
from ssjf.estimate import LengthEstimate
from ssjf.metrics import summarize
from ssjf.request import Request
from ssjf.service import ServiceTime
from ssjf.sim import BatchEngine, ContinuousEngine, SerialEngine, parse_engine, simulate
from ssjf.sim.cost import paper_linear
from ssjf.sim.preemption import Preempter, PreemptionRule, parse_preemption
from ssjf.workload.build import synthetic_pool
from tests.sim.factories import job


def test_parse_preemption() -> None:
    assert parse_preemption(None) is None
    for off in ("off", "none", "", " OFF "):
        assert parse_preemption(off) is None
    assert parse_preemption("on") == PreemptionRule()
    assert parse_preemption("max=2:early=0.3:price=1.5") == PreemptionRule(2, 0.3, 1.5)
    assert parse_preemption("on:price=3") == PreemptionRule(price=3.0)
    rule = PreemptionRule(3, 0.25, 2.0)
    assert parse_preemption(rule.spec) == rule


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("max=0", "max_per_request must be >= 1"),
        ("early=1.5", "early_fraction must be in"),
        ("price=-1", "price must be a finite number"),
        ("price=inf", "price must be a finite number"),
        ("max=two", "max must be a number"),
        ("budget=3", "unknown setting 'budget=3'"),
        ("sometimes", "unknown setting"),
    ],
)
def test_bad_specs_name_the_setting(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_preemption(spec)


def test_rule_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="max_per_request must be an integer"):
        PreemptionRule(max_per_request=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="early_fraction"):
        PreemptionRule(early_fraction=float("nan"))


class _Run:
    def __init__(self, req: Request, admitted: int) -> None:
        self.req = req
        self.admitted = admitted


def _req(i: int, predicted: float, generated: int = 0, prompt: int = 10) -> Request:
    r = Request(i, float(i), prompt, estimate=LengthEstimate(predicted))
    r.generated = generated
    return r


def test_choose_victim_takes_the_worst_eligible_and_charges_the_price() -> None:
    pre = Preempter(PreemptionRule(), ServiceTime(0.02, 0.0), fixed_s=0.1)

    def key(r: Request, now: float) -> float:
        return r.predicted_remaining

    head = _req(9, 10)
    long_late = _Run(_req(1, 1000, generated=600), 0)  # past half its predicted life
    long_early = _Run(_req(2, 800, generated=100), 1)
    short = _Run(_req(3, 50, generated=5), 2)
    running = [long_late, short, long_early]
    assert pre.choose_victim(head, running, key, 0.0) is long_early
    # In a batch every running sequence pays the recompute: 8 x 0.1 s here.
    assert pre.choose_victim(head, running, key, 0.0, sharing=8) is long_early
    # The head's wait is the soonest completion, not the victim's: the short one ends
    # in 0.9 s, which saves the head 0.9 - 0.3 s, less than the 0.8 s the batch pays.
    decoders = [s.req for s in running]
    assert pre.choose_victim(head, running, key, 0.0, 8, decoders) is None
    assert pre.choose_victim(head, running, key, 0.0, 5, decoders) is long_early
    # Bounded per request; a head that the policy does not order first never preempts.
    long_early.req.preemptions = 1
    assert pre.choose_victim(head, running, key, 0.0) is short
    assert pre.choose_victim(_req(8, 2000), [short], key, 0.0) is None


def test_serial_preemption_lowers_mean_jct_with_exact_srpt() -> None:
    # A long job runs; a short one arrives 1 s later. SRPT with exact estimates and
    # preemption serves the short one at once and resumes the long one by recompute.
    jobs = [job(0, 0.0, 10, 1000, 1000), job(1, 1.0, 10, 10, 10)]
    cost = paper_linear()
    for policy in ("srpt", "ssrpt"):
        plain = simulate(jobs, SerialEngine(), policy, cost=cost)
        pre = simulate(jobs, SerialEngine(), policy, cost=cost, preemption=PreemptionRule())
        assert list(pre.preemptions) == [1, 0]
        # The long one had prefilled 10 tokens and generated ~45 when preempted.
        assert 50 <= pre.recomputed_tokens[0] <= 60
        assert pre.jct[1] < 0.5 < 19.0 < plain.jct[1]
        assert pre.jct.mean() < 0.6 * plain.jct.mean()
        # The long one pays the recompute's prefill step (0.1 s, a token's 0.02 s back).
        assert pre.completion[0] == pytest.approx(plain.completion[0] + 0.3 + 0.1, abs=0.03)


def test_serial_past_the_early_fraction_is_not_preempted() -> None:
    jobs = [job(0, 0.0, 10, 1000, 1000), job(1, 15.0, 10, 10, 10)]  # 70% done at t=15
    res = simulate(jobs, SerialEngine(), "srpt", cost=paper_linear(), preemption=PreemptionRule())
    assert res.preemptions.sum() == 0
    assert res.recomputed_tokens.sum() == 0


def test_engines_that_cannot_preempt_refuse_a_rule() -> None:
    jobs = [job(0, 0.0, 10, 10, 10)]
    with pytest.raises(ValueError, match="cannot preempt"):
        simulate(jobs, BatchEngine(4), "fcfs", cost=paper_linear(), preemption=PreemptionRule())
    assert SerialEngine().preempts and ContinuousEngine().preempts
    assert parse_engine("continuous-step:4").preempts
    assert not BatchEngine(4).preempts


def test_summary_and_runner_report_preemption_per_entry() -> None:
    pool = synthetic_pool(600)
    rule = PreemptionRule(max_per_request=2, early_fraction=1.0, price=0.0)
    settings = RunSettings(engine="serial", cost="paper", requests=150, seeds=(0,), load=0.9)
    entries = [
        PolicyEntry("fcfs", "fcfs"),
        PolicyEntry("srpt", "srpt"),
        PolicyEntry("srpt+preempt", "srpt", preemption=rule),
    ]
    rows = {r["policy"]: r for r in run_experiment(pool, entries, settings).rows}
    assert rows["srpt"]["preemptions"] == 0 and rows["srpt"]["recomputed_tokens"] == 0
    assert rows["srpt+preempt"]["preemptions"] > 0
    assert rows["srpt+preempt"]["recomputed_tokens"] > rows["srpt+preempt"]["preemptions"]
    # The run's setting applies where an entry says nothing.
    both = RunSettings(engine="serial", cost="paper", requests=150, seeds=(0,), load=0.9,
                       preemption=rule)  # fmt: skip
    rows2 = {r["policy"]: r for r in run_experiment(pool, entries[1:2], both).rows}
    assert rows2["srpt"]["preemptions"] == rows["srpt+preempt"]["preemptions"]


def test_summarize_totals() -> None:
    jobs = [job(0, 0.0, 10, 1000, 1000), job(1, 1.0, 10, 10, 10)]
    res = simulate(jobs, SerialEngine(), "srpt", cost=paper_linear(), preemption=PreemptionRule())
    s = summarize(res)
    assert s["preemptions"] == 1.0
    assert s["recomputed_tokens"] == float(res.recomputed_tokens.sum()) > 0


def test_cli_simulate_preempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ssjf.cli import app

    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    args = ["simulate", "-w", "synthetic", "-n", "150", "--seeds", "1", "-p", "srpt",
            "--load", "0.9", "--json", str(out)]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--preempt", "max=2:early=1:price=0"])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["preemptions"] > 0 and row["recomputed_tokens"] > 0
    bad = runner.invoke(app, [*args, "--preempt", "price=-2"])
    assert bad.exit_code == 2 and "price must be" in bad.output
    batch = runner.invoke(app, [*args, "--engine", "batch:4", "--preempt", "on"])
    assert batch.exit_code == 2 and "cannot preempt" in batch.output


def test_sim_speed_checks_the_reference_with_the_rule(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ssjf.cli import app

    out = tmp_path / "speed.json"
    result = CliRunner().invoke(
        app,
        ["bench", "sim-speed", "--requests", "2000", "--reference-requests", "600",
         "--policy", "ssrpt", "--preempt", "max=2:early=1:price=0", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())
    assert row["preemption"] == "max=2:early=1:price=0"
    assert row["max_rel_diff_vs_reference"] <= 1e-9
    assert row["preemptions_equal"] and row["pressured_preemptions_equal"]
