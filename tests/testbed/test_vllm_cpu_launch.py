"""How the CPU vLLM server is launched: its command, environment and CPU placement (no vLLM needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ssjf.testbed import vllm_cpu
from ssjf.testbed.vllm_cpu import EngineError, VllmCpuConfig, VllmCpuServer

linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")


def test_in_process_worker_command_and_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    server = VllmCpuServer(VllmCpuConfig(model=tmp_path / "m", venv=venv), port=8123)
    cmd = server.command()
    assert cmd[cmd.index("--distributed-executor-backend") + 1] == "uni"
    env = server.environment()
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert env["OMP_NUM_THREADS"] == "1" and env["KMP_BLOCKTIME"] == "0"
    # vLLM's own choice (a worker process) when asked for.
    default = VllmCpuServer(
        VllmCpuConfig(model=tmp_path / "m", venv=venv, in_process_worker=False), port=8123
    )
    assert "--distributed-executor-backend" not in default.command()
    env_default = default.environment()
    for key in ("VLLM_ENABLE_V1_MULTIPROCESSING", "OMP_NUM_THREADS", "KMP_BLOCKTIME"):
        assert env_default.get(key) == os.environ.get(key)


@linux_only
def test_children_and_thread_affinity() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in vllm_cpu._children(os.getpid())
        assert vllm_cpu._comm(child.pid).startswith("python")
    finally:
        child.kill()
        child.wait()
    # Every thread of a process gets the new CPU set, those already running included.
    cpus = sorted(os.sched_getaffinity(0))
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        vllm_cpu.set_affinity_all_threads(os.getpid(), {cpus[0]})
        tids = [int(t.name) for t in Path(f"/proc/{os.getpid()}/task").iterdir()]
        assert all(os.sched_getaffinity(t) == {cpus[0]} for t in tids)
    finally:
        vllm_cpu.set_affinity_all_threads(os.getpid(), set(cpus))
        stop.set()
        worker.join()


@linux_only
def test_pin_rejects_cpus_outside_the_allowed_set(tmp_path: Path) -> None:
    server = VllmCpuServer(VllmCpuConfig(model=tmp_path / "m"))
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(EngineError, match="not in"):
            server.pin((10_000,))
        # A process without a vLLM engine core under it: a clear error, not a silent no-op.
        with pytest.raises(EngineError, match="no engine-core process"):
            server.pin((sorted(os.sched_getaffinity(0))[0],))
    finally:
        server.proc.kill()
        server.proc.wait()


@linux_only
def test_server_runs_in_its_own_process_group_but_our_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Own group: stop() signals the server and its workers together. Our session:
    a new session is a new scheduler autogroup, and engines side by side in
    separate autogroups took turns at a shared CPU for seconds at a time."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text("#!/bin/sh\nsleep 60 &\nwait\n")  # a "server" with a child of its own
    fake.chmod(0o755)
    monkeypatch.setattr(VllmCpuServer, "_wait_healthy", lambda self, t0: None)
    server = VllmCpuServer(VllmCpuConfig(model=tmp_path / "m", venv=venv), log_path=tmp_path / "l")
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    try:
        assert os.getpgid(pid) == pid != os.getpgid(0)
        assert os.getsid(pid) == os.getsid(0)
    finally:
        server.stop(grace_s=5)
    assert server.proc.poll() is not None
    # The whole group is gone, the sleeping child included. The child, orphaned by the
    # kill, dies and is reaped by init (or a subreaper) in its own time, so poll to a
    # deadline rather than ask once; a zombie waiting to be reaped counts as gone.
    deadline = time.monotonic() + 10
    while live := _live_members(pid):
        assert time.monotonic() < deadline, f"still alive 10 s after stop(): {live}"
        time.sleep(0.01)


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (any member where /proc is missing)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # exited while we looked
        if int(pgrp) == pgid and state != "Z":
            out.append(int(stat.parent.name))
    return out
