"""A lean HTTP/1.1 client for the engine side of the gateway (plain http:// only).

Why not httpx here: on the hot path httpx + httpcore + h11 + anyio cost about
1 ms of CPU per request on the project's machines, half the gateway's whole
latency budget; this client (asyncio protocol + the httptools C parser) costs
about a tenth of that. It implements just what the gateway needs — POST with
a JSON body, keep-alive pooling, streamed bodies (Content-Length, chunked or
until-close), read timeouts — and raises httpx's exception classes so error
mapping is shared. httpx remains the client for https upstreams, for
``/v1/models``, and when ``upstream_client = "httpx"``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

#: Body bytes buffered from the engine before reading pauses (back-pressure).
HIGH_WATER = 1 << 20


class _Conn(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time with httptools."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self._hdr_name = b""
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.error: Exception | None = None
        self.lost = False
        self.got_bytes = False
        self.waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        import httptools

        self.got_bytes = True
        if self.parser is None:  # bytes while idle: the server broke the protocol
            self.error = httpx.RemoteProtocolError("unexpected data from the engine while idle")
            self._close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.error = httpx.RemoteProtocolError(f"malformed response from the engine: {e}")
            self._close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.parser is not None and not self.complete and self.error is None:
            if self.headers_done and self._until_close():
                self.complete = True  # body delimited by the connection's end
            else:
                self.error = httpx.RemoteProtocolError(
                    "the engine closed the connection before the response was complete"
                )
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        # Read it now: httptools resets the parser state once the message is done.
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.complete = True

    # -- helpers -------------------------------------------------------------------------
    def _until_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get(
            "transfer-encoding", ""
        )

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (cancelled or broken exchange)."""
        if self.transport is not None:
            self.transport.abort()
        self.lost = True

    @property
    def reusable(self) -> bool:
        return (
            not self.lost
            and self.error is None
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def start(self, head_and_body: bytes) -> None:
        """Send one request; the response is read with ``wait_headers`` / ``next_chunk``."""
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers = {}
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks.clear()
        self.buffered = 0
        self.got_bytes = False
        assert self.transport is not None
        self.transport.write(head_and_body)

    async def _wait(self, timeout: float) -> None:
        fut = self.loop.create_future()
        self.waiter = fut
        handle = self.loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self.waiter = None

    async def wait_headers(self, timeout: float) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            if self.lost:
                raise httpx.RemoteProtocolError("the engine closed the connection")
            await self._wait(timeout)

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next body bytes, or None at the end of the body."""
        while True:
            if self.chunks:
                data = self.chunks.popleft()
                self.buffered -= len(data)
                if self.paused and self.buffered < HIGH_WATER // 2 and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            if self.lost:
                raise httpx.RemoteProtocolError("the engine closed the connection mid-body")
            await self._wait(timeout)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(httpx.ReadTimeout("no data from the engine within the read timeout"))


class FastResponse:
    """The part of ``httpx.Response`` the proxy uses: status, headers, raw body, close."""

    def __init__(self, client: FastUpstream, key: tuple[str, int], conn: _Conn) -> None:
        self.client = client
        self.key = key
        self.conn: _Conn | None = conn
        self.status_code = conn.status
        self.headers = conn.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        conn = self.conn
        if conn is None:
            return
        timeout = self.client.read_timeout
        try:
            while True:
                data = await conn.next_chunk(timeout)
                if data is None:
                    break
                yield data
        except BaseException:
            await self.aclose()
            raise
        self._release()

    async def aread(self) -> bytes:
        parts = [c async for c in self.aiter_raw()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if conn.complete and conn.keep_alive and conn.reusable:
            conn.parser = None
            self.client._put(self.key, conn)
        else:
            conn.abort()

    async def aclose(self) -> None:
        """Finish with the response: a complete one returns its connection to the pool,
        an unfinished one is dropped (the engine sees the disconnect and aborts)."""
        conn = self.conn
        if conn is None:
            return
        if conn.complete:
            self._release()
        else:
            self.conn = None
            conn.abort()


class FastUpstream:
    """Keep-alive pool of plain-HTTP connections to the engines; ``post`` streams responses."""

    def __init__(
        self, connect_timeout: float, read_timeout: float, keepalive_expiry: float = 2.0
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._parsed: dict[str, tuple[tuple[str, int], bytes, str]] = {}

    def _split(self, url: str) -> tuple[tuple[str, int], bytes, str]:
        hit = self._parsed.get(url)
        if hit is None:
            u = urlsplit(url)
            if u.scheme != "http" or not u.hostname:
                raise ValueError(f"the fast upstream client needs an http:// URL, got {url!r}")
            port = u.port or 80
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            host = u.netloc.rsplit("@", 1)[-1]
            hit = ((u.hostname, port), path.encode(), host)
            if len(self._parsed) < 1024:
                self._parsed[url] = hit
        return hit

    def _get(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.abort()
        return None

    #: Idle connections kept per engine; more are closed (a burst's peak need not linger).
    MAX_IDLE = 256

    def _put(self, key: tuple[str, int], conn: _Conn) -> None:
        conn.idle_since = time.monotonic()
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.MAX_IDLE:
            # Drop the oldest (bottom of the LIFO stack): likely expired anyway.
            idle.pop(0).abort()
        idle.append(conn)

    async def _connect(self, key: tuple[str, int]) -> _Conn:
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that lands
        # as the connection completes, and a disconnected client's request would then
        # go on holding its slot. A timer that cancels the connect task has no such race.
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(loop.create_connection(lambda: _Conn(loop), key[0], key[1]))
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            task.cancel()

        handle = loop.call_later(self.connect_timeout, expire)
        try:
            _, proto = await task
        except asyncio.CancelledError:
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result()[0].close()  # connected just as we were cancelled
            if timed_out:
                raise httpx.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out") from None
            raise
        except OSError as e:
            raise httpx.ConnectError(f"cannot connect to {key[0]}:{key[1]}: {e}") from None
        finally:
            handle.cancel()
        return proto

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> FastResponse:
        """Send a POST and return once the response headers are in (the body streams)."""
        key, path, host = self._split(url)
        head = [b"POST ", path, b" HTTP/1.1\r\nhost: ", host.encode(), b"\r\n"]
        for k, v in headers.items():
            head += [k.encode("latin-1"), b": ", v.encode("latin-1"), b"\r\n"]
        head += [b"content-length: ", str(len(content)).encode(), b"\r\n\r\n", content]
        payload = b"".join(head)
        for attempt in (0, 1):
            conn = self._get(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key)
            conn.start(payload)
            try:
                await conn.wait_headers(self.read_timeout)
            except httpx.RemoteProtocolError:
                conn.abort()
                # A pooled connection the engine closed while idle: nothing was
                # processed, so one retry on a fresh connection is safe.
                if reused and not conn.got_bytes and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.abort()
                raise
            return FastResponse(self, key, conn)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                c.abort()
        self._idle.clear()


class HttpxUpstream:
    """The same ``post`` over an ``httpx.AsyncClient`` (https upstreams, or by choice)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """Send a POST and return once the response headers are in (the body streams)."""
        req = self.client.build_request("POST", url, content=content, headers=headers)
        return await self.client.send(req, stream=True)

    async def aclose(self) -> None:
        """The shared httpx client is closed by its owner."""
