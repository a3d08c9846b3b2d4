"""The traffic log: one JSONL record per request, readable by `ssjf train --data`."""

from __future__ import annotations

import json

import httpx
import pytest

from .helpers import FakePredictor, completion, post_json


def _records(gw, n: int) -> list[dict]:
    # A record is written after the answer was sent: wait for it, then flush.
    gw.wait_for(lambda g: g.traffic is not None and g.traffic.records >= n)
    gw.gw.traffic.flush()
    lines = gw.gw.traffic.path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_records_per_request(engine, start_gateway, tmp_path):
    _, up = engine
    log = tmp_path / "traffic.jsonl"
    gw = start_gateway(FakePredictor(), upstreams=[up.url], traffic_log=str(log), log_prompts=True)
    assert post_json(gw.url + "/v1/completions", completion("len=7 plain", 5)).status_code == 200
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={
            "model": "m2",
            "messages": [{"role": "user", "content": "len=9 streamed"}],
            "max_tokens": 6,
            "stream": True,
        },
    ) as s:
        assert b"usage" not in b"".join(s.iter_raw())
    assert (
        post_json(gw.url + "/v1/completions", completion("bad", fake_status=500)).status_code == 500
    )
    plain, streamed, failed = _records(gw, 3)

    assert plain["prompt"] == "len=7 plain" and plain["output_tokens"] == 5
    assert plain["model"] == "tiny" and plain["predicted_tokens"] == 5.0  # 7 capped by max_tokens
    assert plain["status"] == 200 and plain["estimate_source"] == "predictor"
    assert plain["e2e_s"] > 0 and plain["queue_wait_s"] >= 0 and len(plain["prompt_hash"]) == 16
    # The stream's usage came from the chunk requested on the client's behalf.
    assert streamed["prompt"] == "len=9 streamed" and streamed["output_tokens"] == 6
    assert streamed["model"] == "m2" and streamed["predicted_tokens"] == 6.0
    assert streamed["ttft_s"] is not None and streamed["ttft_s"] <= streamed["e2e_s"]
    assert failed["status"] == 500 and failed["output_tokens"] is None


def test_prompts_off_by_default(engine, start_gateway, tmp_path):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], traffic_log=str(tmp_path / "t.jsonl"))
    post_json(gw.url + "/v1/completions", completion("secret", 3))
    (rec,) = _records(gw, 1)
    assert "prompt" not in rec and rec["output_tokens"] == 3


def test_log_is_training_data(engine, start_gateway, tmp_path):
    data = pytest.importorskip("ssjf.predict.data", reason="needs the predictor toolkit")
    _, up = engine
    log = tmp_path / "traffic.jsonl"
    gw = start_gateway(upstreams=[up.url], traffic_log=str(log), log_prompts=True)
    for i in range(1, 6):
        post_json(gw.url + "/v1/completions", completion(f"prompt number {i}", i))
    _records(gw, 5)
    loaded = data.load_records_file(log, strict=True)
    assert len(loaded.prompts) == 5
    assert sorted(loaded.lengths) == [1, 2, 3, 4, 5]
