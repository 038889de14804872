"""``routellm-serve``: start the service, check its config; build the data, train, evaluate and
calibrate routers.

    routellm-serve up                       # serve_config.yaml, in the foreground
    routellm-serve up serve_config.all_routers.yaml
    routellm-serve check serve_config.yaml  # the config and its checkpoints, without Ray

    routellm-serve build-data --shared ../shared/data --out data/train
    routellm-serve build-eval --shared ../shared/data --out data/eval
    routellm-serve build-pool --shared ../shared/data
    routellm-serve train random     --out routing/checkpoints/random
    routellm-serve train sw_ranking --out routing/checkpoints/sw_ranking
    routellm-serve train mf         --out routing/checkpoints/mf
    routellm-serve train bert       --out routing/checkpoints/bert
    routellm-serve train causal_llm --out routing/checkpoints/causal_llm
    routellm-serve train ensemble   --out routing/checkpoints/ensemble

    routellm-serve validate --router ensemble --set ensemble.alpha=30 --out docs/validation
    routellm-serve evaluate --out docs/results
    routellm-serve evaluate --labels labels/test --router mf --router mf=new-mf --strong gpt-4o --weak my-small
    routellm-serve evaluate --benchmark scores.json --models a,b,c --prices prices.json --out docs/many
    routellm-serve calibrate --router mf --strong-percent 30 --save
    routellm-serve calibrate --router mf=my-mf --candidates llama-13b,gpt-3.5-turbo-0125,gpt-4-0314 --save
    routellm-serve label --config label.yaml --prompts requests/ --out labels --dry-run
    routellm-serve learn --config serve_config.yaml --once
    routellm-serve models builtin:mf
    routellm-serve versions mf --directory /var/lib/routellm/learner
    routellm-serve rollback mf --directory /var/lib/routellm/learner
    routellm-serve report --log /var/lib/routellm/requests --since 2026-12-01 --png savings.png

``--data`` takes files (JSONL, CSV, Parquet), folders of them, or Hugging Face dataset ids; it
defaults to the shipped training set in ``data/train``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from routing.calibration import DEFAULT_POOL
from routing.offline.data.files import data_files
from routing.resources import DEFAULT_STRONG, DEFAULT_TRAIN_DATA, DEFAULT_WEAK
from routing.routers.kinds import KINDS
from routing.settings import PRECISION_HELP

# The options ``train`` hands to the kind's trainer, when given.
TRAIN_OPTIONS = (
    "epochs", "lr", "batch_size", "strong", "weak", "embedding_model",
    "mode", "device", "precision", "base_model", "max_length", "strong_models", "weak_models",
    "alpha", "length_weight", "features",
)  # fmt: skip


def _weight(value: str) -> tuple[str, float]:
    ref, equals, number = value.rpartition("=")
    try:
        weight = float(number)
    except ValueError:
        weight = -1.0
    if not equals or not ref or not weight > 0:
        raise argparse.ArgumentTypeError(f"'{value}': expected DATA=WEIGHT with a weight above 0, e.g. labels/train=3")
    return ref, weight


def _time(value: str) -> float:
    from routing.offline.commands.report import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="routellm-serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser(
        "up", help="start the service in the foreground: serve run CONFIG with the service's Ray Serve settings"
    )
    start.add_argument("config", nargs="?", type=Path, default=Path("serve_config.yaml"), help="a Serve config file")
    checking = commands.add_parser("check", help="check a Serve config file and its checkpoints, without Ray")
    checking.add_argument("config", nargs="?", type=Path, default=Path("serve_config.yaml"), help="a Serve config file")

    build = commands.add_parser("build-data", help="convert and decontaminate the training set")
    build.add_argument("--shared", type=Path, required=True, help="the data folder (see data/README.md)")
    build.add_argument("--out", type=Path, default=DEFAULT_TRAIN_DATA)
    build.add_argument(
        "--unlicensed-out",
        type=Path,
        help="also convert sources without a licence to ship (RouterBench), into this folder",
    )

    evals = commands.add_parser("build-eval", help="convert RouteLLM's MT Bench, MMLU and GSM8K results")
    evals.add_argument("--shared", type=Path, required=True, help="the data folder (see data/eval/README.md)")
    evals.add_argument("--out", type=Path, default=Path("data/eval"))
    evals.add_argument("--train", type=Path, default=DEFAULT_TRAIN_DATA, help="training set to check the items against")

    assess = commands.add_parser("evaluate", help="APGR and CPT of routers on benchmarks, as the paper reports them")
    assess.add_argument(
        "--benchmark", action="append", default=None, help="mt_bench, mmlu, gsm8k or a benchmark file (repeatable)"
    )
    assess.add_argument(
        "--labels",
        action="append",
        help="a folder or file of your own labels (e.g. label's test/): a benchmark per kind of label (repeatable)",
    )
    assess.add_argument(
        "--router", action="append", help="KIND or KIND=CHECKPOINT_DIR (repeatable); default: every kind"
    )
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
    many = assess.add_argument_group("many models (a benchmark file with one quality column per model)")
    many.add_argument(
        "--models",
        type=_csv,
        help="comma-separated quality columns: route among them by cost and quality (mf, cross-fitted); "
        "'all' takes every model with a cost column or a price",
    )
    many.add_argument("--prices", type=Path, help="JSON of per-token prices, when the file has no <model>|total_cost")
    many.add_argument("--completion-tokens", type=int, default=256, help="completion tokens priced per answer")
    assess.add_argument("--precision", choices=["auto", "float32"], default="auto", help=PRECISION_HELP)
    assess.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")
    assess.add_argument("--out", type=Path, help="folder for results.json, results.md and a PNG per benchmark")

    validation = commands.add_parser(
        "validate", help="leave-one-source-out APGR of router kinds over the training sources (model selection)"
    )
    validation.add_argument("--data", action="append", help="file, folder or Hugging Face dataset id (repeatable)")
    validation.add_argument(
        "--weight", type=_weight, action="append", help="DATA=WEIGHT, as for train (repeatable; default 1)"
    )
    validation.add_argument("--router", action="append", help="a kind with a trainer (repeatable); default: ensemble")
    validation.add_argument(
        "--set", action="append", dest="settings", help="KIND.OPTION=VALUE for a kind's trainer (repeatable)"
    )
    validation.add_argument("--seed", type=int, default=42)
    validation.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")
    validation.add_argument("--out", type=Path, help="folder for validation.json and validation.md")

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
    calibrate.add_argument(
        "--candidates", type=_csv, help="mf and sw_ranking: three or more models, cheapest first, instead of a pair"
    )
    calibrate.add_argument(
        "--completion-tokens", type=int, default=256, help="completion tokens priced per answer, for budgets"
    )
    calibrate.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")

    listing = commands.add_parser("models", help="the models a router checkpoint can score (its candidates)")
    listing.add_argument("checkpoint", help="builtin:<name> or a checkpoint directory")

    label = commands.add_parser("label", help="grade the strong and weak models' answers with an LLM judge")
    label.add_argument(
        "--config", type=Path, required=True, help="YAML: upstreams, strong, weak, judge (docs/own-traffic.md)"
    )
    label.add_argument(
        "--prompts", type=Path, required=True, help="JSONL/CSV/Parquet with a prompt column, or a request-log directory"
    )
    label.add_argument("--out", type=Path, required=True, help="folder for the labels; rerun into it to continue")
    label.add_argument("--dry-run", action="store_true", help="print the calls and cost to come, and stop")
    label.add_argument("--max-usd", type=float, help="refuse to start when the cost may exceed this")

    learn = commands.add_parser("learn", help="run the learner of a config's application outside a cluster")
    learn.add_argument("--config", type=Path, required=True, help="a Serve config file, or a file of an app's args")
    learn.add_argument("--app", help="the application's name (default: the first with a learner)")
    learn.add_argument("--once", action="store_true", help="run one round now, then stop")
    for name, what in (
        ("versions", "list a learning router's kept versions and their evaluations"),
        ("promote", "put a version in service (default: the newest challenger)"),
        ("rollback", "put a version back in service (default: the champion before the current one)"),
    ):
        held = commands.add_parser(name, help=what)
        held.add_argument("router", help="the router's name in the config")
        if name != "versions":
            held.add_argument("version", nargs="?", type=int, help="a version number (see 'versions')")
        held.add_argument(
            "--directory",
            type=Path,
            default=os.environ.get("ROUTELLM_LEARNER_DIR"),
            required="ROUTELLM_LEARNER_DIR" not in os.environ,
            help="the learner's directory (learner.directory; default: $ROUTELLM_LEARNER_DIR)",
        )

    savings = commands.add_parser(
        "report", help="what routing spent and saved, per API key and router, from the request log"
    )
    savings.add_argument("--log", type=Path, required=True, help="the request log's directory")
    savings.add_argument("--since", type=_time, help="from this time: seconds since the epoch or ISO 8601")
    savings.add_argument("--until", type=_time, help="up to (not including) this time")
    savings.add_argument("--png", type=Path, help="also draw spent against would-have-spent into this PNG")
    savings.add_argument(
        "--learner", type=Path, help="the learner's directory: add the shadow evaluation's verdicts per key and router"
    )
    train = commands.add_parser("train", help="train a router and save its checkpoint")
    train.add_argument("kind", choices=KINDS.names())
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
    pair.add_argument("--strong", help=f"default strong model of the scoring pair (default: {DEFAULT_STRONG})")
    pair.add_argument("--weak", help=f"default weak model of the scoring pair (default: {DEFAULT_WEAK})")
    pair.add_argument("--embedding-model", help="local directory or hub id; default: all-MiniLM-L6-v2")
    ensemble = train.add_argument_group("ensemble")
    ensemble.add_argument("--alpha", type=float, help="ridge strength of every head (default 100)")
    ensemble.add_argument("--length-weight", type=float, help="weight of the z-scored log length (default 4)")
    ensemble.add_argument("--features", type=_csv, help="comma-separated prompt features (default: all)")
    classifiers = train.add_argument_group("bert and causal_llm")
    classifiers.add_argument("--mode", choices=["head", "lora", "full"])
    classifiers.add_argument("--device", help="default: cpu")
    classifiers.add_argument(
        "--precision", choices=["auto", "float32"], help="head mode's features: auto (default, as served) or float32"
    )
    classifiers.add_argument("--base-model", help="local directory or hub id; default: the embedded model")
    classifiers.add_argument("--max-length", type=int)
    classifiers.add_argument(
        "--strong-models", type=_csv, help="comma-separated; battles against a weak model are labels"
    )
    classifiers.add_argument("--weak-models", type=_csv)

    args = parser.parse_args(argv)
    try:
        run(args)
    except ValueError as exc:  # bad data or options: the message names the file, row and field
        parser.exit(2, f"routellm-serve: error: {exc}\n")
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run(args: argparse.Namespace) -> None:
    """Calls the command's function (imported only when it runs: each pulls in its models)."""
    if args.command == "up":
        from routing.offline.commands.up import up

        up(args.config)
    elif args.command == "check":
        from routing.offline.commands.check import check_command

        check_command(args.config)
    elif args.command == "build-data":
        from routing.offline.commands.build_data import build_data

        build_data(args.shared, args.out, args.unlicensed_out)
    elif args.command == "build-eval":
        from routing.offline.commands.build_eval import build_eval

        build_eval(args.shared, args.out, args.train)
    elif args.command == "build-pool":
        from routing.offline.commands.build_pool import build_pool

        build_pool(args.shared, args.out)
    elif args.command == "calibrate":
        from routing.offline.commands.calibrate import SHOWN_PERCENTS, calibrate

        calibrate(
            args.router,
            args.prompts,
            args.strong_percent or SHOWN_PERCENTS,
            args.measure or (),
            args.save,
            args.strong,
            args.weak,
            args.embedding_model,
            args.candidates or (),
            args.completion_tokens,
        )
    elif args.command == "models":
        from routing.offline.commands.models import models

        models(args.checkpoint)
    elif args.command == "label":
        from routing.offline.commands.label import label

        label(args.config, args.prompts, args.out, args.dry_run, args.max_usd)
    elif args.command == "learn":
        from routing.offline.commands.learn import learn

        learn(args.config, args.app, args.once)
    elif args.command in ("versions", "promote", "rollback"):
        from routing.offline.commands import learn as held

        if args.command == "versions":
            held.versions(args.directory, args.router)
        else:
            getattr(held, args.command)(args.directory, args.router, args.version)
    elif args.command == "report":
        from routing.offline.commands.report import report_command

        print(report_command(args.log, args.since, args.until, args.png, args.learner))
    elif args.command == "validate":
        from routing.offline.commands.validate import DEFAULT_ROUTERS, validate

        validate(
            args.data or [str(DEFAULT_TRAIN_DATA)],
            args.router or DEFAULT_ROUTERS,
            args.settings or (),
            dict(args.weight or []),
            args.seed,
            args.embedding_model,
            args.out,
        )
    elif args.command == "evaluate" and args.models:
        from routing.offline.commands.evaluate_models import evaluate_models

        if not args.benchmark:
            raise ValueError("--models: name the benchmark files of many models with --benchmark")
        models = None if args.models == ["all"] else args.models
        files = [path for ref in args.benchmark for path in data_files(ref)]
        evaluate_models(files, models, args.prices, args.completion_tokens, args.folds, out=args.out)
    elif args.command == "evaluate":
        from routing.offline.commands.evaluate import evaluate

        evaluate(
            args.benchmark or (),
            args.labels or (),
            args.router or (),
            args.strong,
            args.weak,
            args.seeds,
            args.setting,
            args.folds,
            args.precision,
            args.embedding_model,
            args.out,
        )
    else:
        from routing.offline.commands.train import train

        given: dict[str, Any] = {name: getattr(args, name) for name in TRAIN_OPTIONS}
        options = {name: value for name, value in given.items() if value is not None}
        train(args.kind, args.out, args.data or [str(DEFAULT_TRAIN_DATA)], dict(args.weight or []), args.seed, options)


if __name__ == "__main__":
    main()
