"""Running the gateway's HTTP server safely: connection-level limits on top of uvicorn.

uvicorn's defaults trust the client until its request reaches the app. Each limit here
protects against one way a client can hold the gateway's memory or file descriptors
without ever sending a request the app would see:

- ``max_header_bytes``: a request head (request line and headers) larger than this gets
  431. httptools buffers a header until it ends, so without a bound 8 clients sending
  32 MB headers took 400 MB.
- ``max_headers``: more header lines than this get 431 (each one costs work downstream).
- ``header_timeout_s``: a connection must finish its request head this long after it
  was made, or after the first byte of its next request; otherwise it is closed. Open
  connections that never finish a head (slowloris) would otherwise be kept forever and
  exhaust the file limit. Idle keep-alive connections are closed by uvicorn's own
  keep-alive timeout (``keep_alive_s``), which this timer leaves alone.
- ``max_connections``: open connections per server; one beyond is closed at once, so the
  process never runs out of descriptors (``serve`` raises the file limit above it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn

if TYPE_CHECKING:
    from ssjf.gateway.config import GatewayConfig

try:  # httptools is optional in uvicorn; without it uvicorn_config falls back to h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    HttpToolsProtocol = object  # type: ignore[misc,assignment]
    HAVE_HTTPTOOLS = False
else:
    HAVE_HTTPTOOLS = True

log = logging.getLogger("ssjf.gateway")

#: Descriptors kept beyond max_connections: engine connections, log files, the listener.
FD_HEADROOM = 512
#: After a 431 or 408 the connection is half-closed, and what the client still sends is
#: read and dropped for this long: closing with unread data makes the kernel send a
#: reset, which can destroy the response before the client has read it.
LINGER_S = 2.0


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Connection-level limits of one HTTP server (see the module docstring for why)."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    max_connections: int = 4096
    keep_alive_s: float = 30.0

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> ServerLimits:
        """The limits set in a gateway configuration."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


@dataclass(slots=True)
class ConnectionGauge:
    """Counters shared by the connections of one server (its event loop's thread only)."""

    open: int = 0
    refused: int = 0  # closed at once: max_connections were open
    heads_too_large: int = 0  # 431s
    head_timeouts: int = 0  # closed by the header timer


def _error_response(status: int, reason: bytes, message: str, code: str) -> bytes:
    """A complete HTTP/1.1 response with an OpenAI error body that closes the connection."""
    body = json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    ).encode()
    return b"HTTP/1.1 %d %s\r\n" % (status, reason) + (
        b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
        % (len(body), body)
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, a header timer and a connection cap.

    Use ``guarded_protocol(limits)``: it makes a subclass per server, which carries the
    limits and the gauge its connections share (uvicorn instantiates the class itself).
    A request whose head arrives in one read on a kept-alive connection costs a few
    comparisons and no timer (a new connection arms one, as it must).
    """

    limits: ClassVar[ServerLimits] = ServerLimits()
    gauge: ClassVar[ConnectionGauge] = ConnectionGauge()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits
        self._max_head = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._header_timeout = limits.header_timeout_s
        # Invariant: _in_head is True while the bytes being received belong to a request
        # head (from the connection's start, and from the end of each request, until
        # the next request's headers are complete); _head_bytes counts them.
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._counted = False  # this connection holds a place in gauge.open
        self._rejection: bytes | None = None  # a 431 to send instead of uvicorn's 400
        self._answered = False  # a 431/408 was sent: further bytes are dropped

    # --- connection life ------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gauge = self.gauge
        if gauge.open >= self.limits.max_connections:
            gauge.refused += 1
            # Not handed to uvicorn: connection_lost must not reach its bookkeeping.
            self.transport = transport
            transport.close()
            return
        gauge.open += 1
        self._counted = True
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if not self._counted:
            return
        self._counted = False
        self.gauge.open -= 1
        super().connection_lost(exc)

    # --- request heads --------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self._in_head:  # body bytes: the common path costs one attribute test
            super().data_received(data)
            return
        if self._answered:
            return
        n = self._head_bytes + len(data)
        if n > self._max_head:
            self._feed_past_limit(data)
            return
        self._head_bytes = n
        super().data_received(data)
        # A head begun but not finished in this read: it must finish in time. (Bytes
        # after a complete request, in the same read, are not counted: they are at most
        # one read long, and the keep-alive timer reaps the connection if they stall.)
        if self._in_head and self._head_bytes and self._head_timer is None:
            self._arm_head_timer()

    def _feed_past_limit(self, data: bytes) -> None:
        """Feed what still fits in the head; 431 unless the head ends within it."""
        room = self._max_head - self._head_bytes
        self._head_bytes = self._max_head  # reset by the callbacks if the head ends
        super().data_received(data[:room])
        if self._answered or self.transport.is_closing():
            return
        if self._in_head and self._head_bytes == self._max_head:
            self._reject(
                f"the request head is larger than {self._max_head} bytes",
            )
            return
        self.data_received(data[room:])

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > self._max_headers:
            self._rejection = _error_response(
                431,
                b"Request Header Fields Too Large",
                f"the request has more than {self._max_headers} headers",
                "headers_too_large",
            )
            # Stops the parser; uvicorn's error path then calls send_400_response.
            raise _TooManyHeaders

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._rejection is not None:
            self.gauge.heads_too_large += 1
            self._close_with(self._rejection)
            return
        super().send_400_response(msg)

    def _reject(self, message: str) -> None:
        self.gauge.heads_too_large += 1
        self._close_with(
            _error_response(431, b"Request Header Fields Too Large", message, "headers_too_large")
        )

    def _close_with(self, response: bytes) -> None:
        """Send a final response and close, lingering (see LINGER_S) where possible."""
        self._cancel_head_timer()
        self._answered = True
        self._in_head = True  # keeps data_received on the path that drops bytes
        transport = self.transport
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()  # the client sees the end; uvicorn closes on its FIN
            self._head_timer = self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()

    # --- header timer ---------------------------------------------------------------
    @property
    def head_timer_armed(self) -> bool:
        """True while a header (or linger) timer is pending for this connection."""
        return self._head_timer is not None

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head stalls behind a response still being sent: let that
            # response finish, then close instead of reading the stalled head.
            cycle.keep_alive = False
            return
        self.gauge.head_timeouts += 1
        if self._head_bytes:
            self._close_with(_REQUEST_TIMEOUT)
        else:  # nothing sent: an unsolicited 408 could be read as a later request's answer
            self.transport.close()


class _TooManyHeaders(Exception):
    """Raised from a parser callback to stop parsing a head with too many headers."""


_REQUEST_TIMEOUT = _error_response(
    408, b"Request Timeout", "the request head was not received in time", "request_timeout"
)


def guarded_protocol(limits: ServerLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server: these limits and a gauge of its own."""

    class ServerProtocol(GuardedHttpToolsProtocol):
        """Connections of one server: their count is not shared with other servers."""

    ServerProtocol.limits = limits
    ServerProtocol.gauge = ConnectionGauge()
    return ServerProtocol


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-file limit toward ``min(hard, needed)``; the soft limit in force.

    Never lowers it. -1 means unlimited, or no such limit on this platform.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return int(soft)
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. macOS caps the soft limit below hard
            return int(soft)
        soft = target
    return int(soft)


def uvicorn_config(
    app: Any,
    limits: ServerLimits,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    **extra: Any,
) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` behind ``limits``; ``extra`` overrides."""
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,  # the gateway has its own access log
        # uvicorn wants whole seconds; rounding up keeps a sub-second setting non-zero.
        "timeout_keep_alive": max(1, math.ceil(limits.keep_alive_s)),
        # On shutdown, streams in progress get this long to finish before being cut.
        "timeout_graceful_shutdown": 30,
        # No websocket routes: an upgrade would move the connection out of the gauge.
        "ws": "none",
    }
    if HAVE_HTTPTOOLS:
        kwargs["http"] = guarded_protocol(limits)
    else:
        # h11 bounds the head itself; there is no header timer or connection cap then.
        kwargs["http"] = "h11"
        kwargs["h11_max_incomplete_event_size"] = limits.max_header_bytes
    kwargs.update(extra)
    return uvicorn.Config(app, **kwargs)


def serve(app: Any, cfg: GatewayConfig, log_level: str = "warning") -> None:
    """Run ``app`` on ``cfg.host:cfg.port`` behind the configured limits until stopped."""
    limits = ServerLimits.from_config(cfg)
    needed = limits.max_connections + FD_HEADROOM
    soft = raise_fd_limit(needed)
    if 0 <= soft < needed:
        log.warning(
            "open-file limit %d is below max_connections %d + %d: connections may fail "
            "to be accepted before max_connections is reached (raise `ulimit -n`)",
            soft,
            limits.max_connections,
            FD_HEADROOM,
        )
    uvicorn.Server(
        uvicorn_config(app, limits, host=cfg.host, port=cfg.port, log_level=log_level)
    ).run()
