"""Finding real data: the data directory, the user cache, and downloads into it.

The ground floor under every layer that reads data files (the simulator's cost
tables, workloads, predictor datasets): standard library only, no ssjf imports.

Lookup order for a file such as ``traces/azure_llm_2023_conv.csv``:

1. ``$SSJF_DATA_DIR/<relpath>`` (the Makefile points it at ``../shared/data``);
2. the user cache, ``$SSJF_CACHE_DIR`` or ``~/.cache/ssjf``;
3. a download of the public file into that cache (files with a known URL only).

Files that were assembled from many raw files (the prompt/response collections)
have no single URL; they must be provided through ``SSJF_DATA_DIR``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_RAW = "https://raw.githubusercontent.com"

#: Public addresses of the files that exist upstream as single files.
DOWNLOAD_URLS: dict[str, str] = {
    "traces/azure_llm_2023_conv.csv": f"{_RAW}/Azure/AzurePublicDataset/master/data/AzureLLMInferenceTrace_conv.csv",
    "traces/azure_llm_2023_code.csv": f"{_RAW}/Azure/AzurePublicDataset/master/data/AzureLLMInferenceTrace_code.csv",
    # Upstream names: the 3-class file is `..._cls_...`, the 5-class one `..._multi_cls_...`.
    "predictions/ssjf_lmsys_vicuna13b_3class.csv": f"{_RAW}/James-QiuHaoran/LLM-serving-with-proxy-models/HEAD/model-serving/prediction/final/predictions_warmup_cls_1000K.csv",
    "predictions/ssjf_lmsys_vicuna13b_5class.csv": f"{_RAW}/James-QiuHaoran/LLM-serving-with-proxy-models/HEAD/model-serving/prediction/final/predictions_warmup_multi_cls_1000K.csv",
    "perf/splitwise_perf_model.csv": f"{_RAW}/Mutinifni/splitwise-sim/HEAD/data/perf_model.csv",
}

#: Files assembled from many raw upstream files: no single URL to fetch.
ASSEMBLED: dict[str, str] = {
    "prompts/alpaca_eval.jsonl.gz": "results/<generator>/model_outputs.json in https://github.com/tatsu-lab/alpaca_eval",
    "prompts/flask.jsonl.gz": "input_data/ and model_output/outputs/ in https://github.com/kaistAI/FLASK",
    "prompts/sharegpt_sample.jsonl.gz": "sampled_enriched_data/*.json in https://github.com/Marugannwg/ShareGPT92k_user_linguistic_mining",
    "prompts/zeroeval.jsonl.gz": "result_dirs/{gsm,crux,math-l5,numersense-v2}/<model>.json in https://github.com/yuchenlin/ZeroEval",
    "prompts/gpteacher.jsonl.gz": "Codegen/, Roleplay/ and Toolformer/ in https://github.com/teknium1/GPTeacher",
    "prompts/alpaca5k.jsonl.gz": "data/alpaca_5000.json at commit 5e69c50 of https://github.com/tatsu-lab/stanford_alpaca",
    "prompts/codealpaca2k.jsonl.gz": "data/code_alpaca_2k.json in https://github.com/sahil280114/codealpaca",
    "prompts/routellm_gsm8k.jsonl.gz": "routellm/evals/gsm8k/gsm8k_responses.csv (+ GSM8K train/test) in https://github.com/lm-sys/RouteLLM",
}

#: Opens a URL for reading; replaced in tests so no test touches the network.
Opener = Callable[[str], IO[bytes]]


class DataError(ValueError):
    """Missing or malformed data; the message names the file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        where = []
        if file is not None:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def data_dir() -> Path | None:
    """The directory ``$SSJF_DATA_DIR`` names, when it is set and exists; None otherwise.

    The one data-directory lookup: a test that needs the shared data skips on None,
    and :func:`data_file` looks here first.
    """
    value = os.environ.get("SSJF_DATA_DIR", "").strip()
    path = Path(value).expanduser() if value else None
    return path if path is not None and path.is_dir() else None


def cache_dir() -> Path:
    """The user cache for downloaded data: ``$SSJF_CACHE_DIR`` or ``~/.cache/ssjf``."""
    value = os.environ.get("SSJF_CACHE_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ssjf"


def _default_opener(url: str) -> IO[bytes]:
    resp: Any = urllib.request.urlopen(url, timeout=60)
    return resp


def find_data_file(relpath: str) -> Path | None:
    """``relpath`` in the data dir or the cache, without downloading; None if absent."""
    d = data_dir()
    if d is not None and (d / relpath).is_file():
        return d / relpath
    cached = cache_dir() / relpath
    return cached if cached.is_file() else None


def data_file(relpath: str, *, download: bool = True, opener: Opener | None = None) -> Path:
    """Path to data file ``relpath``: data dir, else cache, else download into the cache."""
    found = find_data_file(relpath)
    if found is not None:
        return found
    named = os.environ.get("SSJF_DATA_DIR", "").strip()
    looked = [str(Path(named).expanduser() / relpath) if named else "$SSJF_DATA_DIR (unset)"]
    looked.append(str(cache_dir() / relpath))
    url = DOWNLOAD_URLS.get(relpath)
    if url is None:
        origin = ASSEMBLED.get(relpath)
        how = (
            f"it is assembled from many upstream files ({origin}), so it cannot be downloaded "
            "directly: build it and put it under SSJF_DATA_DIR"
            if origin
            else "no download address is known for it: put it under SSJF_DATA_DIR"
        )
        raise DataError(f"data file not found (looked in {', '.join(looked)}); {how}", file=relpath)
    if not download:
        raise DataError(
            f"data file not found (looked in {', '.join(looked)}) and downloads are off; "
            f"set SSJF_DATA_DIR to a directory holding it, or fetch {url}",
            file=relpath,
        )
    return _download(relpath, url, opener or _default_opener, looked)


def _download(relpath: str, url: str, opener: Opener, looked: list[str]) -> Path:
    target = cache_dir() / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file first so an interrupted download never leaves a
    # truncated file that later runs would take for the real one.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, opener(url) as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(
            f"data file not found (looked in {', '.join(looked)}) and downloading {url} "
            f"failed ({exc}); without internet access, set SSJF_DATA_DIR to a directory "
            "holding it",
            file=relpath,
        ) from None
    return target
