"""Prompt embeddings: a local sentence encoder, or any OpenAI-compatible embeddings API."""

from __future__ import annotations

from routing.config import Embedding, LocalEmbedding
from routing.embeddings.base import Embedder


def make_embedder(config: Embedding) -> Embedder:
    if isinstance(config, LocalEmbedding):
        from routing.embeddings.local import LocalEmbedder

        return LocalEmbedder(config)
    from routing.embeddings.openai_api import OpenAIEmbedder

    return OpenAIEmbedder(config)


__all__ = ["Embedder", "make_embedder"]
