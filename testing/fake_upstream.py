"""A small OpenAI-compatible server standing in for an upstream LLM API in tests.

Run as its own process: ``python -m testing.fake_upstream --name strong [--port N] [--api-key K]``.
It binds a free port (or N) on 127.0.0.1 and prints ``PORT <n>`` on its first line; with an API
key, every ``/v1/`` request without ``Authorization: Bearer K`` is answered 401 as OpenAI answers
a wrong key. :class:`FakeUpstream` starts one and steers it over HTTP:

- ``POST /_control`` with ``{"mode": ..., ...}``: ``ok`` (default), ``status`` (answer with
  ``status``, and a ``Retry-After: <retry_after>`` header when given), ``hang`` (never answer),
  ``malformed`` (broken JSON; with ``json``, that JSON value as the answer or a stream's one
  chunk), ``cut`` (stream the role chunk and ``cut_after`` content chunks,
  by default all ``chunks`` of them, then drop the connection);
  with ``"times": n`` the mode applies to the next n requests only, then ``ok`` returns;
  ``"call_tools": true`` answers a request that offers tools and ends in a user turn with a call
  of its first tool (arguments ``{"step": k}``, streamed in two pieces);
  ``delay_s`` delays every streamed chunk (and a whole answer); ``tokens_per_s`` paces the
  answer's pieces (a whole answer waits for all of them); ``record: false`` stops keeping request
  bodies (for load runs);
- ``GET /_requests``: every request body received, oldest first; ``DELETE /_requests`` clears.

Answers are ``"<name> answer #<k>"`` split into ``chunks`` pieces when streamed, so a test can
tell which upstream answered. With ``"answer": "per_prompt"`` an answer depends only on the last
message (``"<name> answer <hash>"``), the same whatever the order of requests; with ``"answer":
"judge"`` the server grades like an LLM judge, deterministically from the last message: ``[[A]]``,
``[[B]]`` or ``[[C]]`` when the message offers those verdicts, else ``Rating: [[n]]``, n in 1–10;
with ``"answer": "oracle"`` it judges like one that knows the outcome: ``"winners"`` maps a
question to ``strong``, ``weak`` or ``tie`` (others: ``"default"``, a tie unless set), and the
answer whose text starts with that upstream's name (``"strong answer …"``) wins.
``/v1/embeddings`` returns deterministic unit vectors. The server also speaks Anthropic's Messages
API and OpenAI's Responses API (:mod:`testing.fake_native`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from testing.fake_native import add_native_apis


class FakeUpstream:
    """A running fake upstream process, steered over HTTP."""

    def __init__(self, name: str, api_key: str | None = None) -> None:
        self.name = name
        self.api_key = api_key
        self.port = 0
        self._spawn()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def _spawn(self) -> None:
        key = ["--api-key", self.api_key] if self.api_key else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testing.fake_upstream", "--name", self.name, "--port", str(self.port), *key],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"fake upstream '{self.name}' did not start: {line!r}")
        self.port = int(line.split()[1])

    def refuse(self) -> None:
        """Stops the server: connections to its port are refused until :meth:`restart`."""
        self._terminate()

    def restart(self) -> None:
        if self.process.poll() is None:
            return
        self._spawn()

    def behave(self, mode: str = "ok", **options: Any) -> None:
        self.client.post("/_control", json={"mode": mode, **options}).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return self.client.get("/_requests").json()

    def reset(self) -> None:
        self.restart()
        self.behave("ok")
        self.client.delete("/_requests").raise_for_status()

    def stop(self) -> None:
        self.client.close()
        self._terminate()

    def _terminate(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def create_app(name: str, api_key: str | None = None) -> FastAPI:
    app = FastAPI()
    state: dict[str, Any] = {"behaviour": {"mode": "ok"}, "requests": [], "count": 0}

    if api_key:  # only then: the middleware would change how a stream cut on purpose ends

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Response:
            if request.url.path.startswith("/v1/") and request.headers.get("authorization") != f"Bearer {api_key}":
                error = {"message": "Incorrect API key provided.", "type": "invalid_request_error"}
                return JSONResponse({"error": {**error, "param": None, "code": "invalid_api_key"}}, status_code=401)
            return await call_next(request)

    @app.post("/_control")
    async def control(request: Request) -> dict[str, Any]:
        state["behaviour"] = await request.json()
        return state["behaviour"]

    @app.get("/_requests")
    async def requests() -> list[dict[str, Any]]:
        return state["requests"]

    @app.delete("/_requests")
    async def clear() -> dict[str, int]:
        state["requests"].clear()
        state["count"] = 0
        return {"cleared": 1}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "fake"}]}

    def current() -> dict[str, Any]:
        """The behaviour for this request, using up one of its ``times``."""
        behaviour = state["behaviour"]
        if "times" in behaviour:
            if behaviour["times"] <= 0:
                state["behaviour"] = behaviour = {"mode": "ok"}
            else:
                behaviour["times"] -= 1
        return behaviour

    async def misbehave(behaviour: dict[str, Any], stream: bool) -> Response | None:
        mode = behaviour.get("mode", "ok")
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "status":
            status = int(behaviour.get("status", 500))
            headers = {"retry-after": str(behaviour["retry_after"])} if "retry_after" in behaviour else None
            return JSONResponse(
                {
                    "error": {
                        "message": f"{name} failed on purpose",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                status_code=status,
                headers=headers,
            )
        if mode == "malformed" and "json" in behaviour:
            data = json.dumps(behaviour["json"])
            if stream:
                return PlainTextResponse(f"data: {data}\n\ndata: [DONE]\n\n", media_type="text/event-stream")
            return PlainTextResponse(data, media_type="application/json")
        if mode == "malformed":
            return PlainTextResponse('{"id": "x", "choices": [', media_type="application/json")
        return None

    async def admitted(request: Request) -> tuple[dict[str, Any], dict[str, Any], Response | None]:
        """The request's body and the behaviour in force (the request recorded, unless told not
        to), and the failure to answer with instead, if any."""
        body = await request.json()
        behaviour = current()
        if behaviour.get("record", True):
            state["requests"].append({"body": body, "authorization": request.headers.get("authorization")})
        return body, behaviour, await misbehave(behaviour, bool(body.get("stream")))

    add_native_apis(app, name, state, admitted)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, behaviour, failure = await admitted(request)
        if failure is not None:
            return failure
        state["count"] += 1
        text = _answer(name, state["count"], body, behaviour)
        model = body.get("model", name)
        ident, created = f"chatcmpl-{name}-{state['count']}", int(time.time())
        delay = float(behaviour.get("delay_s", 0.0))
        pieces = _split(text, int(behaviour.get("chunks", 4)))
        per_piece = 1 / float(behaviour["tokens_per_s"]) if behaviour.get("tokens_per_s") else 0.0
        call = _tool_call(name, state["count"], body) if behaviour.get("call_tools") else None
        if not body.get("stream"):
            await asyncio.sleep(delay + per_piece * len(pieces))
            if call is not None:
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                choice = {"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}
                usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
                completion = {"id": ident, "object": "chat.completion", "created": created, "model": model}
                return JSONResponse(completion | {"choices": [choice], "usage": usage})
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                }
            )
        cut_after = int(behaviour.get("cut_after", len(pieces))) if behaviour.get("mode") == "cut" else None

        async def events() -> Any:
            def event(delta: dict[str, Any], finish: str | None = None) -> str:
                chunk = {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(chunk)}\n\n"

            yield event({"role": "assistant", "content": ""})
            if cut_after == 0:
                raise ConnectionResetError("stream cut on purpose")
            if call is not None:
                arguments = call["function"]["arguments"]
                opened = call | {"index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
                yield event({"tool_calls": [opened]})
                for piece in _split(arguments, 2):
                    yield event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for number, piece in enumerate(pieces if call is None else [], start=1):
                await asyncio.sleep(delay + per_piece)
                yield event({"content": piece})
                if cut_after is not None and number >= cut_after:
                    raise ConnectionResetError("stream cut on purpose")
            yield event({}, "tool_calls" if call is not None else "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
                chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
                yield f"data: {json.dumps(chunk | {'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body, behaviour, failure = await admitted(request)
        if failure is not None:
            return failure
        await asyncio.sleep(float(behaviour.get("delay_s", 0.0)))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = int(body.get("dimensions") or state["behaviour"].get("dimensions", 384))
        data = [{"object": "embedding", "index": i, "embedding": _vector(t, dim)} for i, t in enumerate(texts)]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    return app


def _tool_call(name: str, count: int, body: dict[str, Any]) -> dict[str, Any] | None:
    tools, last = body.get("tools"), body["messages"][-1]
    if not tools or last["role"] != "user":
        return None
    arguments = json.dumps({"step": count})
    return {
        "id": f"call_{name}_{count}",
        "type": "function",
        "function": {"name": tools[0]["function"]["name"], "arguments": arguments},
    }


def _answer(name: str, count: int, body: dict[str, Any], behaviour: dict[str, Any]) -> str:
    kind = behaviour.get("answer")
    if kind is None:
        return f"{name} answer #{count}"
    content = body["messages"][-1]["content"]
    last = content if isinstance(content, str) else json.dumps(content)
    if kind == "oracle":
        return _oracle(last, behaviour.get("winners", {}), behaviour.get("default", "tie"))
    digest = int.from_bytes(hashlib.sha256(last.encode()).digest()[:8], "little")
    if kind == "per_prompt":
        return f"{name} answer {digest % 10**8:08d}"
    if "[[A]]" in last:
        return f"Both answers read. [[{'ABC'[digest % 3]}]]"
    return f"A fair answer. Rating: [[{1 + digest % 10}]]"


def _oracle(message: str, winners: dict[str, str], default: str) -> str:
    """The verdict of a judge that knows who wins each question, read from the default judge
    prompts of ``routing.judge_settings``."""
    question = _between(message, "[Question]\n", "\n\n[")
    winner = winners.get(question, default)
    if "[Assistant A's answer]" in message:
        first = _between(message, "[Assistant A's answer]\n", "\n\n[Assistant B's answer]")
        if winner == "tie":
            return "Equally good. [[C]]"
        return "[[A]]" if first.startswith(winner) else "[[B]]"
    answer = message.split("[Answer]\n", 1)[-1]
    rating = 6 if winner == "tie" else (9 if answer.startswith(winner) else 3)
    return f"Rating: [[{rating}]]"


def _between(text: str, start: str, end: str) -> str:
    tail = text.split(start, 1)[-1]
    return tail.split(end, 1)[0]


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _vector(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--api-key", default=None, help="the one key /v1/ accepts (default: any)")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: an answer's head and body go out at once, not ~40 ms
    # apart behind the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)  # connections queue from now on, before the server loop starts
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(args.name, args.api_key), log_level="critical", timeout_graceful_shutdown=1)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    sys.exit(0)


if __name__ == "__main__":
    main()
