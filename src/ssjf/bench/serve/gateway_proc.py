"""Run ``ssjf serve`` as a subprocess (its own interpreter and GIL) for benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import ssjf
from ssjf.testbed.vllm_cpu import EngineError, free_port


@dataclass(slots=True)
class GatewayProcess:
    """An ``ssjf serve`` process with the given settings (GatewayConfig fields)."""

    settings: dict[str, Any]
    startup_timeout_s: float = 60.0
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the gateway and wait for ``/health``; return its URL."""
        self.port = self.port or free_port()
        tmp = Path(tempfile.mkdtemp(prefix="ssjf-gw-"))
        cfg = tmp / "gateway.json"
        cfg.write_text(json.dumps({**self.settings, "host": "127.0.0.1", "port": self.port}))
        self.log_path = tmp / "gateway.log"
        env = subprocess_env()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ssjf", "serve", "--config", str(cfg)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                process_group=0,  # own group for stop(), our session (see VllmCpuServer)
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise EngineError(f"ssjf serve exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"ssjf serve did not become healthy:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> GatewayProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def subprocess_env() -> dict[str, str]:
    """This environment, with the folder holding the ssjf package first on PYTHONPATH.

    That folder (src/ in a checkout), never the package itself: its queue.py would
    shadow the standard library's.
    """
    env = dict(os.environ)
    src = str(Path(ssjf.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
