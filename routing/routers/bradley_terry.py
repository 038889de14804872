"""Bradley–Terry ratings from (weighted) win counts, many fits at once, and tiers of ratings.

``wins[..., i, j]`` is the (weighted) number of wins of player i over player j; following the
RouteLLM reference, a tie counts as one win for each side and a decisive battle as two for the
winner. The fit maximises Σ wins_ij · log σ(β_i − β_j) − ridge/2 · Σ β² by Newton's method, on
a whole batch of win matrices at once. The small ridge keeps ratings finite when a player never
loses (where an unpenalised fit, like the reference's, runs off to huge values).
"""

from __future__ import annotations

import numpy as np

RIDGE = 0.1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def fit(wins: np.ndarray, ridge: float = RIDGE, max_iter: int = 100, tol: float = 1e-7) -> np.ndarray:
    """Ratings β (natural-log scale) with shape ``wins.shape[:-1]``: P(i beats j) = σ(β_i − β_j)."""
    wins = np.asarray(wins, dtype=np.float64)
    batch_shape, n = wins.shape[:-2], wins.shape[-1]
    wins = wins.reshape(-1, n, n)
    games = wins + wins.transpose(0, 2, 1)
    beta = np.zeros(wins.shape[:2])
    eye = np.eye(n)
    for _ in range(max_iter):
        p = _sigmoid(beta[:, :, None] - beta[:, None, :])
        gradient = (wins - games * p).sum(axis=2) - ridge * beta
        curvature = games * p * (1.0 - p)
        # Negative Hessian: positive definite thanks to the ridge.
        hessian = (curvature.sum(axis=2)[:, :, None] * eye) - curvature + ridge * eye
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        beta += step
        if np.abs(step).max() < tol:
            break
    return beta.reshape(*batch_shape, n)


def tiers(ratings: np.ndarray, count: int) -> np.ndarray:
    """Tier index per player (0 = best): contiguous groups of the sorted ratings with the least
    total within-tier variance, found by dynamic programming (RouteLLM's tiering)."""
    order = np.argsort(-ratings, kind="stable")
    values = ratings[order]
    n, k = len(values), min(count, len(values))
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    prefix_sq = np.concatenate([[0.0], np.cumsum(values**2)])

    def cost(i: int, j: int) -> float:  # squared error of values[i:j] around their mean
        total = prefix[j] - prefix[i]
        return float(prefix_sq[j] - prefix_sq[i] - total * total / (j - i))

    best = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for t in range(1, k + 1):
        for j in range(t, n + 1):
            for i in range(t - 1, j):
                candidate = best[t - 1, i] + cost(i, j)
                if candidate < best[t, j]:
                    best[t, j], cut[t, j] = candidate, i
    assignment = np.empty(n, dtype=int)
    j = n
    for t in range(k, 0, -1):
        i = cut[t, j]
        assignment[order[i:j]] = t - 1
        j = i
    return assignment
