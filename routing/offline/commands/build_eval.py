"""``routellm-serve build-eval``: RouteLLM's MT Bench, MMLU and GSM8K results as benchmark files,
without the items close to a training prompt."""

from __future__ import annotations

from pathlib import Path

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo
from routing.offline.data.decontaminate import THRESHOLD, near_duplicate_mask
from routing.offline.data.files import read_preference_data, write_records
from routing.offline.evaluation.sources import BENCHMARKS, mt_bench_turns


def build_eval(shared: Path, out: Path, train: Path, echo: Echo = print) -> dict[str, int]:
    """Items written per benchmark, each into ``out/<name>.jsonl.gz``."""
    encoder = LocalEmbedder(LocalEmbedding())
    training = encoder.encode(sorted({row.prompt for row in read_preference_data(train)}))
    written = {}
    for name, read in BENCHMARKS.items():
        rows = read(shared / "routellm" / "evals")
        near = near_duplicate_mask(encoder.encode([str(r["prompt"]) for r in rows]), training)
        kept = [row for row, hit in zip(rows, near, strict=True) if not hit]
        written[name] = count = write_records(out / f"{name}.jsonl.gz", kept)
        echo(
            f"{name}: {count} items -> {out / f'{name}.jsonl.gz'} "
            f"({int(near.sum())} dropped with cosine >= {THRESHOLD} to a training prompt)"
        )
        if name == "mt_bench":
            turns = mt_bench_turns(shared / "routellm" / "evals", {str(row["id"]) for row in kept})
            echo(f"mt_bench_turns: {write_records(out / 'mt_bench_turns.jsonl.gz', turns)} conversations")
    return written
