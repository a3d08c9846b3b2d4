"""Features of an LLM's *name*: what a predictor can know about a model it never saw answer.

A per-model map (:mod:`ssjf.predict.conditioning`) needs a model's own records; a
model that is new to the predictor has none. Its name still says a lot: the family
(``Qwen2.5-72B-Instruct`` answers like other Qwens), the size (``8x7B`` = 56B),
whether it is a reasoning model (``o1-mini``, ``DeepSeek-R1``, ``QwQ``: long
answers), an instruct/chat tune, a small/fast tier (``mini``, ``turbo``,
``flash``) or a prompted style (``concise`` / ``verbose``). A provider suffix
(``@together``) and an organisation prefix (``mistralai/``) say nothing about
the answers and are ignored.

:func:`name_features` turns a name into a fixed-length vector (:data:`FEATURE_NAMES`);
a ridge over the seen models maps it to their affine maps. Never raises: any text
is a name (unknown parts simply set no feature).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

#: Families and the token prefixes that name them, checked in order (fine-tunes first:
#: ``vicuna`` is a Llama, but answers like Vicuna). The first match wins.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vicuna", ("vicuna",)),
    ("tulu", ("tulu",)),
    ("wizardlm", ("wizard",)),
    ("alpaca", ("alpaca",)),
    ("zephyr", ("zephyr",)),
    ("starling", ("starling",)),
    ("athene", ("athene",)),
    ("llama", ("llama", "codellama")),
    ("mistral", ("mistral", "mixtral", "codestral", "ministral")),
    ("qwen", ("qwen", "qwq")),
    ("gemma", ("gemma",)),
    ("gemini", ("gemini", "bard", "palm")),
    ("claude", ("claude",)),
    ("gpt4", ("gpt4",)),
    ("gpt35", ("gpt3", "chatgpt")),
    ("davinci", ("davinci",)),
    ("openai_o", ("o1", "o3", "o4")),
    ("phi", ("phi",)),
    ("yi", ("yi",)),
    ("deepseek", ("deepseek",)),
    ("command", ("command", "cohere", "aya")),
    ("reka", ("reka",)),
    ("falcon", ("falcon",)),
    ("dbrx", ("dbrx",)),
    ("nemotron", ("nemotron",)),
    ("granite", ("granite",)),
    ("olmo", ("olmo",)),
    ("internlm", ("internlm",)),
    ("glm", ("glm", "chatglm")),
)
#: Tokens that must match a whole token, not a prefix ("yi" is not "yield", "phi" is
#: not "philosopher", "o1" is not "o100").
_EXACT = {"yi", "o1", "o3", "o4", "aya", "phi"}

FLAGS = ("reasoning", "instruct", "chat", "small", "concise", "verbose", "base")
#: Column names of :func:`name_features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    *(f"family={f}" for f, _ in FAMILIES),
    "log_params",
    "has_params",
    *FLAGS,
)

_REASONING = re.compile(r"^(?:o[134](?:$|\d)|r1|qwq|reason\w*|think\w*|thinking|deepthink)$")
_SMALL = {"mini", "small", "turbo", "flash", "haiku", "instant", "nano", "lite", "tiny", "air"}
_SIZE_MOE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*([bm])\b")
#: Names are read up to this length: real ones are short, and a client-chosen name must
#: not cost more than a bounded parse.
MAX_NAME_CHARS = 256
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])\b")
#: The centre of the size feature: a 30B model reads 0, each factor 10 one unit.
_SIZE_CENTRE_B = 30.0


@dataclass(frozen=True, slots=True)
class ModelName:
    """A parsed model name (what :func:`name_features` encodes)."""

    family: str | None
    params_b: float | None  # parameter count in billions (``8x7b`` -> 56)
    flags: frozenset[str]


def _normalise(name: str) -> str:
    s = name.lower().split("@", 1)[0]  # provider suffix: the same model, served elsewhere
    s = s.rsplit("/", 1)[-1] if "/" in s else s  # organisation prefix
    # "gpt-4", "gpt_4o", "chatgpt-4o-latest" -> "gpt4..."; "gpt-3.5" -> "gpt3.5"
    s = re.sub(r"(?:chat)?gpt[-_ ]?(\d)", r"gpt\1", s)
    return s


def _matches(token: str, prefix: str) -> bool:
    """A family token: a prefix, or for short ambiguous ones the whole token with an
    optional version ("phi3", "phi3.5", "o1" but not "philosopher" or "yield")."""
    if prefix in _EXACT:
        return token == prefix or (
            token.startswith(prefix)
            and re.fullmatch(r"[\d.]+", token[len(prefix) :]) is not None
            and prefix not in ("o1", "o3", "o4")
        )
    return token.startswith(prefix)


def _tokens(s: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9.]+", s) if t]


def parse_model_name(name: object) -> ModelName:
    """Family, size and flags of ``name`` (any object: non-strings read as empty)."""
    s = _normalise(name[:MAX_NAME_CHARS]) if isinstance(name, str) else ""
    toks = _tokens(s)
    family = None
    for fam, prefixes in FAMILIES:
        if any(_matches(t, p) for t in toks for p in prefixes):
            family = fam
            break
    params = None
    moe = _SIZE_MOE.search(s)
    if moe:
        params = float(moe.group(1)) * float(moe.group(2)) / (1000.0 if moe.group(3) == "m" else 1)
    else:
        sizes = [
            float(m.group(1)) / (1000.0 if m.group(2) == "m" else 1.0) for m in _SIZE.finditer(s)
        ]
        params = max(sizes) if sizes else None
    if params is not None and not (math.isfinite(params) and params > 0):
        params = None
    flags = set()
    if any(_REASONING.match(t) for t in toks) or family == "openai_o":
        flags.add("reasoning")
    if any(t.startswith("instruct") or t in ("inst", "it", "sft", "dpo") for t in toks):
        flags.add("instruct")
    if any(t.startswith("chat") for t in toks) or family == "gpt35":
        flags.add("chat")
    if any(t in _SMALL for t in toks):
        flags.add("small")
    if "concise" in toks or "brief" in toks:
        flags.add("concise")
    if "verbose" in toks or "detailed" in toks:
        flags.add("verbose")
    if "base" in toks:
        flags.add("base")
    return ModelName(family=family, params_b=params, flags=frozenset(flags))


def name_features(name: object) -> np.ndarray:
    """One row of :data:`FEATURE_NAMES` for ``name`` (all zeros for an unknown name)."""
    parsed = parse_model_name(name)
    out = np.zeros(len(FEATURE_NAMES))
    if parsed.family is not None:
        out[FEATURE_NAMES.index(f"family={parsed.family}")] = 1.0
    if parsed.params_b is not None:
        # log10 of the size around 30B, clipped: 7B -> -0.63, 405B -> 1.13.
        centred = math.log10(parsed.params_b / _SIZE_CENTRE_B)
        out[FEATURE_NAMES.index("log_params")] = max(-3.0, min(3.0, centred))
        out[FEATURE_NAMES.index("has_params")] = 1.0
    for flag in parsed.flags:
        out[FEATURE_NAMES.index(flag)] = 1.0
    return out


def name_matrix(names: list[str]) -> np.ndarray:
    """:func:`name_features` of each name, stacked (``len(names) x len(FEATURE_NAMES)``)."""
    if not names:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([name_features(n) for n in names])
