"""The default policy's tail budget in the gateway: where it acts, how `ssjf serve` says so."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from ssjf.cli import app
from ssjf.gateway.config import ConfigError, load_config
from ssjf.gateway.core import Gateway
from ssjf.policies import DEFAULT_POLICY, parse_policy_spec

from .helpers import FakePredictor
from .test_scheduling import _release_order

DEFAULT_TAIL = parse_policy_spec(DEFAULT_POLICY)[1]["tail"]


def test_default_config_is_the_default_policy() -> None:
    cfg = load_config(None, {"upstreams": ["http://a:1"]}, {})
    assert (cfg.policy, cfg.policy_params) == parse_policy_spec(DEFAULT_POLICY)
    assert cfg.policy_params["tail"] == DEFAULT_TAIL
    assert cfg.policy_spec == DEFAULT_POLICY
    assert not cfg.tail_enforced  # the engine orders by priority: budget on the gateway queue only
    held = load_config(None, {"upstreams": ["http://a:1"], "max_in_flight": 2}, {})
    assert held.tail_enforced
    assert load_config(None, {"upstreams": ["http://a:1"], "policy": "fcfs"}, {}).tail_enforced


def test_specs_and_policy_params() -> None:
    cfg = load_config(None, {"upstreams": ["http://a:1"], "policy": "ssrpt:tail=1.5"}, {})
    assert (cfg.policy, cfg.policy_params) == ("ssrpt", {"tail": 1.5})
    assert (
        load_config(None, {"upstreams": ["http://a:1"], "policy": "ssjf"}, {}).policy_params == {}
    )
    both = load_config(
        None, {"upstreams": ["http://a:1"]}, {}, settings={"policy_params": {"tail": 1.3}}
    )
    # policy_params win over the spec's settings
    assert both.policy_params == {**parse_policy_spec(DEFAULT_POLICY)[1], "tail": 1.3}
    with pytest.raises(ConfigError, match="unknown policy"):
        load_config(None, {"upstreams": ["http://a:1"], "policy": "nope:tail=1.1"}, {})
    bad = load_config(None, {"upstreams": ["http://a:1"], "policy": "ssjf:tail=0.5"}, {})
    with pytest.raises(ConfigError, match="tail"):
        Gateway(bad)


def test_gateway_queue_applies_the_budget_with_the_configured_rates(caplog) -> None:
    settings = {"upstreams": ["http://a:1"], "max_in_flight": 2, "seconds_per_token": 0.05}
    with caplog.at_level(logging.INFO, logger="ssjf.gateway"):
        gw = Gateway(load_config(None, settings, {}))
    queue = gw.dispatcher.queue
    assert queue.policy.tail == DEFAULT_TAIL and queue.service is not None
    assert queue.service.decode_s_per_token == 0.05
    assert not [r for r in caplog.records if "tail budget" in r.getMessage()]
    with caplog.at_level(logging.INFO, logger="ssjf.gateway"):
        Gateway(load_config(None, {"upstreams": ["http://a:1"]}, {}))
    assert [r for r in caplog.records if "tail budget orders only" in r.getMessage()]


@pytest.mark.parametrize("flags", [[], ["--max-in-flight", "4"]])
def test_serve_starts_with_default_settings_and_says_where_the_budget_acts(
    monkeypatch, flags
) -> None:
    from ssjf.gateway import server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda app, cfg, level: seen.setdefault("cfg", cfg))
    r = CliRunner().invoke(app, ["serve", "--upstream", "http://a:1", *flags])
    assert r.exit_code == 0, r.output
    assert seen["cfg"].policy_spec == DEFAULT_POLICY and f"policy {DEFAULT_POLICY}" in r.output
    assert ("gateway queue only" in r.output) == (not flags)


def test_held_queue_releases_in_budget_order(engine, start_gateway) -> None:
    fake, up = engine
    gw = start_gateway(
        FakePredictor(), upstreams=[up.url], backend="fifo", max_in_flight=1, policy="ssjf:tail=1.1"
    )
    # Allowances 0.1 x FCFS work: 100 may lose 10 tokens, 60 may lose 16. 5 fits both;
    # 10 then no longer fits 100's remaining 5, nor does 60; after 100, 10 fits 60's 11.
    # Plain ssjf would give 5, 10, 60, 100; FCFS 100, 60, 5, 10.
    order = _release_order(gw, fake, (100, 60, 5, 10))
    assert order == ["len=1 first", "len=5", "len=100", "len=10", "len=60"]
