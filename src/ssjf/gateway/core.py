"""The gateway's shared state: config, scheduler, engine ordering, upstream client, metrics, log.

One ``Gateway`` serves every route; routes live in ``app.py``, one request's
life after admission in ``proxy.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

from ssjf.estimate import LengthEstimate
from ssjf.gateway.auth import KeyStore, Principal
from ssjf.gateway.backends import make_backend
from ssjf.gateway.calibration import CalibrationCollector, GatewayCalibration, calibration_settings
from ssjf.gateway.config import ConfigError, GatewayConfig
from ssjf.gateway.dispatcher import Dispatcher, Ticket
from ssjf.gateway.errors import queue_full
from ssjf.gateway.metrics import GatewayMetrics
from ssjf.gateway.ordering import EngineOrdering, guard_of, policy_params_of, service_of
from ssjf.gateway.predictor_runner import PredictorRunner, SupportsPredict, load_predictor_dir
from ssjf.gateway.retrain import GatewayRetraining, RetrainCollector, load_base_data
from ssjf.gateway.router import Router
from ssjf.gateway.schemas import BodyLimits, ParsedRequest
from ssjf.gateway.traffic_log import TrafficLog
from ssjf.gateway.upstream import FastUpstream, HttpxUpstream
from ssjf.policies import make_policy
from ssjf.request import Request as SchedRequest

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("ssjf.gateway")
access_log = logging.getLogger("ssjf.gateway.access")

#: Tiers a trusted client may ask for (its `priority`, lower first), clamped to this range.
MAX_TIER = 1000
#: How long a readiness probe's answer is reused.
READY_CACHE_S = 1.0


class ByteBudget:
    """Bytes of request bodies being received at once, over all connections.

    The queue bounds the bodies it holds (``max_queue_bytes``); this bounds the
    ones still arriving, so thousands of connections each uploading a body just
    under ``max_body_bytes`` cannot take the memory first.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        """Reserve ``n`` bytes, or 429 when the budget is spent."""
        if self.used + n > self.limit:
            raise queue_full(1, "the gateway is receiving too many request bytes at once")
        self.used += n

    def give(self, n: int) -> None:
        """Release ``n`` reserved bytes."""
        self.used -= n


class Gateway:
    """Shared state of one gateway: config, scheduler, upstream client, metrics, log."""

    def __init__(
        self,
        config: GatewayConfig,
        predictor: SupportsPredict | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.backend = make_backend(config)
        #: How this gateway prices a request in seconds (policies with size=service).
        self.service = service_of(config)
        params = policy_params_of(config)
        try:
            policy = make_policy(config.policy, **params)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"policy {config.policy!r}: {e}") from None
        if policy.oracle:
            raise ConfigError(f"policy {config.policy!r} is an oracle and cannot run in a gateway")
        guard = guard_of(config)
        if not config.tail_enforced:
            # The engine orders what it holds by a static priority, which cannot carry a
            # budget that depends on the rest of the queue. Not an error (the default
            # settings must work on any engine) nor a warning at every default start:
            # `ssjf serve` prints it in its start line too.
            log.info(
                "policy %s: the tail budget orders only requests waiting in the gateway "
                "queue (beyond engine_max_concurrency); the engine orders the rest by "
                "priority, bounded by the guard (max_wait_s %s). Set max_in_flight to "
                "enforce it everywhere.",
                config.policy_spec,
                config.max_wait_s,
            )
        self.ordering = EngineOrdering.from_config(config, time.monotonic(), policy)
        self.keys = KeyStore.from_config(config)
        # Slots per replica: the engine's (gateway-held queue), or the admission bound.
        slots = config.max_in_flight or config.engine_max_concurrency
        self.router = Router(config.upstreams, slots, config.replica_cooldown_s)
        weights = self.keys.weights
        self.dispatcher = Dispatcher(
            policy,
            guard,
            self.router,
            max_queue=config.max_queue,
            max_queue_bytes=config.max_queue_bytes,
            tenant_share=config.tenant_queue_share,
            retry_after_s=(config.retry_after_s, config.retry_after_max_s),
            weight=lambda t: weights.get(t, 1.0) if t is not None else 1.0,
            service=self.service,
        )
        self.limits = BodyLimits.from_config(config)
        self.receiving = ByteBudget(config.max_queue_bytes)
        self.metrics = GatewayMetrics(max_model_labels=config.max_model_labels)
        self.metrics.bind_state(
            queue_len=lambda: self.dispatcher.queue_len,
            in_flight=lambda: self.dispatcher.in_flight,
            replicas=self.router.replicas,
            promotions=lambda: self.dispatcher.promotions,
        )
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
            self.runner.on_batch = lambda s, n: self.metrics.observe_predict_batch(s)
        self.fallback = LengthEstimate(point=config.fallback_tokens)
        self.calibration: GatewayCalibration | None = None
        if config.calibrate:
            self.calibration = GatewayCalibration(
                calibration_settings(config), has_predictor=self.runner is not None
            )
            self.metrics.registry.register(
                CalibrationCollector(self.calibration, self.metrics.models)
            )
        self.retraining: GatewayRetraining | None = None
        if config.retrain:
            if self.runner is None:
                raise ConfigError("retrain needs a predictor to refit: set predictor = DIR")
            self.retraining = GatewayRetraining(
                config, self.runner, self.calibration, load_base_data(config.retrain_base_data)
            )
            self.metrics.registry.register(RetrainCollector(self.retraining))
        self.traffic = (
            TrafficLog(
                config.traffic_log,
                config.log_prompts,
                salt=config.traffic_log_salt,
                max_bytes=config.traffic_log_max_bytes,
                backups=config.traffic_log_backups,
                max_prompt_chars=config.traffic_log_max_prompt_chars,
            )
            if config.traffic_log
            else None
        )
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.upstream: FastUpstream | HttpxUpstream | None = None
        self._ids = itertools.count(1)
        self._flusher: asyncio.Future[None] | None = None
        self._start_lock: asyncio.Lock | None = None
        self.started = False
        self.predictor_ready = self.runner is None
        self._passthrough = asyncio.Semaphore(config.max_passthrough_in_flight)
        self._ready: tuple[float, bool, str] = (-1.0, False, "not probed")
        self._probe: asyncio.Future[tuple[bool, str]] | None = None

    # -- life cycle ----------------------------------------------------------------------
    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the gateway is not started")
        return self._client

    async def ensure_started(self) -> None:
        """Start on first use when no lifespan ran (the app mounted inside another app)."""
        if self.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self.started:
                await self.start()

    async def start(self) -> None:
        """Warm the predictor up and open the upstream connection pool (in the serving loop)."""
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
            self.predictor_ready = True
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
        self.started = True

    async def stop(self) -> None:
        """Close the pool, the predictor worker and the traffic log."""
        self.started = False
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self.upstream is not None:
            await self.upstream.aclose()
            self.upstream = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.retraining is not None:
            await self.retraining.aclose()  # waits for a fit under way, off the loop
        if self.runner is not None:
            self.runner.close()
        if self.traffic is not None:
            self.traffic.close()

    async def _flush_traffic(self) -> None:
        # Lines reach the disk within a second even when traffic stops.
        while self.traffic is not None:
            await asyncio.sleep(TrafficLog.FLUSH_EVERY_S)
            self.traffic.flush()

    # -- scheduling ----------------------------------------------------------------------
    async def admit(
        self, parsed: ParsedRequest, arrival: float, principal: Principal, nbytes: int
    ) -> tuple[Ticket, str]:
        """Check capacity, predict and enqueue: (ticket, estimate source); 429 when full."""
        tenant = principal.tenant
        self.dispatcher.check_capacity(tenant, nbytes)
        if self.runner is not None:
            est, source = await self.runner.estimate(parsed.prompt, parsed.model)
        else:
            est, source = self.fallback, "fallback"
        base = None
        if self.calibration is not None:
            est, base = self.calibration.apply(est, source, parsed.model)
        n = parsed.n
        limit = None
        if self.config.cap_estimate_by_max_tokens:
            limit = parsed.max_tokens
            if est.point < parsed.min_output:
                # min_tokens / ignore_eos: the engine generates at least this much.
                est = LengthEstimate(point=float(parsed.min_output))
        # n (or best_of, or a batch of prompts) sequences are n times the work of one:
        # the estimate and the cap both scale, so `n: 3` is not scheduled as one.
        if n > 1:
            est = LengthEstimate(
                point=est.point * n, quantiles=tuple((q, v * n) for q, v in est.quantiles)
            )
            limit = limit * n if limit is not None else None
        tier = 0
        if principal.trusted and parsed.client_priority is not None:
            tier = max(-MAX_TIER, min(MAX_TIER, parsed.client_priority))
        req = SchedRequest(
            id=self.next_id(),
            arrival=arrival,
            prompt_tokens=parsed.prompt_tokens,
            max_tokens=limit,
            estimate=est,
            model=parsed.model,
            tenant=tenant,
            tier=tier,
        )
        ticket = self.dispatcher.submit(req, nbytes)
        ticket.calibration_base = base
        return ticket, source

    def next_id(self) -> int:
        """A number no other request of this gateway has."""
        return next(self._ids)

    def engine_key(self, ticket: Ticket) -> int | None:
        """The priority this request carries to an engine that orders by one."""
        return self.ordering.key(ticket.req) if self.backend.honours_priority else None

    # -- passthrough and readiness -------------------------------------------------------
    @property
    def passthrough_slots(self) -> asyncio.Semaphore:
        return self._passthrough

    async def readiness(self) -> tuple[bool, str]:
        """(ready, reason): predictor warmed and at least one upstream answering HTTP."""
        if not self.predictor_ready:
            return False, "predictor not loaded"
        at, ok, reason = self._ready
        if time.monotonic() - at < READY_CACHE_S:
            return ok, reason
        # One probe at a time, shared by every caller: /ready must not multiply
        # requests to the engines.
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_upstreams())
        return await asyncio.shield(self._probe)

    async def _probe_upstreams(self) -> tuple[bool, str]:
        import httpx

        ok, reason = False, "no upstream reachable"
        for replica in self.router.replicas:
            try:
                # Any HTTP answer means the engine's server is up (llama.cpp answers
                # 503 while loading: that one counts as not ready).
                r = await self.client.get(replica.url + "/health", timeout=2.0)
            except httpx.HTTPError:
                continue
            if r.status_code < 500:
                ok, reason = True, "ok"
                break
        self._ready = (time.monotonic(), ok, reason)
        return ok, reason

    # -- accounting ----------------------------------------------------------------------
    def record(
        self,
        endpoint: str,
        parsed: ParsedRequest | None,
        *,
        status: int,
        request_id: str,
        tenant: str | None = None,
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
        """Metrics, the access-log line and the traffic-log line of one finished request."""
        model = parsed.model if parsed is not None else None
        limit = parsed.work_limit if parsed is not None else None
        finished = None
        if actual is not None and status == 200:
            finished = "length" if limit is not None and actual >= limit else "stop"
        self.metrics.observe_request(
            endpoint=endpoint,
            status=status,
            model=model,
            tenant=tenant,
            error_type=error_type,
            queue_wait=queue_wait,
            ttft=ttft,
            e2e=e2e,
            prompt_tokens=prompt_tokens,
            generation_tokens=actual,
            predicted=predicted,
            source=source,
            finished_reason=finished,
        )
        if self.config.access_log:
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "endpoint": endpoint,
                    "status": status,
                    "tenant": tenant,
                    "model": model,
                    "error": error_type,
                    "predicted_tokens": _r(predicted),
                    "output_tokens": actual,
                    "queue_wait_s": _r(queue_wait),
                    "e2e_s": _r(e2e),
                    "replica": replica,
                },
            )
        if self.traffic is not None and parsed is not None:
            rec: dict[str, Any] = {
                "request_id": request_id,
                "endpoint": endpoint,
                "tenant": tenant,
                "model": parsed.model,
                "stream": parsed.stream,
                "max_tokens": parsed.max_tokens,
                "n": parsed.n,
                "predicted_tokens": _r(predicted, 2),
                "estimate_source": source,
                "output_tokens": actual,
                # Generation stopped by its limit: the true length is at least this.
                "truncated": finished == "length",
                "prompt_tokens": prompt_tokens,
                "queue_wait_s": _r(queue_wait),
                "ttft_s": _r(ttft),
                "e2e_s": _r(e2e),
                "status": status,
                "error": error_type,
                "replica": replica,
            }
            self.traffic.write(rec, parsed.prompt)


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)
