"""Conversations' pinned decisions: per router and session, the candidate that answered the
conversation and the decision it came from. A pin stores the decision, not the threshold, so
share control moving a threshold and a checkpoint swap never move a pinned conversation."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routing.protocol import RouteDecision
from routing.serving.kv_store import StoreError


class Pin(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="the upstream key of the candidate that answered (or was chosen)")
    decision: RouteDecision

    def to_json(self) -> str:
        """The pin as a shared store keeps it: its decision whole, the fields sent as headers
        (the checkpoint, ...) included."""
        headers = {name for name, field in RouteDecision.model_fields.items() if field.exclude}
        decision = self.decision.model_dump(mode="json") | {name: getattr(self.decision, name) for name in headers}
        return json.dumps({"key": self.key, "decision": decision})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Pin:
        try:
            data = json.loads(raw)
            return cls(key=data["key"], decision=RouteDecision.model_validate(data["decision"]))
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise StoreError(f"a stored pin is not readable: {exc}") from None
