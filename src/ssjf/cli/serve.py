"""`ssjf serve`: the OpenAI-compatible SSJF gateway in front of vLLM, SGLang, llama.cpp, ..."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import app


@app.command("serve")
def serve_cmd(
    config: Path | None = typer.Option(
        None, "--config", help="TOML or JSON settings file (flags override it)."
    ),
    upstream: list[str] | None = typer.Option(
        None,
        "--upstream",
        help="Engine base URL, e.g. http://127.0.0.1:8000 (repeat for several replicas).",
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="vllm | sglang | fifo (llama.cpp, Ollama, TGI, vLLM fcfs)."
    ),
    max_in_flight: int | None = typer.Option(
        None,
        "--max-in-flight",
        help="Engine slots per replica; requests beyond wait in the gateway's SSJF queue.",
    ),
    policy: str | None = typer.Option(None, "--policy", help="Scheduling policy (default ssjf)."),
    predictor: str | None = typer.Option(
        None, "--predictor", help="Directory of a saved predictor (ssjf train --out DIR)."
    ),
    vllm_scheduling_policy: str | None = typer.Option(
        None,
        "--vllm-scheduling-policy",
        help="What vLLM runs: priority (default) or fcfs (then the gateway queue alone orders).",
    ),
    sglang_low_priority_values_first: bool | None = typer.Option(
        None,
        "--sglang-low-priority-values-first/--sglang-high-priority-values-first",
        help="Match SGLang's --schedule-low-priority-values-first.",
    ),
    max_queue: int | None = typer.Option(
        None, "--max-queue", help="Waiting requests before 429 (default 1024)."
    ),
    max_wait_s: float | None = typer.Option(
        None, "--max-wait-s", help="Starvation guard: longest wait before promotion (default 60)."
    ),
    fallback_tokens: float | None = typer.Option(
        None, "--fallback-tokens", help="Estimate used without/instead of the predictor."
    ),
    traffic_log: str | None = typer.Option(
        None, "--traffic-log", help="Append one JSONL record per request (ssjf train --data)."
    ),
    log_prompts: bool | None = typer.Option(
        None, "--log-prompts/--no-log-prompts", help="Include prompt text in the traffic log."
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (default 8080)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the SSJF gateway: clients talk to it instead of the engine."""
    from ssjf.gateway.config import ConfigError, load_config

    overrides: dict[str, Any] = {
        "upstreams": list(upstream) if upstream else None,
        "backend": backend,
        "max_in_flight": max_in_flight,
        "policy": policy,
        "predictor": predictor,
        "vllm_scheduling_policy": vllm_scheduling_policy,
        "sglang_low_priority_values_first": sglang_low_priority_values_first,
        "max_queue": max_queue,
        "max_wait_s": max_wait_s,
        "fallback_tokens": fallback_tokens,
        "traffic_log": traffic_log,
        "log_prompts": log_prompts,
        "host": host,
        "port": port,
    }
    try:
        cfg = load_config(config, overrides)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        import uvicorn

        from ssjf.gateway.app import create_app

        application = create_app(cfg)
    except (ConfigError, RuntimeError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"ssjf gateway on http://{cfg.host}:{cfg.port} -> {', '.join(cfg.upstreams)} "
        f"(backend {cfg.backend}, policy {cfg.policy}, max_in_flight {cfg.max_in_flight})",
        err=True,
    )
    uvicorn.run(application, host=cfg.host, port=cfg.port, log_level=log_level, access_log=False)
