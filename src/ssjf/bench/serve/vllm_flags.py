"""``vllm bench serve``'s spellings of ``ssjf bench serve`` settings, read into ours.

vLLM's endpoint is a path (``/v1/chat/completions``), its lists are comma-separated
(``--metric-percentiles 50,99``) and its result file is ``--save-result`` with an
optional ``--result-dir`` and ``--result-filename`` (vLLM's default name:
``{label}-{rate}qps-{model}-{YYYYmmdd-HHMMSS}.json``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ssjf.bench.serve.vllm_metrics import METRICS

#: Our endpoint names, and vLLM's paths for them.
_ENDPOINTS = {
    "chat": "chat",
    "completions": "completions",
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
}


def parse_endpoint(value: str) -> str:
    """``chat`` or ``completions``, from ours or vLLM's path spelling."""
    name = _ENDPOINTS.get(value.strip().rstrip("/"))
    if name is None:
        raise ValueError(f"endpoint must be one of {', '.join(_ENDPOINTS)}, got {value!r}")
    return name


def parse_percentiles(value: str) -> tuple[float, ...]:
    """``"50,99.9"`` -> ``(50.0, 99.9)``; each within 0..100."""
    try:
        out = tuple(float(p) for p in value.split(",") if p.strip())
    except ValueError:
        raise ValueError(
            f"percentiles must be numbers separated by commas, got {value!r}"
        ) from None
    if not out or any(not 0 <= p <= 100 for p in out):
        raise ValueError(f"percentiles must be within 0..100, got {value!r}")
    return out


def parse_metrics(value: str) -> tuple[str, ...]:
    """``"ttft,e2el"`` -> ``("ttft", "e2el")``; each one of :data:`METRICS`."""
    out = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in out if m not in METRICS]
    if not out or unknown:
        raise ValueError(f"metrics must be among {','.join(METRICS)}, got {value!r}")
    return out


def default_result_name(rate: float | None, load: float, model: str, now: datetime) -> str:
    """vLLM's result file name, with ``{load}load`` where no fixed rate was given."""
    traffic = f"{rate}qps" if rate is not None else f"{load}load"
    return f"ssjf-bench-serve-{traffic}-{model.split('/')[-1]}-{now:%Y%m%d-%H%M%S}.json"


def result_path(
    json_out: Path | None,
    save_result: bool,
    result_dir: Path | None,
    result_filename: str | None,
    default_name: str,
) -> Path | None:
    """Where to write the results: ``--json``, else vLLM's ``--save-result`` file.

    A ``--result-dir`` or ``--result-filename`` also saves (vLLM ignores them without
    ``--save-result``; here asking for a file is taken to mean wanting one).
    """
    if json_out is not None:
        return json_out
    if not (save_result or result_dir is not None or result_filename):
        return None
    name = result_filename or default_name
    return (result_dir / name) if result_dir is not None else Path(name)
