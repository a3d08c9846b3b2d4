"""`ssjf simulate --report`: one self-contained HTML page; and the figures behind it."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssjf.bench.runner import parse_policies
from ssjf.cli import app
from ssjf.cli.html_report import ReportSection, render_report, result_section
from ssjf.cli.sim_report import format_cell
from ssjf.plots import figure_context, oracle_labels, policy_label

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects img sources, any other src/href, and checks that tags nest."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in ("src", "href"):
                self.links.append(value or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return p


def _row(policy: str, seed: int, mean: float, p99: float) -> dict[str, object]:
    return {"policy": policy, "seed": seed, "jct_mean": mean, "jct_p99": p99}


def fake_run() -> tuple[dict[str, list[np.ndarray]], list[dict[str, object]]]:
    """Two seeds of three policies: JCT arrays and per-seed rows with changes vs FCFS."""
    rng = np.random.default_rng(0)
    jcts: dict[str, list[np.ndarray]] = {"fcfs": [], "ssjf": [], "sjf": []}
    per_seed: list[dict[str, object]] = []
    for seed in (0, 1):
        base = rng.exponential(10.0, 300)
        for policy, scale in (("fcfs", 1.0), ("ssjf", 0.8), ("sjf", 0.7)):
            x = base * scale
            jcts[policy].append(x)
            per_seed.append(_row(policy, seed, float(x.mean()), float(np.percentile(x, 99))))
    for r in per_seed:
        f = next(b for b in per_seed if b["policy"] == "fcfs" and b["seed"] == r["seed"])
        for key in ("jct_mean", "jct_p99"):
            r[f"{key}_change_vs_fcfs"] = float(r[key]) / float(f[key]) - 1  # type: ignore[arg-type]
    return jcts, per_seed


def test_oracle_labels_come_from_the_policy_classes() -> None:
    oracles = oracle_labels(parse_policies("fcfs,ssjf,sjf,srpt,hrrn"))
    assert oracles == {"sjf", "srpt"}
    assert policy_label("sjf", oracles) == "sjf (oracle)"
    assert policy_label("ssjf", oracles) == "ssjf"


def test_figure_context_names_engine_cost_and_load() -> None:
    ctx = figure_context("paper:5class", "continuous:8", "affine", load=0.9, requests=10, seeds=2)
    for part in ("paper:5class", "engine continuous:8", "cost affine", "load 0.9", "10 requests"):
        assert part in ctx
    assert "rate 3 req/s" in figure_context("w", "serial", "paper", load=0.9, rate=3.0)


def test_figures_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ssjf.plots import paired_changes, simulation_figures

    jcts, per_seed = fake_run()
    paths = simulation_figures(jcts, per_seed, tmp_path, "ctx", {"sjf"}, prefix="x_")
    assert [p.name for p in paths] == [
        "x_jct_ccdf.png",
        "x_jct_mean_p99.png",
        "x_paired_vs_fcfs.png",
    ]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000
    # No FCFS run: nothing to pair with, so no paired figure (and no crash).
    no_fcfs = [r for r in per_seed if r["policy"] != "fcfs"]
    assert paired_changes(no_fcfs, tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()


def test_report_escapes_untrusted_strings() -> None:
    evil = '<script>alert("x")</script>'
    rows = [{"policy": "<b>p</b>", "jct_mean": 1.0}]
    page = render_report(
        title=f"ssjf simulate · {evil}",
        settings={"workload": f"jsonl:{evil}.jsonl"},
        sections=[ReportSection(heading=evil, rows=rows, context=evil)],
        command=f"ssjf simulate -w {evil}",
        notes=[evil],
    )
    assert "<script>" not in page and "<b>p</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;p&lt;/b&gt;" in page
    parse(page)


def test_report_without_matplotlib_has_tables_and_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ssjf.extras
    from ssjf.bench.runner import ExperimentResult
    from ssjf.cli.html_report import report_notes

    monkeypatch.setattr(ssjf.extras, "missing_modules", lambda extra: ["matplotlib"])
    jcts, per_seed = fake_run()
    rows = [{"policy": p, "jct_mean": 1.0} for p in jcts]
    result = ExperimentResult(rows=rows, per_seed=per_seed, workloads=[], jcts=jcts)
    section = result_section("load 0.9", result, "ctx", {"sjf"})
    assert section.figures == []
    page = render_report(
        title="t", settings={}, sections=[section], notes=report_notes([{"synthetic": True}])
    )
    assert "<img" not in page and "matplotlib is not installed" in page and "SYNTHETIC" in page
    assert "sjf (oracle)" in page


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_simulate_report_is_one_self_contained_page(
    tmp_path: Path, no_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    import json

    report = tmp_path / "out" / "r.html"
    args = [
        "simulate", "-w", "synthetic", "-n", "150", "--seeds", "2", "-p", "fcfs,ssjf,sjf,hrrn",
        "-e", "batch:4", "--cost", "affine", "--load", "0.7", "--slo-jct", "20",
        "--report", str(report), "--json", str(tmp_path / "r.json"),
    ]  # fmt: skip
    monkeypatch.setattr("sys.argv", ["ssjf", *args])  # the page shows the command line
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    doc = parse(page)
    assert doc.links == []  # no stylesheet, script or link to fetch
    assert not re.search(r"https?://|file:", page)
    assert len(doc.images) == 3
    for src in doc.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    for setting in ("synthetic", "batch:4", "affine", "0.7", "fcfs, ssjf, sjf, hrrn", "goodput"):
        assert setting in page, setting
    assert "ssjf simulate -w synthetic" in page  # the command line
    # Every policy has a row, oracles marked, and the numbers are the printed table's.
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    for row in rows:
        label = "sjf (oracle)" if row["policy"] == "sjf" else row["policy"]
        cells = "".join(
            f"<td>{format_cell(row, k, kind)}</td>"
            for k, kind in (("jct_mean", "pm"), ("jct_p50", "f"), ("jct_p99", "f"))
        )
        assert f"<td>{label}</td>{cells}" in page, label
