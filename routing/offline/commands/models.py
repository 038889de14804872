"""``routellm-serve models CHECKPOINT``: which models a checkpoint can score, so which upstreams a
router on it may name as candidates (by ``router_model_id``, else by model name)."""

from __future__ import annotations

from routing.calibration import calibration_files, read_calibration
from routing.offline.commands import Echo
from routing.resources import MissingResource, checkpoint_path
from routing.routers.checkpoint import load_manifest
from routing.routers.kinds import KINDS


def models(checkpoint: str, echo: Echo = print) -> list[str]:
    """Prints the checkpoint's kind, the models it scores and its calibration pair; returns the
    models any pair of which it can score (empty for a kind that scores only its own pair)."""
    try:
        directory = checkpoint_path(checkpoint)
    except MissingResource as exc:
        raise ValueError(str(exc)) from None
    manifest = load_manifest(directory)
    kind = KINDS.get(manifest.router)
    echo(f"{checkpoint}: a {kind.name} checkpoint")
    if kind.scores_any_model:
        echo(
            f"scores any pair of these {len(manifest.models)} models, so routes among any number of them "
            f"(default pair: {manifest.default_strong} against {manifest.default_weak}):"
        )
        for name in manifest.models:
            echo(f"  {name}")
    else:
        trained = f" (trained on labels of: {', '.join(manifest.models)})" if manifest.models else ""
        echo(f"scores one pair, the strong and the weak model of its training labels: two candidates{trained}")
    tables = [read_calibration(path) for path in calibration_files(directory)]
    if not tables:
        echo("calibration: none (routellm-serve calibrate --save writes one)")
    for table in tables:
        if table.candidates and len(table.candidates) > 2:
            echo(f"calibration: strong shares among {', '.join(table.candidates)}, on {table.pool}")
        elif table.candidates:
            weak, strong = table.candidates
            echo(f"calibration: strong shares for {strong} against {weak}, on {table.pool}")
        else:
            echo(f"calibration: strong shares on {table.pool}")
    return list(manifest.models) if kind.scores_any_model else []
