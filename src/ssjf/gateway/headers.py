"""Which headers cross the gateway, each way, and the request id every request carries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

#: Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway sets itself: never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
#: Request headers a client may not pass to the engine: scheduling is the gateway's
#: (a client's own priority header would jump the queue), the body is re-encoded
#: (content-type) and read as plain bytes (no compressed answers to parse).
_REQUEST_DROP = _HOP_BY_HOP | {
    "content-type",
    "accept-encoding",
    "authorization",
    "x-vllm-priority",
    "priority",
    "expect",
}
#: Response headers the gateway writes itself (its x-request-id is the one the engine
#: received, so an engine echoing it loses nothing).
_RESPONSE_DROP = (
    _HOP_BY_HOP
    | {"content-type", "server", "date", "x-request-id"}
    | {
        # What an engine or the load balancer in front of it says about internal hosts.
        "location",
        "content-location",
        "via",
        "x-powered-by",
        "set-cookie",
    }
)

REQUEST_ID = "x-request-id"
_ID_OK = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(client_value: str | None) -> str:
    """The client's ``x-request-id`` when it is a sane token, else a fresh one."""
    if client_value and _ID_OK.fullmatch(client_value):
        return client_value
    return uuid.uuid4().hex


def upstream_request_headers(
    client: Iterable[tuple[str, str]], also_drop: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The client's end-to-end headers to forward (names lower-cased).

    ``also_drop`` names gateway-only headers (the tenant header); anything
    starting with ``x-ssjf-`` is the gateway's own and never forwarded.
    """
    out: dict[str, str] = {}
    for name, value in client:
        n = name.lower()
        if n in _REQUEST_DROP or n in also_drop or n.startswith("x-ssjf-"):
            continue
        out[n] = value
    return out


def downstream_headers(engine: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The engine's response headers to return to the client (request id, Retry-After, ...)."""
    out = []
    for name, value in engine:
        n = name.lower()
        if n in _RESPONSE_DROP or n.startswith("x-ssjf-"):
            continue
        out.append((n.encode("latin-1"), value.encode("latin-1")))
    return out
