"""The lean upstream client against hand-written HTTP responses (framing, reuse, failures)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ssjf.gateway.upstream import FastUpstream


class RawServer:
    """Answers each request on a connection with the next canned reply (raw bytes)."""

    def __init__(
        self, replies: list[bytes | None], close_after: bool = False, hold: bool = False
    ) -> None:
        self.replies = replies
        self.hold = hold
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                if reply is None:  # hang up without answering
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
            if self.hold:  # keep the connection open, silent, until the client leaves
                await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/completions"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


JSON = b'{"ok": true}'
PLAIN = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(JSON),
    JSON,
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    b"7\r\ndata: 1\r\n7\r\ndata: 2\r\n0\r\n\r\n"
)
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"


def _client(**kw) -> FastUpstream:
    return FastUpstream(connect_timeout=2.0, read_timeout=kw.pop("read_timeout", 2.0), **kw)


def test_framing_and_keep_alive():
    async def run():
        srv = RawServer([PLAIN, CHUNKED, PLAIN])
        async with srv as url:
            c = _client()
            r = await c.post(url, b'{"a":1}', {"content-type": "application/json"})
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            assert await r.aread() == JSON
            r = await c.post(url, b"{}", {})
            assert [x async for x in r.aiter_raw()] == [b"data: 1", b"data: 2"]
            r = await c.post(url, b"{}", {})
            assert await r.aread() == JSON
            await c.aclose()
        assert srv.connections == 1  # one connection reused for all three
        assert srv.requests[0].startswith(b"POST /v1/completions HTTP/1.1\r\n")
        assert b"content-length: 7\r\n" in srv.requests[0]
        assert srv.requests[0].endswith(b'{"a":1}')

    asyncio.run(run())


def test_body_until_close():
    async def run():
        srv = RawServer([UNTIL_CLOSE, PLAIN], close_after=True)
        async with srv as url:
            c = _client()
            r = await c.post(url, b"{}", {})
            assert await r.aread() == b"all of it"
            r = await c.post(url, b"{}", {})  # needs a new connection
            assert await r.aread() == JSON
        assert srv.connections == 2

    asyncio.run(run())


def test_stale_pooled_connection_is_retried_once():
    async def run():
        srv = RawServer([PLAIN, None, PLAIN])
        async with srv as url:
            c = _client()
            assert await (await c.post(url, b"{}", {})).aread() == JSON
            # The server drops the pooled connection on the next request without
            # answering: the client retries on a fresh connection.
            assert await (await c.post(url, b"{}", {})).aread() == JSON
        assert srv.connections == 2

    asyncio.run(run())


def test_failures_raise_httpx_errors():
    async def run():
        c = _client(read_timeout=0.2)
        with pytest.raises(httpx.ConnectError):
            await c.post("http://127.0.0.1:1/x", b"{}", {})
        srv = RawServer([None])
        async with srv as url:  # fresh connection closed without an answer: no retry
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post(url, b"{}", {})
        half = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"
        srv = RawServer([half], close_after=True)
        async with srv as url:
            r = await c.post(url, b"{}", {})
            with pytest.raises(httpx.RemoteProtocolError):
                await r.aread()
        srv = RawServer([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nslow"], hold=True)
        async with srv as url:
            r = await c.post(url, b"{}", {})
            with pytest.raises(httpx.ReadTimeout):
                await r.aread()
        srv = RawServer([b"NOT HTTP AT ALL\r\n\r\n"])
        async with srv as url:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post(url, b"{}", {})
        with pytest.raises(ValueError, match="http://"):
            await c.post("https://example.invalid/x", b"{}", {})

    asyncio.run(run())
