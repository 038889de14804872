"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint."""

from __future__ import annotations

import os

import httpx
import numpy as np
import openai

from routing.config import OpenAIEmbedding
from routing.embeddings.base import l2_normalise
from routing.errors import UpstreamError, UpstreamTimeout, UpstreamUnconfigured


class OpenAIEmbedder:
    def __init__(self, config: OpenAIEmbedding) -> None:
        self.model_id = config.model
        self.config = config
        api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        # No base URL at all means api.openai.com; a base-URL variable left unset means "not set up".
        self._unconfigured = config.base_url is None and config.base_url_env is not None
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=api_key or "unused",
            max_retries=0,
            timeout=httpx.Timeout(config.timeout_s, connect=min(10.0, config.timeout_s)),
        )

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
        except openai.APITimeoutError:
            raise UpstreamTimeout(f"embedding model '{self.model_id}' timed out", model=self.model_id) from None
        except openai.APIError as exc:
            raise UpstreamError(
                f"embedding model '{self.model_id}' failed: {exc}",
                model=self.model_id,
                upstream_status=getattr(exc, "status_code", None),
            ) from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise UpstreamError(
                f"embedding model '{self.model_id}' returned {len(rows)} vectors for {len(texts)} inputs",
                model=self.model_id,
            )
        return l2_normalise(np.array([row.embedding for row in rows], dtype=np.float32))
