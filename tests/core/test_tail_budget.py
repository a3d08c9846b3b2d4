"""The tail budget (a policy's ``tail`` setting), enforced by the shared waiting queue.

The promise (ssjf.queue): for every request i, the predicted service of the requests
of its tier that entered after it and were handed out before it (by the policy,
not the guard) is <= A_i = (tail - 1) x max(F_i, Q_i), F_i = W_i + s_i its FCFS work
and Q_i the 99th percentile of F over the last 512 requests to enter. Checked here
against a brute-force model that recomputes every allowance and charge from its
definition.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate
from ssjf.fair_queue import FairQueue
from ssjf.job import Job
from ssjf.policies import DEFAULT_POLICY, Policy, available_policies, make_policy, parse_policy_spec
from ssjf.queue import TAIL_LEVEL, TAIL_WINDOW, StarvationGuard, TailAnchor, WaitingQueue
from ssjf.request import Request
from ssjf.service import ServiceTime
from ssjf.sim import simulate
from ssjf.sim.cost import AffineCost
from ssjf.sim.engines.serial import SerialEngine

SERVICE = ServiceTime(decode_s_per_token=0.02, prefill_s_per_token=0.001)
POLICIES = sorted(available_policies())
REL = 1e-9  # float slack: the queue subtracts charges, the model adds them up


def build(name: str, tail: float, truth: dict[int, float]) -> Policy:
    oracle = available_policies()[name].oracle
    return make_policy(name, truth=(lambda r: truth[r.id]) if oracle else None, tail=tail)


def priced(pol: Policy, req: Request, truth: dict[int, float]) -> float:
    """The promise's s_i, from its definition (fresh requests: prompt + whole output)."""
    tokens = truth[req.id] if pol.oracle else req.predicted_tokens  # type: ignore[index]
    return SERVICE.prefill(req.prompt_tokens) + SERVICE.decode_s_per_token * tokens


def percentile(values: list[float]) -> float:
    """The queue's anchor quantile of ``values``: the value at rank int(level x n)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(TAIL_LEVEL * len(ranked)))]


@dataclass
class Rec:
    req: Request
    seq: int
    size: float
    allowance: float
    added: float
    overtaken: float = 0.0


@dataclass
class Model:
    """Brute force: allowances and overtaken work recomputed from their definitions."""

    pol: Policy
    tail: float
    truth: dict[int, float]
    waiting: list[Rec] = field(default_factory=list)
    seq: int = 0
    fcfs_work: list[float] = field(default_factory=list)  # F of every request that entered

    def add(self, req: Request, now: float) -> None:
        size = priced(self.pol, req, self.truth)
        work = sum(r.size for r in self.waiting if r.req.tier == req.tier)
        self.fcfs_work.append(work + size)
        anchor = percentile(self.fcfs_work[-TAIL_WINDOW:])
        allowance = (self.tail - 1) * max(work + size, anchor)
        self.waiting.append(Rec(req, self.seq, size, allowance, now))
        self.seq += 1

    def allowed(self, k: Rec, margin: float) -> bool:
        """Handing out k keeps every older same-tier request within its allowance (+/- margin)."""
        return all(
            o.overtaken + k.size <= o.allowance * (1 + margin) + margin
            for o in self.waiting
            if o.seq < k.seq and o.req.tier == k.req.tier
        )

    def order_key(self, r: Rec, now: float) -> tuple[int, float, int]:
        key = self.pol.key(r.req, now if self.pol.time_dependent else r.added)
        return (r.req.tier, key, r.seq)

    def pop(self, req: Request, now: float) -> None:
        j = next(r for r in self.waiting if r.req is req)
        assert self.allowed(j, REL), "handed out a request the budget forbids"
        best = self.order_key(j, now)
        for k in self.waiting:  # nothing clearly allowed is clearly better in the policy's order
            assert not (self.order_key(k, now) < best and self.allowed(k, -REL))
        for o in self.waiting:
            if o.seq < j.seq and o.req.tier == j.req.tier:
                o.overtaken += j.size
                assert o.overtaken <= o.allowance * (1 + REL) + REL  # the promise
        self.waiting.remove(j)

    def remove(self, req: Request) -> None:
        self.waiting = [r for r in self.waiting if r.req is not req]

    def check(self, q: WaitingQueue | FairQueue) -> None:
        for r in self.waiting:
            allowance, charged = q.budget_of(r.req)
            assert allowance == pytest.approx(r.allowance, rel=REL, abs=REL)
            assert charged == pytest.approx(r.overtaken, rel=REL, abs=REL)


# An operation: ("add", predicted tokens, prompt tokens, tier, true tokens, tenant),
# ("pop",) or ("remove", which waiting request); time advances between operations.
ADD = st.tuples(
    st.just("add"),
    st.integers(1, 2000),
    st.integers(0, 3000),
    st.sampled_from([0, 0, 0, 1]),
    st.integers(1, 2000),
    st.sampled_from([None, "a", "b"]),
)
OPS = st.lists(
    st.tuples(
        st.one_of(ADD, st.just(("pop",)), st.tuples(st.just("remove"), st.integers(0, 50))),
        st.floats(0.0, 5.0),
    ),
    max_size=60,
)


def replay(
    q: WaitingQueue | FairQueue, models: dict[object, Model], ops: list, truth: dict
) -> None:
    """Run ``ops`` on ``q`` and the per-tenant ``models``, checking both after each."""
    now, rid, waiting = 0.0, 0, []
    for op, dt in ops:
        now += dt
        if op[0] == "add":
            _, pred, prompt, tier, true_len, tenant = op
            truth[rid] = float(true_len)
            tenant = tenant if isinstance(q, FairQueue) else None
            est = LengthEstimate(float(pred))
            req = Request(rid, now, prompt, estimate=est, tier=tier, tenant=tenant)
            q.add(req, now)
            models[req.tenant].add(req, now)
            waiting.append(req)
            rid += 1
        elif op[0] == "pop" and waiting:
            req = q.pop(now)
            models[req.tenant].pop(req, now)
            waiting.remove(req)
        elif op[0] == "remove" and waiting:
            req = waiting.pop(op[1] % len(waiting))
            assert q.remove(req)
            models[req.tenant].remove(req)
        for m in models.values():
            m.check(q)


@pytest.mark.parametrize("name", POLICIES)
@settings(max_examples=40, deadline=None)
@given(ops=OPS, tail=st.sampled_from([1.0, 1.2, 2.0]))
def test_promise_and_choice_for_every_policy(name: str, ops: list, tail: float) -> None:
    truth: dict[int, float] = {}
    pol = build(name, tail, truth)
    q = WaitingQueue(pol, service=SERVICE)
    replay(q, {None: Model(pol, tail, truth)}, ops, truth)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, name=st.sampled_from(["ssjf", "hrrn", "sjf"]))
def test_fair_queue_keeps_the_promise_within_each_tenant(ops: list, name: str) -> None:
    truth: dict[int, float] = {}
    pol = build(name, 1.2, truth)
    q = FairQueue(pol, service=SERVICE)
    shared: list[float] = []  # one anchor for all tenants
    models = {t: Model(pol, 1.2, truth, fcfs_work=shared) for t in (None, "a", "b")}
    replay(q, models, ops, truth)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_fair_queue_with_one_tenant_is_the_waiting_queue(ops: list) -> None:
    truth: dict[int, float] = {}
    single = [((*op[:5], None), dt) if op[0] == "add" else (op, dt) for op, dt in ops]
    orders = []
    for q in (FairQueue(build("ssjf", 1.2, truth), service=SERVICE),
              WaitingQueue(build("ssjf", 1.2, truth), service=SERVICE)):  # fmt: skip
        seen: list[int] = []
        now, rid, waiting = 0.0, 0, []
        for op, dt in single:
            now += dt
            if op[0] == "add":
                req = Request(rid, now, op[2], estimate=LengthEstimate(float(op[1])), tier=op[3])
                q.add(req, now)
                waiting.append(req)
                rid += 1
            elif op[0] == "pop" and waiting:
                req = q.pop(now)
                waiting.remove(req)
                seen.append(int(req.id))
            elif op[0] == "remove" and waiting:
                q.remove(waiting.pop(op[1] % len(waiting)))
        orders.append(seen)
    assert orders[0] == orders[1]


@pytest.mark.parametrize("name", POLICIES)
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 500), st.integers(0, 500)), max_size=25),
       pops_every=st.integers(1, 4))  # fmt: skip
def test_tail_one_serves_fcfs(name: str, sizes: list, pops_every: int) -> None:
    truth = {i: float(s) for i, (s, _) in enumerate(sizes)}
    q = WaitingQueue(build(name, 1.0, truth), service=SERVICE)
    order = []
    for i, (pred, prompt) in enumerate(sizes):
        q.add(Request(i, float(i), prompt, estimate=LengthEstimate(float(pred))), float(i))
        if i % pops_every == 0:
            order.append(q.pop(float(i)).id)
    while q:
        order.append(q.pop(100.0).id)
    assert order == list(range(len(sizes)))


def test_budget_lets_short_requests_through_within_the_allowance() -> None:
    # Sizes 100, 10, 5, 50 tokens (no prefill: allowances in token-seconds alike).
    q = WaitingQueue(make_policy("ssjf", tail=1.1), service=ServiceTime(0.02))
    reqs = [Request(i, 0.0, 0, estimate=LengthEstimate(p)) for i, p in enumerate([100, 10, 5, 50])]
    for r in reqs:
        q.add(r, 0.0)
    # Request 0 may be overtaken by 10% of its FCFS work, 0.1 x 100 tokens = 10 tokens:
    # 5 fits (2 goes first), then 10 would make 15 > 10, so 0 goes before 1 and 3.
    assert [q.pop(0.0).id for _ in range(4)] == [2, 0, 1, 3]


def test_the_guard_still_wins_and_its_promotion_is_charged() -> None:
    guard = StarvationGuard(wait_factor=1.0, seconds_per_token=0.02)
    q = WaitingQueue(make_policy("ssjf", tail=1.0), guard, ServiceTime(0.02))
    big = Request(0, 0.0, 0, estimate=LengthEstimate(1000.0))  # deadline 20 s
    small = Request(1, 1.0, 0, estimate=LengthEstimate(1.0))  # deadline 1.02 s
    q.add(big, 0.0)
    q.add(small, 1.0)
    assert q.peek(1.01) is big  # tail 1: FCFS while no deadline has passed
    assert q.pop(5.0) is small and q.promotions == 1
    assert q.budget_of(big) == (0.0, pytest.approx(0.02))  # overtaken past its allowance


def test_tiers_stay_strict_and_budgets_are_per_tier() -> None:
    q = WaitingQueue(make_policy("ssjf", tail=1.0), service=ServiceTime(0.02))
    low = Request(0, 0.0, 0, estimate=LengthEstimate(10.0), tier=1)
    high = [Request(i, 1.0, 0, estimate=LengthEstimate(p), tier=0) for i, p in [(1, 50), (2, 5)]]
    for r in (low, *high):
        q.add(r, r.arrival)
    assert q.budget_of(high[1])[0] == 0.0  # tail 1: nothing may overtake
    assert [q.pop(2.0).id for _ in range(2)] == [1, 2]  # tier 0 first, FCFS within it
    assert q.budget_of(low) == (0.0, 0.0)  # tier 0's hand-outs charge no tier-1 request
    assert q.pop(2.0) is low


def test_settings_from_a_spec_and_bad_values() -> None:
    name, params = parse_policy_spec(DEFAULT_POLICY)
    pol = make_policy(name, **params)
    assert pol.tail is not None and pol.tail >= 1.0
    assert make_policy("hrrn", tail=1.5).tail == 1.5 and make_policy("fcfs").tail is None
    for bad in (0.5, math.inf, "x", True):
        with pytest.raises(ValueError, match="tail"):
            make_policy("ssjf", tail=bad)
    with pytest.raises(ValueError, match="tail"):
        make_policy("ssjf", tail=math.nan)


def _fcfs_and_budget_jct(seed: int, tail: float, policy: str, cost: AffineCost) -> tuple:
    rng = random.Random(seed)
    t, jobs = 0.0, []
    for i in range(150):
        out = max(1, int(rng.paretovariate(1.5) * 40))  # heavy-tailed lengths
        t += rng.expovariate(1.0 / (0.02 * 110))  # about 0.9 of capacity
        jobs.append(Job(Request(i, t, rng.randint(0, 400), estimate=LengthEstimate(out)), out))
    engine = SerialEngine()
    fcfs = simulate(jobs, engine, "fcfs", cost=cost).jct
    budget = simulate(jobs, engine, policy, cost=cost, policy_params={"tail": tail}).jct
    longest = max(cost.serial_job_time(j.request.prompt_tokens, j.output_tokens) for j in jobs)
    return fcfs, budget, longest


@pytest.mark.parametrize("cost", [AffineCost(a=0.02), AffineCost(a=0.02, b=0.001)])
@pytest.mark.parametrize("policy", ["ssjf", "sjf", "hrrn"])
@pytest.mark.parametrize("tail", [1.0, 1.1, 1.5])
def test_serial_engine_jct_within_tail_times_fcfs(
    cost: AffineCost, policy: str, tail: float
) -> None:
    # Exact estimates and service = ServiceTime.from_cost(cost).total (no per-request
    # constant): the unfinished work R + W_i when i arrives is the same in both orders;
    # FCFS completes i after R + W_i + s_i, the budgeted order after at most
    # R + W_i + s_i + A_i <= tail x max(FCFS_i, Q_i) + R (ssjf.queue's proof), and
    # Q_i <= the same percentile of the FCFS JCTs (F_k <= FCFS_k for every k; arrivals
    # are distinct, so requests enter in index order), R <= the longest job.
    for seed in range(3):
        fcfs, budget, longest = _fcfs_and_budget_jct(seed, tail, policy, cost)
        for i, jct in enumerate(budget):
            anchor = percentile(fcfs[max(0, i + 1 - TAIL_WINDOW) : i + 1].tolist())
            bound = tail * max(fcfs[i], anchor) + (longest if tail > 1 else 0.0)
            assert jct <= bound * (1 + 1e-9) + 1e-9
        if tail == 1.0:  # FCFS order exactly, whatever the policy
            assert budget.tolist() == pytest.approx(fcfs.tolist(), rel=1e-12)
        if tail == 1.5:  # and the budget is used: the mean is better than FCFS's
            assert budget.mean() < fcfs.mean()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.0, 1e4), min_size=1, max_size=1500))
def test_anchor_is_the_percentile_of_the_recent_window(values: list[float]) -> None:
    anchor = TailAnchor()
    for n, v in enumerate(values, 1):
        assert anchor.record(v) == percentile(values[max(0, n - TAIL_WINDOW) : n])
