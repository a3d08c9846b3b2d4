"""Connection-level protection of the gateway's HTTP server (ssjf.gateway.server).

Real sockets on 127.0.0.1 against gateways started by the ``start_gateway`` fixture,
which serves them behind the guarded protocol, as deployed. Every wait polls a
condition against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState

from ssjf.gateway import server as gateway_server
from ssjf.gateway.server import (
    ConnectionGauge,
    ServerLimits,
    guarded_protocol,
    raise_fd_limit,
    uvicorn_config,
)

from .helpers import completion, post_json

STALLED_HEAD = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"


def gauge_of(gw: Any) -> ConnectionGauge:
    """The connection gauge of a gateway started by ``start_gateway``."""
    return gw.server.server.config.http_protocol_class.gauge  # type: ignore[no-any-return]


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.01)


def read_to_eof(sock: socket.socket, timeout: float = 15.0) -> bytes:
    """Everything the server sends until it closes (a reset counts as the close)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def raw_post(port: int, head_extra: bytes = b"", body: bytes = b"{}") -> socket.socket:
    """A socket that has sent one complete POST /v1/completions."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + head_extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    return s


def read_response(sock: socket.socket, timeout: float = 15.0) -> tuple[int, bytes]:
    """One response with a Content-Length body: (status, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest[:length]


def assert_error(raw: bytes, status: int, code: str) -> None:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), raw[:200]
    assert b"connection: close" in head.lower()
    err = json.loads(body)["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == code
    assert err["param"] is None and err["message"]


def port_of(gw: Any) -> int:
    return int(gw.server.port)


def ok(gw: Any, prompt: str = "hi") -> None:
    r = post_json(f"{gw.url}/v1/completions", completion(prompt))
    assert r.status_code == 200, r.text


# --- request heads ---------------------------------------------------------------------


def test_oversized_head_gets_431_and_the_server_keeps_serving(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], max_header_bytes=4096)
    with raw_post(port_of(gw), head_extra=b"X-Big: " + b"a" * 10_000 + b"\r\n") as s:
        assert_error(read_to_eof(s), 431, "headers_too_large")
    # The limit is on the head: the same bytes in a body are fine, and a head sent in
    # many small pieces is counted across them.
    big_body = json.dumps(completion("x" * 50_000)).encode()
    with raw_post(port_of(gw), body=big_body) as s:
        assert read_response(s)[0] == 200
    with socket.create_connection(("127.0.0.1", port_of(gw)), timeout=15) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(100):
            s.sendall(b"X-Pad: " + b"b" * 50 + b"\r\n")  # 5.9 KB in all
        s.sendall(b"\r\n")
        assert_error(read_to_eof(s), 431, "headers_too_large")
    ok(gw)
    assert gauge_of(gw).heads_too_large == 2


def test_too_many_headers_get_431(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], max_headers=10)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(20))
    with raw_post(port_of(gw), head_extra=many) as s:
        assert_error(read_to_eof(s), 431, "headers_too_large")
    few = b"".join(b"X-H%d: v\r\n" % i for i in range(4))  # 4 + 3 = 7 headers
    with raw_post(port_of(gw), head_extra=few, body=json.dumps(completion("a")).encode()) as s:
        assert read_response(s)[0] == 200
    ok(gw)


# --- stalled heads (slowloris) -----------------------------------------------------------


def _need_fds(n: int) -> None:
    if 0 <= raise_fd_limit(n) < n:
        pytest.skip(f"needs {n} open files")


def _open_stalled(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        s.sendall(STALLED_HEAD)
        socks.append(s)
    return socks


def test_stalled_heads_do_not_block_normal_requests(engine, start_gateway):
    _need_fds(8192)
    _, up = engine
    gw = start_gateway(upstreams=[up.url], header_timeout_s=300)
    gauge = gauge_of(gw)
    socks = _open_stalled(port_of(gw), 2000)
    try:
        wait_until(lambda: gauge.open >= 2000, "2,000 stalled connections accepted")
        for i in range(5):
            ok(gw, f"while stalled {i}")
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: gauge.open == 0, "every connection closed")


def test_stalled_heads_are_closed_after_header_timeout(engine, start_gateway):
    _need_fds(8192)
    _, up = engine
    gw = start_gateway(upstreams=[up.url], header_timeout_s=1.0)
    gauge = gauge_of(gw)
    silent = [socket.create_connection(("127.0.0.1", port_of(gw))) for _ in range(10)]
    socks = _open_stalled(port_of(gw), 2000)
    started = time.monotonic()
    received: dict[socket.socket, bytes] = {s: b"" for s in socks + silent}
    sel = selectors.DefaultSelector()
    try:
        for s in received:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        deadline = started + 30
        open_ = len(received)
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj  # type: ignore[assignment]
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[s] += chunk
                else:
                    sel.unregister(s)
                    open_ -= 1
        assert open_ == 0, f"{open_} stalled connections still open after 30 s"
        elapsed = time.monotonic() - started
    finally:
        sel.close()
        for s in received:
            s.close()
    for s in socks:  # a head was begun: it is told why
        assert_error(received[s], 408, "request_timeout")
    for s in silent:  # nothing was sent: closed without an unsolicited response
        assert received[s] == b""
    assert gauge.head_timeouts >= 2010
    print(f"2,010 stalled connections closed {elapsed:.2f} s after the last one opened")
    ok(gw)
    wait_until(lambda: gauge.open == 0, "every connection closed")


def test_header_timer_leaves_keep_alive_alone(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], header_timeout_s=0.2, keep_alive_s=5)
    body = json.dumps(completion("a")).encode()
    with raw_post(port_of(gw), body=body) as s:
        assert read_response(s)[0] == 200
        # Idle for longer than the header timeout (not the keep-alive): still usable.
        time.sleep(0.6)
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert read_response(s)[0] == 200
        # uvicorn's keep-alive timeout still closes the idle connection.
        started = time.monotonic()
        assert read_to_eof(s, timeout=30) == b""
        assert time.monotonic() - started >= 4.0
    assert gauge_of(gw).head_timeouts == 0


# --- connection cap ----------------------------------------------------------------------


def test_connections_beyond_max_are_closed_at_once(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], max_connections=20, header_timeout_s=300)
    gauge = gauge_of(gw)
    held = [socket.create_connection(("127.0.0.1", port_of(gw))) for _ in range(20)]
    extra: list[socket.socket] = []
    try:
        # All 20 are counted before any extra one connects: which ones are refused is fixed.
        wait_until(lambda: gauge.open == 20, "20 connections accepted")
        extra = [socket.create_connection(("127.0.0.1", port_of(gw))) for _ in range(10)]
        for s in extra:
            assert read_to_eof(s, timeout=10) == b""
        assert gauge.refused == 10 and gauge.open == 20
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{gw.url}/v1/completions", json=completion("refused"), timeout=10)
        for s in held[:5]:
            s.close()
        wait_until(lambda: gauge.open <= 15, "closed connections released")
        ok(gw, "after some closed")
    finally:
        for s in held + extra:
            s.close()
    wait_until(lambda: gauge.open == 0, "every connection closed")


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def can_write_eof(self) -> bool:
        return False


async def _asgi(scope: Any, receive: Any, send: Any) -> None:  # never called here
    raise AssertionError


def test_connection_counter_returns_to_zero():
    limits = ServerLimits(max_connections=2)
    cls = guarded_protocol(limits)
    assert guarded_protocol(limits).gauge is not cls.gauge  # one gauge per server
    config = uvicorn.Config(_asgi, lifespan="off", log_level="critical")
    state = ServerState()
    loop = asyncio.new_event_loop()
    try:
        protos = [cls(config=config, server_state=state, app_state={}, _loop=loop) for _ in "abc"]
        transports = [_Transport() for _ in protos]
        for p, t in zip(protos, transports, strict=True):
            p.connection_made(t)
        assert cls.gauge.open == 2 and cls.gauge.refused == 1
        assert [t.closed for t in transports] == [False, False, True]
        assert len(state.connections) == 2  # the refused one never reached uvicorn
        for p in protos:
            p.connection_lost(None)
        assert cls.gauge.open == 0
        assert not state.connections
        assert not any(p.head_timer_armed for p in protos)  # no timer left behind
        # The freed places are usable again.
        p = cls(config=config, server_state=state, app_state={}, _loop=loop)
        p.connection_made(_Transport())
        assert cls.gauge.open == 1
        p.connection_lost(None)
        assert cls.gauge.open == 0
    finally:
        loop.close()


# --- configuration -----------------------------------------------------------------------


def test_uvicorn_config_uses_the_guarded_protocol_and_h11_without_httptools(monkeypatch):
    limits = ServerLimits(max_header_bytes=2048, keep_alive_s=0.5)
    config = uvicorn_config(_asgi, limits, host="127.0.0.1", port=0)
    assert issubclass(config.http, gateway_server.GuardedHttpToolsProtocol)  # type: ignore[arg-type]
    assert config.http.limits is limits  # type: ignore[union-attr]
    assert config.timeout_keep_alive == 1 and config.access_log is False
    assert config.timeout_graceful_shutdown == 30
    assert (
        uvicorn_config(
            _asgi, limits, host="h", port=1, timeout_graceful_shutdown=1
        ).timeout_graceful_shutdown
        == 1
    )
    monkeypatch.setattr(gateway_server, "HAVE_HTTPTOOLS", False)
    config = uvicorn_config(_asgi, limits, host="127.0.0.1", port=0)
    assert config.http == "h11" and config.h11_max_incomplete_event_size == 2048


def test_raise_fd_limit_never_lowers():
    current = raise_fd_limit(1)
    assert current == -1 or current >= 1
    assert raise_fd_limit(1) == current
    assert raise_fd_limit(max(current, 1024)) >= min(current, 1024)
