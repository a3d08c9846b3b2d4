"""The gateway's routes: FastAPI handlers over one ``Gateway`` (``core.py``).

Mounting inside another ASGI app works: a mounted app's lifespan does not run,
so the gateway also starts on its first request (``Gateway.ensure_started``);
call ``app.state.gateway.stop()`` from the host app's shutdown to close it
cleanly (docs/gateway.md).
"""

# No `from __future__ import annotations`: FastAPI reads the route handlers'
# annotations at runtime, and their Request type is imported lazily below.

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ssjf.gateway.aio import within
from ssjf.gateway.auth import Principal
from ssjf.gateway.config import GatewayConfig
from ssjf.gateway.core import ByteBudget, Gateway
from ssjf.gateway.errors import GatewayError, bad_request, error_body
from ssjf.gateway.headers import REQUEST_ID, request_id, upstream_request_headers
from ssjf.gateway.predictor_runner import SupportsPredict
from ssjf.gateway.schemas import parse_request

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

log = logging.getLogger("ssjf.gateway")


def _need_gateway_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            f"the gateway needs its extra ({e.name} is missing): pip install 'ssjf[gateway]'"
        ) from e


def _too_big(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"request body exceeds the gateway's limit of {limit} bytes",
        "invalid_request_error",
        code="request_too_large",
    )


async def _read_body(request: Any, limit: int, timeout_s: float, budget: ByteBudget) -> bytes:
    """The request body: 413 past ``limit`` bytes, 408 if it takes over ``timeout_s``,
    429 while all connections together are receiving more than ``budget`` allows."""
    cl = request.headers.get("content-length")
    if cl is not None:
        if not cl.isdigit() or len(cl) > 18:
            raise bad_request("invalid Content-Length header")
        if int(cl) > limit:
            raise _too_big(limit)
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_big(limit)
            budget.take(len(chunk))
            chunks.append(chunk)

    try:
        await within(read(), timeout_s)
    except TimeoutError:
        raise GatewayError(
            408,
            f"request body not received within {timeout_s:g} s",
            "invalid_request_error",
            code="request_timeout",
        ) from None
    finally:
        budget.give(sum(len(c) for c in chunks))
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_app(
    config: GatewayConfig,
    *,
    predictor: SupportsPredict | None = None,
    transport: "httpx.AsyncBaseTransport | None" = None,
) -> "FastAPI":
    """A FastAPI app serving the OpenAI routes through the SSJF gateway described by ``config``.

    ``predictor`` overrides ``config.predictor`` (tests, embedding); ``transport``
    replaces httpx's network transport (tests).
    """
    _need_gateway_extra()
    from fastapi import FastAPI
    from fastapi import Request as HTTPRequest
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    from ssjf.gateway.passthrough import forward, unscheduled_body, upstream_path
    from ssjf.gateway.proxy import CLIENT_CLOSED, ProxiedResponse

    gw = Gateway(config, predictor=predictor, transport=transport)
    keys = gw.keys
    # Gateway-only headers never reach the engine: the tenant header names a tenant
    # to the gateway, and the client's key is the gateway's, not the engine's.
    gateway_only = frozenset({keys.tenant_header} if keys.tenant_header else ())
    upstream_auth = (
        {"authorization": f"Bearer {config.upstream_api_key}"}
        if config.upstream_api_key is not None
        else {}
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: "FastAPI") -> AsyncIterator[None]:
        await gw.ensure_started()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(
        title="ssjf gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # No redirect is ever built from a client's Host header.
        redirect_slashes=False,
    )
    app.state.gateway = gw

    def error_response(err: GatewayError, rid: str | None = None) -> Response:
        headers = dict(err.headers)
        if rid is not None:
            headers[REQUEST_ID] = rid
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: HTTPRequest, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: HTTPRequest, exc: StarletteHTTPException) -> Response:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        msg = (
            f"no route {request.method} {request.url.path[:100]}"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return JSONResponse(
            error_body(msg, kind, code=str(exc.status_code)), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: HTTPRequest, exc: Exception) -> Response:
        # Never a traceback or an exception's text to the client.
        rid = request_id(request.headers.get(REQUEST_ID))
        log.error("unhandled error", exc_info=exc, extra={"request_id": rid})
        return error_response(
            GatewayError(500, f"gateway internal error (request id {rid})", "internal_error"), rid
        )

    def forward_headers(request: HTTPRequest, principal: Principal) -> dict[str, str]:
        headers = upstream_request_headers(request.headers.items(), gateway_only)
        if keys.enabled:
            headers.update(upstream_auth)
        elif (auth := request.headers.get("authorization")) is not None:
            headers["authorization"] = auth  # the engine's own key, if it has one
        return headers

    async def handle(request: HTTPRequest, chat: bool, path: str, endpoint: str) -> Any:
        arrival = time.monotonic()
        rid = request_id(request.headers.get(REQUEST_ID))
        parsed = None
        tenant = None
        try:
            await gw.ensure_started()
            principal = keys.authenticate(request.headers)
            tenant = principal.tenant
            raw = await _read_body(
                request, config.max_body_bytes, config.body_timeout_s, gw.receiving
            )
            parsed = parse_request(raw, chat, gw.limits)
            ticket, source = await gw.admit(parsed, arrival, principal, len(raw))
        except ClientDisconnect:
            # Gone while sending its body: nobody to answer.
            gw.record(
                endpoint,
                parsed,
                status=CLIENT_CLOSED,
                request_id=rid,
                tenant=tenant,
                error_type="client_disconnect",
            )
            return Response(status_code=CLIENT_CLOSED)
        except GatewayError as e:
            # Malformed requests are not logged as traffic (no prompt); 429s are.
            gw.record(
                endpoint,
                parsed,
                status=e.status,
                request_id=rid,
                tenant=tenant,
                error_type=e.type,
                e2e=time.monotonic() - arrival,
            )
            return error_response(e, rid)
        return ProxiedResponse(
            gw,
            parsed,
            ticket,
            path,
            endpoint,
            arrival,
            source,
            forward_headers(request, principal),
            rid,
            tenant,
        )

    @app.post("/v1/completions")
    async def completions(request: HTTPRequest) -> Any:
        return await handle(request, False, "/v1/completions", "completions")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest) -> Any:
        return await handle(request, True, "/v1/chat/completions", "chat")

    async def passthrough(request: HTTPRequest) -> Any:
        """Forward an unscheduled route to an upstream, with the client's headers."""
        rid = request_id(request.headers.get(REQUEST_ID))
        try:
            await gw.ensure_started()
            principal = keys.authenticate(request.headers)
            body = await _read_body(
                request, config.max_body_bytes, config.body_timeout_s, gw.receiving
            )
            headers = forward_headers(request, principal)
            headers[REQUEST_ID] = f"{rid}-{gw.next_id()}"
            ctype = request.headers.get("content-type")
            body, extra = unscheduled_body(gw, body, ctype)
            headers.update(extra)
            if body:
                headers["content-type"] = ctype or "application/json"
            return await forward(gw, request.method, upstream_path(request), body, headers, rid)
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED)
        except GatewayError as e:
            return error_response(e, rid)

    for route in config.passthrough_routes:
        app.add_api_route(route, passthrough, methods=["GET", "POST", "DELETE"])

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> Any:
        return await passthrough(request)

    @app.get("/health")
    async def health() -> Any:
        """Liveness: the process serves HTTP (no upstream or internal detail)."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: HTTPRequest) -> Any:
        """Readiness: the predictor is loaded and at least one upstream answers."""
        if config.protect_metrics and keys.enabled:
            keys.check(request.headers)
        await gw.ensure_started()
        ok, reason = await gw.readiness()
        body = {
            "status": "ready" if ok else "not ready",
            "reason": reason,
            "queue_length": gw.dispatcher.queue_len,
            "in_flight": gw.dispatcher.in_flight,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(request: HTTPRequest) -> Any:
        if config.protect_metrics and keys.enabled:
            keys.check(request.headers)
        body, ctype = gw.metrics.render()
        return Response(body, media_type=ctype)

    return app
