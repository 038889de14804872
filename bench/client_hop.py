"""The LLM client's own CPU per upstream call, in this process, against the fake upstream in its
own: the shipped backend beside the ``openai`` SDK's typed calls (``chat.completions.create``,
then the typed answer dumped and validated as the service's own), which it replaced:

    python -m bench.client_hop [--calls 400] [--out docs/benchmarks/client_hop]

Each figure is this process's CPU time (user + system, from the kernel) over ``--calls`` calls
made one after another, per call; a streamed call reads every chunk. Writes ``results.json`` and
``report.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.tables import write_results
from routing.openai_compat import async_client
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams.config import OpenAIUpstream
from routing.upstreams.openai_api import OpenAIChatBackend
from testing import ROOT
from testing.fake_upstream import FakeUpstream

WARMUP = 50
Call = Callable[[ChatCompletionRequest], Awaitable[None]]


def typed_sdk(base_url: str, model: str) -> tuple[Call, Call]:
    """What the backend did before: the SDK parses each answer into its types, which are dumped
    and validated as the service's own."""
    client = async_client(base_url, None, 60.0, 5.0)

    def arguments(request: ChatCompletionRequest) -> dict[str, Any]:
        return {"model": model, "messages": [m.model_dump(exclude_none=True) for m in request.messages]}

    async def complete(request: ChatCompletionRequest) -> None:
        answer = await client.chat.completions.create(**arguments(request))
        ChatCompletion.model_validate({**answer.model_dump(exclude_unset=True), "model": model})

    async def stream(request: ChatCompletionRequest) -> None:
        async with await client.chat.completions.create(**arguments(request), stream=True) as chunks:
            async for chunk in chunks:
                ChatCompletionChunk.model_validate({**chunk.model_dump(exclude_unset=True), "model": model})

    return complete, stream


def shipped(base_url: str, model: str) -> tuple[Call, Call]:
    backend = OpenAIChatBackend(OpenAIUpstream(backend="openai", model=model, base_url=base_url))

    async def complete(request: ChatCompletionRequest) -> None:
        await backend.complete(request)

    async def stream(request: ChatCompletionRequest) -> None:
        async for _ in backend.stream(request):
            pass

    return complete, stream


async def chunks_per_stream(base_url: str, request: ChatCompletionRequest) -> int:
    backend = OpenAIChatBackend(OpenAIUpstream(backend="openai", model="strong", base_url=base_url))
    return len([chunk async for chunk in backend.stream(request)])


async def cpu_ms_per_call(call: Call, request: ChatCompletionRequest, calls: int) -> float:
    for _ in range(WARMUP):
        await call(request)
    start = time.process_time()
    for _ in range(calls):
        await call(request)
    return round(1000 * (time.process_time() - start) / calls, 3)


async def measure(base_url: str, calls: int) -> dict[str, Any]:
    request = ChatCompletionRequest.model_validate(
        {"model": "router", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    )
    clients: dict[str, dict[str, float]] = {}
    for name, make in (("openai SDK, typed", typed_sdk), ("shipped backend", shipped)):
        complete, stream = make(base_url, "strong")
        clients[name] = {
            "complete_ms": await cpu_ms_per_call(complete, request, calls),
            "stream_ms": await cpu_ms_per_call(stream, request, calls),
        }
    return {"calls": calls, "chunks_per_stream": await chunks_per_stream(base_url, request), "clients": clients}


def report(results: dict[str, Any]) -> str:
    chunks = results["chunks_per_stream"]
    lines = [
        f"CPU ms per call in the calling process, {results['calls']} calls one after another "
        f"(a streamed call reads {chunks} chunks):",
        "",
        "| client | complete | streamed |",
        "|---|---:|---:|",
    ]
    for name, figures in results["clients"].items():
        lines.append(f"| {name} | {figures['complete_ms']} | {figures['stream_ms']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "client_hop")
    args = parser.parse_args()
    upstream = FakeUpstream("strong")
    try:
        upstream.behave("ok", record=False)
        results = asyncio.run(measure(upstream.base_url, args.calls))
    finally:
        upstream.stop()
    write_results(results, report(results), "bench.client_hop", args.out)


if __name__ == "__main__":
    main()
