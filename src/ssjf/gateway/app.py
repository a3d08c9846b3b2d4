"""The gateway's app factory: FastAPI routes over a dispatcher, a backend and an httpx client."""

# No `from __future__ import annotations`: FastAPI reads the route handlers'
# annotations at runtime, and their Request type is imported lazily below.

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ssjf.estimate import LengthEstimate
from ssjf.gateway.backends import make_backend
from ssjf.gateway.config import ConfigError, GatewayConfig
from ssjf.gateway.dispatcher import Dispatcher
from ssjf.gateway.errors import GatewayError, bad_request, classify_upstream, error_body
from ssjf.gateway.metrics import GatewayMetrics
from ssjf.gateway.predictor_runner import PredictorRunner, SupportsPredict, load_predictor_dir
from ssjf.gateway.router import Router
from ssjf.gateway.schemas import ParsedRequest, parse_request
from ssjf.gateway.traffic_log import TrafficLog
from ssjf.gateway.upstream import FastUpstream, HttpxUpstream
from ssjf.policies import make_policy
from ssjf.queue import StarvationGuard
from ssjf.request import Request as SchedRequest

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


class Gateway:
    """Shared state of one gateway: config, scheduler, upstream client, metrics, log."""

    def __init__(
        self,
        config: GatewayConfig,
        predictor: SupportsPredict | None = None,
        transport: "httpx.AsyncBaseTransport | None" = None,
    ) -> None:
        self.config = config
        self.backend = make_backend(config)
        try:
            policy = make_policy(config.policy, **config.policy_params)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"policy {config.policy!r}: {e}") from None
        if policy.oracle:
            raise ConfigError(f"policy {config.policy!r} is an oracle and cannot run in a gateway")
        guard = StarvationGuard(
            max_wait_s=config.max_wait_s,
            wait_factor=config.wait_factor,
            seconds_per_token=config.seconds_per_token,
        )
        self.router = Router(config.upstreams, config.max_in_flight, config.replica_cooldown_s)
        self.dispatcher = Dispatcher(
            policy, guard, self.router, config.max_queue, config.retry_after_s
        )
        self.metrics = GatewayMetrics()
        self.metrics.bind_state(lambda: self.dispatcher.queue_len, self.router.replicas)
        if predictor is None and config.predictor is not None:
            predictor = load_predictor_dir(config.predictor)
        self.runner: PredictorRunner | None = None
        if predictor is not None:
            self.runner = PredictorRunner(
                predictor,
                window_s=config.predictor_batch_window_ms / 1e3,
                max_batch=config.predictor_max_batch,
                timeout_s=config.predictor_timeout_ms / 1e3,
                fallback_tokens=config.fallback_tokens,
            )
            self.runner.on_batch = lambda s, n: self.metrics.predict_seconds.observe(s)
        self.fallback = LengthEstimate(point=config.fallback_tokens)
        self.traffic = (
            TrafficLog(config.traffic_log, config.log_prompts) if config.traffic_log else None
        )
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.upstream: FastUpstream | HttpxUpstream | None = None
        self._ids = itertools.count(1)
        self._flusher: asyncio.Future[None] | None = None
        self._status_children: dict[tuple[str, int], Any] = {}

    async def _flush_traffic(self) -> None:
        # Lines reach the disk within a second even when traffic stops.
        while self.traffic is not None:
            await asyncio.sleep(TrafficLog.FLUSH_EVERY_S)
            self.traffic.flush()

    @property
    def client(self) -> "httpx.AsyncClient":
        if self._client is None:
            raise RuntimeError("the gateway is not started (its lifespan has not run)")
        return self._client

    async def start(self) -> None:
        """Open the upstream connection pool (inside the serving event loop)."""
        import httpx

        if self.runner is not None:
            try:
                seconds = await self.runner.warm_up()
            except Exception as e:
                # A predictor that cannot predict once at start would send every
                # request to the fallback: refuse to start instead of degrading silently.
                raise RuntimeError(
                    f"predictor {self.config.predictor or type(self.runner.predictor).__name__!r} "
                    f"failed its warm-up prediction: {e!r}"
                ) from e
            log.info("predictor warmed up in %.2f s", seconds)
        if self.traffic is not None:
            self._flusher = asyncio.ensure_future(self._flush_traffic())

        cfg = self.config
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout_s, read=cfg.read_timeout_s, write=60.0, pool=None
            ),
            # Slots are bounded by the dispatcher, not by the pool: no pool waits.
            # Idle upstream connections are dropped after 2 s, before the engine's own
            # keep-alive timeout (uvicorn/vLLM: 5 s) can close one under a new request.
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=256, keepalive_expiry=2.0
            ),
            transport=self._transport,
            trust_env=False,
        )
        use_fast = (
            cfg.upstream_client == "fast"
            and self._transport is None
            and all(u.startswith("http://") for u in cfg.upstreams)
        )
        self.upstream = (
            FastUpstream(cfg.connect_timeout_s, cfg.read_timeout_s, keepalive_expiry=2.0)
            if use_fast
            else HttpxUpstream(self._client)
        )

    async def stop(self) -> None:
        """Close the pool, the predictor worker and the traffic log."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self.upstream is not None:
            await self.upstream.aclose()
            self.upstream = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.runner is not None:
            self.runner.close()
        if self.traffic is not None:
            self.traffic.close()

    async def admit(self, parsed: ParsedRequest, arrival: float) -> tuple[Any, str]:
        """Check capacity, predict and enqueue: (ticket, estimate source); 429 when full."""
        self.dispatcher.check_capacity()
        if self.runner is not None:
            est, source = await self.runner.estimate(parsed.prompt, parsed.model)
        else:
            est, source = self.fallback, "fallback"
        req = SchedRequest(
            id=next(self._ids),
            arrival=arrival,
            prompt_tokens=parsed.prompt_tokens,
            max_tokens=parsed.max_tokens if self.config.cap_estimate_by_max_tokens else None,
            estimate=est,
            model=parsed.model,
        )
        ticket = self.dispatcher.submit(req)
        self.metrics.estimate_source.labels(source).inc()
        self.metrics.predicted_tokens.observe(req.predicted_tokens)
        return ticket, source

    def record(
        self,
        endpoint: str,
        parsed: ParsedRequest | None,
        *,
        status: int,
        error_type: str | None = None,
        predicted: float | None = None,
        source: str | None = None,
        actual: int | None = None,
        prompt_tokens: int | None = None,
        queue_wait: float | None = None,
        ttft: float | None = None,
        e2e: float | None = None,
        replica: int | None = None,
    ) -> None:
        """Metrics and the traffic-log line of one finished request."""
        m = self.metrics
        key = (endpoint, status)
        child = self._status_children.get(key)
        if child is None:
            child = self._status_children[key] = m.requests.labels(endpoint, str(status))
        child.inc()
        if error_type is not None:
            m.errors.labels(error_type).inc()
        if status == 429:
            m.rejected.inc()
        if queue_wait is not None:
            m.queue_wait.observe(queue_wait)
        if ttft is not None:
            m.ttft.observe(ttft)
        if e2e is not None and status == 200:
            m.e2e.observe(e2e)
        if actual is not None:
            m.actual_tokens.observe(actual)
            if predicted is not None:
                m.abs_error.observe(abs(predicted - actual))
        if self.traffic is not None and parsed is not None:
            rec: dict[str, Any] = {
                "endpoint": endpoint,
                "model": parsed.model,
                "stream": parsed.stream,
                "max_tokens": parsed.max_tokens,
                "predicted_tokens": None if predicted is None else round(predicted, 2),
                "estimate_source": source,
                "output_tokens": actual,
                # Generation stopped by max_tokens: the true length is at least this.
                "truncated": actual is not None and actual == parsed.max_tokens,
                "prompt_tokens": prompt_tokens,
                "queue_wait_s": _r(queue_wait),
                "ttft_s": _r(ttft),
                "e2e_s": _r(e2e),
                "status": status,
                "error": error_type,
                "replica": replica,
            }
            self.traffic.write(rec, parsed.prompt)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


async def _read_body(request: Any, limit: int) -> bytes:
    """The request body, or 413 past ``limit`` bytes (checked before and while reading)."""
    too_big = GatewayError(
        413,
        f"request body exceeds the gateway's limit of {limit} bytes",
        "invalid_request_error",
        code="request_too_large",
    )
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            if int(cl) > limit:
                raise too_big
        except ValueError:
            raise bad_request("invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
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
    import httpx
    from fastapi import FastAPI
    from fastapi import Request as HTTPRequest
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    from ssjf.gateway.proxy import ProxiedResponse

    gw = Gateway(config, predictor=predictor, transport=transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: "FastAPI") -> AsyncIterator[None]:
        await gw.start()
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
    )
    app.state.gateway = gw

    def error_response(err: GatewayError) -> Response:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: HTTPRequest, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: HTTPRequest, exc: StarletteHTTPException) -> Response:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        msg = (
            f"no route {request.method} {request.url.path}"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return JSONResponse(
            error_body(msg, kind, code=str(exc.status_code)), status_code=exc.status_code
        )

    async def handle(request: HTTPRequest, chat: bool, path: str, endpoint: str) -> Any:
        arrival = time.monotonic()
        parsed = None
        try:
            raw = await _read_body(request, config.max_body_bytes)
            parsed = parse_request(raw, chat)
            ticket, source = await gw.admit(parsed, arrival)
        except ClientDisconnect:
            # Gone while sending its body: nobody to answer.
            gw.record(endpoint, parsed, status=499, error_type="client_disconnect")
            return Response(status_code=499)
        except GatewayError as e:
            # Malformed requests are not logged as traffic (no prompt); 429s are.
            gw.record(
                endpoint, parsed, status=e.status, error_type=e.type, e2e=time.monotonic() - arrival
            )
            return error_response(e)
        return ProxiedResponse(
            gw,
            parsed,
            ticket,
            path,
            endpoint,
            arrival,
            source,
            request.headers.get("authorization"),
        )

    @app.post("/v1/completions")
    async def completions(request: HTTPRequest) -> Any:
        return await handle(request, False, "/v1/completions", "completions")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest) -> Any:
        return await handle(request, True, "/v1/chat/completions", "chat")

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> Any:
        last: GatewayError | None = None
        for replica in sorted(gw.router.replicas, key=lambda r: r.down_until):
            try:
                resp = await gw.client.get(replica.url + "/v1/models")
            except httpx.HTTPError as e:
                last = classify_upstream(e)
                continue
            return Response(
                resp.content,
                status_code=resp.status_code,
                media_type=resp.headers.get("content-type", "application/json"),
            )
        assert last is not None
        return error_response(last)

    @app.get("/health")
    async def health() -> Any:
        return {
            "status": "ok",
            "backend": config.backend,
            "policy": config.policy,
            "queue_length": gw.dispatcher.queue_len,
            "in_flight": gw.dispatcher.in_flight,
            "replicas": [
                {"url": r.url, "in_flight": r.in_flight, "outstanding_tokens": r.outstanding}
                for r in gw.router.replicas
            ],
        }

    @app.get("/metrics")
    async def metrics() -> Any:
        body, ctype = gw.metrics.render()
        return Response(body, media_type=ctype)

    return app
