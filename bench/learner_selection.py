"""What the learner's promotion rule weighs (``learner.evidence``) and how sure it must be
(``learner.confidence``), chosen on the training sources only: ``python -m bench.learner_selection``.

Each training source (CRUXEval and MATH level 5 golden labels, LLMRouter's task scores,
arena-bench's GPT-4 grades; a strong and a weak model of its own) is replayed as the learner's
rounds without a cluster: 100, 200, 300, 400 and 600 labels of its traffic, sampled as the learner
samples them (:func:`routing.offline.learning.sampling.choose`: uniformly, or actively, half of
each round the prompts the serving router scores nearest its threshold), the test slice a fixed
random share of the prompts that only a uniform draw takes; the families of
:mod:`routing.offline.learning.refit` cross-validated on the training labels, the length gate, and
the paired promotion rule (:func:`routing.offline.learning.promotion.compare`) for each evidence
(``cross_fitted``: the learner's, whose cross-fitted draws take only the uniformly sampled
training labels; ``cross_fitted_all``: every training label the champion was not fit on)
and confidence. The serving router starts as the shipped ``mf`` and is measured after every round
on a held-out 30 % (at most 1,000 items) never drawn as traffic. Printed: per source, seed,
sampling, evidence and confidence, the held-out APGR after each round (``*`` a promotion), and per
rule the mean APGR at 300 labels and at the last round and the largest drop any promotion caused.
MT Bench, MMLU and GSM8K play no part.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.learning_seeds import promotion_drops
from bench.tables import print_and_write
from routing.config import load_app_config
from routing.embeddings import Embedder, make_embedder
from routing.learner_config import FAMILIES, LearnerConfig, Sampling
from routing.offline.evaluation.benchmark import Benchmark
from routing.offline.evaluation.labels import labels_benchmarks
from routing.offline.evaluation.metrics import random_baseline
from routing.offline.labelling.run import Prompt, distinct_prompts
from routing.offline.learning.challenge import embed_all
from routing.offline.learning.families import Labelled
from routing.offline.learning.promotion import Scores, challenging_family, compare
from routing.offline.learning.refit import RefitError, RefitJob, refit_mf
from routing.offline.learning.sampling import Logged, choose, drawn_uniformly
from routing.offline.learning.store import Sampled
from routing.resources import checkpoint_path
from routing.routers.mf import MFRouter

SOURCES = {
    "crux": ("crux.golden_labels", "gpt-4o-2024-08-06", "meta-llama-3-8b-instruct"),
    "math-l5": ("math-l5.golden_labels", "gpt-4o-2024-08-06", "meta-llama-3-8b-instruct"),
    "llmrouter": ("llmrouter.judge_scores", "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"),
    "arena-bench": ("arena-bench-v1.judge_scores", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"),
}
LABELS = (100, 200, 300, 400, 600)
# Each rule: the learner's ``evidence``, and whether the cross-fitted draws take only the training
# labels sampled uniformly (the learner's rule; active sampling's picks lie near the champion's
# threshold) or every one the champion was not fit on (``cross_fitted_all``).
EVIDENCE = {
    "test_slice": ("test_slice", False),
    "cross_fitted": ("cross_fitted", True),
    "cross_fitted_all": ("cross_fitted", False),
}
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
    sampling: str
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


def replay(data: Source, seed: int, sampling: Sampling, rules: list[tuple[str, float]]) -> list[Replay]:
    source, strong, weak, found, embeddings = data.name, data.strong, data.weak, data.found, data.embeddings
    count = len(embeddings)
    order = np.random.default_rng(seed).permutation(count)
    held, traffic = order[: min(int(0.3 * count), 1000)], order[min(int(0.3 * count), 1000) :]
    pool: dict[str, tuple[Prompt, int]] = {}  # the traffic's distinct prompts, by id, and their rows
    for row in traffic:
        prompt = distinct_prompts([found.prompts[row]])[0]
        pool.setdefault(prompt.id, (prompt, int(row)))

    def labelled(rows: list[int] | np.ndarray) -> Labelled:
        rows = np.asarray(rows, int)
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
        rule, uniform_only = EVIDENCE[evidence]
        config = LearnerConfig.model_validate(
            {"router": "mf", "directory": "-", "judge": {"model": "-", "base_url": "http://127.0.0.1:1/v1"},
             "budget_usd_per_day": 1, "confidence": confidence, "evidence": rule}
        )  # fmt: skip
        found_replay = Replay(source, seed, sampling, evidence, confidence, baselines)
        champion, champion_dir = shipped, Path("builtin:mf")
        taken: list[Sampled] = []
        with tempfile.TemporaryDirectory() as work:
            for number, size in enumerate((n for n in LABELS if n <= len(pool)), 1):
                taken += draw(pool, taken, size, champion, labelled, sampling, config, number)
                test_rows = [pool[s.prompt_id][1] for s in taken if s.split == "test"]
                train_part = [s for s in taken if s.split == "train"]
                test, train = labelled(test_rows), labelled([pool[s.prompt_id][1] for s in train_part])
                outcome = "no challenger"
                try:
                    job = RefitJob(champion, str(champion_dir), strong, weak, train, FAMILIES, config.folds, seed)
                    refit = refit_mf(job)
                    family, _, _ = challenging_family(refit, test)
                    form = refit.fitted[family]
                    uniform = drawn_uniformly(taken, train.prompts) if uniform_only else True
                    drawable = ~job.champion_saw & uniform
                    decision = compare(
                        config, scorer(champion.score), scorer(form.probabilities), train, test,
                        refit.held_out(family), 0.5, seed, drawable,
                    ).decision  # fmt: skip
                    outcome = family
                    if decision.promoted:
                        refit.save(family, job, Path(work) / str(size))
                        champion_dir = Path(work) / str(size)
                        champion, outcome = MFRouter(champion_dir), f"{family}*"
                except RefitError:
                    pass
                after = held_out.apgr(champion.score(held_out.prompts, held_out.embeddings))
                found_replay.rounds.append({"labels": size, "test": len(test_rows), "outcome": outcome, "apgr": after})
        replays.append(found_replay)
        print(json.dumps(found_replay.__dict__), flush=True)
    return replays


def draw(
    pool: dict[str, tuple[Prompt, int]],
    taken: list[Sampled],
    size: int,
    champion: MFRouter,
    labelled: Callable[[list[int]], Labelled],
    sampling: Sampling,
    config: LearnerConfig,
    number: int,
) -> list[Sampled]:
    """The round's new labels as the learner samples them (:func:`routing.offline.learning.sampling.choose`),
    active sampling by the champion's score against the threshold 0.5, as the request log would give it."""
    done = {s.prompt_id for s in taken}
    left = [entry for pid, entry in pool.items() if pid not in done]
    scores: list[float | None] = [None] * len(left)
    if sampling == "active":
        data = labelled([row for _, row in left])
        scores = [float(x) for x in champion.score(data.prompts, data.embeddings)]
    candidates = [Logged(prompt, score, 0.5) for (prompt, _), score in zip(left, scores, strict=True)]
    return choose(candidates, size - len(taken), sampling, config.active_share, config.test_fraction, number)


def summary(replays: list[Replay]) -> str:
    lines = [
        "| source | seed | sampling | evidence | confidence | random | length | shipped "
        "| after each round (labels (test labels): family, *: promoted, APGR) |",
        "|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for r in replays:
        b = r.baselines
        rounds = ", ".join(f"{x['labels']} ({x['test']}): {x['outcome']} {x['apgr']:.3f}" for x in r.rounds)
        lines.append(
            f"| {r.source} | {r.seed} | {r.sampling} | {r.evidence} | {r.confidence:g} | {b['random']:.3f} | "
            f"{b['prompt length']:.3f} | {b['shipped mf']:.3f} | {rounds} |"
        )
    lines += [
        "",
        "| sampling | evidence | confidence | mean APGR at 300 labels | at the last round "
        "| largest drop caused by a promotion | promotions |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for rule in sorted({(r.sampling, r.evidence, r.confidence) for r in replays}):
        mine = [r for r in replays if (r.sampling, r.evidence, r.confidence) == rule]
        at_300 = [[x for x in r.rounds if x["labels"] <= 300][-1]["apgr"] for r in mine]
        last = [r.rounds[-1]["apgr"] for r in mine]
        per_replay = [
            promotion_drops(r.baselines["shipped mf"], [(x["apgr"], x["outcome"].endswith("*")) for x in r.rounds])
            for r in mine
        ]
        largest, promotions = max(d for d, _ in per_replay), sum(n for _, n in per_replay)
        sampling, evidence, confidence = rule
        lines.append(
            f"| {sampling} | {evidence} | {confidence:g} | {np.mean(at_300):.3f} | {np.mean(last):.3f} "
            f"| {largest:.3f} | {promotions} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", choices=list(SOURCES))
    parser.add_argument("--sampling", action="append", choices=["uniform", "active"])
    parser.add_argument("--evidence", action="append", choices=list(EVIDENCE))
    parser.add_argument("--confidence", type=float, action="append")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = make_embedder(load_app_config(APP).embedding)
    replays = []
    for name in args.source or list(SOURCES):
        source = load(name, embedder)
        for seed in range(args.seeds):
            rules = [(e, c) for e in args.evidence or list(EVIDENCE) for c in args.confidence or [0.8, 0.9]]
            for sampling in args.sampling or ["uniform", "active"]:
                replays += replay(source, seed, sampling, rules)
    print_and_write(summary(replays), "bench.learner_selection", args.out)


if __name__ == "__main__":
    main()
