"""Per-request JSONL records that `ssjf train --data FILE.jsonl` reads directly.

Field names follow the predictor toolkit's generic JSONL: ``prompt`` (only when
prompt logging is on), ``output_tokens`` (the engine's ``completion_tokens``)
and ``model``; the rest describe how the request was served.

Safety: a client chooses most of what lands here, so every string is cut to a
bounded length, the prompt fingerprint is keyed (HMAC-SHA256 with a secret salt:
a guessed prompt cannot be matched against it) and the file rotates past a size.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

#: Record fields the log itself sets; a caller's record cannot overwrite them.
_RESERVED = frozenset({"time", "prompt_hash", "prompt", "prompt_truncated"})
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Nested values (lists, dicts) in a record are kept to this depth, then stringified.
_MAX_DEPTH = 4


def prompt_hash(prompt: str, salt: str | bytes) -> str:
    """Keyed fingerprint of a prompt: HMAC-SHA256(salt, prompt), 64 hex digits."""
    key = salt if isinstance(salt, bytes) else salt.encode("utf-8", "surrogatepass")
    text = prompt if isinstance(prompt, str) else str(prompt)
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def load_or_create_salt(path: str | Path) -> str:
    """The salt kept in ``path`` (mode 0o600), created with a random one when absent or empty."""
    p = Path(path)
    try:
        salt = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        salt = ""
    if salt:
        return salt
    salt = secrets.token_hex(32)
    # O_EXCL: two gateways starting on one log agree on the first salt written.
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = p.read_text(encoding="utf-8").strip()
        if existing:
            return existing
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(salt + "\n")
    return salt


class TrafficLog:
    """Appends one JSON line per finished request; flushed at most once a second.

    Rotates like ``logging.handlers.RotatingFileHandler``: a line that would take the
    file past ``max_bytes`` first moves ``path`` to ``path.1`` (``path.1`` to ``path.2``
    ...), keeping ``backups`` old files; ``backups=0`` starts the file over. A line is
    never split across files.
    """

    FLUSH_EVERY_S = 1.0

    def __init__(
        self,
        path: str | Path,
        log_prompts: bool,
        *,
        salt: str | None = None,
        max_bytes: int = 256 * 1024 * 1024,
        backups: int = 5,
        max_prompt_chars: int = 100_000,
        max_field_chars: int = 256,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log_prompts = log_prompts
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_prompt_chars = max_prompt_chars
        self.max_field_chars = max_field_chars
        #: Where the generated salt lives (None when the caller gave one).
        self.salt_path: Path | None = None
        if salt is None:
            self.salt_path = Path(f"{self.path}.salt")
            salt = load_or_create_salt(self.salt_path)
        self._key = salt.encode("utf-8", "surrogatepass")
        self._fh: IO[bytes] | None = _open_private(self.path, "ab")
        # One stat at open; from then on bytes are counted as they are written.
        self._size = self._fh.tell()
        self._last_flush = time.monotonic()
        self.records = 0
        #: Records lost to I/O errors (a full disk must not fail requests).
        self.dropped = 0
        self._closed = False

    def write(self, record: dict[str, Any], prompt: str) -> None:
        """Add ``record`` (plus the prompt's hash, and its text when enabled)."""
        if self._closed:
            return
        if self._fh is None:  # a reopen after rotation failed: try again
            try:
                self._fh = _open_private(self.path, "ab")
                self._size = self._fh.tell()
            except OSError:
                self.dropped += 1
                return
        try:
            line = self._encode(record, prompt)
        except Exception:  # defensive: odd input is dropped, never raised into a request
            log.exception("traffic log: record could not be encoded, dropped")
            self.dropped += 1
            return
        try:
            if self._size > 0 and self._size + len(line) > self.max_bytes:
                self._rotate()
            fh = self._fh
            if fh is None:
                return
            fh.write(line)
        except OSError as e:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error(
                    "traffic log %s: write failed (%d records dropped): %s",
                    self.path,
                    self.dropped,
                    e,
                )
            return
        self._size += len(line)
        self.records += 1
        now = time.monotonic()
        if now - self._last_flush >= self.FLUSH_EVERY_S:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._fh is not None:
            try:
                self._fh.flush()
            except OSError as e:
                log.error("traffic log %s: flush failed: %s", self.path, e)

    def close(self) -> None:
        """Flush and close; later writes are ignored."""
        self._closed = True
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as e:
                log.error("traffic log %s: close failed: %s", self.path, e)

    # --- internals ---------------------------------------------------------------------
    def _encode(self, record: dict[str, Any], prompt: str) -> bytes:
        """One UTF-8 JSON line; every client-chosen string bounded, never raising on text."""
        if not isinstance(prompt, str):
            prompt = str(prompt)
        rec: dict[str, Any] = {
            "time": round(time.time(), 6),
            "prompt_hash": hmac.new(
                self._key, prompt.encode("utf-8", "surrogatepass"), hashlib.sha256
            ).hexdigest(),
        }
        if self.log_prompts:
            if len(prompt) > self.max_prompt_chars:
                rec["prompt"] = prompt[: self.max_prompt_chars]
                rec["prompt_truncated"] = True
            else:
                rec["prompt"] = prompt
        for key, value in record.items():
            k = self._clip(key if isinstance(key, str) else str(key))
            if k not in _RESERVED:
                rec[k] = self._clean(value, 0)
        text = json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n"
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (from JSON \ud800 escapes) cannot be UTF-8: U+FFFD marks them,
            # as every data loader does for bad bytes (ssjf.textio).
            return _SURROGATE.sub("\ufffd", text).encode("utf-8")

    def _clip(self, s: str) -> str:
        return s if len(s) <= self.max_field_chars else s[: self.max_field_chars]

    def _clean(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            # json.dumps refuses ints past 4,300 digits; no counter of ours gets near 2**64.
            return value if -(2**64) < value < 2**64 else None
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            return self._clip(value)
        if depth < _MAX_DEPTH and isinstance(value, (list, tuple)):
            return [self._clean(v, depth + 1) for v in value[: self.max_field_chars]]
        if depth < _MAX_DEPTH and isinstance(value, dict):
            items = list(value.items())[: self.max_field_chars]
            return {self._clip(str(k)): self._clean(v, depth + 1) for k, v in items}
        try:
            return self._clip(str(value))
        except Exception:
            return f"<{type(value).__name__}>"

    def _rotate(self) -> None:
        """path -> path.1 -> ... -> path.<backups> (the oldest dropped), then a fresh path."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        failed = False
        try:
            if self.backups > 0:
                for i in range(self.backups - 1, 0, -1):
                    src = Path(f"{self.path}.{i}")
                    if src.exists():
                        os.replace(src, f"{self.path}.{i + 1}")
                os.replace(self.path, f"{self.path}.1")
        except OSError as e:
            failed = True
            log.error("traffic log %s: rotation failed, still appending: %s", self.path, e)
        try:
            self._fh = _open_private(self.path, "ab" if self.backups > 0 else "wb")
        except OSError as e:
            # Lines are dropped (and counted) until a later write can reopen the file.
            log.error("traffic log %s: cannot reopen after rotation: %s", self.path, e)
            self._fh = None
            return
        # After a failed rotation, try again only after another max_bytes (no retry per line).
        self._size = 0 if failed else self._fh.tell()


def _open_private(path: Path, mode: str) -> IO[bytes]:
    """Open ``path`` for writing, created readable by its owner only (prompts, tenants)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode)
