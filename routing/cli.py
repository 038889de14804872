"""``routellm-serve``: build the training set and train routers.

    routellm-serve build-data --shared ../shared/data --out data/train
    routellm-serve train-mf --data data/train/arena-bench-v1.scores.jsonl \
        --out routing/checkpoints/mf-arena-bench-minilm
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder

ARENA_BENCH_FILE = "arena-bench-v1.scores.jsonl"


def _local_encoder() -> LocalEmbedder:
    return LocalEmbedder(LocalEmbedding())


def build_data(shared: Path, out: Path) -> None:
    from routing.data.decontaminate import THRESHOLD, near_duplicate_mask
    from routing.data.schema import write_jsonl
    from routing.data.sources import arena_bench_v1_scores, evaluation_prompts

    scores = arena_bench_v1_scores(shared)
    prompts = sorted({row.prompt for row in scores})
    evals = evaluation_prompts(shared)
    print(
        f"arena-bench-v1: {len(prompts)} prompts after the contamination list; "
        f"checking them against {len(evals)} evaluation prompts",
        file=sys.stderr,
    )
    encoder = _local_encoder()
    mask = near_duplicate_mask(encoder.encode(prompts), encoder.encode(evals))
    near = {p for p, hit in zip(prompts, mask, strict=True) if hit}
    kept = [row for row in scores if row.prompt not in near]
    count = write_jsonl(out / ARENA_BENCH_FILE, kept)
    print(
        f"dropped {len(near)} prompts with cosine >= {THRESHOLD} to an evaluation prompt; "
        f"wrote {count} judge scores for {len(prompts) - len(near)} prompts to {out / ARENA_BENCH_FILE}"
    )


def train_mf_command(data: Path, out: Path, strong: str, weak: str, epochs: int, seed: int) -> None:
    from routing.data.convert import scores_to_battles
    from routing.data.schema import JudgeScore, read_jsonl
    from routing.routers.mf import save_checkpoint
    from routing.training.mf import MFTrainConfig, train_mf

    battles = scores_to_battles(read_jsonl(data, JudgeScore))
    encoder = _local_encoder()
    model, meta = train_mf(
        battles,
        encoder.encode,
        embedding_model_id=LocalEmbedding().model_id,
        default_strong=strong,
        default_weak=weak,
        config=MFTrainConfig(epochs=epochs, seed=seed),
        log=lambda line: print(line, file=sys.stderr),
    )
    meta.training["data"] = {
        "file": data.name,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "battles": len(battles),
    }
    save_checkpoint(model, meta, out)
    print(
        f"saved {out}: best epoch {meta.training['best_epoch']}, "
        f"validation accuracy {meta.training['validation_accuracy']:.3f} "
        f"(loss {meta.training['validation_loss']:.4f}) on held-out prompts"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="routellm-serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build-data", help="convert and decontaminate the training set")
    build.add_argument("--shared", type=Path, required=True, help="the data folder (see data/README.md)")
    build.add_argument("--out", type=Path, default=Path("data/train"))

    train = commands.add_parser("train-mf", help="train the matrix-factorisation router")
    train.add_argument("--data", type=Path, default=Path("data/train") / ARENA_BENCH_FILE)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--strong", default="gpt-4-1106-preview", help="default strong model of the scoring pair")
    train.add_argument("--weak", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    train.add_argument("--epochs", type=int, default=15)
    train.add_argument("--seed", type=int, default=42)

    args = parser.parse_args(argv)
    if args.command == "build-data":
        build_data(args.shared, args.out)
    else:
        train_mf_command(args.data, args.out, args.strong, args.weak, args.epochs, args.seed)


if __name__ == "__main__":
    main()
