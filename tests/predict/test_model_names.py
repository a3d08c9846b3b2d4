"""Model-name features: family, size and flags of names a predictor never saw answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.predict.model_names import (
    FEATURE_NAMES,
    name_features,
    name_matrix,
    parse_model_name,
)

TABLE = [
    # name, family, parameters (billions), flags
    ("Meta-Llama-3.1-405B-Instruct@hyperbolic", "llama", 405.0, {"instruct"}),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral", 56.0, {"instruct"}),
    ("Mixtral-8x22B-Instruct-v0.1", "mistral", 176.0, {"instruct"}),
    ("llama2_chat_13b", "llama", 13.0, {"chat"}),
    ("tulu_65b", "tulu", 65.0, set()),
    ("vicuna-13b-v1.5", "vicuna", 13.0, set()),
    ("Qwen2.5-72B-Instruct", "qwen", 72.0, {"instruct"}),
    ("QwQ-32B-Preview", "qwen", 32.0, {"reasoning"}),
    ("Qwen1.5-0.5B", "qwen", 0.5, set()),
    ("Yi-1.5-34B-Chat", "yi", 34.0, {"chat"}),
    ("gemma-2-9b-it-SimPO", "gemma", 9.0, {"instruct"}),
    ("Phi-3.5-mini-instruct", "phi", None, {"instruct", "small"}),
    ("gpt4_1106_preview_concise", "gpt4", None, {"concise"}),
    ("gpt4_1106_preview_verbose", "gpt4", None, {"verbose"}),
    ("chatgpt-4o-latest-24-09-07", "gpt4", None, set()),
    ("gpt-4o-mini-2024-07-18", "gpt4", None, {"small"}),
    ("gpt-3.5-turbo-0613", "gpt35", None, {"chat", "small"}),
    ("chatgpt", "gpt35", None, {"chat"}),
    ("o1-mini-2024-09-12", "openai_o", None, {"reasoning", "small"}),
    ("claude-3-haiku-20240307", "claude", None, {"small"}),
    ("gemini-1.5-flash-exp-0827", "gemini", None, {"small"}),
    ("DeepSeek-R1", "deepseek", None, {"reasoning"}),
    ("command-r-plus", "command", None, set()),
    ("text_davinci_003", "davinci", None, set()),
    ("foo-reasoning", None, None, {"reasoning"}),
    ("my-thinking-model-7b", None, 7.0, {"reasoning"}),
    ("", None, None, set()),
]


@pytest.mark.parametrize(("name", "family", "params", "flags"), TABLE)
def test_parse_table(name: str, family: str | None, params: float | None, flags: set) -> None:
    parsed = parse_model_name(name)
    assert parsed.family == family
    assert parsed.params_b == (pytest.approx(params) if params is not None else None)
    assert set(parsed.flags) == flags


def test_provider_suffix_is_ignored() -> None:
    base = name_features("Meta-Llama-3.1-70B-Instruct")
    assert np.array_equal(name_features("Meta-Llama-3.1-70B-Instruct@hyperbolic"), base)


def test_prefix_words_are_not_families() -> None:
    # "yi" and "phi" name families only as whole tokens.
    assert parse_model_name("yield-model").family is None
    assert parse_model_name("philosopher-7b").family is None


def test_size_feature_is_monotone() -> None:
    col = FEATURE_NAMES.index("log_params")
    sizes = [name_features(f"x-{b}b")[col] for b in (1, 7, 70, 405)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.none(), st.integers(), st.binary(max_size=10)))
def test_never_raises(name: object) -> None:
    row = name_features(name)
    assert row.shape == (len(FEATURE_NAMES),)
    assert np.all(np.isfinite(row))


def test_matrix_shape() -> None:
    assert name_matrix([]).shape == (0, len(FEATURE_NAMES))
    assert name_matrix(["a", "b-7b"]).shape == (2, len(FEATURE_NAMES))


def test_versioned_short_family_tokens_and_long_names() -> None:
    import time

    assert parse_model_name("phi3").family == "phi"
    assert parse_model_name("phi3.5:3.8b").family == "phi"
    assert parse_model_name("philosopher-7b").family is None
    assert parse_model_name("o100").family is None
    # A client-chosen name of any length parses in bounded time (the size pattern is
    # anchored; names are read up to MAX_NAME_CHARS).
    t0 = time.process_time()
    assert parse_model_name("1" * 50_000 + "x2b").params_b is None
    assert time.process_time() - t0 < 1.0
