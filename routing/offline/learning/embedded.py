"""The prompt embeddings a learner's rounds read. Every round reads all its labels (and the
recent prompts it calibrates on) again, so each prompt is embedded once, in the first round that
reads it, and its vector is kept while rounds still read it: what a whole round did not read is
dropped when the next round begins, so memory follows the labels, not the traffic. Every call
runs on one event loop: an embedder that holds connections (an embeddings API) keeps them
bound to the loop it first used."""

from __future__ import annotations

import asyncio

import numpy as np

from routing.config import Embedding
from routing.embeddings import Embedder, make_embedder
from routing.offline.learning.challenge import embed_all
from routing.offline.learning.families import prompt_key


class PromptEmbeddings:
    def __init__(self, config: Embedding | None) -> None:
        """``config`` None: the router reads no embeddings, and none are made."""
        self.config = config
        self._embedder: Embedder | None = None
        self._loop = asyncio.Runner()
        self._kept: dict[str, np.ndarray] = {}
        self._read: set[str] = set()

    def next_round(self) -> None:
        self._kept = {key: vector for key, vector in self._kept.items() if key in self._read}
        self._read = set()

    def __call__(self, texts: list[str]) -> np.ndarray | None:
        """One row per text, in order; None where the router reads no embeddings."""
        if self.config is None or not texts:
            return None
        keys = [prompt_key(text) for text in texts]
        new = {key: text for key, text in zip(keys, texts, strict=True) if key not in self._kept}
        if new:
            if self._embedder is None:
                self._embedder = make_embedder(self.config)
            vectors = embed_all(self._embedder, list(new.values()), self._loop.run)
            assert vectors is not None
            # Copies, so that a dropped prompt does not keep its whole batch's array alive.
            self._kept.update((key, vector.copy()) for key, vector in zip(new, vectors, strict=True))
        self._read.update(keys)
        return np.stack([self._kept[key] for key in keys])
