"""The prompts that ``calibrate`` and ``label`` read: a file's ``prompt`` column, or the routed
turns of a request log."""

from __future__ import annotations

from pathlib import Path

from routing.offline.data.files import DataFileError, records
from routing.serving.request_log import read_request_log


def read_prompts(path: Path) -> list[str]:
    """The ``prompt`` column of a JSONL, JSON, CSV or Parquet file; for a request-log directory
    (``request_log.directory``), the routed turn (the last user message) of each record."""
    if path.is_dir():
        return _logged_prompts(path)
    prompts = []
    for number, row in records(path):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFileError(f"{path}: row {number}: field 'prompt': must be non-empty text")
        prompts.append(prompt)
    if not prompts:
        raise DataFileError(f"{path}: no prompts")
    return prompts


def _logged_prompts(directory: Path) -> list[str]:
    prompts = []
    for record in read_request_log(directory):
        turns = [m.content for m in record.messages or [] if m.role == "user"]
        if turns and turns[-1].strip():
            prompts.append(turns[-1])
    if not prompts:
        raise DataFileError(f"{directory}: no request-log records with messages (is 'prompts: false' set?)")
    return prompts
