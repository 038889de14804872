"""``routellm-serve``: build the data, train, evaluate and calibrate routers.

    routellm-serve build-data --shared ../shared/data --out data/train
    routellm-serve build-eval --shared ../shared/data --out data/eval
    routellm-serve build-pool --shared ../shared/data
    routellm-serve train random     --out routing/checkpoints/random
    routellm-serve train sw_ranking --out routing/checkpoints/sw_ranking
    routellm-serve train mf         --out routing/checkpoints/mf
    routellm-serve train bert       --out routing/checkpoints/bert
    routellm-serve train causal_llm --out routing/checkpoints/causal_llm

    routellm-serve evaluate --out docs/results
    routellm-serve evaluate --labels labels/test --router mf --router mf=new-mf --strong gpt-4o --weak my-small
    routellm-serve calibrate --router mf --strong-percent 30 --save
    routellm-serve label --config label.yaml --prompts requests/ --out labels --dry-run

``--data`` takes files (JSONL, CSV, Parquet), folders of them, or Hugging Face dataset ids; it
defaults to the shipped training set in ``data/train``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from routing.calibration import DEFAULT_POOL
from routing.config import PRECISION_HELP, LocalEmbedding, RouterConfig
from routing.data.files import SOURCES_FILE

if TYPE_CHECKING:
    from routing.data.schema import Battle
    from routing.routers.checkpoint import DataFile

DEFAULT_DATA = Path("data/train")
DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def build_data(shared: Path, out: Path, unlicensed_out: Path | None) -> None:
    import numpy as np

    from routing.data.decontaminate import THRESHOLD, near_duplicate_mask
    from routing.data.files import write_jsonl
    from routing.data.sources import SOURCES, evaluation_prompts
    from routing.embeddings.local import LocalEmbedder

    chosen = [s for s in SOURCES if s.shippable or unlicensed_out is not None]
    rows = {s.name: s.read(shared) for s in chosen}
    prompts = sorted({row.prompt for source_rows in rows.values() for row in source_rows})
    evals = evaluation_prompts(shared)
    _log(f"{len(prompts)} training prompts after the contamination list; checking against {len(evals)} evaluation ones")
    encoder = LocalEmbedder(LocalEmbedding())
    mask = near_duplicate_mask(encoder.encode(prompts), encoder.encode(evals))
    near = {p for p, hit in zip(prompts, mask, strict=True) if hit}
    print(f"dropped {len(near)} training prompts with cosine >= {THRESHOLD} to an evaluation prompt")
    records = {}
    for source in chosen:
        folder = out if source.shippable else unlicensed_out
        assert folder is not None
        kept = [row for row in rows[source.name] if row.prompt not in near]
        count = write_jsonl(folder / source.file, kept)
        distinct = len(np.unique([row.prompt for row in kept]))
        print(f"{source.name}: {count} rows, {distinct} prompts -> {folder / source.file} (licence {source.licence})")
        records[source.file] = {"source": source.name, "licence": source.licence, "upstream": source.upstream}
    for folder in {out, unlicensed_out} - {None}:
        assert folder is not None
        here = {f: r for f, r in records.items() if (folder / f).exists()}
        (folder / SOURCES_FILE).write_text(json.dumps(here, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_eval(shared: Path, out: Path, train: Path) -> None:
    from routing.data.decontaminate import THRESHOLD, near_duplicate_mask
    from routing.data.files import read_preference_data, write_records
    from routing.embeddings.local import LocalEmbedder
    from routing.evaluation.sources import BENCHMARKS

    encoder = LocalEmbedder(LocalEmbedding())
    training = encoder.encode(sorted({row.prompt for row in read_preference_data(train)}))
    for name, read in BENCHMARKS.items():
        rows = read(shared / "routellm" / "evals")
        near = near_duplicate_mask(encoder.encode([str(r["prompt"]) for r in rows]), training)
        kept = [row for row, hit in zip(rows, near, strict=True) if not hit]
        count = write_records(out / f"{name}.jsonl.gz", kept)
        print(
            f"{name}: {count} items -> {out / f'{name}.jsonl.gz'} "
            f"({int(near.sum())} dropped with cosine >= {THRESHOLD} to a training prompt)"
        )


ROUTER_KINDS = ("random", "sw_ranking", "mf", "bert", "causal_llm")
DEFAULT_EVAL = Path("data/eval")


def _router_config(spec: str, precision: str = "auto") -> RouterConfig:
    """The router a ``--router KIND[=CHECKPOINT_DIR]`` option names (default: the shipped one)."""
    from pydantic import TypeAdapter

    kind, _, directory = spec.partition("=")
    if kind not in ROUTER_KINDS:
        raise ValueError(f"--router {spec}: the kind must be one of {', '.join(ROUTER_KINDS)}")
    fields = {"type": kind, "checkpoint": directory or f"builtin:{kind}"}
    if kind in ("bert", "causal_llm"):
        fields["precision"] = precision
    return TypeAdapter(RouterConfig).validate_python(fields)


def _scored_pair(config: RouterConfig, strong: str, weak: str) -> tuple[str | None, str | None]:
    """mf and sw_ranking score the benchmark's two models where they were trained on both, and
    their checkpoint's default pair otherwise (a benchmark's columns may name anything)."""
    from routing.resources import checkpoint_path
    from routing.routers.checkpoint import load_manifest

    if not config.needs_embeddings:
        return None, None
    manifest = load_manifest(checkpoint_path(config.checkpoint))
    if strong in manifest.models and weak in manifest.models:
        return strong, weak
    _log(f"{config.type}: scores {manifest.default_strong} against {manifest.default_weak}, its default pair")
    return None, None


def evaluate_command(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from routing.evaluation.benchmark import read_benchmark
    from routing.evaluation.in_domain import outcomes
    from routing.evaluation.labels import labels_benchmarks
    from routing.evaluation.report import evaluate, markdown, plot
    from routing.evaluation.scoring import score_settings
    from routing.routers import make_router

    benchmarks = [
        read_benchmark(Path(ref) if Path(ref).is_file() else DEFAULT_EVAL / f"{ref}.jsonl.gz") for ref in args.benchmark
    ]
    benchmarks += [b for ref in args.labels or [] for b in labels_benchmarks(ref, args.strong, args.weak)]
    settings = ["out-of-domain", "in-domain"] if args.setting == "both" else [args.setting]
    routers, needs_embeddings = {}, False
    for spec in args.router or list(ROUTER_KINDS):
        config = _router_config(spec, args.precision)
        directory = spec.partition("=")[2]
        label = f"{config.type}@{Path(directory).name}" if directory else config.type
        routers[label] = make_router(config, _scored_pair(config, args.strong, args.weak))
        needs_embeddings |= config.needs_embeddings
    encoder = None
    if needs_embeddings:
        from routing.embeddings.local import LocalEmbedder

        encoder = LocalEmbedder(LocalEmbedding(model_path=args.embedding_model, precision=args.precision))

    reports = []
    for benchmark in benchmarks:
        labels = outcomes(*benchmark.pair(args.strong, args.weak))
        embeddings = encoder.encode(benchmark.prompts) if encoder else None
        folds = args.folds if "in-domain" in settings else None
        scores = {
            name: score_settings(router, benchmark.prompts, embeddings, labels, folds)
            for name, router in tqdm(routers.items(), desc=benchmark.name, unit="router", disable=None)
        }
        for setting in settings:
            field = setting.replace("-", "_")
            by_router = {name: getattr(s, field) for name, s in scores.items()}
            report = evaluate(benchmark, args.strong, args.weak, by_router, args.seeds, setting)
            reports.append(report)
            print(markdown(report) + "\n", flush=True)
            if args.out:
                plot(report, args.out / f"{benchmark.name}-{setting}.png")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")
        (args.out / "results.md").write_text("\n\n".join(markdown(r) for r in reports) + "\n")
        print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'} and a PNG per benchmark and setting")


def build_pool(shared: Path, out: Path) -> None:
    from routing.data.files import write_records
    from routing.data.sources import arena_hard_prompts

    count = write_records(out, arena_hard_prompts(shared))
    print(f"{count} Arena-Hard prompts -> {out}")


def calibrate_command(args: argparse.Namespace) -> None:
    import numpy as np

    from routing.calibration import CalibrationTable, read_prompts, save_calibration
    from routing.resources import checkpoint_path
    from routing.routers import make_router

    config = _router_config(args.router)
    kind, checkpoint = config.type, config.checkpoint
    router = make_router(config, (args.strong, args.weak))
    encoder = None
    if config.needs_embeddings:
        from routing.embeddings.local import LocalEmbedder

        encoder = LocalEmbedder(LocalEmbedding(model_path=args.embedding_model))

    def scores_of(prompts: list[str]) -> np.ndarray:
        return np.asarray(router.score(prompts, encoder.encode(prompts) if encoder else None))

    prompts = read_prompts(args.prompts)
    scores = scores_of(prompts)
    pair: tuple[str | None, str | None] = (None, None)
    if kind in ("mf", "sw_ranking"):
        from routing.routers.pair import scoring_pair

        pair = scoring_pair(router.manifest, args.strong, args.weak)  # type: ignore[attr-defined]
    table = CalibrationTable.from_scores(kind, str(args.prompts), scores, pair)
    elsewhere = {path: scores_of(read_prompts(path)) for path in args.measure or []}
    for percent in args.strong_percent or [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]:
        threshold = table.threshold(percent)
        share = 100 * float(np.mean(scores >= threshold))
        print(
            f"{kind}: threshold {threshold:.6f} sends {share:.1f}% of {len(prompts)} prompts to the strong model "
            f"(asked {percent:g}%); use model 'router-{kind}-{threshold:.6f}' or 'router-{kind}-{percent:g}%'"
        )
        for path, other in elsewhere.items():
            print(f"  on {path}: {100 * float(np.mean(other >= threshold)):.1f}% of {len(other)} prompts")
    if args.save:
        print(f"saved {save_calibration(checkpoint_path(checkpoint), table)}")


def label_command(args: argparse.Namespace) -> None:
    import asyncio
    import os

    from tqdm.auto import tqdm

    from routing.calibration import read_prompts
    from routing.labelling.config import load_label_config
    from routing.labelling.run import Labeller, distinct_prompts

    config = load_label_config(args.config, dict(os.environ))
    prompts = distinct_prompts(read_prompts(args.prompts))
    labeller = Labeller(config, args.out)
    todo = [p for p in prompts if not labeller.done(p)]
    estimate = labeller.estimate(todo)
    print(f"label: {len(prompts)} distinct prompts, {len(prompts) - len(todo)} already labelled in {args.out}")
    print("\n".join(estimate.lines()))
    if args.dry_run:
        return
    if args.max_usd is not None and estimate.usd > args.max_usd:
        raise ValueError(f"the run may cost up to ${estimate.usd:,.2f}, more than --max-usd {args.max_usd:g}")
    with tqdm(total=len(todo), desc="label", unit="prompt", disable=None) as bar:
        try:
            failures = asyncio.run(labeller.run(todo, lambda: bar.update(1)))
        except KeyboardInterrupt:
            bar.close()
            print(f"interrupted; what was labelled is kept in {args.out / 'work'}: rerun the same command to continue")
            raise SystemExit(130) from None
    written = labeller.write(prompts)
    for kind, counts in (("battles", written.battles), ("judge scores", written.scores)):
        for split, count in sorted(counts.items()):
            print(f"{count} {kind} -> {args.out / split}")
    if written.unreadable_verdicts:
        print(f"{written.unreadable_verdicts} verdicts gave no readable grade (see {args.out / 'work'}); left out")
    print(f"spent about ${labeller.spent_usd():,.4f} at the configured prices")
    if failures:
        reasons = sorted(set(failures.values()))
        raise ValueError(f"{len(failures)} prompts not labelled ({'; '.join(reasons[:3])}); rerun to try them again")


def _read_data(
    refs: list[str], weights: dict[str, float]
) -> tuple[list[Battle], list[float] | None, list[DataFile], list[str]]:
    """Battles from every ``--data`` reference, each battle's weight (that of its reference, or
    None when no ``--weight`` is given), and what the checkpoint records of each file."""
    from routing.data.convert import to_battles
    from routing.data.files import data_files, read_preference_file
    from routing.routers.checkpoint import data_record

    unknown = sorted(set(weights) - set(refs))
    if unknown:
        raise ValueError(f"--weight {unknown[0]}=...: not one of the --data references ({', '.join(refs)})")
    battles: list[Battle] = []
    battle_weights: list[float] = []
    files: list[DataFile] = []
    licences: set[str] = set()
    rows_read = 0
    for ref in refs:
        weight = weights.get(ref, 1.0)
        rows: list = []
        for path in data_files(ref):
            loaded = read_preference_file(path)
            rows.extend(loaded)
            files.append(data_record(path, len(loaded), weight))
            sources = path.parent / SOURCES_FILE
            known = json.loads(sources.read_text(encoding="utf-8")) if sources.is_file() else {}
            licences.add(known.get(path.name, {}).get("licence", f"not recorded ({ref})"))
        converted = to_battles(rows)
        battles += converted
        battle_weights += [weight] * len(converted)
        rows_read += len(rows)
        if weights:
            _log(f"{ref}: {len(rows)} rows -> {len(converted)} battles, weight {weight:g}")
    _log(f"{rows_read} rows -> {len(battles)} battles")
    return battles, (battle_weights if weights else None), files, sorted(licences)


def train_command(args: argparse.Namespace) -> None:
    from routing.routers.checkpoint import TrainingRecord, save
    from routing.training.common import Trained

    started = time.perf_counter()
    kind = args.kind
    battles, weights, files, licences = _read_data(args.data or [str(DEFAULT_DATA)], dict(args.weight or []))
    trained: Trained
    if kind == "random":
        from routing.training import random

        if weights is not None:
            raise ValueError("--weight: the random router learns nothing from its data")
        trained = random.train(battles, args.seed)
    elif kind in ("mf", "sw_ranking"):
        from routing.embeddings.local import LocalEmbedder

        embedding = LocalEmbedding(model_path=args.embedding_model)
        encoder = LocalEmbedder(embedding)
        common = {
            "embedding_model_id": embedding.model_id,
            "default_strong": args.strong,
            "default_weak": args.weak,
            "log": _log,
        }
        if kind == "mf":
            from routing.training import mf

            config = mf.MFTrainConfig(seed=args.seed, **_given(args, "epochs", "lr", "batch_size"))
            trained = mf.train(battles, encoder.encode, config=config, weights=weights, **common)
        else:
            from routing.training import sw_ranking

            trained = sw_ranking.build(
                battles,
                encoder.encode,
                config=sw_ranking.SWRankingTrainConfig(seed=args.seed),
                weights=weights,
                **common,
            )
    else:
        from routing.training import classifier

        config = classifier.ClassifierTrainConfig(
            kind=kind,
            seed=args.seed,
            device=args.device,
            **_given(
                args, "mode", "base_model", "epochs", "lr", "batch_size", "max_length", "strong_models", "weak_models"
            ),
        )
        trained = classifier.train(battles, config, weights=weights, log=_log)
    record = trained.manifest.training
    manifest = trained.manifest.model_copy(
        update={"training": TrainingRecord(**{**record.model_dump(), "data": files, "data_licences": licences})}
    )
    save(args.out, manifest, trained.tensors)
    metrics = ", ".join(f"{k} {v}" for k, v in manifest.training.metrics.items())
    print(f"saved {args.out} ({kind}) in {time.perf_counter() - started:.0f} s: {metrics}")


def _given(args: argparse.Namespace, *names: str) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _weight(value: str) -> tuple[str, float]:
    ref, equals, number = value.rpartition("=")
    try:
        weight = float(number)
    except ValueError:
        weight = -1.0
    if not equals or not ref or not weight > 0:
        raise argparse.ArgumentTypeError(f"'{value}': expected DATA=WEIGHT with a weight above 0, e.g. labels/train=3")
    return ref, weight


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="routellm-serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build-data", help="convert and decontaminate the training set")
    build.add_argument("--shared", type=Path, required=True, help="the data folder (see data/README.md)")
    build.add_argument("--out", type=Path, default=DEFAULT_DATA)
    build.add_argument(
        "--unlicensed-out",
        type=Path,
        help="also convert sources without a licence to ship (RouterBench), into this folder",
    )

    evals = commands.add_parser("build-eval", help="convert RouteLLM's MT Bench, MMLU and GSM8K results")
    evals.add_argument("--shared", type=Path, required=True, help="the data folder (see data/eval/README.md)")
    evals.add_argument("--out", type=Path, default=Path("data/eval"))
    evals.add_argument("--train", type=Path, default=DEFAULT_DATA, help="training set to check the items against")

    assess = commands.add_parser("evaluate", help="APGR and CPT of routers on benchmarks, as the paper reports them")
    assess.add_argument(
        "--benchmark", action="append", default=None, help="mt_bench, mmlu, gsm8k or a benchmark file (repeatable)"
    )
    assess.add_argument(
        "--labels",
        action="append",
        help="a folder or file of your own labels (e.g. label's test/): a benchmark per kind of label (repeatable)",
    )
    assess.add_argument("--router", action="append", help="KIND or KIND=CHECKPOINT_DIR (repeatable); default: all five")
    assess.add_argument("--strong", default=DEFAULT_STRONG, help="the benchmark's column of the strong model")
    assess.add_argument("--weak", default=DEFAULT_WEAK, help="the benchmark's column of the weak model")
    assess.add_argument("--seeds", type=int, default=10, help="random-router draws to average")
    assess.add_argument(
        "--setting",
        choices=["out-of-domain", "in-domain", "both"],
        default="both",
        help="the checkpoints as shipped, or continued on the benchmark's other folds (cross-fitted)",
    )
    assess.add_argument("--folds", type=int, default=5, help="folds of the in-domain setting")
    assess.add_argument("--precision", choices=["auto", "float32"], default="auto", help=PRECISION_HELP)
    assess.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")
    assess.add_argument("--out", type=Path, help="folder for results.json, results.md and a PNG per benchmark")

    pool = commands.add_parser("build-pool", help="write the Arena-Hard prompts that thresholds are calibrated on")
    pool.add_argument("--shared", type=Path, required=True, help="the data folder (see data/calibration/README.md)")
    pool.add_argument("--out", type=Path, default=DEFAULT_POOL)

    calibrate = commands.add_parser("calibrate", help="the threshold that sends a share of a prompt pool to strong")
    calibrate.add_argument("--router", required=True, help="KIND or KIND=CHECKPOINT_DIR")
    calibrate.add_argument(
        "--strong-percent", type=float, action="append", help="share of strong calls, 0-100 (repeatable)"
    )
    calibrate.add_argument(
        "--prompts",
        type=Path,
        default=DEFAULT_POOL,
        help="JSONL/CSV/Parquet with a prompt column, or a request-log directory",
    )
    calibrate.add_argument(
        "--measure", type=Path, action="append", help="also print the share each threshold sends on this file"
    )
    calibrate.add_argument("--save", action="store_true", help="store the table in the checkpoint (calibration.json)")
    calibrate.add_argument("--strong", help="mf and sw_ranking: strong model of the pair; default: the checkpoint's")
    calibrate.add_argument("--weak", help="mf and sw_ranking: weak model of the pair")
    calibrate.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")

    label = commands.add_parser("label", help="grade the strong and weak models' answers with an LLM judge")
    label.add_argument("--config", type=Path, required=True, help="YAML: upstreams, strong, weak, judge (README)")
    label.add_argument(
        "--prompts", type=Path, required=True, help="JSONL/CSV/Parquet with a prompt column, or a request-log directory"
    )
    label.add_argument("--out", type=Path, required=True, help="folder for the labels; rerun into it to continue")
    label.add_argument("--dry-run", action="store_true", help="print the calls and cost to come, and stop")
    label.add_argument("--max-usd", type=float, help="refuse to start when the cost may exceed this")

    train = commands.add_parser("train", help="train a router and save its checkpoint")
    train.add_argument("kind", choices=["random", "sw_ranking", "mf", "bert", "causal_llm"])
    train.add_argument("--data", action="append", help="file, folder or Hugging Face dataset id (repeatable)")
    train.add_argument(
        "--weight",
        type=_weight,
        action="append",
        help="DATA=WEIGHT: the battles of that --data reference count WEIGHT times (repeatable; default 1)",
    )
    train.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int)
    pair = train.add_argument_group("mf and sw_ranking")
    pair.add_argument("--strong", default=DEFAULT_STRONG, help="default strong model of the scoring pair")
    pair.add_argument("--weak", default=DEFAULT_WEAK, help="default weak model of the scoring pair")
    pair.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")
    classifiers = train.add_argument_group("bert and causal_llm")
    classifiers.add_argument("--mode", choices=["head", "lora", "full"])
    classifiers.add_argument("--device", default="cpu")
    classifiers.add_argument("--base-model", help="local directory or hub id; default: the embedded model")
    classifiers.add_argument("--max-length", type=int)
    classifiers.add_argument(
        "--strong-models", type=_csv, help="comma-separated; battles against a weak model are labels"
    )
    classifiers.add_argument("--weak-models", type=_csv)

    args = parser.parse_args(argv)
    try:
        if args.command == "build-data":
            build_data(args.shared, args.out, args.unlicensed_out)
        elif args.command == "build-eval":
            build_eval(args.shared, args.out, args.train)
        elif args.command == "build-pool":
            build_pool(args.shared, args.out)
        elif args.command == "calibrate":
            calibrate_command(args)
        elif args.command == "label":
            label_command(args)
        elif args.command == "evaluate":
            if args.benchmark is None and not args.labels:
                args.benchmark = ["mt_bench", "mmlu", "gsm8k"]
            args.benchmark = args.benchmark or []
            evaluate_command(args)
        else:
            train_command(args)
    except ValueError as exc:  # bad data or options: the message names the file, row and field
        parser.exit(2, f"routellm-serve: error: {exc}\n")


if __name__ == "__main__":
    main()
