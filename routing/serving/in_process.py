"""The whole request path in one process, without Ray: the engine with local routers, the
embedding model and the upstreams' clients, as the in-process client and the tests run it."""

from __future__ import annotations

from routing.config import AppConfig
from routing.embeddings import make_embedder
from routing.errors import InvalidRequest
from routing.serving.engine import RoutingEngine
from routing.serving.live_router import LiveRouter, Ranking, RankQuery, RouterState
from routing.upstreams import make_backend


class LocalRanker:
    """A router in this process, as a :class:`Ranker`."""

    def __init__(self, router: LiveRouter) -> None:
        self.router = router

    async def rank(self, query: RankQuery) -> Ranking:
        (ranking,) = self.router.rank([query])
        if isinstance(ranking, InvalidRequest):
            raise ranking
        return ranking

    async def state(self) -> RouterState:
        return self.router.state


def in_process_engine(config: AppConfig) -> RoutingEngine:
    """The whole request path in this process: no Ray, same behaviour as the service."""
    routers = {
        name: LocalRanker(LiveRouter(name, router, config.candidates(name), config.embedding.model_id))
        for name, router in config.routers.items()
    }
    return RoutingEngine(
        config,
        make_embedder(config.embedding) if config.needs_embeddings else None,
        routers,
        {key: make_backend(upstream) for key, upstream in config.upstreams.items()},
    )
