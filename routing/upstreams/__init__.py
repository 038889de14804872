"""Upstream LLMs: OpenAI-compatible APIs, or a local transformers model in this process."""

from __future__ import annotations

from routing.config import OpenAIUpstream, Upstream
from routing.upstreams.base import ChatBackend


def make_backend(config: Upstream) -> ChatBackend:
    if isinstance(config, OpenAIUpstream):
        from routing.upstreams.openai_api import OpenAIChatBackend

        return OpenAIChatBackend(config)
    from routing.upstreams.local import LocalChatBackend

    return LocalChatBackend(config)


__all__ = ["ChatBackend", "make_backend"]
