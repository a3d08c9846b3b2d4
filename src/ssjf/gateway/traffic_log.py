"""Per-request JSONL records that `ssjf train --data FILE.jsonl` reads directly.

Field names follow the predictor toolkit's generic JSONL: ``prompt`` (only when
prompt logging is on), ``output_tokens`` (the engine's ``completion_tokens``)
and ``model``; the rest describe how the request was served.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import IO, Any


def prompt_hash(prompt: str) -> str:
    """Short stable fingerprint of a prompt (sha256, 16 hex digits)."""
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class TrafficLog:
    """Appends one JSON line per finished request; flushed at most once a second."""

    FLUSH_EVERY_S = 1.0

    def __init__(self, path: str | Path, log_prompts: bool) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log_prompts = log_prompts
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._last_flush = time.monotonic()
        self.records = 0

    def write(self, record: dict[str, Any], prompt: str) -> None:
        """Add ``record`` (plus the prompt's hash, and its text when enabled)."""
        fh = self._fh
        if fh is None:
            return
        rec = {"time": round(time.time(), 6), "prompt_hash": prompt_hash(prompt)}
        if self.log_prompts:
            rec["prompt"] = prompt
        rec.update(record)
        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.records += 1
        now = time.monotonic()
        if now - self._last_flush >= self.FLUSH_EVERY_S:
            fh.flush()
            self._last_flush = now

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
