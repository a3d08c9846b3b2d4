"""Property-based fuzzing of a running gateway: no request body or header set, however
hostile, gets a 5xx, a non-OpenAI error body, or leaves the queue or a slot behind."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fake_upstream import FakeEngine, ServerThread

MODES = [
    pytest.param({"backend": "vllm"}, id="vllm"),
    pytest.param({"backend": "vllm", "max_in_flight": 1}, id="vllm-held"),
    pytest.param({"backend": "sglang"}, id="sglang"),
    pytest.param({"backend": "fifo", "max_in_flight": 1}, id="fifo"),
]
POLICIES = ["ssjf", "fcfs", "hrrn"]
# Every mode x policy the config accepts: hrrn needs the gateway-held queue (its order
# changes while requests wait), and its refusal elsewhere is tested in test_ordering.
CASES = [
    pytest.param(mode.values[0], policy, id=f"{mode.id}-{policy}")
    for mode in MODES
    for policy in POLICIES
    if policy != "hrrn" or "max_in_flight" in mode.values[0]
]
PATHS = ["/v1/completions", "/v1/chat/completions"]

# --- JSON text fragments: bodies are assembled as text, so they can hold what Python's
# json.dumps never writes (1,000-digit numbers, NaN, nesting past its recursion limit).


def _dump(value: Any) -> str:
    return json.dumps(value)  # ensure_ascii: lone surrogates become \ud800 escapes


def _weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``options``, each drawn about ``weight`` times as often."""
    return st.sampled_from([s for w, s in options for _ in range(w)]).flatmap(lambda s: s)


_text = st.text(max_size=30)
_surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
#: Text with a lone surrogate somewhere (json.dumps writes it as a \udXXX escape).
_bad_text = st.tuples(_text, _surrogate, _text).map("".join)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
#: Numbers no bounded field accepts, and text Python's json.dumps would never write.
_HOSTILE = [
    "0",
    "-1",
    str(-(2**63)),
    str(2**20 + 1),
    str(2**64),
    "9" * 400,
    "9" * 1000,
    "9" * 5000,
    "-" + "9" * 1000,
    "1e400",
    "-1e999",
    "NaN",
    "Infinity",
    "1.5",
    "true",
    "false",
    "null",
    '""',
    '"16"',
    "[]",
    "{}",
    '"\\ud800"',
    '"x\\udfff"',
    '"\\udc00\\ud800"',
]
_hostile = _weighted(
    (4, _json_value.map(_dump)),
    (4, st.sampled_from(_HOSTILE)),
    (1, _bad_text.map(_dump)),
    (1, st.integers(1, 40).map(lambda d: "[" * d + "]" * d)),
    (1, st.integers(1, 40).map(lambda d: '{"a":' * d + "1" + "}" * d)),
    (1, st.sampled_from([3_000, 20_000]).map(lambda d: "[" * d + "]" * d)),
)
#: max_tokens steers the fake engine's work: small when valid, else out of range/type.
_max_tokens = st.one_of(
    st.integers(1, 8).map(str),
    st.sampled_from([h for h in _HOSTILE if h not in ("null",)]),
    _json_value.filter(lambda v: type(v) is not int).map(_dump),
)
_KNOWN = [
    "model",
    "prompt",
    "messages",
    "max_completion_tokens",
    "n",
    "best_of",
    "n_predict",
    "stream",
    "stream_options",
    "priority",
    "service_tier",
    "temperature",
    "stop",
    "seed",
    "user",
    "tools",
]
#: Unknown fields: any name but the fake engine's own steering fields (fake_*).
_unknown_key = st.text(max_size=12).filter(lambda k: not k.startswith("fake"))


@st.composite
def _request(draw: st.DrawFn) -> tuple[str, bytes]:
    """(path, body): a valid-ish completions or chat body for the path, with hostile
    variants of its fields; now and then the other route's body, or raw bytes."""
    path = draw(st.sampled_from(PATHS))
    # Hypothesis leans to the first option and to 0s: the plain case comes first.
    kind = draw(st.sampled_from(["path", "path", "path", "path", "other", "raw"]))
    if kind == "raw":
        return path, draw(st.binary(max_size=64))
    chat = (path == PATHS[1]) == (kind == "path")
    model = draw(st.sampled_from(["tiny", "tiny", "tiny", "tiny", "m" * 300]))
    fields: dict[str, str] = {"model": _dump(model)}
    if not chat:
        prompt = draw(
            st.one_of(
                _text,
                st.lists(_text, max_size=3),
                st.lists(st.integers(0, 50_000), max_size=5),
            )
        )
        fields["prompt"] = _dump(prompt)
    else:
        content = draw(st.one_of(_text, st.lists(st.fixed_dictionaries({"text": _text}))))
        fields["messages"] = _dump([{"role": "user", "content": content}])
    fields["max_tokens"] = draw(_weighted((3, st.integers(1, 8).map(str)), (1, _max_tokens)))
    if draw(st.booleans()):
        fields["stream"] = "true"
        if draw(st.booleans()):
            fields["stream_options"] = '{"include_usage": true}'
    for key in draw(st.lists(st.sampled_from(_KNOWN), max_size=2, unique=True)):
        fields[key] = draw(_hostile)
    for key in draw(st.lists(_unknown_key, max_size=2, unique=True)):
        value = draw(_weighted((3, _json_value.map(_dump)), (1, _hostile)))
        fields.setdefault(key, value)
    text = "{" + ",".join(f"{_dump(k)}:{v}" for k, v in fields.items()) + "}"
    if draw(st.integers(0, 9)) == 9:  # truncated mid-body
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if draw(st.integers(0, 4)) == 4:  # UTF-8 on the wire, surrogates encoded raw (invalid)
        try:
            raw = json.dumps(json.loads(text), ensure_ascii=False)
        except (ValueError, RecursionError):
            pass  # not JSON that Python round-trips: sent as it is
        else:
            return path, raw.encode("utf-8", "surrogatepass")
    return path, text.encode()


_HEADER_NAMES = [
    "x-request-id",
    "priority",
    "x-vllm-priority",
    "x-priority",
    "authorization",
    "x-tenant-id",
    "openai-organization",
    "user-agent",
    "accept",
    "content-type",
]
_header_value = st.text(
    alphabet=string.ascii_letters + string.digits + " -_.:/=+,;*()", max_size=40
).map(str.strip)
_headers = st.dictionaries(
    st.sampled_from(_HEADER_NAMES) | st.from_regex(r"x-[a-z0-9-]{1,20}", fullmatch=True),
    _header_value,
    max_size=4,
)


# --- the engine and the property ---------------------------------------------------------


@pytest.fixture(scope="module")
def tolerant_engine() -> Iterator[str]:
    """The fake engine, answering 400 (as a real engine would) to bodies it cannot read,
    so that any 5xx the fuzzer sees is the gateway's own."""
    from starlette.responses import JSONResponse

    fake = FakeEngine()
    app = fake.app()

    async def unreadable(request: Any, exc: Exception) -> JSONResponse:
        err = {"message": f"fake engine: {type(exc).__name__}", "type": "invalid_request_error"}
        return JSONResponse({"error": {**err, "param": None, "code": None}}, status_code=400)

    app.add_exception_handler(Exception, unreadable)
    server = ServerThread(app).start()
    yield server.url
    server.stop(force=True)


def _check_error_shape(r: httpx.Response) -> None:
    try:
        err = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(
            f"{r.status_code} without an OpenAI error body: {r.text[:200]!r}"
        ) from None
    assert isinstance(err, dict) and {"message", "type", "param", "code"} <= set(err), err


@pytest.mark.parametrize(("mode", "policy"), CASES)
def test_no_request_breaks_the_gateway(tolerant_engine, start_gateway, mode, policy):
    gw = start_gateway(upstreams=[tolerant_engine], policy=policy, **mode)
    idle = lambda g: g.dispatcher.queue_len == 0 and g.dispatcher.in_flight == 0  # noqa: E731

    with httpx.Client(base_url=gw.url, timeout=20.0) as client:

        @settings(
            max_examples=60,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(request=_request(), headers=_headers)
        def one_request(request: tuple[str, bytes], headers: dict[str, str]) -> None:
            path, body = request
            r = client.post(path, content=body, headers=headers)
            assert r.status_code < 500, (r.status_code, r.text[:300], body[:200])
            if r.status_code >= 400:
                _check_error_shape(r)
            gw.wait_for(idle, timeout=5.0)

        one_request()
