"""The labelling run's journal: every answer and verdict, appended and synced as it arrives.

A crash or Ctrl-C loses at most the call in flight; a rerun reads the journal and asks only for
what is missing. The final data files are derived from the journal, so they are the same
whichever order the calls finished in, and whether or not the run was interrupted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

Side = Literal["strong", "weak"]
Subject = Literal["strong", "weak", "strong_first", "weak_first"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_id: str
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    time: float | None = Field(default=None, description="when the call returned (epoch seconds)")
    cost_usd: float | None = Field(default=None, description="its cost at the configured price, when it has one")


class Answer(_Entry):
    """An upstream's answer to a prompt."""

    side: Side
    model: str


class Verdict(_Entry):
    """The judge's reply: ``single`` grades one side's answer, ``pairwise`` compares both, with
    ``subject`` saying which came first."""

    grading: Literal["single", "pairwise"]
    subject: Subject


E = TypeVar("E", bound=BaseModel)


class Journal(Generic[E]):
    """One append-only JSON-lines file of entries."""

    def __init__(self, path: Path, entry: type[E]) -> None:
        self.path = path
        self.entry = entry
        self._file: IO[str] | None = None

    def read(self) -> Iterator[E]:
        """Every whole entry; a line cut short by a crash is skipped."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    yield self.entry.model_validate_json(line)
                except ValidationError:
                    logger.warning("%s:%d is cut short or not an entry; skipped", self.path, number)

    def append(self, entry: E) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut = self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._file = self.path.open("a", encoding="utf-8")
            if cut:  # the next entry starts on a line of its own, not glued to the cut one
                self._file.write("\n")
        self._file.write(entry.model_dump_json(exclude_none=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def write_atomically(path: Path, text: str) -> None:
    """Replaces ``path`` whole: written aside, synced, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
