"""``routellm-serve calibrate``: the thresholds that send each share of a prompt pool to the
strong (most capable) model, printed and optionally saved with the checkpoint as its calibration
table, with what each threshold sends to each candidate, to price budgets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routing.calibration import DEFAULT_POOL, CalibrationTable, Costs, Share, save_calibration
from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo
from routing.offline.commands.prompts import read_prompts
from routing.offline.commands.router_spec import parse_router
from routing.routers.kind import RouterKind
from routing.routers.rule import choose
from routing.routers.scorer import CandidateScorer, named_candidates, scored_models

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
    candidates: Sequence[str] = (),
    completion_tokens: int = 256,
    echo: Echo = print,
) -> CalibrationTable:
    """The table of ``router`` (``KIND[=CHECKPOINT_DIR]``) on the pool ``prompts`` (a file with a
    ``prompt`` column or a request-log directory), for the pair ``strong``/``weak`` of a router
    that scores any two models (default: its checkpoint's), or its ``candidates`` (three or more
    models, cheapest first). ``measure``: other files to print the share each threshold sends
    there; ``save``: store the table in the checkpoint."""
    kind, config = parse_router(router)
    if not kind.calibrated:
        raise ValueError(f"--router {router}: a {kind.name} router takes no strong shares, so it has no table")
    scorer = CandidateScorer.load(config, named_candidates(_scored_names(kind, strong, weak, candidates)))
    inspected = scorer.inspected
    encoder = LocalEmbedder(LocalEmbedding(model_path=embedding_model))

    def beaten_of(texts: list[str]) -> np.ndarray:
        return scorer.beaten(texts, encoder.encode(texts) if kind.needs_embeddings else None)

    def scores_of(texts: list[str]) -> np.ndarray:
        return beaten_of(texts).min(axis=1)

    pool = read_prompts(prompts)
    beaten = beaten_of(pool)
    scores = beaten.min(axis=1)
    tokens = np.array(encoder.count_tokens(pool))

    def costs(thresholds: list[float]) -> Costs:
        shares = []
        for threshold in thresholds:
            chosen = choose(beaten, threshold)
            shares.append(
                [
                    Share(
                        share=round(float(np.mean(chosen == c)), 6),
                        prompt_tokens=round(float(tokens[chosen == c].mean()), 2),
                    )
                    if np.any(chosen == c)
                    else Share(share=0.0, prompt_tokens=0.0)
                    for c in range(beaten.shape[1] + 1)
                ]
            )
        return Costs(completion_tokens=completion_tokens, shares=shares)

    table = CalibrationTable.from_scores(kind.name, str(prompts), scores, scored_models(inspected), costs)
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
    echo(
        f"each threshold's share of the pool per candidate is kept with the table, with {completion_tokens} "
        "completion tokens per answer: the service prices router-<name>-$<usd> from the candidates' prices"
    )
    if save:
        echo(f"saved {save_calibration(inspected.directory, table)}")
    return table


def _scored_names(
    kind: RouterKind, strong: str | None, weak: str | None, candidates: Sequence[str]
) -> list[str | None]:
    """The names the router scores, cheapest first (None: its checkpoint's default); a kind that
    scores only its own pair takes none."""
    if candidates:
        if len(candidates) < 3:
            raise ValueError("--candidates: name three or more models, cheapest first (for two, --weak and --strong)")
        if not kind.scores_any_model:
            raise ValueError(f"--candidates: a {kind.name} router scores only its own pair")
        if strong or weak:
            raise ValueError("--candidates names every model: leave out --strong and --weak")
        return list(candidates)
    return [weak, strong] if kind.scores_any_model else [None, None]
