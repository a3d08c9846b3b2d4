"""Prometheus metrics of one gateway (its own registry, so several can live in a process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Token-count buckets: powers of two up to the longest generations seen in practice.
TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
#: Latency buckets from sub-millisecond gateway work to multi-minute generations.
SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip


class GatewayMetrics:
    """Counters, gauges and histograms exported at ``/metrics``."""

    def __init__(self) -> None:
        try:
            import prometheus_client as pc
        except ImportError as e:  # pragma: no cover - the gateway extra pulls it in
            raise RuntimeError(
                "the gateway needs prometheus-client: pip install 'ssjf[gateway]'"
            ) from e
        self._pc = pc
        self.registry = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queue_length = pc.Gauge(
            "ssjf_gateway_queue_length", "requests waiting in the gateway queue", registry=r
        )
        self.in_flight = pc.Gauge(
            "ssjf_gateway_in_flight",
            "requests sent upstream and not finished",
            ["replica"],
            registry=r,
        )
        self.outstanding = pc.Gauge(
            "ssjf_gateway_outstanding_tokens",
            "predicted remaining tokens in flight",
            ["replica"],
            registry=r,
        )
        self.requests = pc.Counter(
            "ssjf_gateway_requests", "finished requests", ["endpoint", "status"], registry=r
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
        self.estimate_source = pc.Counter(
            "ssjf_gateway_estimates",
            "where each request's estimate came from",
            ["source"],
            registry=r,
        )
        self.queue_wait = pc.Histogram(
            "ssjf_gateway_queue_wait_seconds",
            "time in the gateway queue",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.ttft = pc.Histogram(
            "ssjf_gateway_ttft_seconds",
            "arrival to first streamed byte",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.e2e = pc.Histogram(
            "ssjf_gateway_e2e_seconds", "arrival to last byte", buckets=SECONDS_BUCKETS, registry=r
        )
        self.predict_seconds = pc.Histogram(
            "ssjf_gateway_predict_batch_seconds",
            "one predictor call (a micro-batch)",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )

    def bind_state(
        self,
        queue_len: Callable[[], float],
        replicas: list[Any],
    ) -> None:
        """Gauges read live state at scrape time: no per-request cost."""
        self.queue_length.set_function(queue_len)
        for rep in replicas:
            self.in_flight.labels(rep.url).set_function(_attr_reader(rep, "in_flight"))
            self.outstanding.labels(rep.url).set_function(_attr_reader(rep, "outstanding"))

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for the /metrics endpoint."""
        pc = self._pc
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST


def _attr_reader(obj: Any, name: str) -> Callable[[], float]:
    def read() -> float:
        return float(getattr(obj, name))

    return read
