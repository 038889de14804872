"""What the learner's promotion rule weighs (``learner.evidence``) and how sure it must be
(``learner.confidence``), chosen on the training sources only: ``python -m bench.learner_selection``.

Each training source (CRUXEval and MATH level 5 golden labels, LLMRouter's task scores,
arena-bench's GPT-4 grades; a strong and a weak model of its own) is replayed as the learner's
rounds without a cluster: 100, 200, 300, 400 and 600 labels drawn uniformly from its traffic,
30 % of each as the test slice, the families of :mod:`routing.offline.learning.refit`
cross-validated on the rest, the length gate, and the paired promotion rule
(:func:`routing.offline.learning.promotion.compare`) for each evidence and confidence;
the serving router starts as the shipped ``mf`` and is measured after every round on a held-out
30 % (at most 1,000 items) never drawn as traffic. Printed: per source, seed, evidence and
confidence, the held-out APGR after each round (``*`` a promotion), and per evidence and
confidence the mean APGR at 300 labels and the largest drop any promotion caused. MT Bench, MMLU and GSM8K play no part.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from routing.config import load_app_config
from routing.embeddings import Embedder, make_embedder
from routing.learner_config import FAMILIES, LearnerConfig
from routing.offline.evaluation.benchmark import Benchmark
from routing.offline.evaluation.labels import labels_benchmarks
from routing.offline.evaluation.metrics import random_baseline
from routing.offline.learning.challenge import embed_all
from routing.offline.learning.families import Labelled, trained_on
from routing.offline.learning.promotion import Scores, challenging_family, compare
from routing.offline.learning.refit import RefitError, RefitJob, refit_mf
from routing.resources import checkpoint_path
from routing.routers.mf import MFRouter

SOURCES = {
    "crux": ("crux.golden_labels", "gpt-4o-2024-08-06", "meta-llama-3-8b-instruct"),
    "math-l5": ("math-l5.golden_labels", "gpt-4o-2024-08-06", "meta-llama-3-8b-instruct"),
    "llmrouter": ("llmrouter.judge_scores", "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"),
    "arena-bench": ("arena-bench-v1.judge_scores", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"),
}
LABELS = (100, 200, 300, 400, 600)
MAX_ITEMS = 3000
APP = {
    "upstreams": {
        side: {"backend": "openai", "model": side, "base_url": "http://127.0.0.1:1/v1"} for side in ("strong", "weak")
    },
    "routers": {"mf": {"type": "mf"}},
}


@dataclass
class Replay:
    source: str
    seed: int
    evidence: str
    confidence: float
    baselines: dict[str, float | None]
    rounds: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    name: str
    strong: str
    weak: str
    found: Benchmark
    embeddings: np.ndarray


def load(name: str, embedder: Embedder) -> Source:
    file, strong, weak = SOURCES[name]
    found = labels_benchmarks(Path("data/train") / f"{file}.jsonl.gz", strong, weak)[0]
    embeddings = embed_all(embedder, found.prompts[:MAX_ITEMS])
    assert embeddings is not None
    return Source(name, strong, weak, found, embeddings)


def scorer(score: Callable[[list[str], np.ndarray], np.ndarray]) -> Scores:
    def scores(data: Labelled) -> np.ndarray:
        return score(data.prompts, data.embeddings)

    return scores


def replay(data: Source, seed: int, rules: list[tuple[str, float]]) -> list[Replay]:
    source, strong, weak, found, embeddings = data.name, data.strong, data.weak, data.found, data.embeddings
    count = len(embeddings)
    order = np.random.default_rng(seed).permutation(count)
    held, traffic = order[: min(int(0.3 * count), 1000)], order[min(int(0.3 * count), 1000) :]

    def labelled(rows: np.ndarray) -> Labelled:
        prompts = [found.prompts[i] for i in rows]
        return Labelled(prompts, embeddings[rows], found.quality[strong][rows], found.quality[weak][rows])

    held_out = labelled(held)
    shipped = MFRouter(checkpoint_path("builtin:mf"))
    baselines = {
        "random": float(random_baseline(held_out.strong_quality, held_out.weak_quality).apgrs.mean()),
        "prompt length": held_out.apgr(np.array([len(p) for p in held_out.prompts], float)),
        "shipped mf": held_out.apgr(shipped.score(held_out.prompts, held_out.embeddings)),
    }
    replays = []
    for evidence, confidence in rules:
        config = LearnerConfig.model_validate(
            {"router": "mf", "directory": "-", "judge": {"model": "-", "base_url": "http://127.0.0.1:1/v1"},
             "budget_usd_per_day": 1, "confidence": confidence, "evidence": evidence}
        )  # fmt: skip
        found_replay = Replay(source, seed, evidence, confidence, baselines)
        champion, champion_dir = shipped, Path("builtin:mf")
        with tempfile.TemporaryDirectory() as work:
            for size in (n for n in LABELS if n <= len(traffic)):
                rows = traffic[:size]
                test, train = labelled(rows[: int(0.3 * size)]), labelled(rows[int(0.3 * size) :])
                outcome = "no challenger"
                try:
                    job = RefitJob(champion, str(champion_dir), strong, weak, train, FAMILIES, config.folds, seed)
                    refit = refit_mf(job)
                    family, _, _ = challenging_family(refit, test)
                    form = refit.fitted[family]
                    decision = compare(
                        config, scorer(champion.score), scorer(form.probabilities), train, test,
                        refit.held_out(family), 0.5, seed, trained_on(champion_dir),
                    ).decision  # fmt: skip
                    outcome = family
                    if decision.promoted:
                        refit.save(family, job, Path(work) / str(size))
                        champion_dir = Path(work) / str(size)
                        champion, outcome = MFRouter(champion_dir), f"{family}*"
                except RefitError:
                    pass
                after = held_out.apgr(champion.score(held_out.prompts, held_out.embeddings))
                found_replay.rounds.append({"labels": size, "outcome": outcome, "apgr": after})
        replays.append(found_replay)
        print(json.dumps(found_replay.__dict__), flush=True)
    return replays


def summary(replays: list[Replay]) -> str:
    lines = [
        "| source | seed | evidence | confidence | random | length | shipped "
        "| after each round (labels: family, *: promoted, APGR) |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in replays:
        b = r.baselines
        rounds = ", ".join(f"{x['labels']}: {x['outcome']} {x['apgr']:.3f}" for x in r.rounds)
        lines.append(
            f"| {r.source} | {r.seed} | {r.evidence} | {r.confidence:g} | {b['random']:.3f} | "
            f"{b['prompt length']:.3f} | {b['shipped mf']:.3f} | {rounds} |"
        )
    lines += [
        "",
        "| evidence | confidence | mean APGR at 300 labels | largest drop caused by a promotion | promotions |",
        "|---|---:|---:|---:|---:|",
    ]
    for evidence, confidence in sorted({(r.evidence, r.confidence) for r in replays}):
        mine = [r for r in replays if (r.evidence, r.confidence) == (evidence, confidence)]
        at_300 = [[x for x in r.rounds if x["labels"] <= 300][-1]["apgr"] for r in mine]
        drops, promotions = [0.0], 0
        for r in mine:
            before = r.baselines["shipped mf"]
            for x in r.rounds:
                if x["outcome"].endswith("*"):
                    promotions += 1
                    drops.append(before - x["apgr"])
                before = x["apgr"]
        lines.append(f"| {evidence} | {confidence:g} | {np.mean(at_300):.3f} | {max(drops):.3f} | {promotions} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", choices=list(SOURCES))
    parser.add_argument("--evidence", action="append", choices=["test_slice", "cross_fitted"])
    parser.add_argument("--confidence", type=float, action="append")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = make_embedder(load_app_config(APP).embedding)
    replays = []
    for name in args.source or list(SOURCES):
        source = load(name, embedder)
        for seed in range(args.seeds):
            evidence = args.evidence or ["test_slice", "cross_fitted"]
            replays += replay(source, seed, [(e, c) for e in evidence for c in args.confidence or [0.8, 0.9, 0.95]])
    table = summary(replays)
    print(table)
    if args.out:
        command = " ".join(["python -m bench.learner_selection", *sys.argv[1:]])
        args.out.write_text(f"### `{command}`\n\n" + table)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
