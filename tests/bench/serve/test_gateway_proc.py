"""The serving bench's gateway processes start from any working directory."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("fastapi")

import ssjf
from ssjf.bench.serve.gateway_proc import GatewayProcess, subprocess_env


def test_gateway_process_starts_and_stops(tmp_path, monkeypatch):
    # From another folder, with nothing on PYTHONPATH: the process must find ssjf (and
    # the standard library's queue module, not ssjf's) by itself.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with GatewayProcess({"upstreams": ["http://127.0.0.1:9"]}) as gw:
        assert urllib.request.urlopen(f"{gw.url}/health", timeout=5).status == 200
    assert gw.proc is not None and gw.proc.poll() is not None


def test_subprocesses_see_ssjf_and_the_standard_library(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import queue, ssjf; print(queue.__file__); print(ssjf.__file__)"],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    stdlib_queue, package = out
    assert "ssjf" not in stdlib_queue
    assert package == ssjf.__file__
