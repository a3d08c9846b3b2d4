"""One request's life after admission: wait for a slot, forward, relay, finish.

``ProxiedResponse`` is an ASGI response that runs the upstream exchange in a
task while a second task watches for the client going away. A disconnect
cancels the exchange: a queued request leaves the queue, an in-flight one
closes its upstream response (the engine aborts it) and frees its slot. Every
path ends in ``_finish``, which releases the ticket exactly once and records
the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
from starlette.responses import Response

from ssjf.gateway.aio import within
from ssjf.gateway.errors import GatewayError, classify_upstream, error_body
from ssjf.gateway.headers import REQUEST_ID, downstream_headers
from ssjf.gateway.schemas import ParsedRequest
from ssjf.gateway.sse import MAX_PENDING_BYTES, body_usage, event_cut, length_finish, take_usage

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from ssjf.gateway.core import Gateway
    from ssjf.gateway.dispatcher import Ticket

log = logging.getLogger("ssjf.gateway")
#: Status recorded for a client that went away before its answer (nginx's convention).
CLIENT_CLOSED = 499


class ClientStalled(Exception):
    """The client read nothing of its response for ``write_timeout_s``."""


def header_items(headers: Any) -> list[tuple[str, str]]:
    """(name, value) pairs of an httpx or FastUpstream response's headers."""
    multi = getattr(headers, "multi_items", None)
    return list(multi()) if multi is not None else list(headers.items())


class ProxiedResponse(Response):
    """ASGI response forwarding one admitted request upstream.

    A Starlette ``Response`` only so FastAPI passes it through untouched; it
    sends its own status and headers, decided once the engine has answered.
    """

    def __init__(
        self,
        gw: Gateway,
        parsed: ParsedRequest,
        ticket: Ticket,
        path: str,
        endpoint: str,
        arrival: float,
        source: str,
        upstream_headers: dict[str, str],
        request_id: str,
        tenant: str | None,
    ) -> None:
        self.background = None
        self.gw = gw
        self.parsed = parsed
        self.ticket = ticket
        self.path = path
        self.endpoint = endpoint
        self.arrival = arrival
        self.source = source
        #: The client's end-to-end headers (already filtered) plus the gateway's.
        self.upstream_headers = upstream_headers
        self.request_id = request_id
        #: The id the engine sees: unique per gateway request even when clients reuse
        #: theirs (vLLM takes x-request-id as its own request id).
        self.upstream_id = f"{request_id}-{ticket.req.id}"
        self.tenant = tenant
        self.write_timeout = gw.config.write_timeout_s
        self.last_chunk_at: float | None = None
        self.status = 0
        self.error_type: str | None = None
        self.usage_completion: int | None = None
        self.usage_prompt: int | None = None
        #: The engine said finish_reason "length": the usage count is a lower bound.
        self.length_finish = False
        self.ttft: float | None = None
        self.forwarded_at: float | None = None
        self.started = False  # response headers sent to the client
        # Usage requested on the client's behalf: its chunk must not reach the client.
        self.strip_usage = (
            parsed.stream and not parsed.client_wants_usage and gw.config.request_stream_usage
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        work = asyncio.ensure_future(self._run(send))
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                # The client went away: stop waiting / close the upstream response.
                work.cancel()
                await asyncio.wait((work,))
                self.status = CLIENT_CLOSED
                self.gw.metrics.observe_disconnect(
                    "in_flight" if self.forwarded_at is not None else "queued"
                )
            else:
                watch.cancel()
                exc = work.exception()
                if exc is not None:
                    raise exc
        except asyncio.CancelledError:
            work.cancel()
            watch.cancel()
            raise
        finally:
            self._finish()

    async def _run(self, send: Send) -> None:
        try:
            await self._exchange(send)
        except ClientStalled:
            # The slot is free again (the upstream response was closed on the way out);
            # the connection itself is closed by the server when this returns.
            self.status = CLIENT_CLOSED
            self.error_type = "client_write_timeout"
            log.warning(
                "client read nothing for %.0f s: response dropped",
                self.write_timeout,
                extra=self._log_extra(),
            )

    async def _exchange(self, send: Send) -> None:
        gw = self.gw
        ticket = self.ticket
        try:
            if ticket.replica is None:
                await gw.dispatcher.wait(ticket)
            replica = ticket.replica
            assert replica is not None
            parsed = self.parsed
            body = parsed.body
            headers = dict(self.upstream_headers)
            headers.update(
                gw.backend.prepare(body, gw.engine_key(ticket), parsed.stream, self.strip_usage)
            )
            headers["content-type"] = "application/json"
            # Plain bytes: SSE events and usage are read from the stream as it passes.
            headers["accept-encoding"] = "identity"
            headers[REQUEST_ID] = self.upstream_id
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            self.forwarded_at = time.monotonic()
            upstream = gw.upstream
            assert upstream is not None
            tries = len(gw.router.replicas)
            while True:
                try:
                    resp = await upstream.post(replica.url + self.path, content, headers)
                    # The engine has the body: don't hold it (parsed, several times its
                    # size) for the minutes a generation can take.
                    content = b""
                    parsed.body = {}
                    break
                except httpx.HTTPError as e:
                    tries -= 1
                    if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
                        gw.router.mark_down(replica)
                        # Nothing reached that engine: another replica may take it.
                        if tries > 0 and gw.dispatcher.reroute(ticket):
                            replica = ticket.replica
                            assert replica is not None
                            continue
                    await self._send_error(send, classify_upstream(e))
                    return
            try:
                if parsed.stream and resp.status_code == 200:
                    await self._relay_stream(resp, send)
                else:
                    await self._relay_whole(resp, send)
            finally:
                await resp.aclose()
        except GatewayError as e:
            await self._send_error(send, e)
        except (asyncio.CancelledError, OSError, ClientStalled):
            raise  # client gone / stalled / shutdown
        except Exception:
            # A bug must still end the request with an answer, not a dropped connection;
            # the client learns nothing of the gateway's internals, the log has it all.
            log.exception("gateway error while serving a request", extra=self._log_extra())
            await self._send_error(
                send,
                GatewayError(
                    500, f"gateway internal error (request id {self.request_id})", "internal_error"
                ),
            )

    def _log_extra(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "endpoint": self.endpoint, "tenant": self.tenant}

    async def _send(self, send: Send, message: Message) -> None:
        """``send``, but a client that stops reading loses its response (and slot)."""
        try:
            await within(send(message), self.write_timeout)
        except TimeoutError:
            raise ClientStalled from None

    def _extra_headers(self) -> list[tuple[bytes, bytes]]:
        t = self.ticket
        overhead = (self.forwarded_at or time.monotonic()) - self.arrival - t.queue_wait
        return [
            (REQUEST_ID.encode(), self.request_id.encode()),
            (b"x-ssjf-predicted-tokens", str(round(t.req.predicted_tokens, 1)).encode()),
            (b"x-ssjf-queue-wait-ms", f"{t.queue_wait * 1e3:.3f}".encode()),
            (b"x-ssjf-overhead-ms", f"{overhead * 1e3:.3f}".encode()),
            (b"x-ssjf-replica", str(t.replica.index if t.replica else -1).encode()),
        ]

    async def _relay_whole(self, resp: Any, send: Send) -> None:
        try:
            data = await resp.aread()
        except httpx.HTTPError as e:
            await self._send_error(send, classify_upstream(e))
            return
        self.status = resp.status_code
        ctype = resp.headers.get("content-type", "application/json")
        if resp.status_code == 200:
            self.usage_completion, self.usage_prompt = body_usage(data)
            self.length_finish = length_finish(data)
        else:
            self.error_type = f"upstream_{resp.status_code}"
            if not data.lstrip().startswith(b"{"):
                # Not the engine's own JSON error (e.g. a proxy's HTML page, which may
                # show tracebacks, paths or keys): the client gets the OpenAI error shape
                # with the status, the log gets the page.
                log.warning(
                    "upstream answered %d with a non-JSON body: %r",
                    resp.status_code,
                    data[:500],
                    extra=self._log_extra(),
                )
                data = json.dumps(
                    error_body(
                        f"upstream engine answered {resp.status_code} "
                        f"(request id {self.request_id})",
                        "upstream_error",
                    )
                ).encode()
                ctype = "application/json"
        headers = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(data)).encode()),
            *downstream_headers(header_items(resp.headers)),
            *self._extra_headers(),
        ]
        self.started = True
        await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
        await self._send(send, {"type": "http.response.body", "body": data, "more_body": False})

    async def _relay_stream(self, resp: Any, send: Send) -> None:
        engine_headers = [
            h for h in downstream_headers(header_items(resp.headers)) if h[0] != b"cache-control"
        ]
        headers = [
            (b"content-type", resp.headers.get("content-type", "text/event-stream").encode()),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            *engine_headers,
            *self._extra_headers(),
        ]
        self.started = True
        self.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        ticket = self.ticket
        buf = b""
        metrics = self.gw.metrics
        model = self.parsed.model
        try:
            async for chunk in resp.aiter_raw():
                now = time.monotonic()
                if self.ttft is None:
                    self.ttft = now - self.arrival
                else:
                    metrics.observe_itl(model, now - self.last_chunk_at)  # type: ignore[operator]
                self.last_chunk_at = now
                buf = buf + chunk if buf else chunk
                cut = event_cut(buf)
                if cut == 0:
                    if len(buf) < MAX_PENDING_BYTES:
                        continue
                    cut = len(buf)
                out, buf = (buf, b"") if cut == len(buf) else (buf[:cut], buf[cut:])
                ticket.progress(out.count(b"data:"))
                if not self.length_finish and length_finish(out):
                    self.length_finish = True
                if b'"usage"' in out:
                    out, completion, prompt = take_usage(out, self.strip_usage)
                    if completion is not None:
                        self.usage_completion = completion
                    if prompt is not None:
                        self.usage_prompt = prompt
                if out:
                    await self._send(
                        send, {"type": "http.response.body", "body": out, "more_body": True}
                    )
            if buf:
                await self._send(
                    send, {"type": "http.response.body", "body": buf, "more_body": True}
                )
        except httpx.HTTPError as e:
            # The engine died or stalled mid-stream: tell the client in-band, then end.
            err = classify_upstream(e)
            log.warning("upstream failed mid-stream: %s", err.detail, extra=self._log_extra())
            self.status = err.status
            self.error_type = err.type
            await self._send(
                send, {"type": "http.response.body", "body": err.sse_event(), "more_body": True}
            )
        await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_error(self, send: Send, err: GatewayError) -> None:
        self.status = err.status
        self.error_type = err.type
        if err.detail is not None:
            log.warning("%s: %s", err.type, err.detail, extra=self._log_extra())
        if self.started:
            await self._send(
                send, {"type": "http.response.body", "body": err.sse_event(), "more_body": False}
            )
            return
        body = err.body_bytes()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID.encode(), self.request_id.encode()),
            *[(k.lower().encode(), v.encode()) for k, v in err.headers.items()],
        ]
        self.started = True
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await self._send(send, {"type": "http.response.body", "body": body, "more_body": False})

    def _finish(self) -> None:
        gw = self.gw
        ticket = self.ticket
        gw.dispatcher.release(ticket)
        if self.usage_completion is not None:
            gw.dispatcher.settle(ticket, self.usage_completion)
        now = time.monotonic()
        e2e = now - self.arrival
        queued = ticket.queue_wait if ticket.replica is not None else now - ticket.queued_at
        gw.record(
            self.endpoint,
            self.parsed,
            status=self.status or CLIENT_CLOSED,
            request_id=self.request_id,
            tenant=self.tenant,
            error_type=self.error_type,
            predicted=ticket.req.predicted_tokens,
            source=self.source,
            actual=self.usage_completion,
            prompt_tokens=self.usage_prompt,
            queue_wait=queued,
            ttft=self.ttft,
            e2e=e2e,
            replica=ticket.replica.index if ticket.replica is not None else None,
        )
        if gw.calibration is not None and ticket.calibration_base is not None:
            parsed = self.parsed
            gw.calibration.learn(
                model=parsed.model,
                raw=ticket.calibration_base,
                status=self.status,
                actual=self.usage_completion,
                limit=parsed.work_limit,
                length_finish=self.length_finish,
                n=parsed.n,
                min_output=parsed.min_output,
            )
        if gw.retraining is not None:
            gw.retraining.learn(
                self.parsed,
                ticket,
                self.source,
                status=self.status,
                actual=self.usage_completion,
                length_finish=self.length_finish,
            )


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
