"""The ``sessions:`` section of the application config: where conversations' pinned decisions
are kept."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from routing.settings import Strict


class SessionStore(Strict):
    """``memory``: in the ingress replica's process, bounded, the least recently used pin
    dropped first. A store that fails costs the pin, never the request: the decision is made
    fresh and the answer says so."""

    store: Literal["memory"] = "memory"
    ttl_s: float = Field(default=3600.0, gt=0, description="how long a conversation's pin lasts after its last use")
    max_pins: int = Field(default=100_000, ge=1, description="pins kept, the least recently used dropped first")
