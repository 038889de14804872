"""The application's configuration: one pydantic model for the ``args`` of ``serve_config.yaml``.

Unknown keys are errors (Ray's own schema silently ignores them), reported with their full
path, e.g. ``args.routers.mf.checkpont: unknown key``. Values that come from the environment
(``*_env`` fields) are read once, by :meth:`AppConfig.resolve_env`; API keys are never read
here, only by the replica that uses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BeforeValidator, Field, PlainSerializer, PlainValidator, SerializationInfo, model_validator

from routing.candidates import check_candidate_keys, check_candidates, resolve_candidates
from routing.learner_config import LearnerConfig
from routing.model_names import ROUTER_PREFIX
from routing.resources import MINILM_MODEL_ID
from routing.routers.kind import Candidate, RouterDefaults, RouterSettings
from routing.routers.kinds import KINDS
from routing.session_settings import SessionStore
from routing.settings import PRECISION_HELP, EnvName, Precision, Strict, validate_config
from routing.upstreams.config import LocalUpstream, OpenAIUpstream, Upstream, check_pair

ROUTER_NAME = re.compile(r"^[a-z0-9_]+$")


# ---------------------------------------------------------------- embeddings


class LocalEmbedding(Strict):
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


class OpenAIEmbedding(Strict):
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


def _dump_router(router: RouterSettings, info: SerializationInfo) -> dict[str, Any]:
    return router.model_dump(mode=info.mode)


# A router's config is its kind's model, looked up by ``type`` in the registry of kinds.
RouterConfig = Annotated[RouterSettings, PlainValidator(KINDS.validate), PlainSerializer(_dump_router)]


def _candidate_end(value: Any) -> Any:
    # The paper's names for the two ends of a pair, kept for the configs that use them.
    return {"strong": "most_capable", "weak": "cheapest"}.get(value, value) if isinstance(value, str) else value


class FallbackPolicy(Strict):
    """What a routed request does when its target model, or the routing step itself, fails."""

    on_unconfigured: Literal["other_model", "error"] = "other_model"
    on_upstream_error: Literal["other_model", "error"] = "other_model"
    on_routing_error: Annotated[Literal["most_capable", "cheapest", "error"], BeforeValidator(_candidate_end)] = Field(
        default="most_capable",
        description="when the router cannot score (its replica died twice, its embedding endpoint is down, "
        "or it did not answer within routing_timeout_s): its most capable candidate, its cheapest, or an "
        "error ('strong' and 'weak' still name the two ends)",
    )
    routing_timeout_s: float = Field(
        default=10.0, gt=0, description="how long a request waits for its routing decision (embedding and score)"
    )


class Limits(Strict):
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
    # Long enough for a burst to be routed late rather than refused; short against the seconds a
    # sustained overload would queue a request for.
    max_queue_delay_ms: float = Field(
        default=500.0,
        ge=0,
        description="a request that arrives while the ingress's event loop runs this late, or a routing "
        "step has waited this long for the router stage, is refused with 503 and Retry-After (0: never)",
    )


class AuthConfig(Strict):
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


def _default_routers() -> dict[str, RouterSettings]:
    # serve_config.yaml's: the routers that share one embedding model (the classifiers load their own).
    shipped = ("random", "sw_ranking", "mf", "ensemble")
    return {name: KINDS.get(name).settings() for name in shipped}


class RequestLogConfig(Strict):
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
    answers: bool = Field(
        default=False,
        description="record each chat completion's answer text too (plain and streamed): shadow evaluation "
        "then asks only the most capable candidate again",
    )
    redact: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="'module:function' given each record before it is written; it returns the "
        "record to write, or None to leave it out",
    )


class GraphDeployment(NamedTuple):
    role: Literal["ingress", "embedding", "router", "llm", "learner"]
    key: str | None = None  # the router's name, or the upstream's key


def router_deployment(name: str) -> str:
    return f"Router-{name}"


def llm_deployment(key: str) -> str:
    return f"LLM-{key}"


class AppConfig(Strict):
    upstreams: dict[str, Upstream] = Field(default_factory=_default_upstreams)
    default_candidates: list[str] = Field(
        default_factory=lambda: ["weak", "strong"],
        min_length=2,
        description="the candidates of a router that names none, and what a request for a model by name is "
        "priced against (the last): keys in 'upstreams', cheapest first, the most capable last",
    )
    embedding: Embedding = Field(default_factory=LocalEmbedding)
    routers: dict[str, RouterConfig] = Field(default_factory=_default_routers)
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: Limits = Field(default_factory=Limits)
    request_log: RequestLogConfig | None = None
    learner: LearnerConfig | None = None
    sessions: SessionStore = Field(default_factory=SessionStore)

    @model_validator(mode="before")
    @classmethod
    def _pair_as_candidates(cls, data: Any) -> Any:
        """``strong`` and ``weak``, the paper's pair, name the default candidates' two ends."""
        if not isinstance(data, dict) or not {"strong", "weak"} & set(data):
            return data
        if "default_candidates" in data:
            raise ValueError("give 'default_candidates' or the pair 'strong'/'weak', not both")
        data = dict(data)
        strong, weak = data.pop("strong", "strong"), data.pop("weak", "weak")
        upstreams = data.get("upstreams")
        check_pair(strong, weak, upstreams if isinstance(upstreams, dict) else _default_upstreams())
        return data | {"default_candidates": [weak, strong]}

    @model_validator(mode="after")
    def _consistent(self) -> AppConfig:
        check_candidate_keys(self.default_candidates, self.upstreams, "default_candidates")
        if not self.routers:
            raise ValueError("'routers' needs at least one router")
        if self.learner is not None:
            _check_learner(self.learner, self.routers, self.request_log)
        for name, router in self.routers.items():
            if not ROUTER_NAME.match(name):
                raise ValueError(f"router name '{name}' may hold only a-z, 0-9 and '_'")
            check_candidates(name, router, self.upstreams)
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
            "sessions": self.sessions.resolve_env(env).model_dump(),
        }
        # Validated again: a variable may have renamed a model onto another one's name.
        return load_app_config(resolved, root="args (with environment variables applied)")

    @property
    def needs_embeddings(self) -> bool:
        return any(KINDS.of(router).needs_embeddings for router in self.routers.values())

    def candidates(self, router: str) -> tuple[Candidate, ...]:
        """The models router ``router`` chooses among, cheapest first, each with the name that
        router scores it by (:func:`routing.candidates.resolve_candidates`)."""
        return resolve_candidates(self.routers[router], self.upstreams, self.default_candidates)

    def deployments(self) -> dict[str, GraphDeployment]:
        """The graph's deployments by name (graph.py names them so), each with what it is."""
        named = {"Ingress": GraphDeployment("ingress")}
        if self.needs_embeddings:
            named["Embedding"] = GraphDeployment("embedding")
        named |= {router_deployment(name): GraphDeployment("router", name) for name in self.routers}
        named |= {llm_deployment(key): GraphDeployment("llm", key) for key in self.upstreams}
        if self.learner is not None:
            named["Learner"] = GraphDeployment("learner")
        return named

    def upstream_by_model(self, model: str) -> str | None:
        for key, upstream in self.upstreams.items():
            if upstream.model == model:
                return key
        return None


def _check_learner(
    learner: LearnerConfig, routers: Mapping[str, RouterSettings], request_log: RequestLogConfig | None
) -> None:
    if learner.router not in routers:
        raise ValueError(f"learner.router: no router '{learner.router}' (routers: {', '.join(routers)})")
    kind = KINDS.of(routers[learner.router])
    if len(routers[learner.router].candidates or ()) > 2:
        raise ValueError(
            f"learner.router: router '{learner.router}' chooses among more than two candidates; the learner's "
            "judge compares two answers, the cheapest candidate's and the most capable one's, which teaches how "
            "that pair compares but not where each candidate between them stands: learn a router of two "
            "candidates, or train this one on data that holds every candidate's answers"
        )
    if learner.method == "refit" and kind.refit is None:
        raise ValueError(f"learner.method: a {kind.name} router has no refit; use 'retrain'")
    if learner.method == "retrain" and kind.trainer is None:
        raise ValueError(f"learner.method: a {kind.name} router has no trainer to retrain with")
    if request_log is None or not request_log.prompts:
        raise ValueError("learner: learns from the logged prompts; set request_log (with prompts: true)")


class BatchingConfig(Strict):
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


def load_app_config(args: Mapping[str, Any] | None, root: str = "args") -> AppConfig:
    """Validate ``args``, raising :class:`ConfigError` that names every bad key by its path."""
    return validate_config(AppConfig, args, root, "application config")


class RouterUserConfig(BatchingConfig, RouterDefaults):
    """The ``user_config`` of a Router deployment: its batching, the checkpoint it scores with,
    and the defaults ``router-<name>`` routes by (unset: those of ``args.routers.<name>``). A
    new checkpoint and its calibration table are loaded beside the current ones, which answer
    until both are swapped in at once; a replica that starts later starts on it."""

    checkpoint: str | None = Field(
        default=None,
        min_length=1,
        description="a checkpoint to use instead of the configured one; serve deploy swaps it in on running replicas",
    )


def load_batching_config(user_config: Mapping[str, Any] | None) -> BatchingConfig:
    return validate_config(BatchingConfig, user_config, "user_config", "user_config")


def load_router_user_config(user_config: Mapping[str, Any] | None) -> RouterUserConfig:
    return validate_config(RouterUserConfig, user_config, "user_config", "user_config")
