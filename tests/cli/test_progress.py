"""The simulation progress bar: requests simulated with an ETA, only on a terminal."""

from __future__ import annotations

import contextlib
import io

import pytest
from rich.console import Console

from ssjf.cli.sim_report import progress_bar


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=120), buf


def test_counts_requests_and_shows_an_eta_on_a_terminal() -> None:
    console, buf = _console(terminal=True)
    with progress_bar("simulating", 4, 50, console=console) as update:
        update(1, 4, "seed 0 fcfs")
        update(3, 4, "seed 0 sjf")
    text = buf.getvalue()
    assert "150/200 requests" in text  # 3 runs of 50 requests, out of 4 runs
    assert "eta" in text and "seed 0 sjf" in text


def test_silent_off_a_terminal_or_when_quiet() -> None:
    for terminal, quiet in ((False, False), (True, True)):
        console, buf = _console(terminal)
        with progress_bar("simulating", 2, 10, quiet=quiet, console=console) as update:
            update(1, 2, "seed 0 fcfs")
            update(2, 2, "seed 0 sjf")
        assert buf.getvalue() == "", (terminal, quiet)


def test_default_console_is_standard_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: treat the streams as terminals
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        progress_bar("simulating", 1, 10) as update,
    ):
        update(1, 1, "done")
    assert out.getvalue() == ""
    assert "10/10 requests" in err.getvalue()
