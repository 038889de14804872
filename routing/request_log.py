"""The request log: one record per answered chat request, opt-in (``request_log`` in the config).

A record holds what a later ``calibrate`` or ``label`` run needs: the messages (unless
``prompts: false``), the routing decision, which model answered, and its usage and cost. A
``redact`` hook sees every record first and may change it or leave it out. Each process writes
its own files, so replicas never interleave lines; a line cut short by a crash is skipped on
reading.

Every record is appended to a JSON-lines file as it comes. With ``format: parquet`` that file is
a segment: after ``rows_per_file`` records it is converted into a Parquet file of the same name
(written aside, then renamed into place) and removed, and the next segment begins. A crash
leaves at most one segment unconverted, which is read like any other JSON-lines file.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from routing.config import ConfigError, RequestLogConfig
from routing.protocol import ChatMessage, RouteDecision, Usage

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

FILE_PATTERNS = ("requests-*.jsonl", "requests-*.parquet")


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
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stem = f"requests-{socket.gethostname()}-{os.getpid()}"
        self._segment = 0
        self._rows = 0
        self._open()

    def _open(self) -> None:
        suffix = "" if self.config.format == "jsonl" else f"-{self._segment:06d}"
        self.path = self.directory / f"{self._stem}{suffix}.jsonl"
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
            return
        self._rows += 1
        if self.config.format == "parquet" and self._rows >= self.config.rows_per_file:
            self._seal()

    def _seal(self) -> None:
        """Converts the full segment into its Parquet file and starts the next segment."""
        self._file.close()
        segment = self.path
        try:
            _write_parquet(list(_read_jsonl(segment)), segment.with_suffix(".parquet"))
            segment.unlink()
        except OSError as exc:  # the segment stays, readable as JSON lines
            logger.warning("request log segment %s not converted to Parquet: %s", segment, exc)
        self._segment += 1
        self._rows = 0
        self._open()

    def close(self) -> None:
        self._file.close()


def _write_parquet(records: list[RequestRecord], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pylist([r.model_dump() for r in records], schema=_arrow_schema()), partial)
    os.replace(partial, path)


def _arrow_schema() -> pa.Schema:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("time", pa.float64()),
            ("model", pa.string()),
            ("stream", pa.bool_()),
            ("messages", pa.list_(message)),
            ("router", pa.string()),
            ("score", pa.float64()),
            ("threshold", pa.float64()),
            ("target", pa.string()),
            ("answered_by", pa.string()),
            ("fallback", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
        ]
    )


def _read_jsonl(path: Path) -> Iterator[RequestRecord]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield RequestRecord.model_validate_json(line)
            except ValidationError:
                logger.warning("%s:%d is not a request record; skipped", path, number)


def read_request_log(directory: str | Path) -> Iterator[RequestRecord]:
    """Every record in ``directory``'s log files (JSON lines and Parquet), oldest file first;
    lines that do not parse (a write cut short) are skipped."""
    files = [path for pattern in FILE_PATTERNS for path in Path(directory).glob(pattern)]
    for path in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for row in pq.read_table(path).to_pylist():
                yield RequestRecord.model_validate(row)
        elif not path.with_suffix(".parquet").exists():  # else converted, and removed any moment now
            yield from _read_jsonl(path)
