"""The routing rule, the one place it is written: at threshold t the first choice is the cheapest
candidate whose predicted probability of answering at least as well as the most capable one is
above 1 − t, that is, with P(the most capable wins over it) below t (t = 0: always the most
capable; t = 1: the cheapest). With two candidates that is the paper's rule, strong when
P(strong wins) ≥ t. The service routes by it (:mod:`routing.serving.live_router`); calibration,
evaluation and the learner simulate routing by it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def choose(beaten: np.ndarray, threshold: float) -> np.ndarray:
    """Per prompt, the index of the chosen candidate, cheapest first: ``beaten[:, i]`` is P(the
    most capable, the last candidate, wins over candidate i) for the cheaper ones."""
    below = beaten < threshold
    first = np.argmax(below, axis=1)
    return np.where(below.any(axis=1), first, beaten.shape[1])


def try_order(keys: Sequence[str], chosen: int) -> tuple[str, ...]:
    """The candidates in the order to try them: the chosen one, then the more capable ones in
    turn, then the cheaper ones, the nearest first."""
    return (*keys[chosen:], *reversed(keys[:chosen]))
