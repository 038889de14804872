"""The router kinds of the paper, registered in :data:`KINDS`; ``register`` adds another.

Each entry is a config model here and, by name, the modules that do the work: the router in
``routing/routers/``, its trainer in ``routing/offline/training/``, its in-domain refit in
``routing/offline/evaluation/in_domain.py``. A kind defined outside this package registers itself when
its module is imported; a process that unpickles one of its configs imports that module too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from routing.routers.kind import Registry, Router, RouterKind, RouterSettings, ScoringPair
from routing.settings import PRECISION_HELP, Precision


class RandomRouterConfig(RouterSettings):
    """The paper's baseline: a uniform random score."""

    type: Literal["random"]
    checkpoint: str = "builtin:random"
    seed: int | None = Field(default=None, description="overrides the checkpoint's seed")


class _PairRouterConfig(RouterSettings):
    """A router over prompt embeddings that scores any pair of models its checkpoint knows."""

    strong_model_id: str | None = Field(
        default=None, description="scoring pair; default: the candidates' router_model_id, else the checkpoint's"
    )
    weak_model_id: str | None = None

    def scoring_ids(self) -> ScoringPair:
        return self.strong_model_id, self.weak_model_id


class SWRankingRouterConfig(_PairRouterConfig):
    """Similarity-weighted Bradley–Terry ranking over the training battles, refit per prompt."""

    type: Literal["sw_ranking"]
    checkpoint: str = "builtin:sw_ranking"


class MFRouterConfig(_PairRouterConfig):
    """The paper's matrix-factorisation router over prompt embeddings."""

    type: Literal["mf"]
    checkpoint: str = "builtin:mf"


class EnsembleRouterConfig(RouterSettings):
    """Per-source heads that predict a prompt's difficulty from its embedding and features, with
    its length; one score for any pair of models."""

    type: Literal["ensemble"]
    checkpoint: str = "builtin:ensemble"


class _ClassifierRouterConfig(RouterSettings):
    """A fine-tuned classifier that reads the prompt's tokens itself (strong wins / tie / weak wins)."""

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


KINDS = Registry()
register = KINDS.register

register(
    RouterKind(
        name="random",
        config=RandomRouterConfig,
        load="routing.routers.random:router_for",
        needs_embeddings=False,
        trainer="routing.offline.training.random:train_router",
        baseline=True,
    )
)
register(
    RouterKind(
        name="sw_ranking",
        config=SWRankingRouterConfig,
        load="routing.routers.sw_ranking:router_for",
        needs_embeddings=True,
        scores_any_model=True,
        trainer="routing.offline.training.sw_ranking:train_router",
        in_domain="routing.offline.evaluation.in_domain:sw_ranking_setting",
    )
)
register(
    RouterKind(
        name="mf",
        config=MFRouterConfig,
        load="routing.routers.mf:router_for",
        needs_embeddings=True,
        scores_any_model=True,
        trainer="routing.offline.training.mf:train_router",
        in_domain="routing.offline.evaluation.in_domain:mf_setting",
        refit="routing.offline.learning.refit:refit_mf",
    )
)
register(
    RouterKind(
        name="ensemble",
        config=EnsembleRouterConfig,
        load="routing.routers.ensemble:router_for",
        needs_embeddings=True,
        trainer="routing.offline.training.ensemble:train_router",
        in_domain="routing.offline.evaluation.in_domain:ensemble_setting",
    )
)
register(
    RouterKind(
        name="bert",
        config=BertRouterConfig,
        load="routing.routers.classifier:router_for",
        needs_embeddings=False,
        trainer="routing.offline.training.classifier:train_router",
        in_domain="routing.offline.evaluation.in_domain:classifier_setting",
    )
)
register(
    RouterKind(
        name="causal_llm",
        config=CausalLLMRouterConfig,
        load="routing.routers.classifier:router_for",
        needs_embeddings=False,
        trainer="routing.offline.training.classifier:train_router",
        in_domain="routing.offline.evaluation.in_domain:classifier_setting",
    )
)


def load_router(config: RouterSettings, pair: ScoringPair = (None, None)) -> Router:
    """The router ``config`` describes, loaded from its checkpoint; ``pair``: the models a kind
    that scores any two models scores (None: its checkpoint's default)."""
    return KINDS.of(config).router(config, pair)
