import pytest

from ssjf.policies import available_policies, make_policy
from tests.conftest import make_request


def test_registry_has_the_builtin_policies() -> None:
    assert {"fcfs", "sjf", "ssjf", "srpt", "ssrpt", "hrrn"} <= set(available_policies())


def test_only_oracles_are_flagged_and_need_truth() -> None:
    oracles = {n for n, cls in available_policies().items() if cls.oracle}
    assert oracles == {"sjf", "srpt"}
    with pytest.raises(ValueError, match="oracle"):
        make_policy("sjf")
    with pytest.raises(ValueError, match="must not see"):
        make_policy("ssjf", truth=lambda r: 1.0)


def test_unknown_policy_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="fcfs"):
        make_policy("nope")


def test_keys() -> None:
    short, long_ = make_request(1, 5.0, predicted=10), make_request(2, 1.0, predicted=500)
    assert make_policy("fcfs").key(long_, 9) < make_policy("fcfs").key(short, 9)
    assert make_policy("ssjf").key(short, 9) < make_policy("ssjf").key(long_, 9)
    truth = {1: 700.0, 2: 3.0}
    sjf = make_policy("sjf", truth=lambda r: truth[r.id])
    assert sjf.key(long_, 9) < sjf.key(short, 9)


def test_ssrpt_uses_progress_and_max_tokens_caps_ssjf() -> None:
    r = make_request(1, 0.0, predicted=100)
    r.generated = 70
    assert make_policy("ssrpt").key(r, 0) == 30
    capped = make_request(2, 0.0, predicted=900, max_tokens=50)
    assert make_policy("ssjf").key(capped, 0) == 50


def test_hrrn_favours_short_then_ages_long() -> None:
    hrrn = make_policy("hrrn", seconds_per_token=0.02)
    short = make_request(1, 10.0, predicted=10)  # service 0.2 s
    long_ = make_request(2, 0.0, predicted=1000)  # service 20 s
    # At t=10 the long job waited 10 s: ratio 1.5; the fresh short job: ratio 1.
    assert hrrn.key(long_, 10.0) < hrrn.key(short, 10.0)
    # Short job that waited 1 s has ratio 6, beating the long job's 1.55.
    assert hrrn.key(short, 11.0) < hrrn.key(long_, 11.0)
