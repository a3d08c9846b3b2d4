import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.policies import make_policy
from ssjf.queue import StarvationGuard, WaitingQueue
from tests.conftest import make_request


def drain(q: WaitingQueue, now: float) -> list:
    out = []
    while q:
        out.append(q.pop(now).id)
    return out


def test_ssjf_order_with_fifo_ties() -> None:
    q = WaitingQueue(make_policy("ssjf"))
    for rid, pred in [(0, 50), (1, 10), (2, 50), (3, 5)]:
        q.add(make_request(rid, float(rid), predicted=pred), now=float(rid))
    assert len(q) == 4
    assert q.peek(10) is not None and q.peek(10).id == 3
    assert drain(q, 10) == [3, 1, 0, 2]
    with pytest.raises(IndexError):
        q.pop(10)


def test_remove_and_duplicates() -> None:
    q = WaitingQueue(make_policy("ssjf"))
    reqs = [make_request(i, 0.0, predicted=i + 1) for i in range(4)]
    for r in reqs:
        q.add(r, 0.0)
    with pytest.raises(ValueError):
        q.add(reqs[0], 0.0)
    assert q.remove(reqs[0]) and not q.remove(reqs[0])
    assert reqs[0] not in q and reqs[1] in q
    assert drain(q, 0.0) == [1, 2, 3]


def test_time_dependent_policy_is_reevaluated() -> None:
    q = WaitingQueue(make_policy("hrrn", seconds_per_token=0.02))
    q.add(make_request("long", 0.0, predicted=1000), 0.0)
    q.add(make_request("short", 10.0, predicted=10), 10.0)
    assert q.peek(10.0).id == "long"
    assert q.peek(11.0).id == "short"


def test_guard_promotes_overdue_by_deadline() -> None:
    guard = StarvationGuard(max_wait_s=5.0)
    q = WaitingQueue(make_policy("ssjf"), guard)
    q.add(make_request("long", 0.0, predicted=1000), 0.0)
    q.add(make_request("long2", 1.0, predicted=900), 1.0)
    q.add(make_request("short", 4.0, predicted=1), 4.0)
    assert q.peek(4.0).id == "short"  # nobody overdue yet: policy order
    assert drain(q, 6.5) == ["long", "long2", "short"]
    assert q.promotions == 2


def test_guard_wait_factor_uses_prediction_not_truth() -> None:
    guard = StarvationGuard(wait_factor=2.0, seconds_per_token=0.1)
    r = make_request(1, 3.0, predicted=10)
    assert guard.deadline(r) == pytest.approx(3.0 + 2.0 * 10 * 0.1)
    assert not StarvationGuard().enabled


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 100), st.floats(1, 1000)), min_size=1, max_size=30),
    st.floats(0, 50),
    st.floats(0, 200),
)
def test_guard_promise(jobs: list[tuple[float, float]], max_wait: float, now: float) -> None:
    """At any pop, if someone is overdue, the earliest-deadline waiting request comes out."""
    guard = StarvationGuard(max_wait_s=max_wait)
    q = WaitingQueue(make_policy("ssjf"), guard)
    reqs = [make_request(i, a, predicted=p) for i, (a, p) in enumerate(jobs)]
    for r in sorted(reqs, key=lambda r: r.arrival):
        q.add(r, r.arrival)
    waiting = set(reqs)
    t = now
    for _ in itertools.count():
        if not q:
            break
        got = q.pop(t)
        overdue = [r for r in waiting if guard.deadline(r) <= t]
        if overdue:
            assert guard.deadline(got) == min(guard.deadline(r) for r in overdue)
        else:
            assert got.predicted_tokens == min(r.predicted_tokens for r in waiting)
        waiting.remove(got)
        t += 1.0
    assert not waiting


def test_tiers_order_before_key_static() -> None:
    """A lower tier goes first whatever the policy key; inside a tier, key then FIFO."""
    q = WaitingQueue(make_policy("ssjf"))
    for rid, pred, tier in [("a", 5, 1), ("b", 500, 0), ("c", 1, 2), ("d", 50, 0), ("e", 5, 1)]:
        r = make_request(rid, 0.0, predicted=pred)
        r.tier = tier
        q.add(r, 0.0)
    assert drain(q, 0.0) == ["d", "b", "a", "e", "c"]


def test_tiers_order_before_key_time_dependent() -> None:
    """Time-dependent keys are re-evaluated, but only inside the lowest tier present."""
    q = WaitingQueue(make_policy("hrrn", seconds_per_token=0.02))
    low = make_request("low", 0.0, predicted=1)  # tier 1: best ratio, goes after tier 0
    low.tier = 1
    q.add(low, 0.0)
    q.add(make_request("long", 0.0, predicted=1000), 0.0)
    q.add(make_request("short", 10.0, predicted=10), 10.0)
    assert q.peek(10.0).id == "long"
    assert q.peek(11.0).id == "short"
    assert drain(q, 11.0) == ["short", "long", "low"]


def test_negative_tier_goes_first() -> None:
    q = WaitingQueue(make_policy("fcfs"))
    q.add(make_request("a", 0.0), 0.0)
    b = make_request("b", 1.0)
    b.tier = -1
    q.add(b, 1.0)
    assert drain(q, 2.0) == ["b", "a"]


def test_deadline_of() -> None:
    q = WaitingQueue(make_policy("ssjf"), StarvationGuard(max_wait_s=5.0))
    r = make_request(1, 2.0, predicted=10)
    q.add(r, 2.0)
    assert q.deadline_of(r) == 7.0
    q.pop(3.0)
    with pytest.raises(KeyError):
        q.deadline_of(r)
    q2 = WaitingQueue(make_policy("ssjf"))
    q2.add(r, 2.0)
    assert q2.deadline_of(r) == float("inf")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(1, 1000), st.integers(0, 2)), min_size=1, max_size=30
    ),
    st.floats(0, 50),
    st.floats(0, 200),
    st.sampled_from(["ssjf", "hrrn"]),
)
def test_guard_promise_with_tiers(
    jobs: list[tuple[float, float, int]], max_wait: float, now: float, policy: str
) -> None:
    """The guard's promise holds over all tiers; otherwise (tier, key) order holds."""
    guard = StarvationGuard(max_wait_s=max_wait)
    pol = make_policy(policy)
    q = WaitingQueue(pol, guard)
    reqs = []
    for i, (a, p, tier) in enumerate(jobs):
        r = make_request(i, a, predicted=p)
        r.tier = tier
        reqs.append(r)
    for r in sorted(reqs, key=lambda r: r.arrival):
        q.add(r, r.arrival)
    waiting = set(reqs)
    t = now
    while q:
        got = q.pop(t)
        overdue = [r for r in waiting if guard.deadline(r) <= t]
        if overdue:
            assert guard.deadline(got) == min(guard.deadline(r) for r in overdue)
        else:
            best = min((r.tier, pol.key(r, t)) for r in waiting)
            assert (got.tier, pol.key(got, t)) == best
        waiting.remove(got)
        t += 1.0
    assert not waiting
