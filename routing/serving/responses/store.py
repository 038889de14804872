"""Stored responses, for ``previous_response_id``: each holds its conversation so far as chat
messages (without the instructions, which a request does not inherit), the conversation's
session (so its follow-ups keep its pin) and who asked (no caller reads another's responses).
They live in the session store, with its expiry and bounds."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from routing.errors import InvalidRequest, ServiceUnavailable
from routing.protocol import AssistantMessage, ChatMessage
from routing.serving.conversation import Session, SessionSource
from routing.serving.kv_store import KeyValues, StoreError
from routing.serving.telemetry import Telemetry

logger = logging.getLogger(__name__)


class StoredResponse(BaseModel):
    id: str
    caller: str | None
    session_key: str
    session_shown: str
    session_source: SessionSource
    messages: list[ChatMessage]
    native_key: str | None = None  # the upstream that gave it through its own Responses API, which keeps it too

    @property
    def session(self) -> Session:
        return Session(key=self.session_key, shown=self.session_shown, source=self.session_source)


class ResponseStore:
    def __init__(self, values: KeyValues, telemetry: Telemetry) -> None:
        self.values = values
        self.telemetry = telemetry

    async def get(self, response_id: str, caller: str | None) -> StoredResponse:
        try:
            raw = await self.values.get(response_id)
        except StoreError as exc:
            self.telemetry.session_store_error("get_response")
            raise ServiceUnavailable(
                f"the response store did not answer, so 'previous_response_id' cannot be followed ({exc}); "
                "try again, or send the whole conversation as 'input'",
                retry_after_s=1,
                code="response_store_unavailable",
            ) from None
        stored = _parsed(raw) if raw is not None else None
        if stored is None or stored.caller != caller:
            raise InvalidRequest(
                f"Previous response with id '{response_id}' not found: it expired, was never stored "
                "(store: false), or belongs to another key",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return stored

    async def put(
        self,
        response_id: str,
        caller: str | None,
        session: Session,
        messages: Sequence[ChatMessage],
        answer: AssistantMessage,
        native_key: str | None = None,
    ) -> None:
        """Stores the conversation ending in ``answer``; a store that fails loses it (logged), not the answer."""
        content = answer.content if answer.content is not None or answer.tool_calls else ""
        said = ChatMessage(role="assistant", content=content, tool_calls=answer.tool_calls)
        stored = StoredResponse(
            id=response_id,
            caller=caller,
            session_key=session.key,
            session_shown=session.shown,
            session_source=session.source,
            messages=[*messages, said],
            native_key=native_key,
        )
        try:
            await self.values.put(response_id, stored.model_dump_json(exclude_none=True))
        except StoreError as exc:
            self.telemetry.session_store_error("put_response")
            logger.warning("response %s was not stored: %s", response_id, exc)


def _parsed(raw: str) -> StoredResponse | None:
    try:
        return StoredResponse.model_validate_json(raw)
    except ValidationError:
        logger.warning("a stored response is not readable; treated as expired")
        return None
