"""One ordering path: every backend receives the configured policy's order, guard included."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate
from ssjf.gateway.backends import available_backends, make_backend
from ssjf.gateway.config import ConfigError, load_config
from ssjf.gateway.ordering import TIER_STRIDE, EngineOrdering
from ssjf.policies import make_policy
from ssjf.queue import StarvationGuard, WaitingQueue
from ssjf.request import Request

_ids = itertools.count()


def _req(arrival: float, tokens: float, tier: int = 0) -> Request:
    return Request(
        id=next(_ids),
        arrival=arrival,
        prompt_tokens=1,
        estimate=LengthEstimate(point=tokens),
        tier=tier,
    )


def _ordering(**settings) -> EngineOrdering:
    cfg = load_config(None, environ={}, settings={"upstreams": ["http://a"], **settings})
    return EngineOrdering.from_config(cfg, epoch=0.0)


def _sent_priority(backend: str, key: int | None, **settings) -> object:
    cfg = load_config(None, {"upstreams": ["http://a"], "backend": backend, **settings}, environ={})
    body: dict = {"prompt": "x"}
    headers = make_backend(cfg).prepare(body, key, stream=False, add_usage=False)
    return body.get("priority"), headers


def test_fcfs_sends_equal_keys_whatever_the_prediction():
    o = _ordering(policy="fcfs")
    keys = {o.key(_req(t, n)) for t, n in ((0.0, 5), (1.0, 5000), (2.0, 1))}
    assert keys == {0}


def test_ssjf_without_guard_is_the_bucketed_prediction():
    o = _ordering(max_wait_s=None, wait_factor=None, priority_bucket_tokens=10)
    assert [o.key(_req(0.0, n)) for n in (5, 95, 400, 10**9)] == [0, 9, 40, 1024]


def test_hrrn_has_no_static_key_and_needs_the_gateway_queue():
    with pytest.raises(ConfigError, match="max_in_flight"):
        load_config(None, {"upstreams": ["http://a"], "policy": "hrrn"}, environ={})
    o = _ordering(policy="hrrn", max_in_flight=2)
    assert o.key(_req(0.0, 10)) is None


@settings(max_examples=200, deadline=None)
@given(
    jobs=st.lists(
        st.tuples(st.floats(0, 300), st.floats(1, 20_000)), min_size=2, max_size=30, unique=True
    ),
    max_wait=st.floats(1, 120),
    factor=st.floats(0.5, 10),
)
def test_guarded_keys_bound_every_wait(jobs, max_wait, factor):
    """With the guard on, a request is never behind one that arrived after its deadline."""
    o = _ordering(max_wait_s=max_wait, wait_factor=factor)
    reqs = [_req(t, n) for t, n in jobs]
    keys = {id(r): o.key(r) for r in reqs}
    unit = o.time_unit_s
    for a in reqs:
        for b in reqs:
            if b.arrival > a.arrival + max_wait + unit:
                assert keys[id(a)] <= keys[id(b)], (a, b)


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.floats(1, 20_000), min_size=2, max_size=30),
    factor=st.floats(0.5, 10),
)
def test_guarded_keys_keep_shortest_first_among_simultaneous_arrivals(tokens, factor):
    o = _ordering(max_wait_s=1e9, wait_factor=factor, priority_time_unit_s=1e-9)
    reqs = [_req(5.0, n) for n in tokens]
    for a in reqs:
        for b in reqs:
            if a.predicted_tokens < b.predicted_tokens:
                assert o.key(a) <= o.key(b)


def test_gateway_queue_and_engine_keys_agree_on_the_order():
    """The gateway-held queue (WaitingQueue) and the engine key sort alike (no guard firing)."""
    o = _ordering(max_wait_s=None, wait_factor=None, priority_bucket_tokens=1)
    reqs = [_req(0.0, n) for n in (50, 10, 40, 20, 30)]
    q = WaitingQueue(make_policy("ssjf"), StarvationGuard())
    for r in reqs:
        q.add(r, 0.0)
    popped = [q.pop(0.0) for _ in reqs]
    assert popped == sorted(reqs, key=o.key)


def test_tiers_come_before_the_policy_key():
    o = _ordering()
    urgent_long = _req(100.0, 10_000, tier=-1)
    plain_short = _req(0.0, 1)
    assert o.key(urgent_long) < o.key(plain_short)
    assert o.key(_req(0.0, 1, tier=1)) >= TIER_STRIDE


@pytest.mark.parametrize("backend", ["vllm", "sglang"])
def test_every_priority_backend_sends_the_same_order(backend):
    keys = [3, 17, 0, 1200]
    sent = [_sent_priority(backend, k)[0] for k in keys]
    if backend == "sglang":  # SGLang's default: larger is more important
        sent = [-s for s in sent]
    assert sent == keys
    low_first = [_sent_priority(backend, k, sglang_low_priority_values_first=True)[0] for k in keys]
    assert low_first == keys


def test_vllm_header_carries_the_same_key():
    prio, headers = _sent_priority("vllm", 42, vllm_priority_header=True)
    assert prio == 42 and headers == {"X-Vllm-Priority": "42"}


def test_backends_without_priorities_send_none():
    for backend, extra in (("fifo", {"max_in_flight": 1}), ("vllm", {"max_in_flight": 1})):
        settings = dict(extra)
        if backend == "vllm":
            settings["vllm_scheduling_policy"] = "fcfs"
        assert _sent_priority(backend, 7, **settings)[0] is None


def test_backend_registry_lists_the_builtins():
    assert {"vllm", "sglang", "fifo"} <= set(available_backends())
    with pytest.raises(ConfigError, match="backend 'nope' is unknown"):
        load_config(None, {"upstreams": ["http://a"], "backend": "nope"}, environ={})


def test_default_config_bounds_every_wait():
    cfg = load_config(None, {"upstreams": ["http://a"]}, environ={})
    assert cfg.max_wait_s is not None and cfg.max_in_flight is None
    o = EngineOrdering.from_config(cfg, epoch=0.0)
    long_early = _req(0.0, 50_000)
    short_late = _req(cfg.max_wait_s + 1.0, 1)
    assert o.key(long_early) < o.key(short_late)


def test_hrrn_in_the_gateway_uses_the_guards_time_unit():
    from ssjf.gateway.core import Gateway

    cfg = load_config(
        None,
        environ={},
        settings={
            "upstreams": ["http://a"],
            "policy": "hrrn",
            "max_in_flight": 1,
            "seconds_per_token": 0.05,
        },
    )
    assert Gateway(cfg).dispatcher.queue.policy.seconds_per_token == 0.05
