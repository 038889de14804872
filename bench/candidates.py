"""What more candidates cost the router stage: one :class:`LiveRouter` ranking a request for 2,
3 and 11 candidates, side by side, for the kinds that route among many (``mf``, ``sw_ranking``).

    python -m bench.candidates

The embedding step (the same for any number of candidates) is left out: the prompts' MiniLM
embeddings are computed once, and only the ranking, the part that grows with the candidates, is
timed, for one request at a time and for batches of 32 (what a busy Router replica gathers).
"""

from __future__ import annotations

import time

import numpy as np

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.routers.kind import Candidate
from routing.routers.kinds import MFRouterConfig, SWRankingRouterConfig
from routing.serving.live_router import LiveRouter, RankQuery

# Cheapest first, from the shipped checkpoints' models; the two-candidate case is the paper's pair.
LADDER = [
    "mistral-7b-instruct-v0.1", "llama-2-70b-chat", "mixtral-8x7b-instruct-v0.1", "gemma-2-9b-it",
    "meta-llama-3.1-8b-instruct", "gpt-3.5-turbo-0125", "claude-3-haiku-20240307", "gpt-4o-mini-2024-07-18",
    "qwen2.5-72b-instruct", "claude-3-5-sonnet-20240620", "gpt-4-1106-preview",
]  # fmt: skip
PROMPTS = [f"Question {i}: explain how a hash map handles collisions, briefly." for i in range(256)]


def candidates(count: int) -> list[Candidate]:
    chosen = [LADDER[0], *LADDER[len(LADDER) - count + 1 :]] if count < len(LADDER) else LADDER
    return [Candidate(key=f"m{i}", model=name, router_model_id=name) for i, name in enumerate(chosen)]


def per_request_us(router: LiveRouter, embeddings: np.ndarray, batch: int) -> float:
    """Median microseconds per request of ranking ``batch`` requests at a time."""
    queries = [RankQuery(f"p{i}", row, threshold=0.5) for i, row in enumerate(embeddings)]
    router.rank(queries[:batch])  # past first-call costs
    times = []
    for start in range(0, len(queries) - batch + 1, batch):
        began = time.perf_counter()
        router.rank(queries[start : start + batch])
        times.append((time.perf_counter() - began) / batch)
    return 1e6 * float(np.median(times))


def main() -> None:
    embeddings = LocalEmbedder(LocalEmbedding(torch_threads=1)).encode(PROMPTS)
    embedding_id = LocalEmbedding().model_id
    print("| router | candidates | µs per request, one at a time | µs per request, batches of 32 |")
    print("|---|---|---|---|")
    for config in (MFRouterConfig(type="mf"), SWRankingRouterConfig(type="sw_ranking")):
        for count in (2, 3, len(LADDER)):
            router = LiveRouter(config.type, config, candidates(count), embedding_id)
            single = per_request_us(router, embeddings, 1)
            batched = per_request_us(router, embeddings, 32)
            print(f"| {config.type} | {count} | {single:.0f} | {batched:.0f} |")


if __name__ == "__main__":
    main()
