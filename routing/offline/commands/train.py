"""``routellm-serve train <kind>``: train a router of any registered kind and save its checkpoint."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routing.offline.commands import Echo, to_stderr
from routing.offline.training.common import Log
from routing.offline.training.fit import train_checkpoint
from routing.resources import DEFAULT_TRAIN_DATA
from routing.routers.checkpoint import Manifest


def train(
    kind: str,
    out: Path,
    data: Sequence[str] = (str(DEFAULT_TRAIN_DATA),),
    weights: Mapping[str, float] | None = None,
    seed: int = 42,
    options: Mapping[str, Any] | None = None,
    echo: Echo = print,
    log: Log = to_stderr,
) -> Manifest:
    """Trains a ``kind`` router on the battles of ``data`` (each reference weighted by ``weights``,
    default 1) with the kind's own ``options`` (e.g. ``epochs``), and saves it in ``out``."""
    started = time.perf_counter()
    manifest = train_checkpoint(kind, out, data, weights or {}, seed, options or {}, log)
    metrics = ", ".join(f"{k} {v}" for k, v in manifest.training.metrics.items())
    echo(f"saved {out} ({kind}) in {time.perf_counter() - started:.0f} s: {metrics}")
    return manifest
