"""The request log: one record per answered chat request, opt-in (``request_log`` in the config).

A record holds what a later ``calibrate`` or ``label`` run needs: the messages (unless
``prompts: false``), the routing decision, which model answered, and its usage and cost. A
``redact`` hook sees every record first and may change it or leave it out. Each process writes
its own files, so replicas never interleave lines; a line cut short by a crash is skipped on
reading.

Every record is appended to a JSON-lines file as it comes. With ``format: parquet`` that file is
a segment: after ``rows_per_file`` records it is converted into a Parquet file of the same name
(written aside, then renamed into place) and removed, and the next segment begins. A crash
leaves the segments not yet converted, which are read like any other JSON-lines file.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from routing.config import RequestLogConfig
from routing.protocol import ChatMessage, RouteDecision, Usage
from routing.serving.telemetry import Cost
from routing.settings import ConfigError

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
    checkpoint: str | None = None
    session: str | None = None  # the conversation, as <source>:<id>
    decided: str | None = None  # fresh, pinned, or inherited from a tool call
    answered_by: str
    fallback: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    # Against the router's most capable candidate (for a request naming a model: the default
    # candidates'); negative when a dearer model answered.
    saved_usd: float | None = None
    key: str | None = None  # the name of the API key that asked (never the key); None: the service is open
    answer: str | None = None  # the answer's text, where request_log.answers keeps it


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
    """Writes records from a thread of its own, so the event loop never waits on the disk.

    :meth:`record` queues a record and returns a future that is done once the record is in the
    file (or left out): the engine answers after that, so an answer given is a record kept,
    even if the process dies the next moment. The writer takes every record waiting at once, in
    one write. Full Parquet segments are converted by a second thread while writing goes on.
    """

    def __init__(self, config: RequestLogConfig) -> None:
        self.config = config
        self.redact = load_redactor(config.redact) if config.redact else None
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stem = f"requests-{socket.gethostname()}-{os.getpid()}"
        self._segment = 0
        self._rows = 0
        self._cut = False  # a failed write may have left a line unfinished
        self._open()
        self._queue: queue.SimpleQueue[tuple[RequestRecord, Future[None]] | None] = queue.SimpleQueue()
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-log-seal")
        self._writer = threading.Thread(target=self._write_queued, name="request-log", daemon=True)
        self._closed = False
        self._closing = threading.Lock()
        self._writer.start()

    def _open(self) -> None:
        suffix = "" if self.config.format == "jsonl" else f"-{self._segment:06d}"
        self.path = self.directory / f"{self._stem}{suffix}.jsonl"
        self._file = self.path.open("ab", buffering=0)

    def record(
        self,
        model: str,
        messages: list[ChatMessage],
        stream: bool,
        decision: RouteDecision | None,
        answered_by: str,
        fallback: str | None,
        usage: Usage | None,
        cost: Cost | None,
        key: str | None = None,
        answer: str | None = None,
    ) -> Future[None]:
        record = RequestRecord(
            time=time.time(),
            model=model,
            stream=stream,
            messages=[LoggedMessage(role=m.role, content=m.text()) for m in messages] if self.config.prompts else None,
            router=decision.router if decision else None,
            score=decision.score if decision else None,
            threshold=decision.threshold if decision else None,
            target=decision.target if decision else None,
            checkpoint=decision.checkpoint if decision else None,
            session=decision.session if decision else None,
            decided=decision.decided if decision else None,
            answered_by=answered_by,
            fallback=fallback,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost_usd=cost.usd if cost else None,
            saved_usd=cost.saved_usd if cost else None,
            key=key,
            answer=answer,
        )
        return self.submit(record)

    def submit(self, record: RequestRecord) -> Future[None]:
        """Queues ``record`` (the redaction hook sees it first); the future is done once it is
        written or left out. A failing hook or disk costs the record, never the answer."""
        done: Future[None] = Future()
        with self._closing:
            if not self._closed:
                self._queue.put((record, done))
                return done
        logger.warning("request log %s is closed; a record is left out", self.directory)
        done.set_result(None)
        return done

    def _write_queued(self) -> None:
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            pending = [item for item in batch if item is not None]
            try:
                self._write([line for record, _ in pending if (line := self._line(record)) is not None])
            except Exception:  # the writer lives on: a lost record must not hold up the answers after it
                logger.exception("request log %s: %d records not written", self.path, len(pending))
            finally:
                for _, done in pending:
                    done.set_result(None)
            if len(pending) < len(batch):  # closing
                return

    def _line(self, record: RequestRecord) -> bytes | None:
        try:
            kept = self.redact(record) if self.redact else record
        except Exception:
            logger.exception("request_log.redact failed; the record is left out")
            return None
        return None if kept is None else (kept.model_dump_json(exclude_none=True) + "\n").encode()

    def _write(self, lines: list[bytes]) -> None:
        """Appends ``lines``, starting a new Parquet segment each time one fills up."""
        parquet = self.config.format == "parquet"
        while lines:
            room = self.config.rows_per_file - self._rows if parquet else len(lines)
            chunk, lines = lines[:room], lines[room:]
            if self._append(b"".join(chunk)):
                self._rows += len(chunk)
            if parquet and self._rows >= self.config.rows_per_file:
                self._next_segment()

    def _append(self, data: bytes) -> bool:
        if self._cut:
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view) or 0 :]
        except OSError as exc:
            logger.warning("request log %s not written: %s", self.path, exc)
            self._cut = True
            return False
        self._cut = False
        return True

    def _next_segment(self) -> None:
        """Hands the full segment to the sealer and starts the next one."""
        self._file.close()
        self._sealer.submit(_seal, self.path)
        self._segment += 1
        self._rows = 0
        self._open()

    def close(self) -> None:
        """Writes what is queued, waits for the segments being converted, and closes the file."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)  # after every record queued before it
        self._writer.join()
        self._sealer.shutdown(wait=True)
        self._file.close()


def _seal(segment: Path) -> None:
    """Converts a full segment into its Parquet file, which keeps the segment's time (files are
    read oldest first), and removes the segment; a failure leaves it, readable as JSON lines."""
    try:
        written = segment.stat()
        parquet = segment.with_suffix(".parquet")
        _write_parquet(list(_read_jsonl(segment)), parquet, (written.st_atime_ns, written.st_mtime_ns))
        segment.unlink()
    except Exception as exc:
        logger.warning("request log segment %s not converted to Parquet: %s", segment, exc)


def _write_parquet(records: list[RequestRecord], path: Path, times_ns: tuple[int, int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pylist([r.model_dump() for r in records], schema=_arrow_schema()), partial)
    os.utime(partial, ns=times_ns)
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
            ("checkpoint", pa.string()),
            ("session", pa.string()),
            ("decided", pa.string()),
            ("answered_by", pa.string()),
            ("fallback", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
            ("saved_usd", pa.float64()),
            ("key", pa.string()),
            ("answer", pa.string()),
        ]
    )


def _read_jsonl(path: Path) -> Iterator[RequestRecord]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield RequestRecord.model_validate_json(line)
            except ValidationError:
                logger.warning("%s:%d is not a request record; skipped", path, number)


def _read_parquet(path: Path) -> Iterator[RequestRecord]:
    import pyarrow.parquet as pq

    for row in pq.read_table(path).to_pylist():
        yield RequestRecord.model_validate(row)


def read_request_log(directory: str | Path) -> Iterator[RequestRecord]:
    """Every record in ``directory``'s log files (JSON lines and Parquet), oldest file first;
    lines that do not parse (a write cut short) are skipped."""
    files = [path for pattern in FILE_PATTERNS for path in Path(directory).glob(pattern)]
    for path in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
        if path.suffix == ".parquet":
            yield from _read_parquet(path)
        elif not path.with_suffix(".parquet").exists():  # else converted, and removed any moment now
            try:
                yield from _read_jsonl(path)
            except FileNotFoundError:  # converted and removed since the listing
                yield from _read_parquet(path.with_suffix(".parquet"))
