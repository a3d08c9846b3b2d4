"""The traffic log: one JSONL record per request, readable by `ssjf train --data`."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import httpx
import pytest

from ssjf.gateway.traffic_log import TrafficLog, prompt_hash

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
    assert plain["e2e_s"] > 0 and plain["queue_wait_s"] >= 0 and len(plain["prompt_hash"]) == 64
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
    # The fake engine always stops at max_tokens: censored lengths, dropped unless asked.
    assert data.load_records_file(log, strict=True).censored == 5
    loaded = data.load_records_file(log, strict=True, keep_censored=True)
    assert len(loaded.prompts) == 5
    assert sorted(loaded.lengths) == [1, 2, 3, 4, 5]


# --- TrafficLog on its own ---------------------------------------------------------------
def _rec(**kw) -> dict:
    return {"model": "tiny", "output_tokens": 5, "status": 200, "truncated": False, **kw}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_salted_hash_is_stable_per_salt_file(tmp_path):
    path = tmp_path / "t.jsonl"
    a = TrafficLog(path, False)
    a.write(_rec(), "hello")
    a.close()
    b = TrafficLog(path, False)  # a restart: the salt file is reused
    b.write(_rec(), "hello")
    b.close()
    first, second = _lines(path)
    assert first["prompt_hash"] == second["prompt_hash"]
    assert len(first["prompt_hash"]) == 64
    assert first["prompt_hash"] != hashlib.sha256(b"hello").hexdigest()
    salt = (tmp_path / "t.jsonl.salt").read_text().strip()
    assert first["prompt_hash"] == prompt_hash("hello", salt)
    assert prompt_hash("hello", "another salt") != first["prompt_hash"]
    c = TrafficLog(tmp_path / "u.jsonl", False, salt="given")
    c.write(_rec(), "hello")
    c.close()
    (rec,) = _lines(tmp_path / "u.jsonl")
    assert rec["prompt_hash"] == prompt_hash("hello", "given") != first["prompt_hash"]
    assert not (tmp_path / "u.jsonl.salt").exists()


def test_salt_file_is_private(tmp_path):
    TrafficLog(tmp_path / "t.jsonl", False).close()
    mode = stat.S_IMODE(os.stat(tmp_path / "t.jsonl.salt").st_mode)
    assert mode == 0o600


def test_long_fields_are_cut(tmp_path):
    path = tmp_path / "t.jsonl"
    log = TrafficLog(path, True, max_prompt_chars=1000, max_field_chars=256)
    log.write(_rec(model="m" * 10_000, extra=["x" * 10_000]), "p" * 5000)
    log.write(_rec(), "short prompt")
    log.close()
    long, short = _lines(path)
    assert long["model"] == "m" * 256 and long["extra"] == ["x" * 256]
    assert long["prompt"] == "p" * 1000 and long["prompt_truncated"] is True
    assert short["prompt"] == "short prompt" and "prompt_truncated" not in short
    # The hash is of the whole prompt, not the kept part.
    assert long["prompt_hash"] != prompt_hash("p" * 1000, (tmp_path / "t.jsonl.salt").read_text())


def test_odd_input_never_raises(tmp_path):
    path = tmp_path / "t.jsonl"
    log = TrafficLog(path, True)
    log.write(_rec(model="bad\ud800model"), "lone \udc00 surrogate")
    log.write(_rec(model=object(), n=float("nan"), big=10**5000, nested={"a": {"b": [1]}}), 42)
    log.write({"prompt": "overwrite?", 3: "int key"}, "ok")
    log.close()
    log.write(_rec(), "after close is ignored")
    raw = path.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    first, second, third = (json.loads(line) for line in raw.splitlines())
    assert first["model"] == "bad\ufffdmodel" and "\ufffd" in first["prompt"]
    assert second["n"] is None and second["big"] is None and second["prompt"] == "42"
    assert second["nested"] == {"a": {"b": [1]}}
    assert third["prompt"] == "ok" and third["3"] == "int key"
    assert log.records == 3


@pytest.mark.parametrize("backups", [0, 1, 3])
def test_rotation(tmp_path, backups):
    path = tmp_path / "t.jsonl"
    log = TrafficLog(path, True, max_bytes=4096, backups=backups)
    for i in range(200):
        log.write(_rec(i=i), f"prompt {i} " + "x" * 100)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".salt"))
    assert files == ["t.jsonl"] + [f"t.jsonl.{k}" for k in range(1, backups + 1)]
    seen = []
    for name in reversed(files):  # oldest first
        data = (tmp_path / name).read_bytes()
        assert len(data) <= 4096 and data.endswith(b"\n")
        seen += [json.loads(line)["i"] for line in data.splitlines()]  # no split lines
    assert seen == list(range(200 - len(seen), 200))  # in order, newest kept
    assert log.records == 200


def test_rotation_continues_an_existing_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"{}\n" * 1500)  # 4,500 bytes from an earlier run
    log = TrafficLog(path, False, max_bytes=4096, backups=2)
    log.write(_rec(), "p")
    log.close()
    assert (tmp_path / "t.jsonl.1").stat().st_size == 4500
    assert len(_lines(path)) == 1


def test_training_loader_reads_the_log(tmp_path):
    data = pytest.importorskip("ssjf.predict.data", reason="needs the predictor toolkit")
    path = tmp_path / "t.jsonl"
    log = TrafficLog(path, True, max_prompt_chars=50)
    for i in range(1, 4):
        log.write(_rec(output_tokens=i, model="m" * 1000), f"prompt {i} " + "y" * 100)
    log.close()
    loaded = data.load_records_file(path, strict=True)
    assert sorted(loaded.lengths) == [1, 2, 3]
    assert all(len(p) == 50 for p in loaded.prompts)
