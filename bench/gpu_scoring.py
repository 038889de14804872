"""The batched scoring path on one accelerator (or this CPU), against the raw forward pass.

    python -m bench.gpu_scoring [--prompts 4096] [--batch 256] [--skip-causal]

No Ray: this measures the project's model code as a replica runs it (``routing/``, float16 on a
GPU by ``precision: auto``), stage by stage:

- tokenization alone (MiniLM's fast tokenizer);
- MiniLM: the raw forward over pre-tokenized, length-sorted batches, against
  ``LocalEmbedder.encode`` (tokenizer, sorted runs, pooling, copy back to the host);
- the MF head over those embeddings, and MiniLM + MF end to end (MF decisions/s);
- the bert and causal_llm routers' ``score`` (tokenizer + forward + head).

Prints one row per stage: prompts/s, and where a raw forward is timed, the project's share of it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.inference import autocast, length_batches
from routing.resources import checkpoint_path
from routing.routers.classifier import ClassifierRouter
from routing.routers.mf import MFRouter
from testing.load import sample_prompts


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rate(work: Callable[[], object], count: int, repeats: int = 3) -> float:
    """Items/s of ``work`` (which handles ``count`` items), best of ``repeats`` after a warm-up."""
    work()
    _sync()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        _sync()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=256, help="prompts per raw forward pass")
    parser.add_argument("--skip-causal", action="store_true", help="leave out the causal_llm router")
    args = parser.parse_args()
    base = sample_prompts(min(args.prompts, 4096))
    prompts = (base * (args.prompts // len(base) + 1))[: args.prompts]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {len(prompts)} prompts")

    encoder = LocalEmbedder(LocalEmbedding())
    mf = MFRouter(checkpoint_path("builtin:mf"))
    rows: list[tuple[str, float, str]] = []

    def tokenize() -> None:
        for chunk in length_batches(prompts, args.batch):
            encoder.tokenizer([prompts[i] for i in chunk], padding=True, truncation=True, max_length=256)

    rows.append(("tokenization (MiniLM tokenizer)", rate(tokenize, len(prompts)), ""))

    batches = [
        encoder.tokenizer(
            [prompts[i] for i in chunk], padding=True, truncation=True, max_length=256, return_tensors="pt"
        ).to(device)
        for chunk in length_batches(prompts, args.batch)
    ]

    def raw_forward() -> None:
        with torch.inference_mode(), autocast(device, encoder.precision):
            for batch in batches:
                encoder.model(**batch)

    raw = rate(raw_forward, len(prompts))
    rows.append((f"MiniLM raw forward, pre-tokenized, batches of {args.batch}", raw, "1.00"))
    ours = rate(lambda: encoder.encode(prompts), len(prompts))
    rows.append(("MiniLM, LocalEmbedder.encode (the replica's path)", ours, f"{ours / raw:.2f} of raw"))
    embeddings = encoder.encode(prompts)
    rows.append(("MF head on embeddings", rate(lambda: mf.score(prompts, embeddings), len(prompts)), ""))
    decisions = rate(lambda: mf.score(prompts, encoder.encode(prompts)), len(prompts))
    rows.append(("MF decisions end to end (encode + head)", decisions, f"{decisions / raw:.2f} of raw"))
    kinds = ["bert"] + ([] if args.skip_causal else ["causal_llm"])
    for kind in kinds:
        router = ClassifierRouter(checkpoint_path(f"builtin:{kind}"), kind)  # type: ignore[arg-type]
        count = len(prompts) if kind == "bert" else min(len(prompts), 1024)
        subset = prompts[:count]
        rows.append((f"{kind} router score", rate(lambda r=router, s=subset: r.score(s), count), ""))

    print("| stage | prompts/s | share |")
    print("|---|---:|---|")
    for stage, per_s, share in rows:
        print(f"| {stage} | {per_s:,.0f} | {share} |")
    print(f"MF decisions/s: {decisions:,.0f} (goal on one H100: 10,000; the paper's MF served 155/s on an L4)")
    print(f"score check: mean MF score {float(np.mean(mf.score(prompts, embeddings))):.4f}")


if __name__ == "__main__":
    main()
