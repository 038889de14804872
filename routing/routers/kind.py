"""What a router kind is, and the registry that maps a kind's name to everything about it.

A :class:`RouterKind` names, in one place, a kind's config model, the function that loads its
router from a checkpoint, its trainer, its in-domain refit for ``evaluate``, whether its scores
can be calibrated into strong shares, and whether it scores any two models its checkpoint knows
or only the pair it was trained for. Config validation, checkpoint loading, the command-line
choices, evaluation and calibration all read it, so a new kind is its module plus one
:meth:`Registry.register` call.

The heavy parts (routers, trainers, refits) may be given as ``"module:attribute"`` strings, so
that reading configs imports no model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, get_args

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from routing.resources import checkpoint_path
from routing.routers.conversation_settings import ConversationSettings
from routing.routers.share_settings import ShareControl, ShareControlSetting
from routing.settings import Strict, StrongPercent, Threshold
from routing.upstreams.config import Price

# The strong and weak models to score, by their names in the training data; None: the checkpoint's default.
ScoringPair = tuple[str | None, str | None]
Ref = str | Callable[..., Any]
# (a, b): the models a score says "a wins over b" of, by their names in the checkpoint.
ModelPair = tuple[str, str]


class Router(Protocol):
    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One score in [0, 1] per prompt, P(strong wins); ``embeddings`` (one row per prompt)
        are given when the router's kind ``needs_embeddings``."""
        ...


class PairsScorer(Protocol):
    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One row per prompt, one column per pair it was made for: P(the pair's first model wins)."""
        ...


class AnyPairRouter(Router, Protocol):
    """The router of a kind that ``scores_any_model``: it scores its own pair, and any other
    pairs of its checkpoint's models in one pass."""

    def against(self, pairs: Sequence[ModelPair]) -> PairsScorer:
        """A scorer of ``pairs`` (checked to be known), or :class:`CheckpointError` why it cannot."""
        ...


# What router-<name> sends to the most capable candidate when its config sets no default.
DEFAULT_STRONG_PERCENT = 50.0


class RouterDefaults(Strict):
    """What ``router-<name>`` without a threshold uses: a share of requests to the most capable
    candidate, held on live traffic by share control (the calibration table's threshold for it
    until enough traffic is seen), unless a threshold is set instead. A threshold means something
    different for every router (its scores are spread differently), a share the same for all.
    Also part of its Router deployment's ``user_config``, which changes it on a running service."""

    default_strong_percent: StrongPercent | None = Field(
        default=None,
        description=f"the share of requests to the most capable candidate (default {DEFAULT_STRONG_PERCENT:g})",
    )
    default_threshold: Threshold | None = Field(
        default=None, description="a fixed threshold instead of a share: a score at or above it is sent up"
    )

    @model_validator(mode="after")
    def _one_default(self) -> RouterDefaults:
        if self.default_strong_percent is not None and self.default_threshold is not None:
            raise ValueError("set default_strong_percent or default_threshold, not both")
        return self

    @property
    def strong_percent(self) -> float | None:
        """The default share, or None where a fixed threshold is the default."""
        if self.default_threshold is not None:
            return None
        return self.default_strong_percent if self.default_strong_percent is not None else DEFAULT_STRONG_PERCENT


class RouterSettings(RouterDefaults):
    """What every router's config holds; each kind's config narrows ``type`` to its name."""

    type: str
    checkpoint: str = Field(min_length=1, description="'builtin:<name>' or a checkpoint directory")
    candidates: list[str] | None = Field(
        default=None,
        description="the upstream keys this router chooses among, cheapest first and the most capable last; "
        "default: the application's weak and strong",
    )
    share_control: ShareControlSetting = Field(
        default_factory=ShareControl,
        description="how router-<name>-<p>% holds p % on live traffic; 'off': the calibration table's threshold",
    )
    conversation: ConversationSettings = Field(
        default_factory=ConversationSettings,
        description="what of a conversation is scored, and how long its decision holds",
    )

    def scoring_ids(self) -> ScoringPair:
        """Names that override the ``router_model_id`` of the most capable and the cheapest
        candidate for this router, if any."""
        return None, None


class Candidate(Strict):
    """A model a router may send a request to."""

    key: str = Field(description="its entry in 'upstreams'")
    model: str = Field(description="its public name")
    router_model_id: str | None = Field(default=None, description="its name in router training data")
    price: Price | None = Field(default=None, description="its upstream's price, for budgets")


@dataclass(frozen=True)
class RouterKind:
    """Everything about one kind of router.

    - ``config``: its config model, a :class:`RouterSettings` with ``type: Literal[name]``;
    - ``load``: ``(checkpoint directory, config, ScoringPair) -> Router``;
    - ``needs_embeddings``: its router reads prompt embeddings (else it reads the text itself);
    - ``scores_any_model``: it scores any two models its checkpoint knows (the pair is chosen by
      the candidates' ``router_model_id``), rather than only the pair it was trained for, and so
      routes among more than two candidates (its router is an :class:`AnyPairRouter`);
    - ``calibrated``: its scores can be turned into strong shares (``router-<name>-<p>%``);
    - ``trainer``: ``(TrainJob) -> Trained``, for ``routellm-serve train <name>``;
    - ``in_domain``: ``(router, prompts, embeddings, outcomes) -> (scores, FitAndScore)``, the
      refit of ``evaluate``'s in-domain setting; without one a kind is evaluated out of domain only;
    - ``refit``: ``(RefitJob) -> Refit``, the learner's challengers from the champion and the own
      labels (:mod:`routing.offline.learning.refit`); without one the learner retrains with ``trainer``;
    - ``baseline``: ``evaluate`` draws it over many seeds as the random baseline instead.
    """

    name: str
    config: type[RouterSettings]
    load: Ref
    needs_embeddings: bool
    scores_any_model: bool = False
    calibrated: bool = True
    trainer: Ref | None = None
    in_domain: Ref | None = None
    refit: Ref | None = None
    baseline: bool = False

    def __post_init__(self) -> None:
        tags = get_args(self.config.model_fields["type"].annotation)
        if tags != (self.name,):
            raise ValueError(f"router kind '{self.name}': its config's 'type' must be Literal['{self.name}']")

    def router(self, config: RouterSettings, pair: ScoringPair = (None, None)) -> Router:
        """The router ``config`` describes, loaded from its checkpoint, scoring ``pair`` where the
        config names no pair of its own (None: the checkpoint's default)."""
        scored = tuple(own or given for own, given in zip(config.scoring_ids(), pair, strict=True))
        return resolve(self.load)(checkpoint_path(config.checkpoint), config, scored)

    def settings(self, **fields: Any) -> RouterSettings:
        """Its config with ``fields`` and the defaults for the rest."""
        return self.config.model_validate({"type": self.name, **fields})


def resolve(ref: Ref) -> Callable[..., Any]:
    """The callable a :data:`Ref` names."""
    if callable(ref):
        return ref
    module, _, attribute = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


class Registry:
    """Router kinds by name."""

    def __init__(self) -> None:
        self._kinds: dict[str, RouterKind] = {}

    def register(self, kind: RouterKind) -> RouterKind:
        known = self._kinds.get(kind.name)
        if known is not None and known != kind:
            raise ValueError(f"a router kind named '{kind.name}' is already registered")
        self._kinds[kind.name] = kind
        return kind

    def names(self) -> list[str]:
        return list(self._kinds)

    def get(self, name: str) -> RouterKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise ValueError(f"unknown router type '{name}' (types: {', '.join(self._kinds)})") from None

    def of(self, config: RouterSettings) -> RouterKind:
        return self.get(config.type)

    def validate(self, value: Any) -> RouterSettings:
        """A router's config as its kind's model (the validator of every ``routers`` entry)."""
        if isinstance(value, RouterSettings):
            if not isinstance(value, self.get(value.type).config):
                raise PydanticCustomError(
                    "router_config", "a '{type}' router needs its own config", {"type": value.type}
                )
            return value
        if not isinstance(value, dict):
            raise PydanticCustomError("model_type", "Input should be a mapping of router settings")
        if "type" not in value:
            raise PydanticCustomError("union_tag_not_found", "missing key {discriminator}", {"discriminator": "type"})
        kind = self._kinds.get(value["type"])
        if kind is None:
            raise PydanticCustomError(
                "union_tag_invalid",
                "unknown router type '{tag}' (types: {expected_tags})",
                {"tag": str(value["type"]), "expected_tags": ", ".join(self._kinds)},
            )
        return kind.config.model_validate(value)
