"""``routellm-serve evaluate``: APGR and CPT of routers on benchmarks and on your own labels,
out of domain (the checkpoints as they are) and in domain (cross-fitted on the items)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo, to_stderr
from routing.offline.commands.router_spec import parse_router, router_label
from routing.offline.evaluation.benchmark import Benchmark, read_benchmark
from routing.offline.evaluation.in_domain import outcomes
from routing.offline.evaluation.labels import labels_benchmarks
from routing.offline.evaluation.report import BenchmarkReport, markdown, plot
from routing.offline.evaluation.report import evaluate as report_on
from routing.offline.evaluation.scoring import score_settings
from routing.offline.training.common import Log
from routing.resources import DEFAULT_STRONG, DEFAULT_WEAK, checkpoint_path
from routing.routers.checkpoint import load_manifest
from routing.routers.kind import Router, RouterKind, RouterSettings, ScoringPair
from routing.routers.kinds import KINDS
from routing.routers.scorer import CandidateScorer, named_candidates
from routing.settings import Precision

DEFAULT_EVAL = Path("data/eval")
DEFAULT_BENCHMARKS = ("mt_bench", "mmlu", "gsm8k")
Setting = Literal["out-of-domain", "in-domain", "both"]


def evaluate(
    benchmarks: Sequence[str] = (),
    labels: Sequence[str] = (),
    routers: Sequence[str] = (),
    strong: str = DEFAULT_STRONG,
    weak: str = DEFAULT_WEAK,
    seeds: int = 10,
    setting: Setting = "both",
    folds: int = 5,
    precision: Precision = "auto",
    embedding_model: str | None = None,
    out: Path | None = None,
    echo: Echo = print,
    log: Log = to_stderr,
) -> list[BenchmarkReport]:
    """Reports per benchmark and setting. ``benchmarks``: names in ``data/eval`` or files (default,
    with no ``labels`` either: MT Bench, MMLU and GSM8K); ``labels``: folders or files of your own
    labels, a benchmark per kind of label; ``routers``: ``KIND[=CHECKPOINT_DIR]`` (default: every
    kind with a default checkpoint, on it); ``strong``/``weak``: the benchmark's model columns."""
    chosen = [_benchmark(ref) for ref in (benchmarks or ([] if labels else DEFAULT_BENCHMARKS))]
    chosen += [b for ref in labels for b in labels_benchmarks(ref, strong, weak)]
    settings = ["out-of-domain", "in-domain"] if setting == "both" else [setting]
    loaded: dict[str, tuple[RouterKind, Router]] = {}
    for spec in routers or _shipped_kinds():
        kind, config = parse_router(spec, precision)
        scored_strong, scored_weak = _scored_pair(kind, config, strong, weak, log)
        scorer = CandidateScorer.load(config, named_candidates([scored_weak, scored_strong]))
        loaded[router_label(spec)] = (kind, scorer.model)
    encoder = None
    if any(kind.needs_embeddings for kind, _ in loaded.values()):
        encoder = LocalEmbedder(LocalEmbedding(model_path=embedding_model, precision=precision))

    reports = []
    for benchmark in chosen:
        item_outcomes = outcomes(*benchmark.pair(strong, weak))
        embeddings = encoder.encode(benchmark.prompts) if encoder else None
        in_domain_folds = folds if "in-domain" in settings else None
        scores = {
            name: score_settings(kind, router, benchmark.prompts, embeddings, item_outcomes, in_domain_folds)
            for name, (kind, router) in tqdm(loaded.items(), desc=benchmark.name, unit="router", disable=None)
        }
        for name in settings:
            field = name.replace("-", "_")
            by_router = {r: getattr(s, field) for r, s in scores.items() if s.baseline or getattr(s, field) is not None}
            report = report_on(benchmark, strong, weak, by_router, seeds, name)
            reports.append(report)
            echo(markdown(report) + "\n")
            if out:
                plot(report, out / f"{benchmark.name}-{name}.png")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")
        (out / "results.md").write_text("\n\n".join(markdown(r) for r in reports) + "\n")
        echo(f"wrote {out / 'results.json'}, {out / 'results.md'} and a PNG per benchmark and setting")
    return reports


def _shipped_kinds() -> list[str]:
    """The kinds whose config names a default checkpoint."""
    return [name for name in KINDS.names() if not KINDS.get(name).config.model_fields["checkpoint"].is_required()]


def _benchmark(ref: str) -> Benchmark:
    return read_benchmark(Path(ref) if Path(ref).is_file() else DEFAULT_EVAL / f"{ref}.jsonl.gz")


def _scored_pair(kind: RouterKind, config: RouterSettings, strong: str, weak: str, log: Log) -> ScoringPair:
    """A router that scores any two models scores the benchmark's two where it was trained on
    both, and its checkpoint's default pair otherwise (a benchmark's columns may name anything)."""
    if not kind.scores_any_model:
        return None, None
    manifest = load_manifest(checkpoint_path(config.checkpoint))
    if strong in manifest.models and weak in manifest.models:
        return strong, weak
    log(f"{kind.name}: scores {manifest.default_strong} against {manifest.default_weak}, its default pair")
    return None, None
