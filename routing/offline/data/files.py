"""Reading and writing preference data: JSON Lines (optionally gzipped), CSV, Parquet, folders
of such files, and Hugging Face datasets by hub id.

The kind of a file is told by its columns: ``winner`` → battles, ``score`` → judge scores,
``correct`` → golden labels, and the columns of ``lmsys/lmsys-arena-human-preference-55k`` and
``routellm/gpt4_judge_battles`` (``prompt`` as a JSON list of turns, one-hot ``winner_model_a``,
``winner_model_b``, ``winner_tie``) → battles. Every error names the file, the row and the field.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from routing.offline.data.schema import SCHEMAS, Battle, GoldenLabel, JudgeScore, PreferenceRow, _Row

ARENA_WINNER_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
# Written beside a built training set: each file's source and licence. Not data itself.
SOURCES_FILE = "sources.json"


class DataFileError(ValueError):
    """A data file is unreadable, of an unknown kind, or has an invalid row."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in DATA_SUFFIXES if name.endswith(s)), path.suffix.lower())


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row number, row as a dict) for every row of a JSONL, JSON, CSV or Parquet file."""
    suffix = _suffix(path)
    if suffix in (".jsonl", ".jsonl.gz"):
        opener = gzip.open if suffix == ".jsonl.gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFileError(f"{path}: row {number}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataFileError(f"{path}: row {number}: expected a JSON object")
                yield number, record
    elif suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise DataFileError(f"{path}: expected a JSON list of objects")
        yield from enumerate(records, start=1)
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            for number, row in enumerate(csv.DictReader(f), start=1):
                # An empty CSV cell means "no value", so optional fields take their default.
                yield number, {k: v for k, v in row.items() if k is not None and v not in ("", None)}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    else:
        raise DataFileError(f"{path}: unsupported file type; use one of {', '.join(DATA_SUFFIXES)}")


def _kind(path: Path, columns: Iterable[str]) -> str:
    columns = set(columns)
    if set(ARENA_WINNER_COLUMNS) <= columns:
        return "arena"
    for column, kind in (("winner", "battles"), ("score", "judge_scores"), ("correct", "golden_labels")):
        if column in columns:
            return kind
    raise DataFileError(
        f"{path}: cannot tell the kind of data from its columns ({', '.join(sorted(columns))}): battles need "
        f"'winner' (or {', '.join(ARENA_WINNER_COLUMNS)}), judge scores 'score', golden labels 'correct'"
    )


def _arena_battle(record: dict[str, Any]) -> dict[str, Any]:
    """A row of the Arena human-preference schema as a :class:`Battle` row; routers use the first turn."""
    prompt = record.get("prompt")
    if isinstance(prompt, str) and prompt.startswith("["):
        try:
            turns = json.loads(prompt)
        except json.JSONDecodeError:
            turns = [prompt]
        prompt = turns[0] if isinstance(turns, list) and turns else prompt
    flags = [str(record.get(c, "0")).strip().lower() in ("1", "1.0", "true") for c in ARENA_WINNER_COLUMNS]
    if sum(flags) != 1:
        winner = "exactly one of " + ", ".join(ARENA_WINNER_COLUMNS) + " must be 1"
    else:
        winner = ("model_a", "model_b", "tie")[flags.index(True)]
    return {
        "prompt": prompt.strip() if isinstance(prompt, str) else prompt,
        "model_a": record.get("model_a"),
        "model_b": record.get("model_b"),
        "winner": winner,
    }


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "row"
        if err["type"] == "extra_forbidden":
            parts.append(f"field '{field}': unknown column")
        elif err["type"] == "missing":
            parts.append(f"field '{field}': missing")
        else:
            parts.append(f"field '{field}': {err['msg']} (got {err.get('input')!r:.60})")
    return "; ".join(parts)


def read_preference_file(path: Path | str, source: str | None = None) -> list[PreferenceRow]:
    """Every row of one file, validated against the schema its columns name."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    rows: list[PreferenceRow] = []
    kind: str | None = None
    schema: type[_Row] = Battle
    for number, record in records(path):
        if kind is None:
            kind = _kind(path, record)
            schema = Battle if kind == "arena" else SCHEMAS[kind]
            required = {name for name, f in schema.model_fields.items() if f.is_required()}
            missing = required - set(_arena_battle(record) if kind == "arena" else record)
            if missing:
                raise DataFileError(f"{path}: missing column(s) {', '.join(sorted(missing))} for {kind}")
        if kind == "arena":
            record = _arena_battle(record)
        if source is not None and "source" not in record:
            record = {**record, "source": source}
        try:
            rows.append(schema.model_validate(record))
        except ValidationError as exc:
            raise DataFileError(f"{path}: row {number}: {_describe(exc)}") from None
    if not rows:
        raise DataFileError(f"{path}: no rows")
    return rows


def data_files(ref: Path | str) -> list[Path]:
    """The data files behind a file, a folder of data files, or a Hugging Face dataset id such as
    ``lmsys/lmsys-arena-human-preference-55k`` (downloaded once into the hub cache)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        if str(ref).count("/") != 1:
            raise DataFileError(f"{ref}: no such file or folder")
        path = _download_hub_dataset(str(ref))
    files = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) in DATA_SUFFIXES and p.name != SOURCES_FILE)
    if not files:
        raise DataFileError(f"{path}: no data files ({', '.join(DATA_SUFFIXES)})")
    return files


def read_preference_data(ref: Path | str) -> list[PreferenceRow]:
    return [row for file in data_files(ref) for row in read_preference_file(file)]


def _download_hub_dataset(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=[f"*{s}" for s in DATA_SUFFIXES]))
    except Exception as exc:  # the hub client raises many types (offline, gated, missing)
        raise DataFileError(f"{repo_id}: not a local path, and the Hugging Face dataset failed: {exc}") from None


def write_jsonl(path: Path, rows: Iterable[_Row]) -> int:
    """Writes rows as JSON Lines (gzipped when the name ends in ``.gz``), byte-for-byte reproducible."""
    return write_records(path, (row.model_dump(exclude_none=True) for row in rows))


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    count = 0
    for record in records:
        buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    data = buffer.getvalue().encode("utf-8")
    # mtime=0 keeps gzip output identical across rebuilds of the same rows.
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return count


__all__ = [
    "Battle",
    "DataFileError",
    "GoldenLabel",
    "JudgeScore",
    "data_files",
    "read_preference_data",
    "read_preference_file",
    "write_jsonl",
    "write_records",
]
