from __future__ import annotations

import numpy as np
from ray import serve

from routing.config import RouterConfig
from routing.routers import make_router


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Router:
    """One router model; scores prompts with P(strong wins)."""

    def __init__(self, config: RouterConfig) -> None:
        self.router = make_router(config)

    async def score(self, prompts: list[str], embeddings: np.ndarray | None) -> list[float]:
        return [float(s) for s in self.router.score(prompts, embeddings)]
