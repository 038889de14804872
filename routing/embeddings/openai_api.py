"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint."""

from __future__ import annotations

import numpy as np

from routing.config import OpenAIEmbedding
from routing.embeddings.base import l2_normalise
from routing.errors import UpstreamError, UpstreamUnconfigured
from routing.openai_compat import async_client, upstream_error


class OpenAIEmbedder:
    def __init__(self, config: OpenAIEmbedding) -> None:
        self.model_id = config.model
        self.config = config
        # No base URL at all means api.openai.com; a base-URL variable left unset means "not set up".
        self._unconfigured = config.base_url is None and config.base_url_env is not None
        self.client = async_client(config.base_url, config.api_key_env, config.timeout_s, min(10.0, config.timeout_s))

    async def aclose(self) -> None:
        """Closes the connections to the endpoint; the embedder is not used afterwards."""
        await self.client.close()

    async def embed(self, texts: list[str]) -> np.ndarray:
        if self._unconfigured:
            raise UpstreamUnconfigured(
                f"embedding endpoint not configured: set {self.config.base_url_env}", model=self.model_id
            )
        if not texts:
            return np.zeros((0, self.config.dimensions or 0), dtype=np.float32)
        kwargs = {"dimensions": self.config.dimensions} if self.config.dimensions else {}
        try:
            response = await self.client.embeddings.create(model=self.model_id, input=texts, **kwargs)
        except Exception as exc:  # every failure becomes an UpstreamError the caller can act on
            raise upstream_error(exc, self.model_id) from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise UpstreamError(
                f"embedding model '{self.model_id}' returned {len(rows)} vectors for {len(texts)} inputs",
                model=self.model_id,
            )
        return l2_normalise(np.array([row.embedding for row in rows], dtype=np.float32))
