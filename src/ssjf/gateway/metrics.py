"""Prometheus metrics of one gateway (its own registry, so several can live in a process).

Request metrics reuse vLLM's names and buckets with the prefix ``ssjf:`` and a
``model_name`` label, so dashboards built for vLLM work on the gateway by swapping
the prefix. The gateway's own metrics (estimates, queue, replicas) are ``ssjf_gateway_*``.
Client-chosen strings (model names, tenants) become labels only through a
:class:`LabelBudget`, which bounds how many series they can create.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: Token-count buckets: powers of two up to the longest generations seen in practice.
TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
#: Latency buckets from sub-millisecond gateway work to multi-minute generations.
SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip
# vLLM v1's buckets (vllm/v1/metrics/loggers.py), so histograms merge with an engine's.
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
VLLM_REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
#: log2(actual / predicted) buckets: within 2^0.25 (19%) near 0, out to 16x either way.
LOG2_RATIO_BUCKETS = (
    -4, -3, -2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2, 3, 4,
)  # fmt: skip
#: finished_reason values of ssjf:request_success_total (vLLM's); anything else is "other".
FINISHED_REASONS = frozenset({"stop", "length", "abort", "unknown"})


class LabelBudget:
    """Maps client-chosen strings to at most ``limit`` label values, then to ``"other"``.

    Invariant: at most ``limit`` distinct values besides ``other`` and ``missing``, each
    at most ``MAX_CHARS`` printable characters, however many strings clients send. The
    memo holds at most ``limit`` keys of ``MAX_CHARS`` characters (memory is bounded too).
    """

    __slots__ = ("_seen", "limit", "missing")

    OTHER = "other"
    MAX_CHARS = 64

    def __init__(self, limit: int, missing: str = "unknown") -> None:
        self.limit = limit
        self.missing = missing
        self._seen: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        """The label for ``value`` (None -> ``missing``)."""
        if value is None:
            return self.missing
        key = (value if isinstance(value, str) else repr(value))[: self.MAX_CHARS]
        label = self._seen.get(key)
        if label is not None:
            return label
        if len(self._seen) >= self.limit:
            return self.OTHER
        label = "".join(c if c.isprintable() else "?" for c in key) or self.missing
        self._seen[key] = label
        return label

    def __len__(self) -> int:
        return len(self._seen)


class _PerModel:
    """Children of the model_name-labelled metrics for one label (looked up once)."""

    __slots__ = ("e2e", "gen_tokens", "itl", "label", "prompt_tokens", "queue", "success", "ttft")

    def __init__(self, m: GatewayMetrics, label: str) -> None:
        self.label = label
        self.e2e = m.e2e_latency.labels(label)
        self.ttft = m.time_to_first_token.labels(label)
        self.itl = m.inter_token_latency.labels(label)
        self.queue = m.request_queue_time.labels(label)
        self.prompt_tokens = m.prompt_tokens_total.labels(label)
        self.gen_tokens = m.generation_tokens_total.labels(label)
        self.success: dict[str, Any] = {}


class GatewayMetrics:
    """Counters, gauges and histograms exported at ``/metrics``."""

    def __init__(self, max_model_labels: int = 32) -> None:
        try:
            import prometheus_client as pc
        except ImportError as e:  # pragma: no cover - the gateway extra pulls it in
            raise RuntimeError(
                "the gateway needs prometheus-client: pip install 'ssjf[gateway]'"
            ) from e
        self._pc = pc
        self.models = LabelBudget(max_model_labels)
        # Tenants come from keys or a client header: bounded the same way.
        self.tenants = LabelBudget(max_model_labels, missing="default")
        self.registry = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        model = ["model_name"]

        # --- vLLM-compatible (ssjf: prefix) ------------------------------------------
        self.e2e_latency = pc.Histogram(
            "ssjf:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds (arrival at the gateway to last byte).",
            model,
            buckets=VLLM_REQUEST_LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = pc.Histogram(
            "ssjf:time_to_first_token_seconds",
            "Histogram of time to first token in seconds (arrival to first streamed byte).",
            model,
            buckets=VLLM_TTFT_BUCKETS,
            registry=r,
        )
        self.inter_token_latency = pc.Histogram(
            "ssjf:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds (gap between streamed chunks).",
            model,
            buckets=VLLM_ITL_BUCKETS,
            registry=r,
        )
        self.request_queue_time = pc.Histogram(
            "ssjf:request_queue_time_seconds",
            "Histogram of time spent in the gateway queue in seconds.",
            model,
            buckets=VLLM_REQUEST_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens_total = pc.Counter(
            "ssjf:prompt_tokens", "Number of prefill tokens processed.", model, registry=r
        )
        self.generation_tokens_total = pc.Counter(
            "ssjf:generation_tokens", "Number of generation tokens processed.", model, registry=r
        )
        self.request_success = pc.Counter(
            "ssjf:request_success",
            "Count of successfully processed requests.",
            ["model_name", "finished_reason"],
            registry=r,
        )
        self.num_requests_running = pc.Gauge(
            "ssjf:num_requests_running", "Requests sent upstream and not finished.", registry=r
        )
        self.num_requests_waiting = pc.Gauge(
            "ssjf:num_requests_waiting", "Requests waiting in the gateway queue.", registry=r
        )

        # --- the gateway's own ---------------------------------------------------------
        self.queue_length = pc.Gauge(
            "ssjf_gateway_queue_length", "requests waiting in the gateway queue", registry=r
        )
        self.in_flight = pc.Gauge(
            "ssjf_gateway_in_flight",
            "requests sent upstream and not finished, by replica index",
            ["replica"],
            registry=r,
        )
        self.outstanding = pc.Gauge(
            "ssjf_gateway_outstanding_tokens",
            "predicted remaining tokens in flight, by replica index",
            ["replica"],
            registry=r,
        )
        self.requests = pc.Counter(
            "ssjf_gateway_requests", "finished requests", ["endpoint", "status"], registry=r
        )
        self.requests_by_tenant = pc.Counter(
            "ssjf_gateway_requests_by_tenant",
            "finished requests by tenant (bounded like model_name)",
            ["tenant", "status"],
            registry=r,
        )
        self.errors = pc.Counter("ssjf_gateway_errors", "errors by type", ["type"], registry=r)
        self.rejected = pc.Counter(
            "ssjf_gateway_rejected", "requests refused with 429 (queue full)", registry=r
        )
        self.disconnects = pc.Counter(
            "ssjf_gateway_client_disconnects",
            "clients gone before their answer",
            ["stage"],
            registry=r,
        )
        self.predicted_tokens = pc.Histogram(
            "ssjf_gateway_predicted_tokens",
            "predicted output tokens",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.actual_tokens = pc.Histogram(
            "ssjf_gateway_actual_tokens",
            "completion_tokens reported by the engine",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.abs_error = pc.Histogram(
            "ssjf_gateway_prediction_abs_error_tokens",
            "|predicted - actual| output tokens",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.log2_ratio = pc.Histogram(
            "ssjf_gateway_prediction_log2_ratio",
            "log2(actual / predicted) output tokens of answers that ended by themselves "
            "(0: exact; +1: twice as long as predicted); length-cut answers are left out",
            buckets=LOG2_RATIO_BUCKETS,
            registry=r,
        )
        self.estimate_source = pc.Counter(
            "ssjf_gateway_estimates",
            "where each request's estimate came from",
            ["source"],
            registry=r,
        )
        self.predict_seconds = pc.Histogram(
            "ssjf_gateway_predict_batch_seconds",
            "one predictor call (a micro-batch)",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self._promotions: Callable[[], float] = lambda: 0.0
        r.register(_CallableCounter(self, "ssjf_gateway_promotions"))

        # Labelled children, created once: .labels() costs a lock and a tuple per call.
        self._per_model: dict[str, _PerModel] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        unknown = self._model("unknown")
        # Deprecated unlabelled views kept for callers not yet on observe_request().
        self.queue_wait = unknown.queue
        self.ttft = unknown.ttft
        self.e2e = unknown.e2e

    # --- state read at scrape time --------------------------------------------------------
    def bind_state(
        self,
        queue_len: Callable[[], float],
        in_flight: Callable[[], float] | Sequence[Any] | None = None,
        replicas: Sequence[Any] | None = None,
        promotions: Callable[[], float] | None = None,
    ) -> None:
        """Gauges read live state at scrape time: no per-request cost.

        ``replicas`` are labelled by their index, never their URL (internal host:port).
        The old call ``bind_state(queue_len, replicas)`` still works.
        """
        if in_flight is not None and not callable(in_flight):
            in_flight, replicas = None, in_flight
        reps = list(replicas or ())
        if in_flight is None:

            def in_flight() -> float:
                return float(sum(rep.in_flight for rep in reps))

        self.queue_length.set_function(queue_len)
        self.num_requests_waiting.set_function(queue_len)
        self.num_requests_running.set_function(in_flight)
        for i, rep in enumerate(reps):
            label = str(getattr(rep, "index", i))
            self.in_flight.labels(label).set_function(_attr_reader(rep, "in_flight"))
            self.outstanding.labels(label).set_function(_attr_reader(rep, "outstanding"))
        if promotions is not None:
            self._promotions = promotions

    # --- per-request entry points -----------------------------------------------------------
    def observe_request(
        self,
        *,
        endpoint: str,
        status: int,
        model: str | None,
        tenant: str | None,
        error_type: str | None,
        queue_wait: float | None,
        ttft: float | None,
        e2e: float | None,
        prompt_tokens: int | None,
        generation_tokens: int | None,
        predicted: float | None,
        source: str | None,
        finished_reason: str | None = None,
    ) -> None:
        """Everything about one finished request; the gateway calls it exactly once.

        ``finished_reason`` ("stop", "length", "abort") labels ssjf:request_success_total
        for 2xx answers; None counts as "unknown".
        """
        pm = self._model(self.models(model))
        self._child(self.requests, endpoint, str(status)).inc()
        self._child(self.requests_by_tenant, self.tenants(tenant), str(status)).inc()
        ok = 200 <= status < 300
        if error_type is not None:
            self._child(self.errors, error_type).inc()
        if status == 429:
            self.rejected.inc()
        if source is not None:
            self._child(self.estimate_source, source).inc()
        if predicted is not None:
            self.predicted_tokens.observe(predicted)
        if queue_wait is not None:
            pm.queue.observe(queue_wait)
        if ttft is not None:
            pm.ttft.observe(ttft)
        if e2e is not None and ok:
            pm.e2e.observe(e2e)
        if prompt_tokens is not None and prompt_tokens > 0:
            pm.prompt_tokens.inc(prompt_tokens)
        if generation_tokens is not None:
            if generation_tokens > 0:
                pm.gen_tokens.inc(generation_tokens)
            self.actual_tokens.observe(generation_tokens)
            if predicted is not None:
                self.abs_error.observe(abs(predicted - generation_tokens))
                if finished_reason == "stop":  # a cut answer's ratio is only a lower bound
                    ratio = max(generation_tokens, 1) / max(predicted, 1.0)
                    self.log2_ratio.observe(math.log2(ratio))
        if ok:
            if finished_reason is None:
                reason = "unknown"
            else:
                reason = finished_reason if finished_reason in FINISHED_REASONS else "other"
            child = pm.success.get(reason)
            if child is None:
                child = pm.success[reason] = self.request_success.labels(pm.label, reason)
            child.inc()

    def observe_itl(self, model: str | None, seconds: float) -> None:
        """Gap between two consecutive streamed chunks (hot path: two dict lookups)."""
        label = self.models(model)
        pm = self._per_model.get(label)
        if pm is None:
            pm = self._model(label)
        pm.itl.observe(seconds)

    def observe_disconnect(self, stage: str) -> None:
        """A client gone before its answer ("queued" or "in_flight")."""
        self._child(self.disconnects, stage).inc()

    def observe_predict_batch(self, seconds: float) -> None:
        """One predictor call (a micro-batch)."""
        self.predict_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for the /metrics endpoint."""
        pc = self._pc
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST

    # --- helpers ---------------------------------------------------------------------------
    def _model(self, label: str) -> _PerModel:
        pm = self._per_model.get(label)
        if pm is None:
            pm = self._per_model[label] = _PerModel(self, label)
        return pm

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class _CallableCounter:
    """A counter whose value is read from a callable at scrape time (state kept elsewhere)."""

    def __init__(self, metrics: GatewayMetrics, name: str) -> None:
        self._metrics = metrics
        self._name = name

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily(
            self._name,
            "starvation-guard promotions (requests served ahead of their policy order)",
            value=float(self._metrics._promotions()),
        )

    def describe(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily(self._name, "starvation-guard promotions")


def _attr_reader(obj: Any, name: str) -> Callable[[], float]:
    def read() -> float:
        return float(getattr(obj, name))

    return read
