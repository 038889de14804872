"""A strong share held on traffic unlike the calibration pool: ``router-mf-30%`` replayed through
one :class:`LiveRouter` on the prompts of two training sources and of GSM8K, in batches of 8 (a
busy Router replica's), with share control off (the calibration table's threshold), by the
window's quantile alone, and with each payback.

    python -m bench.share_control

For each: the share sent to the strong model after the window filled (the first ``min_requests``
requests are routed by the table in every setting), the worst block of 200 requests after it,
and how many of the strong decisions went to prompts among the highest-scored of that traffic
(as many as were sent; 1.0: the scores alone chose them). The payback is chosen on the training
sources; GSM8K is the issue's check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.cluster import ROOT
from routing.commands.prompts import read_prompts
from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.routers.kind import Candidate
from routing.routers.kinds import MFRouterConfig
from routing.routers.live import LiveRouter, Ranking, RankQuery
from routing.share_control import ShareControl

PERCENT = 30
BATCH = 8
BLOCK = 200
PROMPTS_PER_SOURCE = 1500
SOURCES = {
    "math-l5 (training)": ROOT / "data" / "train" / "math-l5.golden_labels.jsonl.gz",
    "crux (training)": ROOT / "data" / "train" / "crux.golden_labels.jsonl.gz",
    "gsm8k (evaluation)": ROOT / "data" / "eval" / "gsm8k.jsonl.gz",
}
SETTINGS: dict[str, Any] = {
    "off": "off",
    "quantile alone": ShareControl(payback_requests=None),
    "payback 20": ShareControl(payback_requests=20),
    "payback 10 (default)": ShareControl(),
    "payback 5": ShareControl(payback_requests=5),
}
CANDIDATES = [Candidate(key="weak", model="weak"), Candidate(key="strong", model="strong")]


def prompts_of(path: Any) -> list[str]:
    unique = list(dict.fromkeys(read_prompts(path)))
    order = np.random.default_rng(0).permutation(len(unique))[:PROMPTS_PER_SOURCE]
    return [unique[i] for i in order]


def replay(setting: Any, prompts: list[str], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per request in order: sent to the strong model, and its score."""
    config = MFRouterConfig(type="mf", share_control=setting)
    router = LiveRouter("mf", config, CANDIDATES, LocalEmbedding().model_id)
    strong, scores = [], []
    for start in range(0, len(prompts), BATCH):
        queries = [
            RankQuery(p, e, strong_percent=PERCENT)
            for p, e in zip(prompts[start : start + BATCH], embeddings[start : start + BATCH], strict=True)
        ]
        for ranking in router.rank(queries):
            assert isinstance(ranking, Ranking)
            strong.append(ranking.order[0] == "strong")
            scores.append(ranking.score)
    return np.array(strong), np.array(scores)


def summary(strong: np.ndarray, scores: np.ndarray, start: int) -> str:
    after, ranked = strong[start:], scores[start:]
    blocks = [100 * after[i : i + BLOCK].mean() for i in range(0, len(after) - BLOCK + 1, BLOCK)]
    worst = max(abs(b - PERCENT) for b in blocks)
    sent = int(after.sum())
    highest = np.zeros(len(after), dtype=bool)
    highest[np.argsort(-ranked, kind="stable")[:sent]] = True
    overlap = (after & highest).sum() / max(sent, 1)
    return f"{100 * after.mean():.1f} | {worst:.1f} | {overlap:.3f}"


def main() -> None:
    embedder = LocalEmbedder(LocalEmbedding())
    start = ShareControl().min_requests
    print(f"router-mf-{PERCENT}%, batches of {BATCH}; after the first {start} requests:")
    print("| traffic | share control | strong share % | worst block of 200, points off | strong decisions by score |")
    print("|---|---|---|---|---|")
    for source, path in SOURCES.items():
        prompts = prompts_of(path)
        embeddings = embedder.encode(prompts)
        for name, setting in SETTINGS.items():
            strong, scores = replay(setting, prompts, embeddings)
            print(f"| {source}, {len(prompts)} prompts | {name} | {summary(strong, scores, start)} |", flush=True)


if __name__ == "__main__":
    main()
