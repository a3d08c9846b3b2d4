"""A fake OpenAI-compatible engine for the gateway's unit tests (tests only, 127.0.0.1).

Behaviour is steered by extra body fields, which the gateway must pass through
unchanged (so every test also checks pass-through):

- ``fake_token_delay``: seconds per generated token (default: the server's);
- ``fake_status``: answer with this HTTP error status instead;
- ``fake_die_after``: a stream breaks the connection after this many tokens;
- ``fake_gate``: hold the request until the test calls ``engine.gate.set()``;
- ``fake_headers``: extra response headers (an object of name -> value);
- ``fake_html_error``: answer with this status and an HTML error page (a proxy's);
- ``fake_chunk_bytes``: pad each streamed token's text to this many bytes;
- ``max_tokens``: tokens generated (default 8), one SSE chunk each.

Any other route answers a JSON echo of what it received (method, path, query,
headers, body), as an engine's unscheduled routes would answer something; with
the query parameter ``fake_gate=1`` it waits for the gate first, and with
``fake_html_error=STATUS`` it answers a load balancer's HTML error page.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ssjf.gateway.server import ServerLimits, uvicorn_config


class Died(Exception):
    """Raised inside a stream to make uvicorn drop the connection mid-body."""


class FakeEngine:
    """State shared by the fake engine's routes: what it received, how it behaves."""

    def __init__(
        self, token_delay: float = 0.0, keep: int = 10_000, per_request_metrics: bool = False
    ) -> None:
        self.token_delay = token_delay
        #: Like vLLM's --enable-per-request-metrics: timings on the stream's usage chunk.
        self.per_request_metrics = per_request_metrics
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        self.headers: deque[dict[str, str]] = deque(maxlen=keep)
        self.order: deque[str] = deque(maxlen=keep)  # prompts in arrival order
        self.active = 0
        self.max_active = 0
        self.finished = 0
        self.aborted = 0
        self.lock = threading.Lock()
        #: Requests sent with ``fake_gate`` wait until this is set (deterministic "long" jobs).
        self.gate = threading.Event()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/{path:path}", self.echo, methods=["GET", "POST", "DELETE"]),
            ]
        )

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def echo(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        while request.query_params.get("fake_gate") and not self.gate.is_set():
            await asyncio.sleep(0.005)
        if "fake_html_error" in request.query_params:
            return Response(
                "<html>nginx at 10.0.0.5:8000: upstream timed out</html>",
                status_code=int(request.query_params["fake_html_error"]),
                media_type="text/html",
                headers={"location": "http://10.0.0.5:8000/x", "via": "1.1 internal-lb"},
            )
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": (await request.body()).decode("utf-8", "replace"),
            },
            headers={"x-engine-route": "echo"},
        )

    async def models(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def completions(self, request: Request) -> Response:
        return await self._serve(request, chat=False)

    async def chat(self, request: Request) -> Response:
        return await self._serve(request, chat=True)

    async def _serve(self, request: Request, chat: bool) -> Response:
        body = json.loads(await request.body())
        self.received.append(body)
        self.headers.append(dict(request.headers))
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        self.order.append(prompt if isinstance(prompt, str) else json.dumps(prompt))
        if "fake_status" in body:
            status = int(body["fake_status"])
            return JSONResponse(
                {"error": {"message": "fake failure", "type": "fake", "param": None, "code": None}},
                status_code=status,
                headers=body.get("fake_headers"),
            )
        if "fake_html_error" in body:
            page = "<html><body>Traceback: /srv/secret/app.py line 3, key=sk-LEAK</body></html>"
            return Response(page, status_code=int(body["fake_html_error"]), media_type="text/html")
        limit = int(body.get("max_tokens") or 8)
        # fake_length: the answer ends by itself after this many tokens (finish "stop").
        n = min(int(body.get("fake_length", limit)), limit)
        finish = "stop" if n < limit else "length"
        delay = float(body.get("fake_token_delay", self.token_delay))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            die_after = body.get("fake_die_after")
            pad = int(body.get("fake_chunk_bytes", 1))
            return StreamingResponse(
                self._stream(chat, n, delay, usage, die_after, request, pad),
                media_type="text/event-stream",
                headers=body.get("fake_headers"),
            )
        self._enter()
        try:
            while body.get("fake_gate") and not self.gate.is_set():
                await asyncio.sleep(0.005)
            if delay:
                await asyncio.sleep(delay * n)
        except asyncio.CancelledError:
            self._leave(aborted=True)
            raise
        self._leave()
        text = "x" * n
        choice: dict[str, Any] = (
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
            if chat
            else {"index": 0, "text": text, "finish_reason": finish}
        )
        return JSONResponse(
            {
                "id": "cmpl-fake",
                "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model", "fake"),
                "choices": [choice],
                "usage": {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": n + 3},
            },
            headers=body.get("fake_headers"),
        )

    def _enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _leave(self, aborted: bool = False) -> None:
        with self.lock:
            self.active -= 1
            if aborted:
                self.aborted += 1
            else:
                self.finished += 1

    async def _stream(
        self,
        chat: bool,
        n: int,
        delay: float,
        usage: bool,
        die_after: Any,
        request: Request,
        pad: int = 1,
    ) -> Any:
        self._enter()
        done = False
        started = time.perf_counter()
        first: float | None = None
        try:
            for i in range(n):
                if die_after is not None and i >= int(die_after):
                    raise Died("fake engine died mid-stream")
                if delay:
                    await asyncio.sleep(delay)
                if await request.is_disconnected():
                    return
                text = "x" * pad
                delta = {"content": text} if chat else None
                choice = {"index": 0, "delta": delta} if chat else {"index": 0, "text": text}
                yield f"data: {json.dumps({'id': 'c', 'choices': [choice]})}\n\n"
                first = first if first is not None else time.perf_counter()
            if usage:
                u = {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": n + 3}
                chunk: dict[str, Any] = {"id": "c", "choices": [], "usage": u}
                if self.per_request_metrics and first is not None:
                    chunk["metrics"] = {  # no queue here: every request runs at once
                        "queue_time_ms": 0.0,
                        "time_to_first_token_ms": (first - started) * 1e3,
                        "generation_time_ms": (time.perf_counter() - first) * 1e3,
                    }
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"
            done = True
        finally:
            self._leave(aborted=not done)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Runs an ASGI app with uvicorn in a background thread on 127.0.0.1."""

    def __init__(
        self,
        app: Any,
        port: int | None = None,
        keep_alive_s: int = 5,
        limits: ServerLimits | None = None,
    ) -> None:
        self.app = app
        self.keep_alive_s = keep_alive_s
        #: Given: served as deployed, behind ssjf.gateway.server's guarded protocol (and
        #: with its keep_alive_s; the argument above is for servers without limits).
        self.limits = limits
        self.port = port or free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        if self.limits is not None:
            config = uvicorn_config(
                self.app,
                self.limits,
                host="127.0.0.1",
                port=self.port,
                log_level="critical",
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
        else:
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="critical",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=1,
                timeout_keep_alive=self.keep_alive_s,
            )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self, force: bool = False) -> None:
        if self.server is None or self.thread is None:
            return
        self.server.should_exit = True
        if force:
            self.server.force_exit = True
        self.thread.join(timeout=10)
        self.server = None
        self.thread = None


def main() -> None:
    """Run the fake engine alone (a separate process, for load tests): ``--port N``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-delay", type=float, default=0.0)
    args = ap.parse_args()
    fake = FakeEngine(token_delay=args.token_delay, keep=100)
    uvicorn.run(
        fake.app(), host="127.0.0.1", port=args.port, log_level="critical", access_log=False
    )


if __name__ == "__main__":
    main()
