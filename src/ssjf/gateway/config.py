"""Gateway configuration: one pydantic model, read from a TOML/JSON file and overridden by flags."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ssjf.policies import DEFAULT_POLICY, parse_policy_spec


class ConfigError(ValueError):
    """A gateway configuration that cannot work; the message says which setting and why."""


class GatewayConfig(BaseModel):
    """Everything `ssjf serve` needs. Every default says why it is what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- upstream engines -------------------------------------------------------------
    #: Base URLs of the engine replicas (with or without a trailing /v1). Required.
    upstreams: list[str] = Field(default_factory=list)
    #: Which adapter talks to them (ssjf.gateway.backends registry): vllm/sglang forward a
    #: priority, fifo relies on the gateway-held queue alone (llama.cpp, Ollama, TGI,
    #: vLLM with --scheduling-policy fcfs).
    backend: str = "vllm"
    #: What the vLLM engine was started with. A vLLM running `fcfs` silently ignores the
    #: priority field, so the gateway must be told; with "fcfs" it sends none and relies
    #: on its own queue (max_in_flight is then required).
    vllm_scheduling_policy: Literal["priority", "fcfs"] = "priority"
    #: Also send the priority as the `X-Vllm-Priority` header (vLLM lets it override the
    #: body field). Off: the body field is enough and keeps requests unchanged otherwise.
    vllm_priority_header: bool = False
    #: SGLang with `--schedule-low-priority-values-first` uses vLLM's convention; its
    #: default is the opposite (larger = more important).
    sglang_low_priority_values_first: bool = False
    #: Engine slots per replica the gateway may fill. None = forward at once (the engine
    #: orders by priority); a number = hold requests in the gateway's policy-ordered
    #: queue, which keeps the choice open (vLLM never evicts a running request).
    max_in_flight: int | None = Field(default=None, ge=1)
    #: With max_in_flight unset (the engine orders by priority), still forward at most
    #: this many requests per replica; more wait in the gateway queue, then 429. An
    #: engine's own waiting queue is unbounded: this is the admission control there.
    engine_max_concurrency: int = Field(default=256, ge=1)

    # --- scheduling -------------------------------------------------------------------
    #: Same registry as the simulator; oracle policies are refused (no true lengths here).
    #: A spec's settings (`ssjf:tail=1.1`) move to policy_params, whose own values win.
    #: Default: ssjf.policies.DEFAULT_POLICY (a tail budget, ssjf.queue). The budget acts where the
    #: gateway holds the queue (max_in_flight set); with max_in_flight unset the engine
    #: orders by the static priority and the guard's deadlines bound the tail there,
    #: and the gateway logs that the budget only covers requests waiting in its queue.
    policy: str = DEFAULT_POLICY
    policy_params: dict[str, Any] = Field(default_factory=dict)
    #: Starvation guard (see ssjf.queue.StarvationGuard); None/None disables it. 60 s caps
    #: how long a long request can be overtaken by a stream of short ones. wait_factor k
    #: gives each request the deadline arrival + min(max_wait_s, k x predicted service):
    #: that deadline is also the static key engines receive (docs/gateway.md), so k is
    #: what keeps shortest-first order there (without it every deadline is arrival +
    #: max_wait_s, i.e. FCFS). k = 4: a request is overtaken by a shorter one only if
    #: the shorter arrived within 4x their difference in predicted service.
    max_wait_s: float | None = Field(default=60.0, ge=0)
    wait_factor: float | None = Field(default=4.0, gt=0)
    seconds_per_token: float = Field(default=0.02, gt=0)
    #: Seconds one prompt token adds to a request's prefill, for policies that order by
    #: service time (`ssjf:size=service`, `isrtf`, `mlfq`'s skip-join). 0 = prompts are
    #: free, the paper's cost model; measure it on the engine for long-prompt traffic.
    prefill_seconds_per_token: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    #: Requests waiting in the gateway queue before new ones get 429. 1024 bounds memory
    #: (a request holds its body) while absorbing bursts far above engine capacity.
    max_queue: int = Field(default=1024, ge=0)
    #: Bytes of request bodies held by queued requests before new ones get 429: the count
    #: alone lets 1024 bodies of 8 MiB each take 8 GiB.
    max_queue_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    #: Share of max_queue (and max_queue_bytes) one tenant may fill while others are
    #: served: a tenant flooding the gateway gets 429s of its own, not everyone's.
    tenant_queue_share: float = Field(default=0.5, gt=0, le=1)
    #: Bounds of the Retry-After header of a 429, which is the queue's expected drain
    #: time (queued requests / observed completions per second), rounded up.
    retry_after_s: int = Field(default=1, ge=0)
    retry_after_max_s: int = Field(default=60, ge=1)
    #: Time unit of the engine priority when it carries a deadline (guard on): ties
    #: within it keep the engine's arrival order.
    priority_time_unit_s: float = Field(default=0.01, gt=0)

    # --- priorities sent to engines ---------------------------------------------------
    #: Predicted tokens per priority level: coarse buckets keep ties (then arrival order)
    #: among requests of about the same length, as the engine's tie-break is FCFS.
    priority_bucket_tokens: int = Field(default=8, ge=1)
    #: Ask streams for their final usage chunk (stream_options.include_usage) on the
    #: client's behalf, stripping it again if the client did not ask: the true output
    #: length feeds the traffic log and metrics. Off for engines that reject the field.
    request_stream_usage: bool = True
    #: Highest priority value sent (the longest bucket); vLLM accepts any int.
    priority_max: int = Field(default=1024, ge=1)

    # --- predictor --------------------------------------------------------------------
    #: Directory of a saved predictor (ssjf.predict.load_predictor). None = no predictor:
    #: every request gets the fallback estimate, capped by its max_tokens.
    predictor: str | None = None
    #: Micro-batching window: the first request of a batch waits at most this long for
    #: others, so one predictor call serves a burst.
    predictor_batch_window_ms: float = Field(default=2.0, ge=0)
    predictor_max_batch: int = Field(default=64, ge=1)
    #: Past this a request is scheduled with the fallback estimate instead of waiting.
    predictor_timeout_ms: float = Field(default=50.0, gt=0)
    #: The fallback estimate in tokens (predictor absent, failed or late).
    fallback_tokens: float = Field(default=256.0, ge=0)
    #: Read the request's own length fields: the estimate is capped at its output limit
    #: (max_tokens, ...) and raised to what it forces (min_tokens, ignore_eos). Off only
    #: for benchmarks that enforce exact lengths through max_tokens + ignore_eos: there
    #: max_tokens *is* the true length, and reading it would leak it to the scheduler.
    cap_estimate_by_max_tokens: bool = True
    #: Learn each model's output lengths from completions (usage.completion_tokens; a
    #: length cut by max_tokens counts as "at least") and correct estimates: point x the
    #: model's scale, with quantiles. On: a predictor misjudges models and prompts it
    #: never saw, and nothing else corrects it; it changes nothing before the first
    #: completions, then shrinks toward the predictor for models with few (ssjf.calibration).
    calibrate: bool = True
    #: Recent completions remembered per model (and pooled): memory and adaptation speed.
    calibration_window: int = Field(default=512, ge=1, le=65536)
    #: Completions k at which a model's own scale gets half the weight (n / (n + k)).
    calibration_prior_count: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    #: Log-spread of the length distribution given to point estimates before data.
    calibration_sigma: float = Field(default=0.8, ge=0, le=5)
    #: Models calibrated apart (clients pick the names); beyond, the least recently
    #: completed is forgotten and its requests use the pooled calibration.
    calibration_max_models: int = Field(default=64, ge=0, le=4096)
    #: Scale moves within this relative band are not passed on: small drifts would only
    #: reorder a model's waiting requests against newer ones of equal prediction.
    calibration_tolerance: float = Field(default=0.1, ge=0, lt=1)
    #: Refit the predictor on served completions in a background thread and swap it in
    #: when it orders the most recent ones better (ssjf.retrain). Off: a refit costs CPU
    #: beside the engine's, and the gateway then holds prompts in memory.
    retrain: bool = False
    #: New completions between retrains (after the first).
    retrain_every: int = Field(default=500, ge=1)
    #: Completions before the first retrain.
    retrain_min_records: int = Field(default=200, ge=4)
    #: Most recent completions kept out of a candidate's training to compare it with the
    #: serving predictor (and the window of the drift gauge).
    retrain_holdout: int = Field(default=200, ge=2)
    #: Completions kept for training (oldest dropped; also at most 64M prompt characters
    #: in all, ssjf.retrain.RetrainSettings.max_buffer_chars): memory and the fit's cost.
    retrain_max_records: int = Field(default=20_000, ge=4, le=200_000)
    #: Holdout tau a candidate must gain over the serving predictor to be swapped in
    #: (200 pairs: a standard error of ~0.05; a swap restarts calibration).
    retrain_min_gain: float = Field(default=0.02, ge=0, lt=2)
    #: Data every candidate trains on besides traffic (ssjf.predict.data.load_data specs:
    #: collection names or files), loaded at start: what the shipped predictor knew.
    retrain_base_data: list[str] = Field(default_factory=list)

    # --- request bodies (hostile input gets a 400, never a 500) -------------------------
    #: Largest max_tokens / max_completion_tokens accepted: no model generates more, and
    #: a 1,000-digit integer must not reach float arithmetic in the scheduler.
    max_tokens_limit: int = Field(default=1 << 20, ge=1)
    #: Largest n / best_of (each multiplies the work of one request).
    max_n: int = Field(default=16, ge=1)
    #: Deepest JSON nesting accepted (chat messages need 4-5 levels; deep bodies are
    #: abuse, and Python's parser would overflow its stack on a few thousand).
    max_json_depth: int = Field(default=32, ge=2)
    #: Longest `model` string (it reaches logs and metric labels).
    max_model_chars: int = Field(default=256, ge=1)

    # --- clients: keys, tenants, priorities ---------------------------------------------
    #: Gateway API keys (like vLLM's --api-key): requests must send
    #: `Authorization: Bearer KEY`. Empty (and no api_keys_file) = no authentication.
    api_keys: list[str] = Field(default_factory=list)
    #: TOML/JSON file of keys, each with its tenant: [[keys]] key = "...", tenant = "a",
    #: trusted = false, weight = 1.0 (docs/gateway.md). Relative to the config file.
    api_keys_file: str | None = None
    #: Without keys, the header naming the tenant (e.g. "x-tenant-id"); None = one tenant.
    #: With keys, the key decides the tenant and this header is ignored.
    tenant_header: str | None = None
    #: Sent as `Authorization: Bearer ...` to the engines when gateway keys are on (the
    #: client's gateway key is never forwarded). None: no Authorization upstream.
    upstream_api_key: str | None = None
    #: Also require a key for /metrics and /ready (liveness /health stays open).
    protect_metrics: bool = False

    # --- HTTP -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: Bodies above this get 413. 8 MiB fits very long prompts; larger is likely abuse.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    #: Idle client connections are kept this long: longer than clients' own pool
    #: expiry (httpx: 5 s), so a client never reuses a connection the gateway just closed.
    keep_alive_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    #: Longest silence from the engine (between bytes) before 504: generation is slow,
    #: but an engine silent for 10 minutes is stuck.
    read_timeout_s: float = Field(default=600.0, gt=0)
    #: HTTP client for requests to the engines: "fast" (a lean HTTP/1.1 client, ~10x
    #: less CPU per request than httpx; plain http:// only) or "httpx". https
    #: upstreams always use httpx.
    upstream_client: Literal["fast", "httpx"] = "fast"
    #: After a connection failure a replica is skipped by the router for this long.
    replica_cooldown_s: float = Field(default=2.0, ge=0)
    #: Request head limits (431 beyond): 16 KiB is h11's/nginx's order of magnitude;
    #: without a bound, 8 clients with 32 MB headers took 400 MB.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    #: A client must finish its request head within this many seconds of connecting (or
    #: of its previous response): connections that never do are closed (slowloris).
    header_timeout_s: float = Field(default=10.0, gt=0)
    #: The whole body must arrive within this many seconds (408 beyond).
    body_timeout_s: float = Field(default=30.0, gt=0)
    #: A client that reads nothing of its response for this long is dropped and its
    #: slot freed (a stalled reader must not hold an engine slot forever).
    write_timeout_s: float = Field(default=30.0, gt=0)
    #: Open client connections; more are closed at once (file descriptors are finite).
    max_connections: int = Field(default=4096, ge=1)
    #: Routes forwarded unscheduled (no prediction, no queue), with the client's headers.
    #: Generation routes the gateway does not schedule (e.g. /v1/responses) are left
    #: out on purpose: they would take engine slots without admission control.
    passthrough_routes: list[str] = Field(
        default_factory=lambda: [
            "/v1/embeddings",
            "/v1/score",
            "/v1/rerank",
            "/tokenize",
            "/detokenize",
            "/v1/models/{model_id}",
        ]
    )
    #: Passthrough requests at once (they bypass the scheduler, so they are bounded apart).
    max_passthrough_in_flight: int = Field(default=64, ge=1)

    # --- operations -------------------------------------------------------------------
    #: One JSON line per request on the `ssjf.gateway.access` logger.
    access_log: bool = False
    #: Log lines as JSON objects (for log pipelines) or plain text.
    log_format: Literal["json", "text"] = "json"
    #: Labels of model_name seen before further models are counted as "other" (a client
    #: picks the string: unbounded labels would exhaust the metrics' memory).
    max_model_labels: int = Field(default=32, ge=1)

    # --- traffic log ------------------------------------------------------------------
    #: JSONL record per request (for `ssjf train --data FILE`). None = off.
    traffic_log: str | None = None
    #: Prompt text in the log (needed to retrain; off by default for privacy).
    log_prompts: bool = False
    #: The log file is rotated past this size, keeping this many old files.
    traffic_log_max_bytes: int = Field(default=256 * 1024 * 1024, ge=4096)
    traffic_log_backups: int = Field(default=5, ge=0)
    #: Longest prompt text kept in a record (longer prompts are cut and marked).
    traffic_log_max_prompt_chars: int = Field(default=100_000, ge=1)
    #: Secret mixed into the prompt hash (HMAC-SHA256), so hashes cannot be matched
    #: against guessed prompts. None: a random salt kept in `<traffic_log>.salt`.
    traffic_log_salt: str | None = None

    @field_validator("upstreams")
    @classmethod
    def _strip_urls(cls, v: list[str]) -> list[str]:
        out = []
        for url in v:
            url = url.strip().rstrip("/")
            if url.endswith("/v1"):
                url = url[: -len("/v1")]
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream {url!r} must start with http:// or https://")
            out.append(url)
        return out

    @model_validator(mode="before")
    @classmethod
    def _split_policy_spec(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        spec = data.get("policy", DEFAULT_POLICY)
        params = data.get("policy_params") or {}
        if not isinstance(spec, str) or ":" not in spec or not isinstance(params, dict):
            return data  # a bare name, or a type error pydantic reports
        name, settings = parse_policy_spec(spec)
        return {**data, "policy": name, "policy_params": {**settings, **params}}

    @property
    def policy_spec(self) -> str:
        """The policy with its settings, as a spec (``ssjf:tail=1.1``)."""
        return ":".join([self.policy, *(f"{k}={v}" for k, v in self.policy_params.items())])

    @property
    def tail_enforced(self) -> bool:
        """Whether the policy's tail budget orders every queued request (the gateway holds the queue)."""
        return self.max_in_flight is not None or self.policy_params.get("tail") is None

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        from ssjf.policies import available_policies

        policies = available_policies()
        if self.policy not in policies:
            known = ", ".join(sorted(n for n, c in policies.items() if not c.oracle))
            raise ValueError(f"policy {self.policy!r} is unknown; gateway policies: {known}")
        if policies[self.policy].oracle:
            known = ", ".join(sorted(n for n, c in policies.items() if not c.oracle))
            raise ValueError(
                f"policy {self.policy!r} is an oracle (reads true output lengths, which only "
                f"the simulator has); use one of: {known}"
            )
        if self.max_queue_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_queue_bytes ({self.max_queue_bytes}) must be at least max_body_bytes "
                f"({self.max_body_bytes}): a request of the largest allowed size must fit"
            )
        from ssjf.gateway.backends import available_backends

        backends = available_backends()
        if self.backend not in backends:
            raise ValueError(
                f"backend {self.backend!r} is unknown; backends: {', '.join(sorted(backends))}"
            )
        if self.max_in_flight is None:
            if self.backend == "vllm" and self.vllm_scheduling_policy == "fcfs":
                raise ValueError(
                    "vllm_scheduling_policy 'fcfs' ignores priorities: set max_in_flight so "
                    "the gateway holds requests in its own queue (or start vLLM with "
                    "--scheduling-policy priority)"
                )
            if not backends[self.backend].orders_by_priority:
                raise ValueError(
                    f"backend {self.backend!r} needs max_in_flight (the engine's slot count, "
                    "e.g. llama-server -np N): the gateway's queue is the only scheduler there"
                )
            pol = policies[self.policy]
            if pol.time_dependent or pol.static_unit is None:
                raise ValueError(
                    f"policy {self.policy!r} has no static key an engine priority can carry "
                    "(its order changes while requests wait, or its key has no unit): set "
                    "max_in_flight so the gateway holds the queue and re-evaluates it at each "
                    "release"
                )
        return self

    @model_validator(mode="after")
    def _check_retrain(self) -> GatewayConfig:
        if self.retrain:
            from ssjf.gateway.retrain import retrain_settings

            retrain_settings(self)  # its ValueError names the inconsistent settings
        return self


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Raw settings from a .toml or .json file (a clear error naming the file otherwise)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read gateway config: {e.strerror or e}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else _toml_loads(text)
    except ValueError as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the gateway config must be a table/object of settings")
    # A [gateway] table is accepted so the settings can share a file with others.
    section = data.get("gateway", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{p}: [gateway] must be a table of settings")
    return dict(section)


def _toml_loads(text: str) -> Any:
    import tomllib  # standard library from Python 3.11, the oldest ssjf supports

    return tomllib.loads(text)


#: Settings naming files: in a config file they are relative to that file's folder.
PATH_SETTINGS = ("predictor", "traffic_log", "api_keys_file")
#: Environment variables `SSJF_GATEWAY_<SETTING>` set any setting (JSON values, else text).
ENV_PREFIX = "SSJF_GATEWAY_"


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from ``SSJF_GATEWAY_*`` variables (e.g. SSJF_GATEWAY_API_KEYS='["k"]')."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name in GatewayConfig.model_fields:
        value = env.get(ENV_PREFIX + name.upper())
        if value is None:
            continue
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value  # a bare string
    return out


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    settings: dict[str, Any] | None = None,
) -> GatewayConfig:
    """Settings from ``path`` (optional), the environment, ``settings``, then ``overrides``.

    ``overrides`` are flags: None means "not given". In ``settings`` (``--set``)
    None is a value (``--set max_wait_s=null`` turns the guard's bound off).
    ``environ`` defaults to ``os.environ``; pass ``{}`` to ignore the environment.
    """
    raw: dict[str, Any] = read_config_file(path) if path is not None else {}
    if path is not None:
        base = Path(path).resolve().parent
        for key in PATH_SETTINGS:
            value = raw.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                raw[key] = str(base / value)
    raw.update(env_settings(environ))
    raw.update(settings or {})
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    where = f"{path}: " if path is not None else ""
    try:
        cfg = GatewayConfig.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "config"
            lines.append(f"{loc}: {err['msg']}")
        raise ConfigError(f"{where}invalid gateway config: " + "; ".join(lines)) from None
    if not cfg.upstreams:
        raise ConfigError(f"{where}no upstream: give --upstream URL (or upstreams = [...])")
    return cfg
