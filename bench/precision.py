"""Reduced precision against float32 for the models that read prompts, same CPU, same prompts.

    python bench/precision.py [--prompts 512] [--benchmark mmlu]

For MiniLM (embeddings, and so mf/sw_ranking), the bert router and the causal_llm router, prints
prompts/s in float32 and with ``precision: auto`` (bfloat16 where the CPU computes it natively,
float16 on a GPU), the speed-up, and how far the outputs move: the largest score difference and
the rank correlation of the two score lists (for MiniLM, the mf router's scores).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.inference import native_low_precision
from routing.offline.evaluation.benchmark import read_benchmark
from routing.resources import checkpoint_path
from routing.routers.classifier import ClassifierRouter
from routing.routers.mf import MFRouter

ROOT = Path(__file__).resolve().parent.parent


def timed(score: Callable[[list[str]], np.ndarray], prompts: list[str]) -> tuple[float, np.ndarray]:
    score(prompts[:8])  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    scores = score(prompts)
    return len(prompts) / (time.perf_counter() - started), np.asarray(scores, dtype=np.float64)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--benchmark", default="mmlu")
    args = parser.parse_args()
    prompts = read_benchmark(ROOT / "data" / "eval" / f"{args.benchmark}.jsonl.gz").prompts[: args.prompts]
    mf = MFRouter(checkpoint_path("builtin:mf"))

    def minilm(precision: str) -> Callable[[list[str]], np.ndarray]:
        encoder = LocalEmbedder(LocalEmbedding(precision=precision))  # type: ignore[arg-type]
        return lambda texts: mf.score(texts, encoder.encode(texts))

    def classifier(kind: str) -> Callable[[str], Callable[[list[str]], np.ndarray]]:
        return lambda precision: ClassifierRouter(checkpoint_path(f"builtin:{kind}"), kind, precision=precision).score  # type: ignore[arg-type]

    cpu = torch.device("cpu")
    print(f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"auto precision on this CPU: {native_low_precision(cpu) or 'float32 (no native bfloat16)'}")
    print(f"{len(prompts)} {args.benchmark} prompts\n")
    print("| model | float32 prompts/s | auto prompts/s | speed-up | max score difference | rank correlation |")
    print("|---|---:|---:|---:|---:|---:|")
    models = {"MiniLM (mf scores)": minilm, "bert": classifier("bert"), "causal_llm": classifier("causal_llm")}
    for name, make in models.items():
        full_rate, full = timed(make("float32"), prompts)
        auto_rate, auto = timed(make("auto"), prompts)
        print(
            f"| {name} | {full_rate:.1f} | {auto_rate:.1f} | {auto_rate / full_rate:.2f}× | "
            f"{np.abs(auto - full).max():.4f} | {rank_correlation(auto, full):.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
