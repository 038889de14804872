"""``routellm-serve build-pool``: the Arena-Hard prompts that thresholds are calibrated on."""

from __future__ import annotations

from pathlib import Path

from routing.offline.commands import Echo
from routing.offline.data.files import write_records
from routing.offline.data.sources import arena_hard_prompts


def build_pool(shared: Path, out: Path, echo: Echo = print) -> int:
    count = write_records(out, arena_hard_prompts(shared))
    echo(f"{count} Arena-Hard prompts -> {out}")
    return count
