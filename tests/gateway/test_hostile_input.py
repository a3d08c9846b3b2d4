"""Request bodies that cannot break or game the gateway: parse_request's rules, and the
gateway-level regressions each rule fixes (every one was a 500 or a queue-jump once)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from ssjf.gateway.config import GatewayConfig
from ssjf.gateway.errors import GatewayError
from ssjf.gateway.schemas import BodyLimits, ParsedRequest, parse_request

from .helpers import completion, post_json

LIMIT = 1 << 20
HUGE = 10**1000  # 1,000 digits: float() overflows on it
SECRET = "do-not-echo-" * 20


def _enc(body: dict[str, Any]) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a hostile client sends them.
    return json.dumps(body).encode()


def _parse(body: dict[str, Any] | bytes, chat: bool = False, **limits: Any) -> ParsedRequest:
    raw = body if isinstance(body, bytes) else _enc(body)
    return parse_request(raw, chat, BodyLimits(**limits) if limits else None)


def _refused(body: dict[str, Any] | bytes, chat: bool = False, **limits: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        _parse(body, chat, **limits)
    err = info.value
    assert err.status == 400 and err.type == "invalid_request_error"
    # Helpful but short: never more than a short quote of the client's input.
    assert len(err.message) < 300 and SECRET[:40] not in err.message
    json.dumps(err.body()).encode()  # the message itself is always encodable
    return err


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **extra}


# --- BodyLimits ------------------------------------------------------------------------


def test_body_limits_defaults_are_the_config_defaults():
    fields = ("max_tokens_limit", "max_n", "max_json_depth", "max_model_chars")
    defaults = GatewayConfig.model_fields
    assert {f: getattr(BodyLimits(), f) for f in fields} == {f: defaults[f].default for f in fields}
    cfg = GatewayConfig(upstreams=["http://x"], max_n=2, max_model_chars=5)
    assert BodyLimits.from_config(cfg) == BodyLimits(max_n=2, max_model_chars=5)


def test_old_signature_still_works():
    p = parse_request(_enc(completion("hello", max_tokens=7)), False)
    assert (p.max_tokens, p.n, p.client_priority, p.service_tier) == (7, 1, None, None)
    assert p.work_limit == 7


# --- bounded integers ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens", "n_predict"])
@pytest.mark.parametrize("value", [0, -3, LIMIT + 1, 10**400, HUGE, True, 1.5, "5", [1], {}])
def test_output_limits_are_bounded_integers(name, value):
    if name == "n_predict" and value in (0, -3):
        value = -3  # n_predict <= 0 is llama.cpp's "no limit"; only -1, -2 are meant
    err = _refused(_chat(**{name: value}), chat=True)
    assert err.param == name and name in err.message


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_output_limits_accept_their_bounds(name):
    assert _parse(_chat(**{name: 1}), chat=True).max_tokens == 1
    assert _parse(_chat(**{name: LIMIT}), chat=True).max_tokens == LIMIT
    assert _parse(_chat(**{name: 8}), chat=True, max_tokens_limit=8).max_tokens == 8
    assert _refused(_chat(**{name: 9}), chat=True, max_tokens_limit=8).param == name


def test_error_messages_describe_huge_values_without_printing_them():
    err = _refused(completion("x", max_tokens=HUGE))
    assert "about 1001 digits" in err.message or "about 1000 digits" in err.message
    assert "must be between 1 and 1048576" in err.message


@pytest.mark.parametrize(
    ("fields", "chat", "limit"),
    [
        ({"max_tokens": 1, "max_completion_tokens": 1500}, True, 1500),
        ({"max_tokens": 1500, "max_completion_tokens": 1}, True, 1500),
        ({"max_completion_tokens": 30}, True, 30),
        ({"max_tokens": 30}, True, 30),
        ({}, True, None),
        ({"max_tokens": 5, "max_completion_tokens": 50}, False, 50),
        # Completions engines never read max_completion_tokens: their default applies.
        ({"max_completion_tokens": 50}, False, None),
        # llama.cpp reads n_predict first; <= 0 there means "until the context is full".
        ({"max_tokens": 5, "n_predict": 100}, False, 100),
        ({"max_tokens": 5, "n_predict": -1}, False, None),
        ({"max_completion_tokens": 5, "n_predict": -1}, True, None),
    ],
)
def test_max_tokens_is_the_larger_limit_the_engine_may_apply(fields, chat, limit):
    body = _chat(**fields) if chat else {"prompt": "x", **fields}
    p = _parse(body, chat=chat)
    assert p.max_tokens == limit
    assert p.body == body  # limits are read, never rewritten


@pytest.mark.parametrize("name", ["n", "best_of"])
@pytest.mark.parametrize("value", [0, -1, 17, HUGE, True, 2.0, "3", None])
def test_n_and_best_of_are_bounded(name, value):
    if value is None:  # null is "not given"
        assert _parse(completion("x", **{name: None})).n == 1
        return
    assert _refused(completion("x", **{name: value})).param == name


def test_n_counts_every_sequence_generated():
    p = _parse(completion("x", max_tokens=100, n=3))
    assert (p.n, p.work_limit) == (3, 300)
    p = _parse(_chat(max_tokens=10, n=2, best_of=5), chat=True)
    assert (p.n, p.work_limit) == (5, 50)
    assert _parse(completion("x", best_of=4)).n == 4
    assert _parse(completion("x", n=16)).n == 16
    assert _parse({"prompt": "x", "n": 3}).work_limit is None  # no limit: the engine's default
    assert _refused(completion("x", n=4, best_of=2)).param == "best_of"
    assert _refused(completion("x", n=3), max_n=2).param == "n"


# --- nesting depth ---------------------------------------------------------------------


def _nested(depth: int) -> str:
    """JSON text of a list nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_refused():
    # The body object is level 1, so a list under it may nest max_json_depth - 1 deep.
    ok = ('{"prompt": "x", "extra": ' + _nested(31) + "}").encode()
    assert _parse(ok).body["extra"] == json.loads(_nested(31))
    err = _refused(('{"prompt": "x", "extra": ' + _nested(32) + "}").encode())
    assert "nested deeper than 32" in err.message
    _refused(('{"prompt": "x", "extra": ' + _nested(5) + "}").encode(), max_json_depth=5)
    # Objects count as much as lists, in any field.
    deep_obj = '{"a":' * 40 + "1" + "}" * 40
    _refused(('{"prompt": "x", "tools": [' + deep_obj + "]}").encode())


@pytest.mark.parametrize("depth", [100, 999, 5_000, 100_000])
def test_deep_nesting_is_a_400_at_any_depth(depth):
    # Under ~1,000 json.loads succeeds (the walk refuses); above it raises RecursionError.
    _refused(('{"prompt": "x", "extra": ' + _nested(depth) + "}").encode())


def test_many_brackets_inside_strings_are_not_nesting():
    p = _parse(completion("[{" * 1000))
    assert p.prompt == "[{" * 1000


# --- Unicode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        completion(SECRET + "\ud800"),
        completion([SECRET, "\udfff tail"]),
        completion("x", extra={"deep": [["\ud83d"]]}),
        completion("x", **{"key\udc00": 1}),
        _chat(messages=[{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}]),
    ],
)
def test_lone_surrogates_anywhere_are_a_400(body):
    chat = "messages" in body
    err = _refused(body, chat=chat)
    assert "not valid Unicode (lone surrogate" in err.message


def test_encoded_surrogates_are_invalid_utf8():
    # json.loads(bytes) would decode ED A0 80 as a lone surrogate ("surrogatepass").
    err = _refused(b'{"prompt": "\xed\xa0\x80"}')
    assert "not valid UTF-8" in err.message
    assert "not valid UTF-8" in _refused(b'{"prompt": "\xff"}').message


def test_valid_unicode_passes():
    emoji = json.dumps({"prompt": "smile \U0001f600 caf\u00e9"}).encode()  # \ud83d\ude00 pair
    assert "\U0001f600" in _parse(emoji).prompt
    raw = json.dumps({"prompt": "é ✓ 日本"}, ensure_ascii=False).encode("utf-8")
    assert _parse(raw).prompt == "é ✓ 日本"
    assert _parse(b"\xef\xbb\xbf" + raw).prompt == "é ✓ 日本"  # a UTF-8 BOM is tolerated


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_json_numbers_are_refused(text):
    # Python would parse them and forward `NaN`/`Infinity`, which no JSON engine reads.
    _refused(('{"prompt": "x", "temperature": ' + text + "}").encode())


def test_numbers_past_pythons_digit_limit_are_a_400():
    err = _refused(b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}")
    assert "too many digits" in err.message and "sys." not in err.message


# --- model, service_tier, priority -----------------------------------------------------


def test_model_must_be_a_short_string():
    assert _parse(completion("x", model="m" * 256)).model == "m" * 256
    err = _refused(completion("x", model=SECRET * 20))
    assert err.param == "model" and "limit is 256" in err.message
    assert _refused(completion("x", model="abcdef"), max_model_chars=5).param == "model"
    for bad in (123, ["m"], {"id": "m"}, True):
        assert _refused(completion("x", model=bad)).param == "model"
    assert _parse({"prompt": "x", "model": None}).model is None


def test_client_priority_is_removed_and_recorded():
    p = _parse(completion("x", priority=-1000))
    assert p.client_priority == -1000 and "priority" not in p.body
    p = _parse(_chat(priority=None), chat=True)
    assert p.client_priority is None and "priority" not in p.body
    for bad in (1 << 32, -(1 << 32), HUGE, True, 1.0, "high"):
        assert _refused(completion("x", priority=bad)).param == "priority"
    assert _parse(completion("x", priority=1 << 31)).client_priority == 1 << 31


def test_service_tier_is_recorded_and_forwarded():
    p = _parse(completion("x", service_tier="flex"))
    assert p.service_tier == "flex" and p.body["service_tier"] == "flex"
    assert _refused(completion("x", service_tier=3)).param == "service_tier"
    assert _refused(completion("x", service_tier="t" * 300)).param == "service_tier"


# --- gateway-level regressions ---------------------------------------------------------


def _error(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


def _idle(gw: Any) -> None:
    gw.wait_for(lambda g: g.dispatcher.queue_len == 0 and g.dispatcher.in_flight == 0)


@pytest.mark.parametrize("policy", ["hrrn", "fcfs", "ssjf"])
def test_huge_max_tokens_cannot_poison_the_gateway_queue(engine, start_gateway, policy):
    """Once a 1,000-digit max_tokens entered the queue: hrrn 500'd every later request,
    fcfs stalled with a free slot."""
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1, policy=policy)
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(post_json, url, completion("held", fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        bad = completion("x" * 900, max_tokens=1)
        raw = json.dumps(bad).replace('"max_tokens": 1', '"max_tokens": ' + "9" * 1000).encode()
        r = httpx.post(url, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and _error(r)["param"] == "max_tokens"
        queued = pool.submit(post_json, url, completion("after"))
        gw.wait_for(lambda g: g.dispatcher.queue_len == 1)
        fake.gate.set()
        assert held.result().status_code == 200
        assert queued.result().status_code == 200
    for _ in range(3):
        assert post_json(url, completion("later")).status_code == 200
    _idle(gw)


def test_400_digit_max_tokens_is_a_json_400_not_a_plain_500(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    for digits in (400, 4_000, 10_000):
        raw = b'{"prompt": "x", "max_tokens": ' + b"9" * digits + b"}"
        r = httpx.post(gw.url + "/v1/completions", content=raw)
        assert r.status_code == 400, (digits, r.text[:200])
        assert _error(r)["type"] == "invalid_request_error"
    assert len(fake.received) == 0
    assert post_json(gw.url + "/v1/completions", completion("ok")).status_code == 200
    _idle(gw)


@pytest.mark.parametrize("depth", [40, 3_000])
def test_deep_json_is_a_400_at_the_gateway(engine, start_gateway, depth):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    for path, head in (
        ("/v1/completions", '{"prompt": "x", "extra": '),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "x"}], "extra": '),
    ):
        r = httpx.post(gw.url + path, content=(head + _nested(depth) + "}").encode())
        assert r.status_code == 400, r.text[:200]
        assert "nested" in _error(r)["message"]
    assert len(fake.received) == 0
    assert post_json(gw.url + "/v1/completions", completion("ok")).status_code == 200
    _idle(gw)


def test_lone_surrogate_is_a_400_that_echoes_nothing(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1)
    cases = [
        ("/v1/completions", completion(SECRET + "\ud800")),
        ("/v1/chat/completions", _chat(messages=[{"role": "user", "content": SECRET + "\udc00"}])),
    ]
    for path, body in cases:
        r = httpx.post(gw.url + path, content=_enc(body))
        assert r.status_code == 400, r.text[:200]
        assert "lone surrogate" in _error(r)["message"]
        assert SECRET[:24] not in r.text
    assert len(fake.received) == 0
    assert post_json(gw.url + "/v1/completions", completion("ok")).status_code == 200
    _idle(gw)


def test_max_completion_tokens_cannot_shrink_the_estimate(engine, start_gateway):
    """max_tokens: 1 + max_completion_tokens: 1500 was scheduled as a 1-token job while
    vLLM generated 1,500 tokens."""
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    body = _chat(max_tokens=1, max_completion_tokens=1500, temperature=0.5)
    r = post_json(gw.url + "/v1/chat/completions", body)
    assert r.status_code == 200, r.text[:200]
    sent = {k: v for k, v in fake.received[-1].items() if k != "priority"}
    assert sent == body  # both limits forwarded untouched
    # No predictor: the fallback (256) capped by the larger limit, not by 1.
    assert float(r.headers["x-ssjf-predicted-tokens"]) > 1
    _idle(gw)


def test_n_is_scheduled_as_n_completions_of_work(engine, start_gateway):
    """n: 3 was scheduled as one completion's work."""
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    one = post_json(gw.url + "/v1/completions", completion("x", max_tokens=100))
    three = post_json(gw.url + "/v1/completions", completion("x", max_tokens=100, n=3))
    assert one.status_code == three.status_code == 200
    p1 = float(one.headers["x-ssjf-predicted-tokens"])
    p3 = float(three.headers["x-ssjf-predicted-tokens"])
    assert p3 == pytest.approx(3 * p1)


@pytest.mark.parametrize(
    "settings",
    [
        {"backend": "vllm"},
        {"backend": "vllm", "vllm_priority_header": True},
        {"backend": "sglang"},
        {"backend": "fifo", "max_in_flight": 1},
    ],
    ids=["vllm", "vllm-header", "sglang", "fifo"],
)
def test_client_priority_never_reaches_the_engine(engine, start_gateway, settings):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], **settings)
    for path, body in (
        ("/v1/completions", completion("x", priority=-1000)),
        ("/v1/chat/completions", _chat(priority=-1000, max_tokens=2)),
    ):
        r = httpx.post(gw.url + path, json=body, headers={"X-Vllm-Priority": "-1000"})
        assert r.status_code == 200, r.text[:200]
        sent, headers = fake.received[-1], fake.headers[-1]
        assert sent.get("priority") != -1000
        if settings["backend"] == "fifo":
            assert "priority" not in sent
        assert headers.get("x-vllm-priority") != "-1000"
        assert {k: v for k, v in sent.items() if k != "priority"} == {
            k: v for k, v in body.items() if k != "priority"
        }
    r = post_json(gw.url + "/v1/completions", completion("x", priority=1 << 40))
    assert r.status_code == 400 and _error(r)["param"] == "priority"
    _idle(gw)


# -- review findings: fields that change how much the engine generates ------------


def test_a_batch_of_prompts_is_that_many_sequences():
    parsed = parse_request(
        json.dumps({"prompt": ["a", "b", "c"], "max_tokens": 4, "n": 2}).encode(), False
    )
    assert parsed.n == 6 and parsed.work_limit == 24
    ids = parse_request(json.dumps({"prompt": [[1, 2], [3]], "max_tokens": 4}).encode(), False)
    assert ids.n == 2
    with pytest.raises(GatewayError, match="batch of 17 prompts") as e:
        parse_request(json.dumps({"prompt": ["a"] * 17}).encode(), False)
    assert e.value.status == 400


def test_min_tokens_and_ignore_eos_set_a_floor():
    p = parse_request(
        json.dumps({"prompt": "x", "max_tokens": 900, "min_tokens": 500}).encode(), False
    )
    assert p.min_output == 500
    p = parse_request(
        json.dumps({"prompt": "x", "max_tokens": 900, "ignore_eos": True}).encode(), False
    )
    assert p.min_output == 900
    # Without max_tokens the engine's default limit applies: a long forced job, never short.
    p = parse_request(json.dumps({"prompt": "x", "ignore_eos": True}).encode(), False)
    assert p.max_tokens is None and p.min_output == BodyLimits().max_tokens_limit
    with pytest.raises(GatewayError):
        parse_request(json.dumps({"prompt": "x", "ignore_eos": "yes"}).encode(), False)


def test_min_tokens_cannot_jump_the_queue(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], fallback_tokens=30)
    for extra, floor in (({"min_tokens": 700}, 700.0), ({"ignore_eos": True}, 800.0)):
        body = {"model": "m", "prompt": "short", "max_tokens": 800, **extra}
        r = post_json(gw.url + "/v1/completions", body)
        assert r.status_code == 200
        assert float(r.headers["x-ssjf-predicted-tokens"]) == floor
