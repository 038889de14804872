"""A sentence encoder in this process: BERT-style model, mean pooling over real tokens, L2 norm.

With the default all-MiniLM-L6-v2 and ``max_length`` 256 this gives exactly the vectors of
sentence-transformers' ``all-MiniLM-L6-v2`` (384-d).
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from routing.config import LocalEmbedding
from routing.embeddings.base import l2_normalise
from routing.inference import autocast, forward_batch_size, length_batches
from routing.resources import minilm_dir


class LocalEmbedder:
    def __init__(self, config: LocalEmbedding) -> None:
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        source = config.model_path or str(minilm_dir())
        self.model_id = config.model_id
        self.max_length = config.max_length
        self.precision = config.precision
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source).to(self.device).eval()
        self.dim: int = self.model.config.hidden_size
        # One forward at a time: concurrent forwards on the same cores only slow each other down.
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Embeddings in input order, computed in batches of similar lengths
        (``batch_size`` prompts each, by default :func:`forward_batch_size`)."""
        batch_size = batch_size or forward_batch_size(self.device)
        if len(texts) <= 1:
            return self._encode_batch(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for chunk in length_batches(texts, batch_size):
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in this model's tokens, untruncated: what prices a prompt."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with self._lock, torch.inference_mode(), autocast(self.device, self.precision):
            hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return l2_normalise(pooled.float().cpu().numpy())

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode, texts)
