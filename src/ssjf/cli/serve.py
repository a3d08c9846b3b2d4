"""`ssjf serve`: the OpenAI-compatible SSJF gateway in front of vLLM, SGLang, llama.cpp, ..."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import app, bench_app
from ssjf.cli.needs import need_saved_predictor
from ssjf.extras import require_extra
from ssjf.policies import DEFAULT_POLICY


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
    policy: str | None = typer.Option(
        None,
        "--policy",
        help=f"Scheduling policy with its settings (default {DEFAULT_POLICY}: a tail budget).",
    ),
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
    api_key: list[str] | None = typer.Option(
        None,
        "--api-key",
        help="Require this key (Authorization: Bearer KEY); repeatable. Or SSJF_GATEWAY_API_KEYS.",
    ),
    api_keys_file: str | None = typer.Option(
        None, "--api-keys-file", help="TOML/JSON file of keys with tenants (docs/gateway.md)."
    ),
    access_log: bool | None = typer.Option(
        None, "--access-log/--no-access-log", help="One JSON line per request on stderr."
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (default 8080)."),
    log_level: str = typer.Option("warning", "--log-level", help="Log level (gateway, uvicorn)."),
) -> None:
    """Run the SSJF gateway: clients talk to it instead of the engine.

    Settings come from --config FILE, then SSJF_GATEWAY_<SETTING> environment
    variables, then --set, then the flags.
    """
    require_extra("gateway", "ssjf serve")
    if predictor is not None:
        need_saved_predictor(predictor, "ssjf serve --predictor")
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
        "api_keys": list(api_key) if api_key else None,
        "api_keys_file": api_keys_file,
        "access_log": access_log,
        "host": host,
        "port": port,
    }
    try:
        cfg = load_config(config, overrides, settings=extra)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if cfg.predictor and predictor is None:  # named by --config or the environment
        need_saved_predictor(cfg.predictor, "ssjf serve (predictor setting)")
    try:
        from ssjf.gateway import server as gateway_server
        from ssjf.gateway.app import create_app
        from ssjf.gateway.logs import configure_logging

        configure_logging(cfg.log_format, log_level)
        if cfg.access_log:  # its lines are INFO whatever the level of the rest
            logging.getLogger("ssjf.gateway.access").setLevel(logging.INFO)
        application = create_app(cfg)
    except (ConfigError, RuntimeError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    # The engine orders requests it holds by priority: a tail budget covers only the
    # requests waiting in the gateway's queue then (ssjf.gateway.core).
    scope = "" if cfg.tail_enforced else " (tail budget: gateway queue only)"
    typer.echo(
        f"ssjf gateway on http://{cfg.host}:{cfg.port} -> {', '.join(cfg.upstreams)} "
        f"(backend {cfg.backend}, policy {cfg.policy_spec}{scope}, "
        f"max_in_flight {cfg.max_in_flight}, "
        f"keys {'on' if cfg.api_keys or cfg.api_keys_file else 'off'})",
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
    production: bool = typer.Option(
        False,
        "--production",
        help="In-process gateway with API keys (two tenants: fair queue), the JSON access "
        "log and the traffic log on.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """Latency the gateway adds at low load: one-token requests, direct vs through it."""
    require_extra("gateway", "ssjf bench gateway-overhead")
    import threading
    import time

    from rich.console import Console
    from rich.table import Table

    from ssjf.gateway.overhead import measure_added_latency

    server = None
    thread = None
    work: Path | None = None  # the --production gateway's files, removed afterwards
    headers: dict[str, str] | None = None
    if production and gateway is not None:
        typer.echo("error: --production configures the in-process gateway: omit --gateway")
        raise typer.Exit(2)
    if gateway is None:
        import socket
        import tempfile

        import uvicorn

        from ssjf.gateway.app import create_app
        from ssjf.gateway.config import load_config
        from ssjf.gateway.server import ServerLimits, uvicorn_config

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings: dict[str, Any] = {"upstreams": [upstream], "backend": "vllm", "port": port}
        if production:
            work = Path(tempfile.mkdtemp(prefix="ssjf-overhead-"))
            keys = work / "keys.json"
            keys.write_text(
                json.dumps(
                    {
                        "keys": [
                            {"key": "bench-a", "tenant": "a"},
                            {"key": "bench-b", "tenant": "b", "weight": 2},
                        ]
                    }
                )
            )
            settings.update(
                api_keys_file=str(keys),
                access_log=True,
                traffic_log=str(work / "traffic.jsonl"),
                log_prompts=True,
            )
            headers = {"authorization": "Bearer bench-a"}
            # The access log is written (JSON, as deployed) to a file, not the terminal.
            _log_to_file(work / "access.log")
        cfg = load_config(None, settings)
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
        res = measure_added_latency(
            upstream, gateway, n=requests, body=body, gateway_headers=headers
        )
    except (httpx.HTTPError, RuntimeError) as e:
        typer.echo(f"error: {e} (is the engine at {upstream} and the gateway at {gateway} up?)")
        raise typer.Exit(1) from None
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        if work is not None:
            import shutil

            logging.getLogger("ssjf").handlers.clear()
            shutil.rmtree(work, ignore_errors=True)
    title = "gateway added latency (one-token requests, one at a time)"
    if production:
        title += "; keys, tenants, access and traffic logs on"
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("ms", justify="right")
    for k, v in res.items():
        if k.endswith("_ms"):
            table.add_row(k, f"{v:.3f}")
    Console().print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(res, indent=2) + "\n")


def _log_to_file(path: Path) -> None:
    """Send the gateway's JSON log lines (access log included) to ``path``."""
    from ssjf.gateway.logs import JsonFormatter

    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ssjf")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logging.getLogger("ssjf.gateway.access").setLevel(logging.INFO)
