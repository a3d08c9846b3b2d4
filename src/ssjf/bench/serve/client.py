"""An async OpenAI-compatible client that replays a workload and times every request.

Each request streams (so the time of its first token is seen) and asks for
``usage`` in the stream, so ``completion_tokens`` is checked against what was
asked; ``ignore_eos: true`` with ``max_tokens`` makes the engine generate exactly
the workload's length. Arrivals follow the given times (open loop): a slow
server does not slow the arrivals down, as with real users.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssjf.bench.serve.items import WorkItem

if TYPE_CHECKING:  # pragma: no cover
    import httpx


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the load generator needs httpx: pip install 'ssjf[gateway]'") from exc
    return httpx


@dataclass(slots=True)
class RequestResult:
    """What happened to one request; times are ``time.perf_counter()`` seconds."""

    id: str
    max_tokens: int
    sent: float
    end: float = 0.0
    first_token: float | None = None
    #: HTTP status (0 when the connection failed before any status).
    status: int = 0
    ok: bool = False
    completion_tokens: int | None = None
    error: str | None = None
    #: Chunks received in a stream (0 for a non-streaming answer).
    chunks: int = 0
    #: ``usage.prompt_tokens`` as the server counted it (chat template included).
    prompt_tokens: int | None = None
    #: Arrival times of the stream's chunks that carry choices (the first is
    #: ``first_token``): one float per chunk, for vLLM's inter-token latencies.
    chunk_times: list[float] = field(default_factory=list)
    #: Arrival time of the stream's last data chunk before ``[DONE]`` (the usage
    #: chunk included): where ``vllm bench serve`` stops its end-to-end latency.
    last_chunk: float | None = None
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def jct(self) -> float:
        """End-to-end latency (job completion time) in seconds."""
        return self.end - self.sent

    @property
    def ttft(self) -> float | None:
        """Time to first token in seconds (streams only)."""
        return None if self.first_token is None else self.first_token - self.sent


def request_body(
    item: WorkItem,
    model: str,
    endpoint: str = "chat",
    stream: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``item``: exact length via ``max_tokens`` + ``ignore_eos``."""
    body: dict[str, Any] = {"model": model, "max_tokens": item.max_tokens, "ignore_eos": True}
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": item.prompt}]
    else:
        body["prompt"] = item.prompt
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if extra:
        body.update(extra)
    return body


def endpoint_path(endpoint: str) -> str:
    """The route of ``endpoint`` (chat or completions)."""
    if endpoint not in ("chat", "completions"):
        raise ValueError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
    return "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"


def _chunk_text(obj: Mapping[str, Any]) -> str:
    parts = []
    for ch in obj.get("choices") or ():
        if "text" in ch:
            parts.append(ch.get("text") or "")
        else:
            parts.append((ch.get("delta") or {}).get("content") or "")
    return "".join(parts)


async def send_one(
    client: httpx.AsyncClient,
    base_url: str,
    item: WorkItem,
    model: str = "tiny",
    endpoint: str = "chat",
    stream: bool = True,
    extra: Mapping[str, Any] | None = None,
    timeout_s: float = 900.0,
) -> RequestResult:
    """Send one request and time it; never raises for server or network trouble."""
    res = RequestResult(id=item.id, max_tokens=item.max_tokens, sent=time.perf_counter())
    body = request_body(item, model, endpoint, stream, extra)
    url = base_url.rstrip("/") + endpoint_path(endpoint)
    try:
        await asyncio.wait_for(_exchange(client, url, body, stream, res), timeout_s)
    except TimeoutError:
        res.ok, res.error = False, f"timeout after {timeout_s:.0f} s"
    except Exception as exc:  # network trouble is a result, not a crash of the replay
        res.ok, res.error = False, f"{type(exc).__name__}: {exc}"
    res.end = time.perf_counter()
    return res


async def _exchange(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    stream: bool,
    res: RequestResult,
    keep_text: bool = False,
) -> None:
    if not stream:
        resp = await client.post(url, json=body)
        res.status = resp.status_code
        _gateway_wait(resp.headers, res)
        data = resp.json()
        if resp.status_code != 200 or "error" in data:
            res.error = json.dumps(data.get("error", data))[:500]
            return
        res.completion_tokens = (data.get("usage") or {}).get("completion_tokens")
        choices = data.get("choices") or []
        res.text = "".join(
            c.get("text") or (c.get("message") or {}).get("content") or "" for c in choices
        )
        res.ok = True
        return
    async with client.stream("POST", url, json=body) as resp:
        res.status = resp.status_code
        _gateway_wait(resp.headers, res)
        if resp.status_code != 200:
            raw = await resp.aread()
            res.error = raw.decode("utf-8", "replace")[:500]
            return
        done = False
        text: list[str] = []
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            res.chunks += 1
            # Taken before parsing, as vllm bench serve does.
            now = res.last_chunk = time.perf_counter()
            # Parse JSON only where it matters (first chunk, errors, usage, kept text):
            # the client shares a small machine with the engine and must stay light.
            if not (
                res.first_token is None
                or keep_text
                or '"error"' in payload
                or '"usage":{' in payload
                or '"usage": {' in payload
            ):
                # Neither usage nor error: a chunk of generated text.
                res.chunk_times.append(now)
                continue
            obj = json.loads(payload)
            if "error" in obj:
                res.error = json.dumps(obj["error"])[:500]
                return
            if obj.get("choices"):
                res.chunk_times.append(now)
                if res.first_token is None:
                    res.first_token = now
            if keep_text:
                text.append(_chunk_text(obj))
            usage = obj.get("usage")
            if usage:
                res.completion_tokens = usage.get("completion_tokens")
                res.prompt_tokens = usage.get("prompt_tokens")
                # vLLM --enable-per-request-metrics: engine-side timings ride on it.
                if isinstance(obj.get("metrics"), dict):
                    res.extra["engine_metrics"] = obj["metrics"]
        res.text = "".join(text)
        if not done:
            res.error = "stream ended without [DONE]"
            return
        res.ok = True


def _gateway_wait(headers: Mapping[str, str], res: RequestResult) -> None:
    """Keep the ssjf gateway's queue wait (its ``x-ssjf-queue-wait-ms`` header), if any."""
    wait = headers.get("x-ssjf-queue-wait-ms")
    if wait is not None:
        # A header that is not a number is not an ssjf gateway's: nothing to keep.
        with contextlib.suppress(ValueError):
            res.extra["gateway_wait_ms"] = float(wait)


def make_client(max_connections: int = 4096, timeout_s: float = 900.0) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` sized for many concurrent streams."""
    httpx = _httpx()
    client: Any = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=30.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=256),
    )
    return client


async def replay(
    base_url: str,
    items: Sequence[WorkItem],
    arrivals: Sequence[float],
    model: str = "tiny",
    endpoint: str = "chat",
    extras: Sequence[Mapping[str, Any] | None] | None = None,
) -> list[RequestResult]:
    """Send ``items[i]`` at ``arrivals[i]`` seconds after start (open loop); all results."""
    if len(items) != len(arrivals):
        raise ValueError("items and arrivals must have the same length")
    async with make_client() as client:
        t0 = time.perf_counter()
        tasks = []
        for i, (item, at) in enumerate(zip(items, arrivals, strict=True)):
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            extra = extras[i] if extras is not None else None
            tasks.append(
                asyncio.create_task(send_one(client, base_url, item, model, endpoint, True, extra))
            )
        return list(await asyncio.gather(*tasks))


async def closed_loop(
    base_url: str,
    items: Sequence[WorkItem],
    concurrency: int,
    model: str = "tiny",
    endpoint: str = "chat",
) -> tuple[list[RequestResult], float]:
    """Keep ``concurrency`` requests outstanding until ``items`` run out.

    Returns every result and the time of the last dispatch: up to then the
    client kept ``concurrency`` requests outstanding, so a server with fewer
    slots than that was saturated (see :mod:`ssjf.bench.serve.measure`).
    """
    if concurrency < 1 or len(items) <= concurrency:
        raise ValueError(
            f"a closed loop needs more items ({len(items)}) than concurrency ({concurrency})"
        )
    queue = list(items)
    results: list[RequestResult] = []
    last_dispatch = [0.0]
    async with make_client() as client:

        async def worker() -> None:
            while queue:
                item = queue.pop(0)
                last_dispatch[0] = time.perf_counter()
                results.append(await send_one(client, base_url, item, model, endpoint))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, last_dispatch[0]
