"""Open-loop load generator for the reliability test (runs as its own process).

``python loadgen.py URL N RATE SEED TOKENS TOKEN_DELAY`` sends N requests with
Poisson arrivals at RATE/s (half streaming, 5% abandoned early by the client),
checks every answer, and prints a JSON summary: counts by outcome ("ok", "429",
"abandoned", or "bad: ..." for anything else) and the offered rate achieved.

The client must not drop connections by itself, or the test would blame the
gateway for them. httpcore's pool (1.0.9, encode/httpcore#1110) can close an idle
pooled connection that a pass has already assigned to a queued request: when
several connections are closed in one pass, the close of the first yields, the
request starts on the second, and the rest of the pass then closes it under the
request, which fails with an empty ``ReadError``. On a loaded machine (a slow event
loop between assignment and start) this happened about once per 2,000 requests.
The pool only closes idle connections that have expired (``keepalive_expiry``),
that the server closed, or beyond ``max_keepalive_connections``; so the client has
no expiry, keeps every connection, and the test's gateway keeps idle connections
open longer than a run (``KEEP_ALIVE_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time

import httpx

#: The gateway's keep-alive for the reliability test: longer than any run, so the
#: server never closes an idle connection the client's pool could be handing out.
KEEP_ALIVE_S = 600
MAX_CONNECTIONS = 1000


def make_client() -> httpx.AsyncClient:
    """The load generator's client: idle connections are never closed by the pool."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,
        keepalive_expiry=None,
    )
    return httpx.AsyncClient(limits=limits)


async def one(
    client: httpx.AsyncClient, url: str, i: int, rng: random.Random, tokens: int, delay: float
) -> str:
    stream = i % 2 == 0
    body = {
        "model": "tiny",
        "prompt": f"request {i} " + "word " * rng.randint(0, 50),
        "max_tokens": tokens,
        "stream": stream,
        "fake_token_delay": delay,
    }
    abandon = rng.random() < 0.05
    try:
        if stream:
            async with client.stream("POST", url, json=body, timeout=60) as r:
                if r.status_code == 429:
                    return "429" if r.headers.get("retry-after") else "bad: 429 without Retry-After"
                if r.status_code != 200:
                    return f"bad: status {r.status_code} {(await r.aread())[:200]!r}"
                data = b""
                async for chunk in r.aiter_raw():
                    data += chunk
                    if abandon:
                        return "abandoned"
            events = [e for e in data.split(b"\n\n") if e]
            if events[-1:] != [b"data: [DONE]"] or len(events) != tokens + 1:
                return f"bad: stream {data[-200:]!r}"
            if b'"usage"' in data:
                return "bad: usage chunk leaked"
            return "ok"
        if abandon:
            with contextlib.suppress(httpx.TimeoutException):
                await client.post(url, json=body, timeout=delay * tokens / 2)
            return "abandoned"
        r = await client.post(url, json=body, timeout=60)
        if r.status_code == 429:
            ok = r.headers.get("retry-after") and r.json()["error"]["code"] == "queue_full"
            return "429" if ok else "bad: malformed 429"
        if r.status_code != 200 or r.json()["choices"][0]["text"] != "x" * tokens:
            return f"bad: status {r.status_code} {r.text[:200]}"
        return "ok"
    except httpx.HTTPError as e:
        return f"bad: {type(e).__name__} {e}"


async def run(url: str, n: int, rate: float, seed: int, tokens: int, delay: float) -> dict:
    rng = random.Random(seed)
    async with make_client() as client:
        loop = asyncio.get_running_loop()
        tasks = []
        start = loop.time()
        t = 0.0
        for i in range(n):
            t += rng.expovariate(rate)
            wait = start + t - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(one(client, url, i, rng, tokens, delay)))
        sent_s = loop.time() - start
        # Not wait_for(gather): its timeout cancels the tasks, and a cancelled task's
        # result() raises, which crashed the load generator instead of reporting.
        _, pending = await asyncio.wait(tasks, timeout=120)
        results = ["bad: hung" if task in pending else task.result() for task in tasks]
        for task in pending:
            task.cancel()
    counts: dict[str, int] = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    return {"counts": counts, "offered_rps": n / sent_s if sent_s > 0 else float("inf")}


if __name__ == "__main__":
    url, n, rate, seed, tokens, delay = sys.argv[1:7]
    t0 = time.monotonic()
    out = asyncio.run(run(url, int(n), float(rate), int(seed), int(tokens), float(delay)))
    out["wall_s"] = time.monotonic() - t0
    print(json.dumps(out))
