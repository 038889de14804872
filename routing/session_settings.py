"""The ``sessions:`` section of the application config: where conversations' pinned decisions
are kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from routing.settings import EnvName, Strict


class SessionStore(Strict):
    """``memory``: in the ingress replica's process, bounded, the least recently used pin
    dropped first (one ingress replica). ``redis``: a Redis or Valkey server every ingress
    replica shares, each pin expiring ``ttl_s`` after its last use (bound its memory on the
    server with ``maxmemory`` and ``maxmemory-policy volatile-lru``). A store that fails or answers
    later than ``timeout_s`` costs the pin, never the request: the decision is made fresh and
    the answer says so."""

    store: Literal["memory", "redis"] = "memory"
    url: str | None = Field(default=None, description="redis: the server, e.g. redis://redis:6379/0")
    url_env: EnvName | None = Field(default=None, description="redis: a variable holding the url (with a password)")
    ttl_s: float = Field(default=3600.0, gt=0, description="how long a conversation's pin lasts after its last use")
    max_pins: int = Field(default=100_000, ge=1, description="memory: pins kept, the least recently used dropped first")
    max_response_chars: int = Field(
        default=256_000_000,
        ge=1,
        description="memory: the stored responses' text kept in all (for previous_response_id), the least recently "
        "used dropped first",
    )
    timeout_s: float = Field(
        default=0.1, gt=0, description="redis: the longest one attempt may take (a call tries twice at most)"
    )

    @model_validator(mode="after")
    def _server_named(self) -> SessionStore:
        if self.store == "memory" and (self.url or self.url_env):
            raise ValueError("'url' and 'url_env' are for store 'redis'")
        if self.store == "redis" and not (self.url or self.url_env):
            raise ValueError("store 'redis' needs 'url' or 'url_env'")
        return self

    def resolve_env(self, env: Mapping[str, str]) -> SessionStore:
        if self.url or not self.url_env:
            return self
        return self.model_copy(update={"url": env.get(self.url_env) or None})
