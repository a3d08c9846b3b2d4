"""`ssjf serve`: the OpenAI-compatible SSJF gateway in front of vLLM, SGLang, llama.cpp, ..."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import app, bench_app


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
    settings: list[str] | None = typer.Option(
        None,
        "--set",
        help="Any gateway setting as KEY=VALUE (JSON values), e.g. --set priority_bucket_tokens=16.",
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (default 8080)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the SSJF gateway: clients talk to it instead of the engine."""
    from ssjf.gateway.config import ConfigError, load_config

    extra: dict[str, Any] = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            typer.echo(f"error: --set {item!r}: expected KEY=VALUE", err=True)
            raise typer.Exit(2)
        try:
            extra[key.strip()] = json.loads(value)
        except ValueError:
            extra[key.strip()] = value  # a bare string
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
        cfg = load_config(
            config, {**extra, **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        from ssjf.gateway import server as gateway_server
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
    # Through the module, so tests can replace server.serve.
    gateway_server.serve(application, cfg, log_level)


@bench_app.command("gateway-overhead")
def gateway_overhead_cmd(
    upstream: str = typer.Option(..., "--upstream", help="The engine, called directly."),
    gateway: str | None = typer.Option(
        None,
        "--gateway",
        help="A running gateway in front of --upstream; omitted: one is started in-process.",
    ),
    requests: int = typer.Option(300, "--requests", help="Measured request pairs."),
    model: str = typer.Option("tiny", "--model", help="Model name sent in the body."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """Latency the gateway adds at low load: one-token requests, direct vs through it."""
    import json
    import threading
    import time

    from rich.console import Console
    from rich.table import Table

    from ssjf.gateway.overhead import measure_added_latency

    server = None
    thread = None
    if gateway is None:
        import socket

        import uvicorn

        from ssjf.gateway.app import create_app
        from ssjf.gateway.config import load_config
        from ssjf.gateway.server import ServerLimits, uvicorn_config

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg = load_config(None, {"upstreams": [upstream], "backend": "vllm", "port": port})
        # The deployed server: the connection guards are part of the measured overhead.
        server = uvicorn.Server(
            uvicorn_config(
                create_app(cfg), ServerLimits.from_config(cfg), host="127.0.0.1", port=port
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        gateway = f"http://127.0.0.1:{port}"
    import httpx

    try:
        body = {"model": model, "prompt": "Hello", "max_tokens": 1}
        res = measure_added_latency(upstream, gateway, n=requests, body=body)
    except (httpx.HTTPError, RuntimeError) as e:
        typer.echo(f"error: {e} (is the engine at {upstream} and the gateway at {gateway} up?)")
        raise typer.Exit(1) from None
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
    table = Table(title="gateway added latency (one-token requests, one at a time)")
    table.add_column("figure")
    table.add_column("ms", justify="right")
    for k, v in res.items():
        if k.endswith("_ms"):
            table.add_row(k, f"{v:.3f}")
    Console().print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(res, indent=2) + "\n")
