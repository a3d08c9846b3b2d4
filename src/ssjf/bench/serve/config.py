"""Settings of ``ssjf bench serve`` and the configs it compares.

One line of *why* per setting; the runs that chose each value are in
docs/bench_serve.md ("Why the settings are what they are").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIGS = ("fcfs-direct", "ssjf-vllm-priority", "ssjf-gateway-queue")
#: FCFS through the same gateway (no predictor, fcfs policy): separates what the
#: gateway's own CPU costs on a small machine from what its scheduling gains.
FCFS_GATEWAY = "fcfs-gateway"
ORACLE = "sjf-oracle-direct"
#: The configs that go through an ``ssjf serve`` gateway.
GATEWAY_CONFIGS = ("ssjf-vllm-priority", "ssjf-gateway-queue", FCFS_GATEWAY)


@dataclass(frozen=True, slots=True)
class ServeBenchConfig:
    """Settings of one ``ssjf bench serve`` run; the defaults take ~20 minutes on 2 cores."""

    #: Requests replayed per config and seed (distinct AlpacaEval prompts): enough for
    #: queues to build past the empty-queue transient; the other prompts train the predictor.
    requests: int = 400
    #: Arrival rate as a fraction of the measured capacity.
    load: float = 0.9
    #: A fixed arrival rate in requests/s instead of ``load`` x capacity (vLLM's
    #: ``--request-rate``; ``inf``: every request at time 0). None: from ``load``.
    request_rate: float | None = None
    #: Whose real output lengths to replay: a realistic, wide spread, fast enough on a CPU.
    generator: str = "gpt-3.5-turbo-1106"
    #: Lengths above this are cut to it, so one request cannot hold a slot for minutes.
    max_tokens_cap: int = 512
    #: The engine's --max-num-seqs: on a CPU the token rate grows little past 2 in flight.
    max_num_seqs: int = 2
    #: Predictor family from ssjf.predict trained on the *other* prompts, or "none";
    #: tfidf-embed ranks the bench prompts best of the families tried.
    predictor: str = "tfidf-embed"
    #: The gateways' predictor time box (GatewayConfig.predictor_timeout_ms): on a shared
    #: CPU the 50 ms default sends requests to the fallback, and the replay is not SSJF.
    predictor_timeout_ms: float = 1000.0
    #: Train on every AlpacaEval generator's answers to the training prompts (conditioned
    #: on the model), not only ``generator``'s; the bench prompts stay unseen either way.
    train_all_generators: bool = True
    #: The gateway-held queue releases up to max_num_seqs + this many requests, so that
    #: no slot idles while the gateway waits for a stream's end to forward the next one.
    queue_slack: int = 1
    #: Add the oracle config (true lengths as priorities), labelled as such.
    oracle: bool = True
    #: Add FCFS through the gateway (the gateway's cost without its scheduling).
    fcfs_gateway: bool = False
    #: Independent replays (prompt order + arrivals) per config: one replay at load 0.9
    #: is one draw from a wide distribution, so figures are means over seeds.
    seeds: int = 2
    #: vLLM --stream-interval: fewer chunks, less per-chunk CPU for every config alike.
    stream_interval: int = 8
    seed: int = 0
    #: Requests (other prompts) for the saturated capacity run (2 x slots outstanding).
    capacity_requests: int = 64
    #: Tiny sequential requests per path for the added-latency measurement.
    latency_requests: int = 100
    endpoint: str = "chat"
    #: Pin the one started engine's core to the last CPU and everything else to the
    #: others (needs 2+ CPUs; ignored with ``engine_url``). Off: it did not steady the
    #: engine's speed and slowed the engine. Side by side, compute is always pinned.
    pin_engine: bool = False
    #: One engine per config, their compute sharing one CPU, a seed's replays at the same
    #: time: a host whose speed drifts then hits every config alike. False: one engine,
    #: configs in turn (always so with ``engine_url``).
    side_by_side: bool = True
    #: Use an engine already running (same flags) instead of starting one.
    engine_url: str | None = None
    #: The model name requests carry, and so the one the gateway's predictor is
    #: conditioned on. None: the engines this bench starts serve the tiny model as
    #: ``generator`` (it plays that model: its lengths are the ones replayed); with
    #: ``engine_url``, give the name that engine serves.
    model: str | None = None
    #: Write every request of every replay here (``<config>.seed<N>.jsonl``: times
    #: relative to the replay's start, lengths, engine metrics); None = don't.
    trace_dir: Path | None = None
    #: Write the replayed workload here as JSONL (prompt, true and replayed length,
    #: the predictor's estimate) for `ssjf simulate -w jsonl:FILE --columns
    #: predicted=predicted`; None = don't.
    export_workload: Path | None = None
    #: Stop after training the predictor and writing ``export_workload``: no engine
    #: is started (the simulator's view of the bench in a minute, not forty).
    export_only: bool = False
    #: Percentiles of the ``vllm bench serve`` keys (its ``--metric-percentiles``).
    metric_percentiles: tuple[float, ...] = (99.0,)
    #: Latency metrics given ``vllm bench serve`` keys (its ``--percentile-metrics``;
    #: vLLM leaves e2el out by default, here it is in).
    percentile_metrics: tuple[str, ...] = ("ttft", "tpot", "itl", "e2el")
    #: Gateway settings shared by the gateway configs (GatewayConfig fields).
    gateway: dict[str, Any] = field(default_factory=dict)


def config_names(cfg: ServeBenchConfig) -> list[str]:
    """The configs a run compares, FCFS (the baseline) first."""
    return [
        *CONFIGS,
        *((FCFS_GATEWAY,) if cfg.fcfs_gateway else ()),
        *((ORACLE,) if cfg.oracle else ()),
    ]
