"""OpenAI-style error bodies: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from typing import Any


class GatewayError(Exception):
    """An error the client receives as an OpenAI-style body with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code or type_
        self.param = param
        self.headers = headers or {}
        #: What happened, for the gateway's log only (may name hosts, paths, exceptions).
        self.detail: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON object sent to the client."""
        return error_body(self.message, self.type, code=self.code, param=self.param)

    def body_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()

    def sse_event(self) -> bytes:
        """The error as one server-sent event (a stream that cannot finish normally)."""
        return b"data: " + self.body_bytes() + b"\n\n"


def error_body(
    message: str, type_: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code="bad_request", param=param)


def queue_full(retry_after_s: int, why: str = "the gateway queue is full") -> GatewayError:
    return GatewayError(
        429,
        f"{why}; retry later",
        "overloaded_error",
        code="queue_full",
        headers={"Retry-After": str(retry_after_s)},
    )


def upstream_unavailable() -> GatewayError:
    return GatewayError(
        503, "upstream engine unreachable", "upstream_unavailable", code="upstream_connect"
    )


def upstream_timeout() -> GatewayError:
    return GatewayError(504, "upstream engine timed out", "upstream_timeout")


def upstream_failed() -> GatewayError:
    return GatewayError(502, "upstream engine failed", "upstream_error")


def classify_upstream(exc: BaseException) -> GatewayError:
    """Map an httpx transport exception to the status a client should see.

    Connection refused/failed -> 503 (the engine is down or restarting: retry later);
    any timeout -> 504; a broken or garbled response -> 502. The client's message
    names no address and no exception text (they stay in ``detail``, for the logs).
    """
    import httpx

    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        err = upstream_unavailable()
    elif isinstance(exc, httpx.TimeoutException):
        err = upstream_timeout()
    else:
        err = upstream_failed()
    err.detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return err
