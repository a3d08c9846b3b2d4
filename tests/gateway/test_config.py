"""Gateway configuration: file + flags, and refusals with clear messages."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ssjf.cli import app
from ssjf.gateway.config import ConfigError, load_config


def test_file_then_flags(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text(
        '[gateway]\nupstreams = ["http://a:8000/v1/"]\nbackend = "fifo"\nmax_in_flight = 4\n'
        "max_queue = 7\n"
    )
    cfg = load_config(f, {"max_queue": 9, "policy": None})
    assert cfg.upstreams == ["http://a:8000"]
    assert cfg.backend == "fifo" and cfg.max_in_flight == 4 and cfg.max_queue == 9
    j = tmp_path / "gw.json"
    j.write_text(json.dumps({"upstreams": ["http://b:1"], "backend": "sglang"}))
    assert load_config(j).backend == "sglang"


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"upstreams": ["http://a"], "policy": "sjf"}, "oracle"),
        ({"upstreams": ["http://a"], "policy": "nope"}, "unknown"),
        ({"upstreams": ["http://a"], "backend": "fifo"}, "max_in_flight"),
        ({"upstreams": ["http://a"], "vllm_scheduling_policy": "fcfs"}, "max_in_flight"),
        ({"upstreams": ["ftp://a"]}, "http://"),
        ({}, "upstream"),
        ({"upstreams": ["http://a"], "max_in_flight": 0}, "max_in_flight"),
        ({"upstreams": ["http://a"], "colour": "red"}, "colour"),
        ({"upstreams": ["http://a"], "max_queue_bytes": 10, "max_body_bytes": 20}, "at least"),
    ],
)
def test_bad_settings_are_refused(settings, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(None, settings)


def test_bad_file_names_it(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("upstreams = [")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(tmp_path / "missing.toml")


def test_serve_cli_reports_config_errors():
    r = CliRunner().invoke(app, ["serve", "--upstream", "http://a", "--policy", "srpt"])
    assert r.exit_code == 2
    assert "oracle" in r.output


def test_vllm_fcfs_sends_no_priority():
    from ssjf.gateway.backends import make_backend

    cfg = load_config(
        None, {"upstreams": ["http://a"], "vllm_scheduling_policy": "fcfs", "max_in_flight": 2}
    )
    body: dict = {"prompt": "x", "max_tokens": 3}
    backend = make_backend(cfg)
    assert backend.prepare(body, 40, stream=False, add_usage=False) == {}
    assert body == {"prompt": "x", "max_tokens": 3}
    assert not backend.honours_priority


def test_serve_cli_set_flag_reaches_the_config(monkeypatch):
    from ssjf.gateway import server

    seen = {}

    def fake_serve(app, cfg, log_level):
        seen["cfg"] = app.state.gateway.config
        seen["kwargs"] = {"port": cfg.port}

    monkeypatch.setattr(server, "serve", fake_serve)
    r = CliRunner().invoke(
        app,
        [
            "serve",
            "--upstream",
            "http://a:1",
            "--set",
            "priority_bucket_tokens=16",
            "--set",
            "upstream_client=httpx",
            "--max-queue",
            "5",
            "--port",
            "9999",
        ],
    )
    assert r.exit_code == 0, r.output
    cfg = seen["cfg"]
    assert cfg.priority_bucket_tokens == 16 and cfg.upstream_client == "httpx"
    assert cfg.max_queue == 5 and seen["kwargs"]["port"] == 9999
    r = CliRunner().invoke(app, ["serve", "--upstream", "http://a:1", "--set", "nonsense"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
