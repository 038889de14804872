"""What the backends built on an official API client share (``openai`` and ``anthropic``, which
have the same shape): closing, the key check, health, the upstream's own API passed through, and
each failure as the service's own :class:`~routing.errors.UpstreamError`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from routing.errors import UpstreamError, UpstreamUnconfigured
from routing.openai_compat import error_detail, upstream_error
from routing.upstreams.base import ChatBackend
from routing.upstreams.config import AnthropicUpstream, NativeApi, OpenAIUpstream


class SdkBackend(ChatBackend):
    """``sdk``: the client's module; ``native_path``: where its upstream's own API is."""

    sdk: ModuleType
    native_path: str

    def __init__(self, config: OpenAIUpstream | AnthropicUpstream, client: Any) -> None:
        self.model = config.model
        self.config = config
        self.client = client

    async def aclose(self) -> None:
        """Closes the connections to the upstream; the backend is not used afterwards."""
        await self.client.close()

    async def rejected_key(self) -> str | None:
        if not self.config.configured:
            return None
        try:
            await self.client.models.list()
        except (self.sdk.AuthenticationError, self.sdk.PermissionDeniedError) as exc:
            return f"HTTP {exc.status_code}: {error_detail(exc)}"
        except Exception:  # unreachable, or no model list: not the key, as far as can be told
            return None
        return None

    def check_health(self) -> None:
        if self.client.is_closed():
            raise RuntimeError(f"the HTTP client of model '{self.model}' is closed")

    async def native(self, api: NativeApi, body: dict[str, Any]) -> dict[str, Any]:
        self.check_configured()
        try:
            return await self.client.post(self.native_path, body=body | {"model": self.model}, cast_to=object)  # type: ignore[no-any-return]
        except Exception as exc:
            raise self.error(exc) from None

    async def native_stream(self, api: NativeApi, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        self.check_configured()
        asked = body | {"model": self.model, "stream": True}
        try:
            events = await self.client.post(
                self.native_path, body=asked, cast_to=object, stream=True, stream_cls=self.sdk.AsyncStream[object]
            )
        except Exception as exc:
            raise self.error(exc) from None
        async with events:  # closes the upstream connection when the client goes away
            try:
                async for event in events:
                    yield event
            except Exception as exc:
                raise self.error(exc) from None

    def check_configured(self) -> None:
        if not self.config.configured:
            raise UpstreamUnconfigured(
                f"model '{self.model}' has no endpoint: set {self.config.base_url_env or 'base_url'}", model=self.model
            )

    def error(self, exc: Exception) -> UpstreamError:
        return upstream_error(exc, self.model, self.sdk)
