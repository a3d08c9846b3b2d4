"""Open-loop load from several tenants at once (runs as its own process, 127.0.0.1 only).

``python tenant_loadgen.py URL SECONDS TOKENS TOKEN_DELAY NAME:KEY:RATE ...`` sends,
for each tenant, Poisson arrivals at RATE/s for SECONDS, each request with
``Authorization: Bearer KEY``; prints a JSON summary per tenant: counts by outcome
("ok", "429", or "bad: ..." for anything else) and requests sent. Every request
gets an answer or is counted as bad: nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

#: httpx's pool costs O(open connections) per request: at hundreds of requests per
#: second with hundreds waiting, the client itself stalled (measured: no request sent
#: for seconds). One plain connection per request keeps the client's cost flat.
TIMEOUT_S = 120.0


async def one(url: str, key: str, i: int, tokens: int, delay: float) -> str:
    parts = urlsplit(url)
    body = json.dumps(
        {"model": "tiny", "prompt": f"request {i}", "max_tokens": tokens, "fake_token_delay": delay}
    ).encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(head + body)
                raw = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as e:
        return f"bad: {type(e).__name__}"
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return "bad: no response"
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if status == 429:
        return "429" if headers.get("retry-after") else "bad: 429 without Retry-After"
    if status != 200:
        return f"bad: status {status}"
    usage = json.loads(raw[head_end + 4 :])["usage"]
    return "ok" if usage["completion_tokens"] == tokens else "bad: body"


async def tenant(
    url: str,
    key: str,
    rate: float,
    seconds: float,
    tokens: int,
    delay: float,
    seed: int,
) -> list[str]:
    rng = random.Random(seed)
    tasks = []
    start = time.monotonic()
    t = rng.expovariate(rate)
    i = 0
    while t < seconds:
        # Always yield: a client running late must still let its requests proceed.
        await asyncio.sleep(max(0.0, start + t - time.monotonic()))
        tasks.append(asyncio.ensure_future(one(url, key, i, tokens, delay)))
        i += 1
        t += rng.expovariate(rate)
    return list(await asyncio.gather(*tasks))


async def main(url: str, seconds: float, tokens: int, delay: float, specs: list[str]) -> None:
    names, jobs = [], []
    for k, spec in enumerate(specs):
        name, key, rate = spec.split(":")
        names.append(name)
        jobs.append(tenant(url, key, float(rate), seconds, tokens, delay, seed=k))
    results = await asyncio.gather(*jobs)
    out = {}
    for name, res in zip(names, results, strict=True):
        counts: dict[str, int] = {}
        for r in res:
            counts[r] = counts.get(r, 0) + 1
        out[name] = {"sent": len(res), "counts": counts}
    print(json.dumps(out))


if __name__ == "__main__":
    u, s, n, d, *rest = sys.argv[1:]
    asyncio.run(main(u, float(s), int(n), float(d), rest))
