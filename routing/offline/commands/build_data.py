"""``routellm-serve build-data``: the training set, converted from its sources and decontaminated
against every evaluation prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo, to_stderr
from routing.offline.data.decontaminate import THRESHOLD, near_duplicate_mask
from routing.offline.data.files import SOURCES_FILE, write_jsonl
from routing.offline.data.sources import SOURCES, evaluation_prompts
from routing.offline.training.common import Log


def build_data(
    shared: Path, out: Path, unlicensed_out: Path | None = None, echo: Echo = print, log: Log = to_stderr
) -> dict[str, int]:
    """Rows written per source file. Sources without a licence to ship are converted only when
    ``unlicensed_out`` is given, into that folder."""
    chosen = [s for s in SOURCES if s.shippable or unlicensed_out is not None]
    rows = {s.name: s.read(shared) for s in chosen}
    prompts = sorted({row.prompt for source_rows in rows.values() for row in source_rows})
    evals = evaluation_prompts(shared)
    log(f"{len(prompts)} training prompts after the contamination list; checking against {len(evals)} evaluation ones")
    encoder = LocalEmbedder(LocalEmbedding())
    mask = near_duplicate_mask(encoder.encode(prompts), encoder.encode(evals))
    near = {p for p, hit in zip(prompts, mask, strict=True) if hit}
    echo(f"dropped {len(near)} training prompts with cosine >= {THRESHOLD} to an evaluation prompt")
    records, written = {}, {}
    for source in chosen:
        folder = out if source.shippable else unlicensed_out
        assert folder is not None
        kept = [row for row in rows[source.name] if row.prompt not in near]
        written[source.file] = count = write_jsonl(folder / source.file, kept)
        distinct = len(np.unique([row.prompt for row in kept]))
        echo(f"{source.name}: {count} rows, {distinct} prompts -> {folder / source.file} (licence {source.licence})")
        records[source.file] = {"source": source.name, "licence": source.licence, "upstream": source.upstream}
    for folder in {out, unlicensed_out} - {None}:
        assert folder is not None
        here = {f: r for f, r in records.items() if (folder / f).exists()}
        (folder / SOURCES_FILE).write_text(json.dumps(here, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return written
