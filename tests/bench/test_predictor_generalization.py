"""Rows of `ssjf bench predictor --splits`, the cross-model reference, and the CLI options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssjf.bench import predictor_generalization as gen
from ssjf.bench.cross_model import cross_model_reference, other_models_mean
from ssjf.bench.predictor import reference_rows
from ssjf.bench.predictor_splits import build_trainings
from ssjf.cli import app
from ssjf.datadir import data_dir
from ssjf.predict.records import LengthData
from tests.bench.test_predictor_splits import collections


def _records(rows: list[tuple[str, str, int]]) -> LengthData:
    data = LengthData()
    for pid, model, n in rows:
        data.append(f"prompt {pid}", n, model, pid, "toy")
    return data


def test_cross_model_reference_by_hand() -> None:
    # Generator A is tested; B and C answered the same prompts (the pool), p5 only by A.
    a = [("p1", "A", 10), ("p2", "A", 20), ("p3", "A", 30), ("p4", "A", 40), ("p5", "A", 5)]
    b = [("p1", "B", 100), ("p2", "B", 50), ("p3", "B", 300), ("p4", "B", 200)]
    c = [("p1", "C", 100), ("p2", "C", 60), ("p3", "C", 310), ("p4", "C", 400)]
    test, pool = _records(a), _records(a + b + c)
    others = other_models_mean(test, pool)
    want = [
        math.log1p(100),
        (math.log1p(50) + math.log1p(60)) / 2,
        (math.log1p(300) + math.log1p(310)) / 2,
        (math.log1p(200) + math.log1p(400)) / 2,
    ]
    assert np.allclose(others[:4], want) and math.isnan(others[4])
    # others rank p2 < p1 < p4 < p3, truth p1 < p2 < p3 < p4: 4 concordant, 2 discordant pairs
    # (p5 has no other generator and is left out)
    assert cross_model_reference(test, pool, min_per_model=2) == pytest.approx(1 / 3)
    # the test alone has one generator: no reference
    assert cross_model_reference(test, min_per_model=2) is None
    # the bench's reference row reads the test set alone (every generator is in it)
    flask = collections(24)["flask"]
    (row,) = reference_rows({"flask": flask})
    assert row["tau_mean"] == pytest.approx(cross_model_reference(flask))
    assert row["tau_mean"] > 0.5  # synthetic lengths all grow with the prompt number


@pytest.fixture
def synthetic_collections(monkeypatch: pytest.MonkeyPatch) -> dict[str, LengthData]:
    data = collections(24)
    monkeypatch.setattr(gen, "load_collections", lambda names: {n: data[n] for n in names})
    return data


def test_rows_have_the_issue_keys_and_the_reference(
    synthetic_collections: dict[str, LengthData],
) -> None:
    cfg = gen.GeneralizationConfig(recipe="legacy", families=("constant",), latency_single=10)
    result = gen.run_generalization(cfg)
    rows = result["rows"]
    assert not result["failures"]
    for r in rows:
        assert tuple(r)[: len(gen.ROW_KEYS)] == gen.ROW_KEYS
        assert r["recipe"] == "legacy" and r["family"] == "constant"
        assert r["n_test"] > 0 and r["fit_s"] >= 0 and r["latency_p50_ms"] > 0
    got = {(r["split"], r["dataset"]) for r in rows}
    assert got >= {
        ("in-dist", "alpaca_eval"),
        ("in-dist", "flask"),
        ("unseen-models", "zeroeval"),
        ("unseen-models", "zeroeval/a"),
        ("cross-collection", "sharegpt"),
        ("cross-collection", "gpteacher/b"),
    }
    by = {(r["split"], r["dataset"]): r for r in rows}
    assert by["cross-collection", "sharegpt"]["cross_model_ref"] is None  # one generator
    assert by["cross-collection", "gpteacher"]["cross_model_ref"] is None
    # the unseen-models reference reads every generator of the test prompts, not just the test's
    (unseen,) = build_trainings("unseen-models", "legacy", synthetic_collections)
    want = cross_model_reference(unseen.tests["flask"], unseen.pools["flask"])
    assert by["unseen-models", "flask"]["cross_model_ref"] == pytest.approx(want)
    assert want is not None and want > 0.5  # synthetic lengths share the prompt's order
    # a constant per generator ranks no generator's requests: no tau, no share of the reference
    assert math.isnan(by["in-dist", "alpaca_eval"]["tau_mean"])
    assert by["in-dist", "alpaca_eval"]["ref_fraction"] is None
    meta = result["meta"]
    assert [t["training"] for t in meta["trainings"]] == [
        "in-dist",
        "unseen-models",
        "cross-collection:sharegpt",
        "cross-collection:zeroeval",
        "cross-collection:gpteacher",
    ]
    assert set(meta["splits"]) == {"in-dist", "unseen-models", "cross-collection"}
    assert meta["trainings"][1]["dropped_by_family"] > 0 and meta["wall_s"] > 0


def test_score_row_pooled_tau_and_fraction() -> None:
    from ssjf.estimate import LengthEstimate
    from ssjf.stats import kendall_tau_b

    test = _records([(f"p{i}", m, 10 + i * (1 + j)) for i in range(6) for j, m in enumerate("AB")])
    sc = gen.Scored("toy", test, np.arange(len(test)), 0.5)
    # B's points are in the right order but 10x too small: right per generator, not pooled
    points = [n / (10 if m == "B" else 1) for n, m in zip(test.lengths, test.models, strict=True)]
    row = gen.score_row("in-dist", "x", sc, [LengthEstimate(point=p) for p in points])
    assert row["tau_pooled"] == pytest.approx(kendall_tau_b(points, test.lengths))
    assert row["tau_pooled"] < 0.9
    assert row["tau_mean"] == pytest.approx(1.0)
    assert row["ref_fraction"] == pytest.approx(2.0) and row["coverage"] is None


def test_cli_splits_options(synthetic_collections: dict[str, LengthData], tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["bench", "predictor", "--splits", "in-dist,cross"])
    assert bad.exit_code == 2 and "unknown split 'cross'" in bad.output
    bad = runner.invoke(app, ["bench", "predictor", "--splits", "all", "--recipe", "huge"])
    assert bad.exit_code == 2 and "unknown recipe 'huge'" in bad.output
    bad = runner.invoke(app, ["bench", "predictor", "--recipe", "legacy"])
    assert bad.exit_code == 2 and "--splits" in bad.output
    out = tmp_path / "g.json"
    args = ["bench", "predictor", "--splits", "in-dist,cross-collection", "--recipe", "legacy"]
    args += ["--families", "constant", "--latency-calls", "10", "--json", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {r["split"] for r in data["rows"]} == {"in-dist", "cross-collection"}
    assert data["meta"]["recipe"] == "legacy" and len(data["meta"]["trainings"]) == 4
    assert "cross-collection" in res.output and "dropped" in res.output


@pytest.mark.skipif(data_dir() is None, reason="needs SSJF_DATA_DIR (the shared collections)")
def test_real_splits_are_disjoint_by_text_and_family() -> None:
    from ssjf.bench.policies_workloads import in_families
    from ssjf.bench.predictor_splits import HELD_OUT_FAMILIES, load_collections
    from ssjf.predict.split import prompt_key

    data = load_collections(["alpaca_eval", "flask", "sharegpt", "zeroeval", "routellm_gsm8k"])
    (tr,) = build_trainings("unseen-models", "diverse", data)
    assert not [m for m in tr.train.model_names if in_families(m, HELD_OUT_FAMILIES)]
    keys = {prompt_key(p) for p in set(tr.train.prompts)}
    for te in tr.tests.values():
        assert not keys & {prompt_key(p) for p in set(te.prompts)}
    # routellm's Mixtral answers to held-out zeroeval gsm questions are dropped by text
    assert tr.describe["dropped_by_text"] > 0
