"""The policy family of issue 12: service-time keys, MLFQ, LAS, risk, ltr, isrtf."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.runner import make_entry_policy, parse_policies
from ssjf.estimate import LengthEstimate
from ssjf.gateway.config import ConfigError, load_config
from ssjf.gateway.ordering import EngineOrdering
from ssjf.policies import available_policies, make_policy, policy_class
from ssjf.request import Request
from ssjf.service import ServiceTime
from tests.conftest import make_request

#: Prefill dominates: one prompt token costs 1/20 of a decode step.
PREFILL_HEAVY = ServiceTime(decode_s_per_token=0.02, prefill_s_per_token=0.001)
NEW = ("mlfq", "las", "risk", "ltr", "isrtf")


def _build(name: str, **params: object) -> object:
    truth = (lambda r: 100.0) if policy_class(name).oracle else None
    return make_policy(name, truth=truth, **params)


# --- size: tokens | service --------------------------------------------------------------


def test_size_service_puts_a_long_prompt_short_answer_after_a_short_prompt() -> None:
    long_prompt = make_request(1, 0.0, predicted=10, prompt_tokens=20_000)  # 20 s + 0.2 s
    short_prompt = make_request(2, 0.0, predicted=500, prompt_tokens=100)  # 0.1 s + 10 s
    truth = {1: 10.0, 2: 500.0}
    for name in ("ssjf", "ssrpt", "sjf", "srpt", "isrtf"):
        kw = {"truth": lambda r: truth[r.id]} if policy_class(name).oracle else {}
        by_service = make_policy(name, size="service", service=PREFILL_HEAVY, **kw)
        assert by_service.key(short_prompt, 0) < by_service.key(long_prompt, 0), name
        assert by_service.static_unit == "seconds"
        if name != "isrtf":
            by_tokens = make_policy(name, **kw)
            assert by_tokens.key(long_prompt, 0) < by_tokens.key(short_prompt, 0), name
            assert by_tokens.static_unit == "tokens"


@settings(max_examples=200, deadline=None)
@given(
    prompt=st.integers(0, 50_000),
    predicted=st.floats(0, 5_000),
    true_len=st.integers(1, 5_000),
    generated=st.integers(0, 4_999),
    cap=st.none() | st.integers(1, 5_000),
)
def test_service_keys_are_the_service_time(prompt, predicted, true_len, generated, cap) -> None:
    req = Request(0, 0.0, prompt, max_tokens=cap, estimate=LengthEstimate(predicted))
    req.generated = min(generated, true_len - 1)
    svc = PREFILL_HEAVY
    assert make_policy("ssjf", size="service", service=svc).key(req, 0) == svc.total(req)
    assert make_policy("ssrpt", size="service", service=svc).key(req, 0) == svc.remaining(req)
    # isrtf is ssrpt in service time, nothing else.
    assert make_policy("isrtf", service=svc).key(req, 0) == svc.remaining(req)
    sjf = make_policy("sjf", truth=lambda r: float(true_len), size="service", service=svc)
    assert sjf.key(req, 0) == pytest.approx(svc.prefill(prompt) + 0.02 * true_len)
    srpt = make_policy("srpt", truth=lambda r: float(true_len), size="service", service=svc)
    left = svc.prefill(prompt + req.generated) + 0.02 * (true_len - req.generated)
    assert srpt.key(req, 0) == pytest.approx(left)
    assert srpt.key(req, 0) > 0


@pytest.mark.parametrize("name", ["sjf", "ssjf", "srpt", "ssrpt", "isrtf"])
def test_bad_size_names_the_setting(name: str) -> None:
    with pytest.raises(ValueError, match="'size'"):
        _build(name, size="bytes")
    with pytest.raises(ValueError, match="'service'"):
        _build(name, service="fast")


# --- mlfq ---------------------------------------------------------------------------------


def test_mlfq_levels_double_with_attained_service() -> None:
    mlfq = make_policy("mlfq", quantum=10, levels=4, promote_after_s=None)
    # Level i holds generated in [10 (2^i - 1), 10 (2^(i+1) - 1)): 0-9, 10-29, 30-69, 70+.
    assert [mlfq.attained_level(g) for g in (0, 9, 10, 29, 30, 69, 70)] == [0, 0, 1, 1, 2, 2, 3]
    r = make_request(1, 5.0, prompt_tokens=1)
    r.generated = 10_000
    assert mlfq.level(r, 5.0) == 3  # capped at levels - 1
    assert not mlfq.time_dependent and mlfq.static_unit is None


def test_mlfq_skip_join_by_prefill_and_fcfs_within_a_level() -> None:
    # A prompt token costs 1/20 of a decode step: 20,000 tokens = 1000 steps of work.
    mlfq = make_policy("mlfq", quantum=32, promote_after_s=None, service=PREFILL_HEAVY)
    small, big = make_request(1, 9.0, prompt_tokens=100), make_request(2, 0.0, prompt_tokens=20_000)
    assert mlfq.join_level(small) == 0  # 5 + 1 steps <= 32
    assert mlfq.join_level(big) == 5  # 1001 steps: 32 * 2^5 = 1024 covers it
    assert mlfq.key(small, 10) < mlfq.key(big, 10)  # later arrival, higher level
    early = make_request(3, 1.0, prompt_tokens=100)
    assert mlfq.key(early, 10) < mlfq.key(small, 10)  # same level: arrival order
    # With free prefill (the paper's cost model) everyone joins the top level.
    assert make_policy("mlfq").join_level(big) == 0


def test_mlfq_promotion_returns_a_starved_request_to_the_top() -> None:
    mlfq = make_policy("mlfq", quantum=32, promote_after_s=30, service=PREFILL_HEAVY)
    assert mlfq.time_dependent
    big = make_request(2, 0.0, prompt_tokens=20_000)
    fresh = make_request(1, 29.0, prompt_tokens=100)
    assert mlfq.key(fresh, 29.5) < mlfq.key(big, 29.5)
    assert mlfq.key(big, 30.0) < mlfq.key(fresh, 30.0)  # waited 30 s: level 0, earlier arrival
    assert make_policy("mlfq", promote_after_s="none").promote_after_s is None


@pytest.mark.parametrize(
    "bad",
    [{"levels": 0}, {"levels": 2.5}, {"quantum": 0}, {"quantum": "x"}, {"promote_after_s": -1}],
)
def test_mlfq_bad_settings_name_the_setting(bad: dict[str, object]) -> None:
    (setting,) = bad
    with pytest.raises(ValueError, match=f"'{setting}'"):
        make_policy("mlfq", **bad)


# --- las ----------------------------------------------------------------------------------


def test_las_serves_least_attained_then_boosts_waiting() -> None:
    las = make_policy("las", boost=0.5, service=ServiceTime(decode_s_per_token=0.02))
    ran = make_request(1, 0.0)
    ran.generated, ran.enqueued_at = 500, 10.0  # 10 s of service attained, back in queue at 10
    fresh = make_request(2, 12.0)
    assert las.key(fresh, 12.0) < las.key(ran, 12.0)  # 0 vs 10 - 0.5 x 2
    # After waiting 21 s it is boosted past a newcomer: 10 - 0.5 x 21 < 0.
    assert las.key(ran, 31.0) < las.key(make_request(3, 31.0), 31.0)
    pure = make_policy("las", boost=0)
    assert not pure.time_dependent and pure.key(ran, 99.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="'boost'"):
        make_policy("las", boost=-1)


def test_las_without_attained_service_is_fcfs() -> None:
    las = make_policy("las")
    reqs = [make_request(i, float(a)) for i, a in enumerate((3, 1, 2))]
    assert sorted(reqs, key=lambda r: las.key(r, 5.0)) == sorted(reqs, key=lambda r: r.arrival)


# --- risk ---------------------------------------------------------------------------------


def _dist(median: float, hi: float) -> LengthEstimate:
    return LengthEstimate(point=median, quantiles=((0.1, median * 0.5), (0.5, median), (0.9, hi)))


def test_risk_puts_the_uncertain_request_later() -> None:
    risk = make_policy("risk", spread=1.0)
    sure = Request(1, 0.0, 10, estimate=_dist(100, 120))
    risky = Request(2, 0.0, 10, estimate=_dist(100, 600))
    assert risk.key(sure, 0) < risk.key(risky, 0)
    # max_tokens caps the tail: capped at 120 the two are nearly the same bet.
    capped = Request(3, 0.0, 10, max_tokens=120, estimate=_dist(100, 600))
    assert risk.key(capped, 0) < risk.key(risky, 0)
    # A point estimate has no tail term: ssrpt's key.
    point = make_request(4, 0.0, predicted=80)
    point.generated = 30
    assert risk.key(point, 0) == make_policy("ssrpt").key(point, 0) == 50


@settings(max_examples=200, deadline=None)
@given(
    median=st.floats(1, 2_000),
    ratio=st.floats(1, 10),
    generated=st.integers(0, 30_000),
    cap=st.none() | st.integers(1, 40_000),
    spread=st.floats(0, 5),
    q=st.floats(0.51, 0.99),
)
def test_risk_key_is_positive_and_conditions_on_progress(median, ratio, generated, cap, spread, q):
    est = _dist(median, median * ratio)
    req = Request(0, 0.0, 10, max_tokens=cap, estimate=est)
    req.generated = generated if cap is None else min(generated, cap - 1)
    key = make_policy("risk", spread=spread, q=q).key(req, 0)
    assert math.isfinite(key) and key >= 1.0
    # With no tail term the key is an expected remaining length under the cap.
    base = make_policy("risk", spread=0).key(req, 0)
    assert base <= key + 1e-9
    if cap is not None:
        assert base <= max(cap - req.generated, 1.0) + 1e-9


def test_risk_bad_settings() -> None:
    for bad in ({"spread": -0.1}, {"q": 0.5}, {"q": 1.0}):
        (setting,) = bad
        with pytest.raises(ValueError, match=f"'{setting}'"):
            make_policy("risk", **bad)


# --- ltr ----------------------------------------------------------------------------------


def test_ltr_orders_by_score_with_no_unit() -> None:
    ltr = make_policy("ltr")
    low, high = make_request(1, 5.0, predicted=0.2), make_request(2, 0.0, predicted=3.5)
    assert ltr.key(low, 9) < ltr.key(high, 9)
    # A score is not a length: max_tokens does not cap it (ssjf's key would be 1).
    capped = Request(3, 0.0, 1, max_tokens=1, estimate=LengthEstimate(7.0))
    assert ltr.key(capped, 0) == 7.0 and make_policy("ssjf").key(capped, 0) == 1.0
    assert ltr.static_unit is None


# --- every policy: builds from its spec, refuses unknown settings ---------------------------


def test_the_family_is_registered() -> None:
    assert set(NEW) <= set(available_policies())


@pytest.mark.parametrize("name", sorted(available_policies()))
def test_every_policy_builds_from_its_default_spec(name: str) -> None:
    (entry,) = parse_policies(name)
    pol = make_entry_policy(entry, ServiceTime(), truth=lambda r: 5.0)
    assert math.isfinite(pol.key(make_request(1, 0.0, predicted=5), 1.0))


@pytest.mark.parametrize("name", sorted(available_policies()))
def test_every_policy_refuses_unknown_settings(name: str) -> None:
    with pytest.raises(ValueError, match="bogus"):
        _build(name, bogus=1)
    with pytest.raises(ValueError, match="bogus"):
        parse_policies(f"{name}:bogus=1")


def test_specs_carry_settings() -> None:
    entries = parse_policies(
        "ssjf:size=service,mlfq:levels=3:quantum=8:promote-after-s=off,las:boost=2"
    )
    svc = ServiceTime(decode_s_per_token=0.05, prefill_s_per_token=0.01)
    ssjf, mlfq, las = (make_entry_policy(e, svc) for e in entries)
    assert ssjf.static_unit == "seconds" and ssjf.service is svc
    assert (mlfq.levels, mlfq.quantum, mlfq.promote_after_s) == (3, 8.0, None)
    assert las.boost == 2.0 and las.service is svc


# --- gateway ------------------------------------------------------------------------------


def _cfg(**settings: object):
    return load_config(None, environ={}, settings={"upstreams": ["http://a"], **settings})


def test_gateway_sends_service_keys_in_decode_token_equivalents() -> None:
    cfg = _cfg(
        policy="ssjf",
        policy_params={"size": "service"},
        max_wait_s=None,
        wait_factor=None,
        priority_bucket_tokens=10,
        seconds_per_token=0.02,
        prefill_seconds_per_token=0.001,
    )
    o = EngineOrdering.from_config(cfg, epoch=0.0)
    assert o.unit == "seconds"
    # 2,000 prompt tokens = 2 s = 100 decode steps, plus 50 predicted tokens: bucket 15.
    req = make_request(1, 0.0, predicted=50, prompt_tokens=2_000)
    assert o.key(req) == 15
    assert o.key(make_request(2, 0.0, predicted=50, prompt_tokens=0)) == 5


@pytest.mark.parametrize("name", ["mlfq", "las", "ltr"])
def test_gateway_needs_its_own_queue_for_keys_without_a_static_unit(name: str) -> None:
    with pytest.raises(ConfigError, match="max_in_flight"):
        _cfg(policy=name)
    o = EngineOrdering.from_config(_cfg(policy=name, max_in_flight=2), epoch=0.0)
    assert o.key(make_request(1, 0.0, predicted=5)) is None


def test_gateway_accepts_static_members_of_the_family() -> None:
    for name in ("risk", "isrtf"):
        o = EngineOrdering.from_config(_cfg(policy=name), epoch=0.0)
        assert o.expressible and isinstance(o.key(make_request(1, 0.0, predicted=5)), int)


def test_the_gateway_prices_service_with_its_configured_rates() -> None:
    from ssjf.gateway.core import Gateway

    for spec, extra in (("ssjf:size=service", {}), ("mlfq", {"max_in_flight": 2})):
        cfg = _cfg(policy=spec, seconds_per_token=0.05, prefill_seconds_per_token=0.001, **extra)
        policy = Gateway(cfg).ordering.policy
        assert policy.service == ServiceTime(0.05, 0.001), spec
