"""Length records shared by every predictor data loader: the columnar dataset and its error report.

:mod:`ssjf.predict.data` (prompt datasets, JSONL/CSV) and
:mod:`ssjf.predict.chat_data` (chat logs) both build :class:`LengthData` and
report bad records through :class:`Reporter`; this module sits below both so
neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ssjf.datadir import DataError

#: Output lengths above this are treated as corrupt (no served LLM emits 1M tokens).
MAX_OUTPUT_TOKENS = 1_000_000


@dataclass(slots=True)
class LengthData:
    """Columnar records: ``prompts[i]`` was answered by ``models[i]`` in ``lengths[i]`` tokens."""

    prompts: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    models: list[str | None] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    #: Human-readable notes about skipped records ("file:line: field: reason").
    issues: list[str] = field(default_factory=list)
    #: What ``lengths`` count (a tokenizer name, or "approx-regex").
    unit: str = "tokens"
    #: Censored records left out: generation hit its limit, so only a lower bound is known.
    censored: int = 0

    def __len__(self) -> int:
        return len(self.prompts)

    def append(
        self, prompt: str, length: int, model: str | None, prompt_id: str, dataset: str
    ) -> None:
        """Add one record."""
        self.prompts.append(prompt)
        self.lengths.append(length)
        self.models.append(model)
        self.prompt_ids.append(prompt_id)
        self.datasets.append(dataset)

    def subset(self, indices: Iterable[int]) -> LengthData:
        """The records at ``indices`` (issues are kept)."""
        out = LengthData(issues=list(self.issues), unit=self.unit, censored=self.censored)
        for i in indices:
            out.append(
                self.prompts[i],
                self.lengths[i],
                self.models[i],
                self.prompt_ids[i],
                self.datasets[i],
            )
        return out

    def where_model(self, model: str) -> LengthData:
        """Only the records answered by ``model``."""
        return self.subset(i for i, m in enumerate(self.models) if m == model)

    def extend(self, other: LengthData) -> LengthData:
        """Append ``other``'s records (in place) and return self."""
        self.prompts += other.prompts
        self.lengths += other.lengths
        self.models += other.models
        self.prompt_ids += other.prompt_ids
        self.datasets += other.datasets
        self.issues += other.issues
        self.censored += other.censored
        return self

    @property
    def model_names(self) -> list[str]:
        """Distinct model names, sorted (``None`` left out)."""
        return sorted({m for m in self.models if m is not None})


class Reporter:
    """Collects or raises record problems, with their location.

    Non-strict: each problem is noted in ``data.issues`` (at most ``limit`` of
    them, so a very dirty file keeps a bounded report) and counted. Strict: the
    first problem raises :class:`~ssjf.datadir.DataError`.
    """

    def __init__(self, data: LengthData, strict: bool, limit: int = 1000) -> None:
        self.data, self.strict, self.limit, self.count = data, strict, limit, 0

    def bad(self, where: str, fld: str, why: str) -> None:
        """Report that field ``fld`` of the record at ``where`` is unusable because ``why``."""
        msg = f"{where}: field {fld!r}: {why}"
        if self.strict:
            raise DataError(msg)
        self.count += 1
        if self.count <= self.limit:
            self.data.issues.append(msg)
