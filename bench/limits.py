"""The router stage's raw speed in one process, no Serve: the limit the served stage is held to.

Everything here runs the project's own model code (MiniLM through :class:`LocalEmbedder`, the
``builtin:mf`` head) on the benchmark's prompts, with ``torch_threads`` threads.
"""

from __future__ import annotations

import time

import numpy as np

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.resources import checkpoint_path
from routing.routers.mf import MFRouter


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def warm_encoder(prompts: list[str], torch_threads: int) -> LocalEmbedder:
    """MiniLM on ``torch_threads`` threads (a process-wide setting), past its first-call costs."""
    encoder = LocalEmbedder(LocalEmbedding(torch_threads=torch_threads))
    encoder.encode(prompts[:8])
    return encoder


def one_forward_ms(encoder: LocalEmbedder, prompts: list[str], count: int = 64) -> float:
    """Median time of one MiniLM forward pass for one prompt (tokenizer included)."""
    times = []
    for prompt in prompts[:count]:
        started = time.perf_counter()
        encoder.encode([prompt])
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def router_stage_limit(encoder: LocalEmbedder, prompts: list[str]) -> float:
    """MiniLM + MF decisions/s over all ``prompts`` at once, sorted by length (the least padding
    possible): what the cores can do when nothing else runs."""
    mf = MFRouter(checkpoint_path("builtin:mf"))
    started = time.perf_counter()
    mf.score(prompts, encoder.encode(prompts))
    return _rate(len(prompts), time.perf_counter() - started)


def served_batch_rates(encoder: LocalEmbedder, prompts: list[str], batch: int = 32) -> dict[str, float]:
    """Embeddings/s for batches of ``batch`` consecutive prompts (what a replica's batcher
    gathers): one padded forward pass per batch, against what the Embedding replica does with
    such a batch (``LocalEmbedder.encode``)."""
    batches = [prompts[i : i + batch] for i in range(0, len(prompts), batch)]
    rates = {}
    passes = {
        "one padded pass": lambda texts: encoder.encode(texts, batch_size=len(texts)),
        "as served": encoder.encode,
    }
    for name, encode in passes.items():
        started = time.perf_counter()
        for texts in batches:
            encode(texts)
        rates[name] = _rate(len(prompts), time.perf_counter() - started)
    return rates
