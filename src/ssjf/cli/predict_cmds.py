"""`ssjf train`, `ssjf evaluate`, `ssjf predict`: the proxy-model toolkit on the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ssjf.predict.base import Predictor
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ssjf.cli.app import app
from ssjf.cli.needs import need_data, need_family, need_saved_predictor
from ssjf.extras import require_extra

console = Console(stderr=True, soft_wrap=True)


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (``alpha=3``, ``ngrams=[1,2]``)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _load(specs: list[str], strict: bool, keep_censored: bool = False) -> Any:
    from ssjf.predict.data import DataError, LengthData, load_data

    data = LengthData()
    for spec in specs:
        try:
            part = load_data(spec, strict=strict, keep_censored=keep_censored)
        except DataError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if not data.prompts:
            data.unit = part.unit
        data.extend(part)
    if data.issues:
        console.print(f"[yellow]skipped {len(data.issues)} bad record(s)[/yellow] (first ones):")
        for line in data.issues[:5]:
            console.print(f"  {line}")
    if data.censored:
        console.print(
            f"[yellow]warning:[/yellow] dropped {data.censored:,} censored record(s) (marked "
            "truncated, or output_tokens reached max_tokens: the true length is longer); "
            "--keep-censored uses them as logged"
        )
    if not data.prompts:
        console.print(f"[red]error:[/red] no usable records in {', '.join(specs)}")
        raise typer.Exit(2)
    return data


def metrics_table(title: str, report: dict[str, Any], per_model: bool = True) -> Table:
    """A rich table of :func:`ssjf.predict.metrics.length_metrics` output."""
    table = Table(title=title)
    for col in ("model", "n", "tau-b", "spearman", "MAE (tok)"):
        table.add_column(col, justify="right" if col != "model" else "left")
    if per_model:
        for name, row in report.get("per_model", {}).items():
            table.add_row(
                name,
                str(row["n"]),
                f"{row['tau']:.3f}",
                f"{row['spearman']:.3f}",
                f"{row['mae']:.1f}",
            )
    table.add_row(
        "[b]mean over models[/b]",
        "",
        f"[b]{report['tau_mean']:.3f}[/b]",
        f"{report['spearman_mean']:.3f}",
        "",
    )
    table.add_row(
        "all records",
        str(report["n"]),
        f"{report['tau']:.3f}",
        f"{report['spearman']:.3f}",
        f"{report['mae']:.1f}",
    )
    return table


def _summary_line(report: dict[str, Any]) -> str:
    cov = report.get("coverage_80")
    cov_s = "n/a" if cov is None else f"{cov:.1%}"
    return (
        f"median relative error {report['median_rel_error']:.2f}, "
        f"bucket accuracy {report['bucket_accuracy']:.1%} (edges {report['bucket_edges']}), "
        f"80% interval coverage {cov_s}"
    )


def _edges(spec: str | None) -> tuple[float, ...]:
    from ssjf.predict.metrics import PAPER_BUCKET_EDGES

    if not spec:
        return PAPER_BUCKET_EDGES
    try:
        vals = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter("comma-separated numbers", param_hint="--bucket-edges") from None
    if not vals or vals[-1] != float("inf"):
        vals.append(float("inf"))
    return tuple(vals)


@app.command("train")
def train_cmd(
    data: list[str] = typer.Option(
        ...,
        "--data",
        help="A collection (alpaca_eval, flask, sharegpt, zeroeval, gpteacher, alpaca5k, codealpaca2k, routellm_gsm8k), lmsys[:FILE] or FILE (repeatable).",
    ),
    family: str = typer.Option("tfidf", "--family", help="Predictor family (see `ssjf families`)."),
    out: Path = typer.Option(..., "--out", help="Directory to save the predictor in."),
    target_model: str = typer.Option(
        "all",
        "--target-model",
        help="Train on one model's records only (a per-model predictor), or 'all' "
        "(one predictor conditioned on the model name).",
    ),
    formulation: str | None = typer.Option(
        None, "--formulation", help="Passed as the 'formulation' parameter (fine-tuned families)."
    ),
    param: list[str] = typer.Option(
        None, "--param", help="Family parameter KEY=VALUE (repeatable)."
    ),
    eval_frac: float = typer.Option(
        0.0, "--eval-frac", help="Hold out this fraction of prompt ids and store metrics on them."
    ),
    seed: int = typer.Option(20240501, "--seed", help="Seed of the held-out split."),
    strict: bool = typer.Option(False, "--strict", help="Reject the data on the first bad record."),
    keep_censored: bool = typer.Option(
        False, "--keep-censored", help="Train on censored records too (truncated at max_tokens)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write training facts/metrics here."),
) -> None:
    """Train a length predictor and save it to a directory."""
    # Widest extra first (finetune > encoders > predict), so one error names what covers all.
    need_data(data, "ssjf train")
    need_family(family, "ssjf train")
    require_extra("predict", "ssjf train")
    from ssjf.predict import PredictorError, make_predictor
    from ssjf.predict.metrics import length_metrics
    from ssjf.predict.split import split_by_prompt

    params = _parse_params(param)
    if formulation is not None:
        params["formulation"] = formulation
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"loading {', '.join(data)}", total=4)
        records = _load(data, strict, keep_censored)
        if target_model != "all":
            records = records.where_model(target_model)
            if not records.prompts:
                progress.stop()
                console.print(f"[red]error:[/red] no records for model {target_model!r}")
                raise typer.Exit(2)
        train, test = (
            (records, None) if eval_frac <= 0 else split_by_prompt(records, eval_frac, seed)
        )
        progress.update(task, advance=1, description=f"fitting {family} on {len(train):,} records")
        try:
            predictor = make_predictor(family, **params)
        except PredictorError as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        t0 = time.perf_counter()
        predictor.fit_records(train.prompts, train.lengths, train.models, train.datasets)
        fit_s = time.perf_counter() - t0
        predictor.training.update(
            data=list(data),
            target_model=target_model,
            token_unit=train.unit,
            censored_dropped=records.censored,
            fit_seconds=round(fit_s, 2),
            eval_frac=eval_frac,
            split_seed=seed,
            trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        progress.update(task, advance=1, description="evaluating")
        if test is not None and test.prompts:
            ests = predictor.predict(test.prompts, test.models)
            predictor.metrics = {"held_out": length_metrics(ests, test.lengths, test.models)}
        progress.update(task, advance=1, description=f"saving to {out}")
        predictor.save(out)
        progress.update(task, advance=1, description="done")
    console.print(f"saved {family} predictor to [b]{out}[/b] (fit {fit_s:.1f} s)")
    if predictor.metrics:
        rep = predictor.metrics["held_out"]
        Console().print(
            metrics_table("held-out prompts", rep, per_model=len(rep["per_model"]) <= 20)
        )
        console.print(_summary_line(rep))
    if json_out is not None:
        json_out.write_text(
            json.dumps({"training": predictor.training, "metrics": predictor.metrics}, indent=2)
        )


@app.command("evaluate")
def evaluate_cmd(
    predictor_dir: Path = typer.Argument(..., help="A directory written by `ssjf train`."),
    data: list[str] = typer.Option(..., "--data", help="Dataset name or JSONL/CSV file."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here."),
    bucket_edges: str | None = typer.Option(
        None,
        "--bucket-edges",
        help="Upper bucket edges in tokens (default: the paper's 5 classes).",
    ),
    latency: bool = typer.Option(True, "--latency/--no-latency", help="Also time the predictor."),
    strict: bool = typer.Option(False, "--strict", help="Reject the data on the first bad record."),
    keep_censored: bool = typer.Option(
        False, "--keep-censored", help="Score censored records too (truncated at max_tokens)."
    ),
    save: bool = typer.Option(False, "--save", help="Store the metrics in the predictor's config."),
) -> None:
    """Evaluate a saved predictor on a dataset: tau per model, MAE, buckets, coverage, latency."""
    need_data(data, "ssjf evaluate")
    need_saved_predictor(predictor_dir, "ssjf evaluate")
    require_extra("predict", "ssjf evaluate")
    from ssjf.predict.latency import measure_latency
    from ssjf.predict.metrics import length_metrics

    predictor = _load_predictor(predictor_dir)
    records = _load(data, strict, keep_censored)
    seen = set(predictor.training.get("models", []))
    unseen = sorted({m for m in records.models if m is not None} - seen)
    if unseen and seen:
        console.print(
            f"models not seen in training (unconditioned estimate): {', '.join(unseen[:8])}"
            + (" ..." if len(unseen) > 8 else "")
        )
    ests = predictor.predict(records.prompts, records.models)
    report = length_metrics(
        ests, records.lengths, records.models, bucket_edges=_edges(bucket_edges)
    )
    report["family"] = predictor.family
    report["data"] = list(data)
    if latency:
        report["latency"] = measure_latency(
            predictor, records.prompts[:2000], records.models[:2000]
        )
    Console().print(metrics_table(f"{predictor.family} on {', '.join(data)}", report))
    console.print(_summary_line(report))
    if latency:
        lat = report["latency"]
        console.print(
            f"latency one prompt p50 {lat['latency_p50_ms']:.2f} ms, p99 {lat['latency_p99_ms']:.2f} ms; "
            f"batched {lat['prompts_per_s']:,.0f} prompts/s (torch limited to 1 thread)"
        )
    if save:
        predictor.metrics[f"evaluate:{','.join(data)}"] = report
        predictor.save_metrics(predictor_dir)
    if json_out is not None:
        json_out.write_text(json.dumps(_json_safe(report), indent=2) + "\n")


def _load_predictor(predictor_dir: Path) -> Predictor:
    """Load a saved predictor, or exit with status 2 and the reason."""
    from ssjf.predict import PredictorError, load_predictor

    try:
        return load_predictor(predictor_dir)
    except PredictorError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("predict")
def predict_cmd(
    predictor_dir: Path = typer.Argument(..., help="A directory written by `ssjf train`."),
    input_path: Path = typer.Option(..., "--input", help="JSONL with 'prompt' (or 'messages')."),
    output_path: Path = typer.Option(..., "--output", help="JSONL out: input fields + estimates."),
    model: str | None = typer.Option(None, "--model", help="Model name for records without one."),
    batch_size: int = typer.Option(256, "--batch-size", help="Prompts per predictor call."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad line."),
) -> None:
    """Predict output lengths for a JSONL file of prompts (chat 'messages' are flattened)."""
    need_saved_predictor(predictor_dir, "ssjf predict")
    require_extra("predict", "ssjf predict")
    from ssjf.predict.truncate import flatten_chat
    from ssjf.textio import open_text

    predictor = _load_predictor(predictor_dir)
    if not input_path.is_file():
        console.print(f"[red]error:[/red] {input_path}: no such file")
        raise typer.Exit(2)
    rows: list[dict[str, Any]] = []
    prompts: list[str] = []
    models: list[str | None] = []
    bad = 0
    with open_text(input_path) as fh:  # the loaders' decoding rule (bad bytes -> U+FFFD)
        for lineno, raw in enumerate(fh, start=1):
            problem = None
            try:
                rec = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError as exc:
                rec, problem = None, f"unreadable line ({exc})"
            if rec is None and problem is None:
                continue
            text: Any = None
            if isinstance(rec, dict):
                text = rec.get("prompt")
                if text is None and isinstance(rec.get("messages"), list):
                    text = flatten_chat(rec["messages"])
                if not isinstance(text, str) or not text.strip():
                    problem = "field 'prompt' (or 'messages'): missing or empty"
            elif problem is None:
                problem = "expected a JSON object"
            if problem is not None:
                msg = f"{input_path}:{lineno}: {problem}"
                if strict:
                    console.print(f"[red]error:[/red] {msg}")
                    raise typer.Exit(2)
                bad += 1
                if bad <= 5:
                    console.print(f"[yellow]skipped[/yellow] {msg}")
                continue
            assert isinstance(rec, dict) and isinstance(text, str)
            rows.append(rec)
            prompts.append(text)
            m = rec.get("model", model)
            models.append(str(m) if m is not None else None)
    with output_path.open("w") as out:
        for start in range(0, len(prompts), batch_size):
            stop = start + batch_size
            for rec, est in zip(
                rows[start:stop],
                predictor.predict(prompts[start:stop], models[start:stop]),
                strict=True,
            ):
                rec = dict(rec)
                rec["predicted_tokens"] = round(est.point, 2)
                if est.quantiles:
                    rec["predicted_quantiles"] = {str(q): round(v, 2) for q, v in est.quantiles}
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    console.print(
        f"wrote {len(rows):,} predictions to {output_path}"
        + (f" ({bad} bad lines skipped)" if bad else "")
    )


@app.command("families")
def families_cmd() -> None:
    """List the registered predictor families."""
    from ssjf.predict import DEFAULT_FAMILY, available_predictors

    table = Table(title="predictor families")
    table.add_column("family")
    table.add_column("description")
    for name, cls in sorted(available_predictors().items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        table.add_row(name + (" (default)" if name == DEFAULT_FAMILY else ""), doc)
    Console().print(table)


def _json_safe(obj: Any) -> Any:
    from ssjf.predict.base import _jsonable

    return _jsonable(obj)
