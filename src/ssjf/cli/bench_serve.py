"""`ssjf bench serve`: FCFS vs SSJF on a real CPU vLLM through the gateway."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import typer

from ssjf.cli.app import bench_app
from ssjf.cli.needs import need_family
from ssjf.extras import require_extra


@bench_app.command("serve")
def bench_serve_cmd(
    requests: int = typer.Option(
        400, "--requests", "--num-prompts", help="Requests replayed per config and seed."
    ),
    load: float = typer.Option(0.9, "--load", help="Arrival rate as a fraction of capacity."),
    request_rate: float | None = typer.Option(
        None,
        "--request-rate",
        help="Fixed arrival rate in req/s instead of --load (as vllm bench serve; inf: all at "
        "once).",
    ),
    generator: str = typer.Option(
        "gpt-3.5-turbo-1106", "--generator", help="AlpacaEval generator whose lengths to replay."
    ),
    max_tokens_cap: int = typer.Option(512, "--max-tokens-cap", help="Cap on output lengths."),
    max_num_seqs: int = typer.Option(2, "--max-num-seqs", help="vLLM --max-num-seqs."),
    predictor: str = typer.Option(
        "tfidf-embed", "--predictor", help="ssjf.predict family trained on other prompts, or none."
    ),
    predictor_timeout_ms: float = typer.Option(
        1000.0,
        "--predictor-timeout-ms",
        min=1.0,
        help="The gateways' predictor time box (a late prediction falls back).",
    ),
    train_all_generators: bool = typer.Option(
        True,
        "--train-all-generators/--train-one-generator",
        help="Train the predictor on every generator's answers to the training prompts.",
    ),
    queue_slack: int = typer.Option(
        1,
        "--queue-slack",
        min=0,
        help="Gateway-held queue: max in flight = max-num-seqs + this.",
    ),
    oracle: bool = typer.Option(True, "--oracle/--no-oracle", help="Add the oracle SJF config."),
    fcfs_gateway: bool = typer.Option(
        False, "--fcfs-gateway/--no-fcfs-gateway", help="Add FCFS through the gateway."
    ),
    seed: int = typer.Option(0, "--seed", help="First seed (prompt order and arrivals)."),
    seeds: int = typer.Option(
        2, "--seeds", min=1, help="Independent replays per config; figures pool them."
    ),
    stream_interval: int = typer.Option(8, "--stream-interval", help="vLLM --stream-interval."),
    capacity_requests: int = typer.Option(64, "--capacity-requests"),
    latency_requests: int = typer.Option(100, "--latency-requests"),
    endpoint: str = typer.Option(
        "chat", "--endpoint", help="chat or completions (or /v1/chat/completions, /v1/completions)."
    ),
    engine_url: str | None = typer.Option(
        None,
        "--engine-url",
        help="Use this running vLLM (priority policy) instead of starting one.",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "--served-model-name",
        help="Model name in requests: what --engine-url serves (default: the generator, "
        "as which the started engines serve the tiny model).",
    ),
    pin_engine: bool = typer.Option(
        False,
        "--pin-engine/--no-pin-engine",
        help="Give the started engine's compute process a core of its own (2+ CPUs).",
    ),
    side_by_side: bool = typer.Option(
        True,
        "--side-by-side/--sequential",
        help="One engine per config, sharing one CPU, replays at the same time "
        "(a host whose speed drifts hits every config alike); or one engine, configs in turn.",
    ),
    trace_dir: Path | None = typer.Option(
        None, "--trace-dir", help="Write every request of every replay here (JSONL per replay)."
    ),
    export_workload: Path | None = typer.Option(
        None,
        "--export-workload",
        help="Write the replayed prompts, lengths and estimates as JSONL for ssjf simulate.",
    ),
    export_only: bool = typer.Option(
        False,
        "--export-only",
        help="Only train the predictor and write --export-workload; start no engine.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results here."),
    save_result: bool = typer.Option(
        False, "--save-result", help="Write the results to --result-dir/--result-filename."
    ),
    result_dir: Path | None = typer.Option(
        None, "--result-dir", help="Folder of the --save-result file (default: here)."
    ),
    result_filename: str | None = typer.Option(
        None,
        "--result-filename",
        metavar="NAME",
        help="Name of the --save-result file (default ssjf-bench-serve-{rate}-{model}-{time}.json).",
    ),
    metric_percentiles: str = typer.Option(
        "99",
        "--metric-percentiles",
        metavar="LIST",
        help="Percentiles of the vLLM keys, e.g. 50,90,99.",
    ),
    percentile_metrics: str = typer.Option(
        "ttft,tpot,itl,e2el",
        "--percentile-metrics",
        metavar="LIST",
        help="Metrics given vLLM keys (mean/median/std/pNN _ms).",
    ),
) -> None:
    """Start a CPU vLLM, measure capacity, replay AlpacaEval at --load through each config."""
    if predictor != "none":
        need_family(predictor, "ssjf bench serve --predictor")
    if not export_only:
        require_extra("gateway", "ssjf bench serve")
    from rich.console import Console
    from rich.table import Table

    from ssjf.bench.serve import vllm_flags
    from ssjf.bench.serve.config import ServeBenchConfig
    from ssjf.bench.serve.run import run_serve_bench
    from ssjf.testbed.vllm_cpu import EngineError

    try:  # vLLM's spellings (endpoint paths, comma lists) -> ours, before any work
        endpoint = vllm_flags.parse_endpoint(endpoint)
        percentiles = vllm_flags.parse_percentiles(metric_percentiles)
        metrics = vllm_flags.parse_metrics(percentile_metrics)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    console = Console(stderr=True)
    cfg = ServeBenchConfig(
        requests=requests,
        load=load,
        request_rate=request_rate,
        metric_percentiles=percentiles,
        percentile_metrics=metrics,
        generator=generator,
        max_tokens_cap=max_tokens_cap,
        max_num_seqs=max_num_seqs,
        queue_slack=queue_slack,
        predictor=predictor,
        predictor_timeout_ms=predictor_timeout_ms,
        train_all_generators=train_all_generators,
        oracle=oracle,
        fcfs_gateway=fcfs_gateway,
        seed=seed,
        seeds=seeds,
        stream_interval=stream_interval,
        capacity_requests=capacity_requests,
        latency_requests=latency_requests,
        endpoint=endpoint,
        engine_url=engine_url,
        model=model,
        pin_engine=pin_engine,
        side_by_side=side_by_side,
        trace_dir=trace_dir,
        export_workload=export_workload,
        export_only=export_only,
    )
    try:
        out = run_serve_bench(cfg, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (EngineError, FileNotFoundError, ValueError, RuntimeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    meta = out["meta"]
    if export_only:
        tau = meta.get("predictor_kendall_tau")
        typer.echo(
            f"wrote {export_workload}"
            + (
                f" (predictor Kendall tau {tau:.3f} on the bench prompts)"
                if tau is not None
                else ""
            )
        )
        return
    traffic = (
        f"{load:.2f} x capacity ({meta['capacity_rps']:.2f} req/s)"
        if request_rate is None
        else f"{request_rate:.2f} req/s (capacity {meta['capacity_rps']:.2f} req/s)"
    )
    table = Table(
        title=(
            f"bench serve: {requests} requests x {seeds} seeds at {traffic}, "
            f"vLLM CPU max-num-seqs {max_num_seqs}"
        )
    )
    for col in (
        "config",
        "JCT mean s",
        "vs FCFS",
        "± seeds",
        "engine-timed s",
        "vs FCFS (engine)",
        "JCT p99 s",
        "TTFT mean s",
        "req/s",
        "kept up",
        "errors",
        "added p50 ms",
    ):
        table.add_column(col)
    for r in out["configs"]:
        table.add_row(
            r["config"],
            f"{r['jct_mean']:.2f}",
            f"{100 * r['jct_mean_vs_fcfs']:+.1f}%",
            f"{100 * r['jct_mean_vs_fcfs_std']:.1f}",
            f"{r['engine_jct_mean']:.2f}",
            f"{100 * r['engine_jct_mean_vs_fcfs']:+.1f}%",
            f"{r['jct_p99']:.2f}",
            f"{r['ttft_mean']:.2f}",
            f"{r['throughput_rps']:.2f}",
            f"{r['kept_up_min']:.2f}",
            str(r["errors"]),
            f"{r['added_latency_p50_ms']:.2f}",
        )
    Console().print(table)
    default_name = vllm_flags.default_result_name(
        request_rate, load, str(meta["settings"]["model"]), datetime.now()
    )
    path = vllm_flags.result_path(json_out, save_result, result_dir, result_filename, default_name)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_clean(out), indent=2) + "\n")
        typer.echo(f"wrote {path}", err=True)


def _clean(obj: object) -> object:
    """JSON-safe copy: NaN/inf become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
