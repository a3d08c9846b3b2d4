"""Routes the gateway does not schedule (embeddings, tokenize, models, ...): forwarded as they are.

They bypass prediction and the queue, so they are bounded apart
(``max_passthrough_in_flight``, then 429), and relayed as a stream so a large
answer is never held whole.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
from starlette.responses import StreamingResponse

from ssjf.gateway.errors import GatewayError, classify_upstream
from ssjf.gateway.headers import REQUEST_ID, downstream_headers

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

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


class _Relayed(StreamingResponse):
    """Streams an upstream response; frees the upstream and the slot however it ends."""

    def __init__(self, resp: httpx.Response, gw: Gateway, rid: str) -> None:
        self.resp = resp
        self.gw = gw
        self.closed = False
        ctype = resp.headers.get("content-type")
        super().__init__(self._body(rid), status_code=resp.status_code, media_type=ctype)
        self.raw_headers = [
            *[h for h in self.raw_headers if h[0] == b"content-type"],
            *downstream_headers(resp.headers.multi_items()),
            (REQUEST_ID.encode(), rid.encode()),
        ]

    async def _body(self, rid: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as e:
            log.warning("passthrough upstream failed mid-body: %s", e, extra={"request_id": rid})

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
            return _Relayed(resp, gw, rid)
    except BaseException:
        slots.release()
        raise
    slots.release()
    assert last is not None
    log.warning("passthrough %s failed: %s", path[:100], last.detail, extra={"request_id": rid})
    raise last
