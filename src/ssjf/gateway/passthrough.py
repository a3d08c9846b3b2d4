"""Routes the gateway does not schedule (embeddings, tokenize, models, ...): forwarded as they are.

They bypass prediction and the queue, so they are bounded apart
(``max_passthrough_in_flight``, then 429), and relayed as a stream so a large
answer is never held whole. They still cannot jump the engine's queue: a JSON
body's ``priority`` is replaced by the key the configured ordering gives a request
arriving now with the fallback estimate (``unscheduled_body``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
from starlette.responses import StreamingResponse

from ssjf.gateway.aio import within
from ssjf.gateway.errors import GatewayError, classify_upstream, error_body
from ssjf.gateway.headers import REQUEST_ID, downstream_headers
from ssjf.gateway.schemas import parse_body
from ssjf.request import Request

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from ssjf.gateway.core import Gateway

log = logging.getLogger("ssjf.gateway")


def passthrough_full() -> GatewayError:
    return GatewayError(
        429,
        "too many unscheduled requests in flight; retry later",
        "overloaded_error",
        code="passthrough_full",
        headers={"Retry-After": "1"},
    )


def upstream_path(request: Any) -> str:
    """The path and query to ask the engine for: as the client sent them, less the
    mount prefix; dot segments (which URL normalisation would turn into another
    route) are refused."""
    scope = request.scope
    raw = scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if any(seg in (".", "..") for seg in path.split("/")) or "%2e" in path.lower():
        raise GatewayError(400, "dot segments are not allowed in the path", "invalid_request_error")
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def unscheduled_body(
    gw: Gateway, body: bytes, content_type: str | None
) -> tuple[bytes, dict[str, str]]:
    """``body`` with the gateway's priority in place of the client's; extra headers.

    Without a priority of their own, an engine would serve these requests at its
    default (0), ahead of every scheduled request. Non-JSON bodies go as they are.
    """
    if not body or "json" not in (content_type or "application/json"):
        return body, {}
    obj = parse_body(body, gw.limits.max_json_depth)  # 400 on anything hostile
    obj.pop("priority", None)
    now = time.monotonic()
    probe = Request(id="unscheduled", arrival=now, prompt_tokens=0, estimate=gw.fallback)
    key = gw.ordering.key(probe) if gw.backend.honours_priority else None
    headers = gw.backend.prepare(obj, key, stream=False, add_usage=False)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(), headers


class _Relayed(StreamingResponse):
    """Streams an upstream response; frees the upstream and the slot however it ends."""

    def __init__(self, resp: httpx.Response, gw: Gateway, rid: str) -> None:
        self.resp = resp
        self.gw = gw
        self.rid = rid
        self.closed = False
        ctype = resp.headers.get("content-type")
        super().__init__(self._body(), status_code=resp.status_code, media_type=ctype)
        self.raw_headers = [
            *[h for h in self.raw_headers if h[0] == b"content-type"],
            *downstream_headers(resp.headers.multi_items()),
            (REQUEST_ID.encode(), rid.encode()),
        ]

    async def _body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as e:
            log.warning(
                "passthrough upstream failed mid-body: %s", e, extra={"request_id": self.rid}
            )

    async def stream_response(self, send: Send) -> None:
        # A client that reads nothing for write_timeout_s loses the response (and the
        # passthrough slot): the server closes the connection once this returns.
        timeout = self.gw.config.write_timeout_s

        async def timed(message: Message) -> None:
            await within(send(message), timeout)

        try:
            await super().stream_response(timed)
        except TimeoutError:
            log.warning(
                "client read nothing for %.0f s: response dropped",
                timeout,
                extra={"request_id": self.rid},
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.close()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.resp.aclose()
            self.gw.passthrough_slots.release()


async def forward(
    gw: Gateway, method: str, path: str, body: bytes, headers: dict[str, str], rid: str
) -> Any:
    """The upstream's answer to ``method path`` (first replica that connects), streamed."""
    slots = gw.passthrough_slots
    if slots.locked():
        raise passthrough_full()
    # Plain bytes from the engine: no encoding for the gateway to undo or mislabel.
    headers["accept-encoding"] = "identity"
    await slots.acquire()
    last: GatewayError | None = None
    try:
        for replica in sorted(gw.router.replicas, key=lambda r: (r.down_until, r.in_flight)):
            req = gw.client.build_request(method, replica.url + path, content=body, headers=headers)
            try:
                resp = await gw.client.send(req, stream=True)
            except httpx.HTTPError as e:
                last = classify_upstream(e)
                if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
                    gw.router.mark_down(replica)
                    continue  # nothing reached that engine: try the next
                break
            if resp.status_code >= 400 and "json" not in resp.headers.get("content-type", ""):
                # A proxy's error page (traceback, addresses, keys): not for the client.
                page = await resp.aread()
                await resp.aclose()
                log.warning(
                    "passthrough upstream answered %d with a non-JSON body: %r",
                    resp.status_code,
                    page[:500],
                    extra={"request_id": rid},
                )
                slots.release()
                return _error_page_replacement(resp.status_code, rid)
            return _Relayed(resp, gw, rid)
    except BaseException:
        slots.release()
        raise
    slots.release()
    assert last is not None
    log.warning("passthrough %s failed: %s", path[:100], last.detail, extra={"request_id": rid})
    raise last


def _error_page_replacement(status: int, rid: str) -> Any:
    from starlette.responses import JSONResponse

    body = error_body(f"upstream engine answered {status} (request id {rid})", "upstream_error")
    return JSONResponse(body, status_code=status, headers={REQUEST_ID: rid})
