"""How every data reader decodes text: one rule for `train`, `evaluate`, `predict` and `simulate`.

Files are UTF-8 (gzip-compressed when the name ends in ``.gz``). Bytes that are
not valid UTF-8 become U+FFFD, the replacement character, and text containing
U+FFFD is accepted like any other: logs often cut a multi-byte character, and
one mangled character should not cost a record (tokenizers read U+FFFD fine).
Standard library only: the ground floor under the workload and predictor loaders.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

#: ``errors=`` for every decode of a data file (see the module doc).
TEXT_ERRORS = "replace"


def open_text(path: str | Path) -> IO[str]:
    """``path`` opened for reading text by the rule above, through gzip when it ends in ``.gz``."""
    p = Path(path)
    if p.suffix.lower() == ".gz":
        return gzip.open(p, "rt", encoding="utf-8", errors=TEXT_ERRORS, newline="")
    return p.open("r", encoding="utf-8", errors=TEXT_ERRORS, newline="")


def decode(raw: bytes) -> str:
    """``raw`` as text by the rule above."""
    return raw.decode("utf-8", errors=TEXT_ERRORS)
