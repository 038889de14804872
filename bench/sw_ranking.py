"""SW-ranking speed: this project's vectorised router against the reference algorithm, same CPU.

    python bench/sw_ranking.py [--requests 300] [--reference-requests 5]

The reference (RouteLLM's similarity-weighted ranking) refits a weighted logistic regression
(scikit-learn, no penalty) over every training battle, mapped to tiers, for every request. Both
sides get the same prompt embeddings, so the figures compare the routers' own work; MiniLM's
forward pass is timed separately. Prints requests/s and the largest score difference.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.data.convert import to_battles
from routing.offline.data.files import read_preference_data
from routing.offline.data.schema import Battle
from routing.resources import checkpoint_path
from routing.routers.sw_ranking import SWRankingRouter

PAPER_REQUESTS_PER_S = 2.9
ROOT = Path(__file__).resolve().parent.parent


def reference_scores(
    router: SWRankingRouter, battles: list[Battle], prompt_rows: dict[str, int], query_embeddings: np.ndarray
) -> np.ndarray:
    """RouteLLM's per-request algorithm: duplicated battle table, weights γ^(1+s/max s), full refit."""
    from sklearn.linear_model import LogisticRegression

    tier_of = router.manifest.params["tiers"]
    a = np.array([tier_of[b.model_a] for b in battles])
    b_ = np.array([tier_of[b.model_b] for b in battles])
    winner = np.array([b.winner for b in battles])
    rows = np.array([prompt_rows[b.prompt] for b in battles])
    n, tiers = len(battles), router.tier_count
    design = np.zeros((n, tiers))
    design[np.arange(n), a] += math.log(10)
    design[np.arange(n), b_] -= math.log(10)
    design = np.vstack([design, design])
    # A-win: 1 in both copies; B-win: 0 in both; tie: 1 then 0.
    labels = np.concatenate([winner != "model_b", winner == "model_a"]).astype(int)
    scores = []
    for q in query_embeddings:
        similarity = router.prompt_embeddings[rows] @ q
        weights = router.gamma ** (1 + similarity / similarity.max())
        lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-6)  # no penalty
        lr.fit(design, labels, sample_weight=np.concatenate([weights, weights]))
        elo = 400 * lr.coef_[0]  # reference: Elo = 400·coef + 1000
        scores.append(1 - 1 / (1 + 10 ** ((elo[router.strong_tier] - elo[router.weak_tier]) / 400)))
    return np.array(scores)


def measure(requests: int = 300, reference_requests: int = 5) -> dict[str, float]:
    """Requests/s of the reference algorithm and of this project's router, one at a time and in
    batches of 32, on the same prompt embeddings; and how far their scores differ."""
    directory = checkpoint_path("builtin:sw_ranking")
    router = SWRankingRouter.load(directory)
    battles = to_battles(read_preference_data(ROOT / "data" / "train"))
    prompts = sorted({b.prompt for b in battles})
    rng = np.random.default_rng(0)
    queries = [prompts[i] for i in rng.choice(len(prompts), size=requests, replace=False)]
    encoder = LocalEmbedder(LocalEmbedding())
    started = time.perf_counter()
    embeddings = np.stack([encoder.encode([q])[0] for q in queries])
    embed_ms = 1000 * (time.perf_counter() - started) / len(queries)

    started = time.perf_counter()
    ours_single = np.array([router.score([q], e[None, :])[0] for q, e in zip(queries, embeddings, strict=True)])
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    ours_batched = np.concatenate(
        [router.score(queries[i : i + 32], embeddings[i : i + 32]) for i in range(0, len(queries), 32)]
    )
    batched_s = time.perf_counter() - started

    # The reference reads the checkpoint's prompt embeddings too, so both fit the same weighted data.
    prompt_rows = {p: i for i, p in enumerate(prompts)}
    started = time.perf_counter()
    reference = reference_scores(router, battles, prompt_rows, embeddings[:reference_requests])
    reference_s = time.perf_counter() - started
    return {
        "battles": len(battles),
        "prompts": len(prompts),
        "tiers": router.tier_count,
        "embedding_ms": embed_ms,
        "reference_per_s": reference_requests / reference_s,
        "ours_one_at_a_time_per_s": len(queries) / single_s,
        "ours_batches_of_32_per_s": len(queries) / batched_s,
        "max_difference_vs_reference": float(np.abs(ours_single[:reference_requests] - reference).max()),
        "max_difference_batched": float(np.abs(ours_single - ours_batched).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reference-requests", type=int, default=5)
    args = parser.parse_args()
    m = measure(args.requests, args.reference_requests)
    reference_rps = m["reference_per_s"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; checkpoint sw_ranking")
    print(f"training data: {m['battles']:.0f} battles, {m['prompts']:.0f} prompts, {m['tiers']:.0f} tiers")
    print(f"MiniLM embedding, one prompt at a time: {m['embedding_ms']:.1f} ms/request (not included below)")
    print("| router | requests/s | × paper's 2.9 req/s | × reference re-timed here |")
    print("|---|---:|---:|---:|")
    paper_ratio = reference_rps / PAPER_REQUESTS_PER_S
    print(f"| reference algorithm (scikit-learn refit per request) | {reference_rps:.2f} | {paper_ratio:.2f} | 1.0 |")
    rows = (
        ("ours, one request at a time", "ours_one_at_a_time_per_s"),
        ("ours, batches of 32", "ours_batches_of_32_per_s"),
    )
    for name, key in rows:
        rps = m[key]
        print(f"| {name} | {rps:.0f} | {rps / PAPER_REQUESTS_PER_S:.0f} | {rps / reference_rps:.0f} |")
    difference = m["max_difference_vs_reference"]
    print(f"largest |score difference| ours vs reference on {args.reference_requests} prompts: {difference:.2e}")
    print(f"largest |score difference| one-at-a-time vs batched: {m['max_difference_batched']:.2e}")


if __name__ == "__main__":
    main()
