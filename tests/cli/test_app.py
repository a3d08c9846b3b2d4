"""The `ssjf` application itself: light `--help`, `--version`, help from the registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ssjf
from ssjf.cli import app
from ssjf.policies import available_policies, policy_class

runner = CliRunner()


def _modules_after(code: str) -> set[str]:
    """Names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(out.stdout.split())


def test_import_ssjf_imports_no_numpy() -> None:
    assert "numpy" not in _modules_after("import ssjf")


def test_help_imports_no_numpy() -> None:
    code = (
        "import sys\nsys.argv = ['ssjf', '--help']\nfrom ssjf.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code"
    )
    modules = _modules_after(code)
    assert "ssjf.cli.simulate" in modules  # every command was registered...
    assert "numpy" not in modules  # ...without the simulator behind it
    assert "ssjf.sim" not in modules


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ssjf {ssjf.__version__}"


def test_simulate_help_lists_the_registered_engines_costs_and_policies() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("engine specs: 'serial'", "'continuous:N[:tokens=T][:block=K][:blocks=M]'",
                 "cost specs:", "'table:MODEL/HARDWARE/TP'", "paper:5class", "fcfs, hrrn, isrtf"):  # fmt: skip
        assert text in result.output, text


def test_policies_declare_what_they_read() -> None:
    reads = {name for name, cls in available_policies().items() if cls.reads_estimates}
    assert {"ssjf", "ssrpt", "hrrn"} <= reads
    assert not reads & {"fcfs", "sjf", "srpt"}
    assert policy_class("hrrn").takes_seconds_per_token
    assert not policy_class("ssjf").takes_seconds_per_token


def test_simulate_notes_the_policies_that_read_missing_estimates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "w.jsonl"
    table.write_text("".join(f'{{"prompt_tokens": {5 + i}, "output_tokens": {3 + i}}}\n'
                             for i in range(20)))  # fmt: skip
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    result = runner.invoke(
        app,
        [
            "simulate",
            "-w",
            f"jsonl:{table}",
            "-n",
            "20",
            "--seeds",
            "1",
            "-p",
            "fcfs,ssjf,sjf,hrrn",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "ssjf, hrrn see no estimates" in result.output
