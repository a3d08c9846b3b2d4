"""Overload with two tenants: one floods at 5x capacity, the other still gets served.

The fake engine and the load generator run as separate processes (see
test_reliability.py); the gateway runs here, in its default deployment mode
(the engine orders by priority; the gateway's admission bound is the engine's
slot count), with an API key per tenant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .loadgen import KEEP_ALIVE_S
from .test_reliability import _rss_mb, engine_process  # noqa: F401  (fixture)

HERE = Path(__file__).parent
SLOTS = 4
TOKENS = 5
TOKEN_DELAY = 0.02  # a request holds a slot ~0.1 s -> capacity ~40 requests/s
CAPACITY_RPS = SLOTS / (TOKENS * TOKEN_DELAY)
SECONDS = 16.0  # at 5.05x capacity: ~3,200 requests


@pytest.mark.slow
def test_heavy_tenant_cannot_starve_a_light_one(engine_process, start_gateway, tmp_path):  # noqa: F811
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"key": "heavy-key", "tenant": "heavy"},
                    {"key": "light-key", "tenant": "light"},
                ]
            }
        )
    )
    gw = start_gateway(
        upstreams=[engine_process],
        engine_max_concurrency=SLOTS,
        api_keys_file=str(keys),
        keep_alive_s=KEEP_ALIVE_S,
    )
    rss_before = _rss_mb()
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "tenant_loadgen.py"),
            gw.url + "/v1/completions",
            str(SECONDS),
            str(TOKENS),
            str(TOKEN_DELAY),
            f"heavy:heavy-key:{5 * CAPACITY_RPS}",
            f"light:light-key:{0.05 * CAPACITY_RPS}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    heavy, light = res["heavy"], res["light"]
    total = heavy["sent"] + light["sent"]
    assert total >= 3_000, res  # Poisson draw around 3,230 (seeded)
    # Nothing lost: every request was answered, in full or with a 429 + Retry-After.
    for r in (heavy, light):
        assert set(r["counts"]) <= {"ok", "429"}, res
    # The light tenant is served although the heavy one floods the gateway.
    assert light["counts"].get("ok", 0) >= 0.95 * light["sent"], res
    # The heavy tenant was served up to capacity and refused beyond.
    assert heavy["counts"].get("429", 0) > heavy["sent"] // 2, res
    assert heavy["counts"].get("ok", 0) > CAPACITY_RPS * SECONDS * 0.5, res
    # Back to idle, memory bounded.
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0 and g.dispatcher.queue_len == 0)
    assert gw.gw.dispatcher.queued_bytes == 0
    assert _rss_mb() - rss_before < 150, (rss_before, _rss_mb())
