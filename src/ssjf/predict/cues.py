"""Explicit length cues a bag of words reads poorly: requested sizes, formats, counts.

A TF-IDF row knows that "words" and "500" occur, not that the prompt asks for 500
words; a ridge on it cannot turn the number into a length. These dense features
say it directly: the log of a requested count of words / sentences / paragraphs /
items (digits or spelled numbers), flags for short-answer and long-form requests,
code markers, and counts of questions, numbered lines and answer options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_SPELLED = {
    "one": 1,
    "a single": 1,
    "single": 1,
    "two": 2,
    "a couple of": 2,
    "three": 3,
    "a few": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "hundred": 100,
    "a hundred": 100,
}
_NUM = (
    r"(\d{1,5}(?:,\d{3})?|"
    + "|".join(sorted(map(re.escape, _SPELLED), key=len, reverse=True))
    + ")"
)
# "in 100 words", "3-5 sentences", "two paragraphs", "10 bullet points", "under 50 words"
_UNITS = {
    "words": r"words?",
    "sentences": r"sentences?|lines?",
    "paragraphs": r"paragraphs?|sections?|pages?",
    "items": r"(?:bullet\s+)?points?|items?|examples?|ideas?|tips?|steps?|ways?|reasons?|"
    r"questions?|names?|things?|facts?|options?|suggestions?|tweets?|titles?",
}
_COUNT = {
    k: re.compile(
        r"\b"
        + _NUM
        + r"(?:\s*(?:-|to|or)\s*"
        + _NUM
        + r")?(?:\s*-\s*|\s+)(?:\w+\s+)?(?:"
        + v
        + r")\b",
        re.I,
    )
    for k, v in _UNITS.items()
}
_SHORT = re.compile(
    r"\b(?:one|single|1)[- ]word\b|\byes or no\b|\btrue or false\b|\bbriefly\b|\bbrief\b|"
    r"\bconcise(?:ly)?\b|\bshort\b|\bonly (?:answer|output|respond|return|give)\b|"
    r"\bjust (?:answer|the|say|give)\b|\bwithout explanation\b|\bclassify\b|\bchoose\b|"
    r"\bselect\b|\bwhich of the following\b|\bcorrect (?:answer|option)\b",
    re.I,
)
_LONG = re.compile(
    r"\bessay\b|\barticle\b|\bstory\b|\bblog\b|\bin detail\b|\bdetailed\b|\belaborate\b|"
    r"\bcomprehensive\b|\bstep[- ]by[- ]step\b|\bexplain\b|\bdescribe\b|\bplan\b|\bguide\b|"
    r"\bletter\b|\bscript\b|\bpoem\b|\bsong\b|\blyrics\b|\boutline\b|\bcompare\b|\bdiscuss\b",
    re.I,
)
_CODE = re.compile(
    r"```|\bdef \w+\(|\bfunction\b|\bclass \w+|\bimport \w+|[{};]\s*$|\bpython\b|\bjavascript\b|"
    r"\bjava\b|\bc\+\+|\bsql\b|\bcode\b|\bprogram\b|\bimplement\b",
    re.I | re.M,
)
_OPTION = re.compile(r"^\s*(?:\(?[A-Ea-e][).:]|[A-E]\s*[-:])\s+\S", re.M)
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+\S", re.M)

#: Column names of :func:`prompt_cues`, in order.
CUE_NAMES = (
    "req_words",
    "req_sentences",
    "req_paragraphs",
    "req_items",
    "short",
    "long",
    "code",
    "questions",
    "options",
    "numbered_lines",
    "max_number",
)


def _value(token: str) -> float:
    t = token.lower().replace(",", "")
    return float(t) if t.isdigit() else float(_SPELLED.get(t, 0))


def _requested(pattern: re.Pattern[str], text: str) -> float:
    """``log1p`` of the largest count requested with this unit (0 when none)."""
    best = 0.0
    for m in pattern.finditer(text):
        best = max(best, _value(m.group(1)), _value(m.group(2)) if m.group(2) else 0.0)
    return float(np.log1p(min(best, 100_000.0)))


def prompt_cues(prompts: Sequence[str]) -> np.ndarray:
    """One row of :data:`CUE_NAMES` features per prompt (full text; cheap regexes)."""
    out = np.zeros((len(prompts), len(CUE_NAMES)))
    for i, p in enumerate(prompts):
        row = out[i]
        for j, pat in enumerate(_COUNT.values()):
            row[j] = _requested(pat, p)
        row[4] = np.log1p(len(_SHORT.findall(p)))
        row[5] = np.log1p(len(_LONG.findall(p)))
        row[6] = np.log1p(len(_CODE.findall(p)))
        row[7] = np.log1p(p.count("?"))
        row[8] = np.log1p(len(_OPTION.findall(p)))
        row[9] = np.log1p(len(_NUMBERED.findall(p)))
        nums = [float(n) for n in re.findall(r"\b\d{1,6}\b", p)]
        row[10] = np.log1p(max(nums)) if nums else 0.0
    return out
