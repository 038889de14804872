"""A router's default share held on traffic unlike the calibration pool: ``router-<name>`` (50 %
to the strong model) replayed through one :class:`LiveRouter` per setting, in batches of 8 (a busy
Router replica's), on the prompts of training sources and of GSM8K and MMLU.

    python -m bench.share_control --router mf --router sw_ranking --router ensemble --out docs/shares/share_control.md

For each setting of share control: the strong share over the first 1,000 requests (the first
``min_requests`` are routed by the calibration table), the worst block of 200 requests after the
first 200, and how many of the strong decisions after the first ``min_requests`` went to prompts
among the highest-scored of that traffic (as many as were sent; 1.0: the scores alone chose them).
Settings are chosen on the training sources; GSM8K and MMLU are the check.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands.prompts import read_prompts
from routing.routers.kind import DEFAULT_STRONG_PERCENT, Candidate
from routing.routers.kinds import KINDS
from routing.routers.share_settings import ShareControl
from routing.serving.live_router import LiveRouter, Ranking, RankQuery
from testing import ROOT

BATCH = 8
BLOCK = 200
FIRST = 1000
PROMPTS_PER_SOURCE = 1500
SOURCES = {
    "math-l5 (training)": ROOT / "data" / "train" / "math-l5.golden_labels.jsonl.gz",
    "crux (training)": ROOT / "data" / "train" / "crux.golden_labels.jsonl.gz",
    "llmrouter (training)": ROOT / "data" / "train" / "llmrouter.judge_scores.jsonl.gz",
    "gsm8k (evaluation)": ROOT / "data" / "eval" / "gsm8k.jsonl.gz",
    "mmlu (evaluation)": ROOT / "data" / "eval" / "mmlu.jsonl.gz",
}
SETTINGS: dict[str, Any] = {
    "off": "off",
    "quantile alone": ShareControl(payback_requests=None),
    "min 200": ShareControl(min_requests=200),
    "min 100": ShareControl(min_requests=100),
    "min 50": ShareControl(min_requests=50),
    "min 20 (default)": ShareControl(min_requests=20),
}
CANDIDATES = [Candidate(key="weak", model="weak"), Candidate(key="strong", model="strong")]


def prompts_of(path: Any) -> list[str]:
    unique = list(dict.fromkeys(read_prompts(path)))
    order = np.random.default_rng(0).permutation(len(unique))[:PROMPTS_PER_SOURCE]
    return [unique[i] for i in order]


def replay(kind: str, setting: Any, prompts: list[str], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per request in order: sent to the strong model, and its score."""
    config = KINDS.get(kind).settings(share_control=setting)
    router = LiveRouter(kind, config, CANDIDATES, LocalEmbedding().model_id)
    strong, scores = [], []
    for start in range(0, len(prompts), BATCH):
        queries = [
            RankQuery(p, e, strong_percent=DEFAULT_STRONG_PERCENT)
            for p, e in zip(prompts[start : start + BATCH], embeddings[start : start + BATCH], strict=True)
        ]
        for ranking in router.rank(queries):
            assert isinstance(ranking, Ranking)
            strong.append(ranking.order[0] == "strong")
            scores.append(ranking.score)
    return np.array(strong), np.array(scores)


def summary(strong: np.ndarray, scores: np.ndarray, live_from: int) -> str:
    blocks = [100 * strong[i : i + BLOCK].mean() for i in range(BLOCK, len(strong) - BLOCK + 1, BLOCK)]
    worst = max(abs(b - DEFAULT_STRONG_PERCENT) for b in blocks)
    after, ranked = strong[live_from:], scores[live_from:]
    sent = int(after.sum())
    highest = np.zeros(len(after), dtype=bool)
    highest[np.argsort(-ranked, kind="stable")[:sent]] = True
    overlap = (after & highest).sum() / max(sent, 1)
    return f"{100 * strong[:FIRST].mean():.1f} | {worst:.1f} | {overlap:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--router", action="append", choices=KINDS.names(), help="a shipped kind (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the table here, as markdown")
    args = parser.parse_args()
    routers = args.router or ["mf"]
    embedder = LocalEmbedder(LocalEmbedding())
    lines = [
        f"`router-<name>` ({DEFAULT_STRONG_PERCENT:g} % strong), batches of {BATCH}, payback 10 unless said:",
        "",
        f"| traffic | router | share control | first {FIRST:,}: strong % "
        f"| worst block of {BLOCK} after the first {BLOCK}, points off | strong decisions by score |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines))
    for source, path in SOURCES.items():
        prompts = prompts_of(path)
        embeddings = embedder.encode(prompts)
        for router in routers:
            for name, setting in SETTINGS.items():
                strong, scores = replay(router, setting, prompts, embeddings)
                live_from = 0 if setting == "off" else setting.min_requests
                lines.append(
                    f"| {source}, {len(prompts)} prompts | {router} | {name} | {summary(strong, scores, live_from)} |"
                )
                print(lines[-1], flush=True)
    if args.out:
        command = "python -m bench.share_control " + " ".join(f"--router {r}" for r in routers)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Share control on replayed traffic\n\nOutput of `{command}`:\n\n" + "\n".join(lines) + "\n"
        )


if __name__ == "__main__":
    main()
