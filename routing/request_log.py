"""The request log: one JSON line per answered chat request, opt-in (``request_log`` in the config).

A record holds what a later ``calibrate`` or ``label`` run needs: the messages (unless
``prompts: false``), the routing decision, which model answered, and its usage and cost. A
``redact`` hook sees every record first and may change it or leave it out. Each process appends
to its own file, so replicas never interleave lines; a line cut short by a crash is skipped on
reading.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

from routing.config import ConfigError, RequestLogConfig
from routing.protocol import ChatMessage, RouteDecision, Usage

logger = logging.getLogger(__name__)

FILE_PATTERN = "requests-*.jsonl"


class LoggedMessage(BaseModel):
    role: str
    content: str


class RequestRecord(BaseModel):
    time: float
    model: str
    stream: bool
    messages: list[LoggedMessage] | None = None
    router: str | None = None
    score: float | None = None
    threshold: float | None = None
    target: str | None = None
    answered_by: str
    fallback: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


Redactor = Callable[[RequestRecord], RequestRecord | None]


def load_redactor(spec: str) -> Redactor:
    """The function ``module:function`` names; a :class:`ConfigError` naming the field if there is none."""
    module_name, _, name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"request_log.redact: cannot load '{spec}': {exc}") from None
    if not callable(function):
        raise ConfigError(f"request_log.redact: '{spec}' is not a function")
    return function


class RequestLog:
    def __init__(self, config: RequestLogConfig) -> None:
        self.config = config
        self.redact = load_redactor(config.redact) if config.redact else None
        directory = Path(config.directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"requests-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def record(
        self,
        model: str,
        messages: list[ChatMessage],
        stream: bool,
        decision: RouteDecision | None,
        answered_by: str,
        fallback: str | None,
        usage: Usage | None,
        cost_usd: float | None,
    ) -> None:
        record = RequestRecord(
            time=time.time(),
            model=model,
            stream=stream,
            messages=[LoggedMessage(role=m.role, content=m.text()) for m in messages] if self.config.prompts else None,
            router=decision.router if decision else None,
            score=decision.score if decision else None,
            threshold=decision.threshold if decision else None,
            target=decision.target if decision else None,
            answered_by=answered_by,
            fallback=fallback,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost_usd=cost_usd,
        )
        self.write(record)

    def write(self, record: RequestRecord) -> None:
        """Appends ``record`` (after the redaction hook). A failing hook or disk costs the record,
        never the answer."""
        try:
            kept = self.redact(record) if self.redact else record
        except Exception:
            logger.exception("request_log.redact failed; the record is left out")
            return
        if kept is None:
            return
        try:
            self._file.write(kept.model_dump_json(exclude_none=True) + "\n")
            self._file.flush()
        except OSError as exc:
            logger.warning("request log %s not written: %s", self.path, exc)

    def close(self) -> None:
        self._file.close()


def read_request_log(directory: str | Path) -> Iterator[RequestRecord]:
    """Every record in ``directory``'s log files, oldest file first; lines that do not parse (a
    write cut short) are skipped."""
    for path in sorted(Path(directory).glob(FILE_PATTERN), key=lambda p: p.stat().st_mtime):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    yield RequestRecord.model_validate_json(line)
                except ValidationError:
                    logger.warning("%s:%d is not a request record; skipped", path, number)
