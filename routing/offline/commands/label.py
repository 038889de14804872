"""``routellm-serve label``: the strong and weak models answer each prompt and an LLM judge
grades the answers, into battles and judge scores ready for ``train``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tqdm.auto import tqdm

from routing.offline.commands import Echo
from routing.offline.commands.prompts import read_prompts
from routing.offline.labelling.config import load_label_config
from routing.offline.labelling.run import Labeller, Written, distinct_prompts


def label(
    config: Path, prompts: Path, out: Path, dry_run: bool = False, max_usd: float | None = None, echo: Echo = print
) -> Written | None:
    """Labels the distinct prompts of ``prompts`` (a file or a request-log directory) into ``out``,
    continuing what an earlier run there left; None for a dry run, which only prints the calls
    and the most they can cost. A run that may cost more than ``max_usd`` is refused."""
    settings = load_label_config(config, dict(os.environ))
    distinct = distinct_prompts(read_prompts(prompts))
    labeller = Labeller(settings, out)
    todo = [p for p in distinct if not labeller.done(p)]
    estimate = labeller.estimate(todo)
    echo(f"label: {len(distinct)} distinct prompts, {len(distinct) - len(todo)} already labelled in {out}")
    echo("\n".join(estimate.lines()))
    if dry_run:
        return None
    if max_usd is not None and estimate.usd > max_usd:
        raise ValueError(f"the run may cost up to ${estimate.usd:,.2f}, more than --max-usd {max_usd:g}")
    with tqdm(total=len(todo), desc="label", unit="prompt", disable=None) as bar:
        try:
            failures = asyncio.run(labeller.run(todo, lambda: bar.update(1)))
        except KeyboardInterrupt:
            bar.close()
            echo(f"interrupted; what was labelled is kept in {out / 'work'}: rerun the same command to continue")
            raise
    written = labeller.write(distinct)
    for kind, counts in (("battles", written.battles), ("judge scores", written.scores)):
        for split, count in sorted(counts.items()):
            echo(f"{count} {kind} -> {out / split}")
    if written.unreadable_verdicts:
        echo(f"{written.unreadable_verdicts} verdicts gave no readable grade (see {out / 'work'}); left out")
    echo(f"spent about ${labeller.spent_usd():,.4f} at the configured prices")
    if failures:
        reasons = sorted(set(failures.values()))
        raise ValueError(f"{len(failures)} prompts not labelled ({'; '.join(reasons[:3])}); rerun to try them again")
    return written
