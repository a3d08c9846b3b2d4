"""Gateway API keys, tenants, trusted priority tiers, protected metrics."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ssjf.gateway.config import ConfigError, load_config
from ssjf.gateway.core import Gateway

from .helpers import FakePredictor, completion


def _keys_file(tmp_path, entries, name="keys.json"):
    f = tmp_path / name
    f.write_text(json.dumps({"keys": entries}))
    return str(f)


def _post(url, body, key=None, **headers):
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(url + "/v1/completions", json=body, headers=headers, timeout=10)


def test_keys_required_when_configured(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], api_keys=["sk-one"], upstream_api_key="engine-key")
    for r in (
        _post(gw.url, completion("x")),
        _post(gw.url, completion("x"), key="wrong"),
        _post(gw.url, completion("x"), authorization="Basic c2stb25l"),
    ):
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "invalid_api_key" and set(err) == {"message", "type", "param", "code"}
    assert len(fake.received) == 0
    r = _post(gw.url, completion("x"), key="sk-one")
    assert r.status_code == 200
    # The gateway's key stays at the gateway; the engine gets its own.
    assert fake.headers[-1]["authorization"] == "Bearer engine-key"


def test_without_gateway_keys_the_clients_authorization_reaches_the_engine(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    assert _post(gw.url, completion("x"), key="engine-own-key").status_code == 200
    assert fake.headers[-1]["authorization"] == "Bearer engine-own-key"
    models = httpx.get(gw.url + "/v1/models", headers={"authorization": "Bearer m"})
    assert models.status_code == 200 and fake.headers[-1]["authorization"] == "Bearer m"


def test_keys_file_tenants_weights_and_hashed_keys(tmp_path):
    digest = hashlib.sha256(b"sk-b").hexdigest()
    path = _keys_file(
        tmp_path,
        [
            {"key": "sk-a", "tenant": "team a", "trusted": True, "weight": 2},
            {"key_sha256": digest, "tenant": "b"},
        ],
    )
    gw = Gateway(load_config(None, {"upstreams": ["http://x"], "api_keys_file": path}, {}))
    a = gw.keys.check({"authorization": "Bearer sk-a"})
    b = gw.keys.check({"authorization": "Bearer sk-b"})
    assert (a.tenant, a.trusted, a.weight) == ("team_a", True, 2.0)  # cleaned for labels
    assert (b.tenant, b.trusted, b.weight) == ("b", False, 1.0)
    assert gw.keys.weights == {"team_a": 2.0, "b": 1.0}


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ([], "non-empty"),
        ([{"tenant": "a"}], "exactly one"),
        ([{"key": "k", "key_sha256": "0" * 64, "tenant": "a"}], "exactly one"),
        ([{"key": "k"}], "tenant"),
        ([{"key": "k", "tenant": "a", "weight": 0}], "weight"),
        ([{"key": "k", "tenant": "a", "trusted": "yes"}], "trusted"),
        ([{"key": "k", "tenant": "a", "colour": 1}], "colour"),
        ([{"key": "k", "tenant": "a"}, {"key": "k", "tenant": "b"}], "twice"),
        ([{"key_sha256": "xyz", "tenant": "a"}], "64 hex"),
    ],
)
def test_bad_keys_files_are_refused(tmp_path, entries, needle):
    path = _keys_file(tmp_path, entries)
    with pytest.raises(ConfigError, match=needle):
        Gateway(load_config(None, {"upstreams": ["http://x"], "api_keys_file": path}, {}))


def test_keys_file_path_is_relative_to_the_config_file(tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    _keys_file(conf_dir, [{"key": "k", "tenant": "a"}])
    cfg_file = conf_dir / "gw.toml"
    cfg_file.write_text('upstreams = ["http://x"]\napi_keys_file = "keys.json"\n')
    cfg = load_config(cfg_file, environ={})
    assert cfg.api_keys_file == str(conf_dir / "keys.json")
    assert Gateway(cfg).keys.enabled


def test_untrusted_priority_is_ignored_trusted_priority_is_a_tier(engine, start_gateway, tmp_path):
    fake, up = engine
    path = _keys_file(
        tmp_path,
        [{"key": "vip", "tenant": "vip", "trusted": True}, {"key": "anon", "tenant": "anon"}],
    )
    gw = start_gateway(
        FakePredictor(),
        upstreams=[up.url],
        backend="fifo",
        max_in_flight=1,
        api_keys_file=path,
    )
    url = gw.url
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(_post, url, completion("len=1 first", 10, fake_gate=True), "anon")
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        jobs = []
        for body, key in (
            # An untrusted client asking to jump the queue: ignored (long job, last).
            (completion("len=900 cheeky", 1000, priority=-1000), "anon"),
            (completion("len=50 plain", 1000), "anon"),
            # A trusted client's tier goes ahead of the predicted-length order.
            (completion("len=800 urgent", 1000, priority=-1), "vip"),
        ):
            jobs.append(pool.submit(_post, url, body, key))
            gw.wait_for(lambda g, k=len(jobs): g.dispatcher.queue_len == k)
        fake.gate.set()
        assert first.result().status_code == 200
        assert [j.result().status_code for j in jobs] == [200, 200, 200]
    served = list(fake.order)[1:]
    assert served[0] == "len=800 urgent"
    # Between the two anon requests, fairness and SSJF put the short one first.
    assert served.index("len=50 plain") < served.index("len=900 cheeky")
    assert all("priority" not in body for body in fake.received)


def test_tenant_header_without_keys_is_not_forwarded(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], tenant_header="X-Tenant-Id")
    r = _post(gw.url, completion("x"), **{"x-tenant-id": "team-a"})
    assert r.status_code == 200
    assert "x-tenant-id" not in fake.headers[-1]
    gw.metrics_with('tenant="team-a"')


def test_metrics_and_ready_can_require_a_key(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], api_keys=["k"], protect_metrics=True)
    assert httpx.get(gw.url + "/metrics").status_code == 401
    assert httpx.get(gw.url + "/ready").status_code == 401
    ok = {"authorization": "Bearer k"}
    assert httpx.get(gw.url + "/metrics", headers=ok).status_code == 200
    assert httpx.get(gw.url + "/ready", headers=ok).status_code == 200
    assert httpx.get(gw.url + "/health").status_code == 200  # liveness stays open
