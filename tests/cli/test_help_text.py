"""Every command's ``--help`` shows metavars (FILE, N, SPEC), never Python types."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from ssjf.cli import app

runner = CliRunner()

#: What Typer prints for a parameter's Python type when nothing overrides it.
PYTHON_TYPES = re.compile(r"<(str|int|float|bool|path|list|file|dir)\b[^>]*>")


def _command_paths() -> list[tuple[str, ...]]:
    """``()`` for ``ssjf`` itself, then every command and subcommand, depth first."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


PATHS = _command_paths()


def _help(*path: str) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"", "simulate", "train", "evaluate", "serve", "bench", "bench paper"} <= names
    assert any(p[:1] == ("bench",) and len(p) == 2 for p in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "ssjf")
def test_help_shows_no_python_types(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert "Usage:" in text
    assert not PYTHON_TYPES.search(text), PYTHON_TYPES.findall(text)


def _line(text: str, option: str) -> str:
    (line,) = [ln for ln in text.splitlines() if re.search(rf"{option}(?![\w-])", ln)][:1]
    return line


def test_flags_show_no_value_and_options_say_what_goes_there() -> None:
    text = _help("simulate")
    for option, metavar in (
        ("--workload", "SPEC"),
        ("--engine", "SPEC"),
        ("--load", "LOADS"),
        ("--rate", "RATES"),
        ("--requests", "N"),
        ("--slo-jct", "SECONDS"),
        ("--json", "FILE"),
        ("--plot", "DIR"),
        ("--predictor", "DIR"),
    ):
        assert re.search(rf"{option}\s.*\b{metavar}\b", _line(text, option)), option
    # Without a metavar of its own, an option's name says the unit or kind.
    serve = _help("serve")
    assert re.search(r"--max-wait-s\s+SECONDS", serve)
    assert re.search(r"--api-keys-file\s+FILE", serve)
    assert re.search(r"--model\s+MODEL", _help("predict"))
    # A flag is followed by its help, with nothing in the value column.
    evaluate = _help("evaluate")
    assert re.search(r"--strict\s+Reject", _line(evaluate, "--strict"))
    assert re.search(r"--version\s+Print", _line(_help(), "--version"))
    # A positional argument is shown by its name, in the usage line too.
    assert "PREDICTOR_DIR" in evaluate and "{predictor_dir}" not in evaluate


def test_version_prints_the_package_version() -> None:
    import ssjf

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ssjf {ssjf.__version__}"
