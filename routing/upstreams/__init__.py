"""Upstream LLMs: OpenAI-compatible APIs, Anthropic's Messages API, or a local transformers model
in this process."""

from __future__ import annotations

from routing.upstreams.base import ChatBackend
from routing.upstreams.config import AnthropicUpstream, OpenAIUpstream, Upstream


def make_backend(config: Upstream) -> ChatBackend:
    if isinstance(config, OpenAIUpstream):
        from routing.upstreams.openai_api import OpenAIChatBackend

        return OpenAIChatBackend(config)
    if isinstance(config, AnthropicUpstream):
        from routing.upstreams.anthropic_api import AnthropicBackend

        return AnthropicBackend(config)
    from routing.upstreams.local import LocalChatBackend

    return LocalChatBackend(config)


async def close_connections(*parts: object) -> None:
    """Closes each part that holds connections (a backend or embedder with ``aclose``)."""
    for part in parts:
        close = getattr(part, "aclose", None)
        if close is not None:
            await close()


__all__ = ["ChatBackend", "close_connections", "make_backend"]
