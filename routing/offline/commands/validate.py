"""``routellm-serve validate``: leave-one-source-out validation of router kinds over the training
sources, the table that methods and hyperparameters are chosen by."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo, to_stderr
from routing.offline.evaluation.validation import EmbeddingCache, Fold, leave_one_source_out, markdown, mean_apgr
from routing.offline.training.common import Log
from routing.offline.training.data import read_training_data
from routing.resources import DEFAULT_TRAIN_DATA
from routing.routers.kinds import KINDS

DEFAULT_ROUTERS = ("ensemble",)


def parse_setting(value: str) -> tuple[str, str, Any]:
    """``KIND.OPTION=VALUE`` (the value read as JSON where it parses, else as text)."""
    target, equals, raw = value.partition("=")
    kind, dot, option = target.partition(".")
    if not equals or not dot or not option:
        raise ValueError(f"--set {value}: expected KIND.OPTION=VALUE, e.g. ensemble.alpha=30")
    KINDS.get(kind)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        parsed = raw
    return kind, option.replace("-", "_"), parsed


def validate(
    data: Sequence[str] = (str(DEFAULT_TRAIN_DATA),),
    routers: Sequence[str] = DEFAULT_ROUTERS,
    settings: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    seed: int = 42,
    embedding_model: str | None = None,
    out: Path | None = None,
    echo: Echo = print,
    log: Log = to_stderr,
) -> list[Fold]:
    """Trains each of ``routers`` (kind names) once per held-out source and prints the table;
    ``settings``: ``KIND.OPTION=VALUE`` options for the kinds' trainers."""
    for kind in routers:
        if KINDS.get(kind).trainer is None:
            raise ValueError(f"--router {kind}: the kind has no trainer to validate")
    options: dict[str, dict[str, Any]] = {}
    for value in settings:
        kind, option, parsed = parse_setting(value)
        options.setdefault(kind, {})[option] = parsed
    read = read_training_data(list(data), dict(weights or {}), log)
    embed = EmbeddingCache(LocalEmbedder(LocalEmbedding(model_path=embedding_model)).encode)
    folds = leave_one_source_out(list(routers), read, embed, seed, options, log)
    if not folds:
        raise ValueError("no source has enough prompts graded for a pair of models to hold out")
    table = markdown(folds)
    echo(table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        routers_shown = list(folds[0].apgr)
        summary = {
            "settings": list(settings),
            "folds": [f.as_dict() for f in folds],
            "mean": {r: mean_apgr(folds, r) for r in routers_shown},
        }
        (out / "validation.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "validation.md").write_text(table + "\n")
        echo(f"wrote {out / 'validation.json'} and {out / 'validation.md'}")
    return folds
