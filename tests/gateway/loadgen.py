"""Open-loop load generator for the reliability test (runs as its own process).

``python loadgen.py URL N RATE SEED TOKENS TOKEN_DELAY`` sends N requests with
Poisson arrivals at RATE/s (half streaming, 5% abandoned early by the client),
checks every answer, and prints a JSON summary: counts by outcome ("ok", "429",
"abandoned", or "bad: ..." for anything else) and the offered rate achieved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time

import httpx


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
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(limits=limits) as client:
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
        try:
            results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        except asyncio.TimeoutError:
            results = [t.result() if t.done() else "bad: hung" for t in tasks]
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
