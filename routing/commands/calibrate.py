"""``routellm-serve calibrate``: the thresholds that send each share of a prompt pool to the
strong model, printed and optionally saved with the checkpoint as its calibration table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routing.calibration import DEFAULT_POOL, CalibrationTable, save_calibration
from routing.commands import Echo
from routing.commands.prompts import read_prompts
from routing.commands.router_spec import parse_router
from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.resources import checkpoint_path
from routing.routers.checkpoint import load_manifest
from routing.routers.pair import scoring_pair

SHOWN_PERCENTS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)


def calibrate(
    router: str,
    prompts: Path = DEFAULT_POOL,
    strong_percents: Sequence[float] = SHOWN_PERCENTS,
    measure: Sequence[Path] = (),
    save: bool = False,
    strong: str | None = None,
    weak: str | None = None,
    embedding_model: str | None = None,
    echo: Echo = print,
) -> CalibrationTable:
    """The table of ``router`` (``KIND[=CHECKPOINT_DIR]``) on the pool ``prompts`` (a file with a
    ``prompt`` column or a request-log directory), for the pair ``strong``/``weak`` of a router
    that scores any two models (default: its checkpoint's). ``measure``: other files to print the
    share each threshold sends there; ``save``: store the table in the checkpoint."""
    kind, config = parse_router(router)
    if not kind.calibrated:
        raise ValueError(f"--router {router}: a {kind.name} router takes no strong shares, so it has no table")
    model = kind.router(config, (strong, weak))
    encoder = LocalEmbedder(LocalEmbedding(model_path=embedding_model)) if kind.needs_embeddings else None

    def scores_of(texts: list[str]) -> np.ndarray:
        return np.asarray(model.score(texts, encoder.encode(texts) if encoder else None))

    pool = read_prompts(prompts)
    scores = scores_of(pool)
    directory = checkpoint_path(config.checkpoint)
    pair = scoring_pair(load_manifest(directory), strong, weak) if kind.scores_any_model else (None, None)
    table = CalibrationTable.from_scores(kind.name, str(prompts), scores, pair)
    elsewhere = {path: scores_of(read_prompts(path)) for path in measure}
    for percent in strong_percents:
        threshold = table.threshold(percent)
        share = 100 * float(np.mean(scores >= threshold))
        echo(
            f"{kind.name}: threshold {threshold:.6f} sends {share:.1f}% of {len(pool)} prompts to the strong model "
            f"(asked {percent:g}%); use model 'router-{kind.name}-{threshold:.6f}' or "
            f"'router-{kind.name}-{percent:g}%'"
        )
        for path, other in elsewhere.items():
            echo(f"  on {path}: {100 * float(np.mean(other >= threshold)):.1f}% of {len(other)} prompts")
    if save:
        echo(f"saved {save_calibration(directory, table)}")
    return table
