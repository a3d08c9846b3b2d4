"""Fixtures: a fake engine and gateways started in threads on 127.0.0.1 random ports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from ssjf.gateway.app import create_app
from ssjf.gateway.config import load_config
from ssjf.gateway.core import Gateway
from ssjf.gateway.server import ServerLimits

from .fake_upstream import FakeEngine, ServerThread


class RunningGateway:
    """A gateway in a thread: its URL and its live state."""

    def __init__(self, server: ServerThread, gw: Gateway) -> None:
        self.server = server
        self.gw = gw
        self.metrics_headers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.server.url

    def metrics_with(self, needle: str, timeout: float = 10.0) -> str:
        """The /metrics text once it contains ``needle`` (requests are recorded after
        their response is sent, so a client can read its answer first)."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            text = httpx.get(self.url + "/metrics", headers=self.metrics_headers).text
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared in /metrics")
            time.sleep(0.01)

    def wait_for(self, cond: Callable[[Gateway], bool], timeout: float = 10.0) -> None:
        """Poll until ``cond(gateway)`` holds (state is read across threads; ints only)."""
        deadline = time.monotonic() + timeout
        while not cond(self.gw):
            if time.monotonic() > deadline:
                raise AssertionError("gateway state never reached the expected condition")
            time.sleep(0.005)


@pytest.fixture
def engine() -> Iterator[tuple[FakeEngine, ServerThread]]:
    fake = FakeEngine()
    server = ServerThread(fake.app()).start()
    yield fake, server
    server.stop(force=True)


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    started: list[ServerThread] = []

    def start(predictor: Any = None, **settings: Any) -> RunningGateway:
        if isinstance(predictor, str):  # a saved predictor's directory: the config setting
            settings["predictor"], predictor = predictor, None
        if predictor is not None or "predictor" in settings:
            # A loaded CI machine must not turn test predictions into timeouts/fallbacks.
            settings.setdefault("predictor_timeout_ms", 10_000)
        cfg = load_config(None, environ={}, settings=settings)
        app = create_app(cfg, predictor=predictor)
        server = ServerThread(
            app, keep_alive_s=int(cfg.keep_alive_s), limits=ServerLimits.from_config(cfg)
        ).start()
        started.append(server)
        return RunningGateway(server, app.state.gateway)

    yield start
    for s in started:
        s.stop(force=True)


@pytest.fixture(params=["fast", "httpx"])
def upstream_client(request: pytest.FixtureRequest) -> str:
    """Both upstream HTTP clients, for the tests of wire-level behaviour."""
    return str(request.param)
