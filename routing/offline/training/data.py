"""The battles a router trains on, read from ``--data`` references, each with its weight."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from routing.offline.data.convert import to_battles
from routing.offline.data.files import SOURCES_FILE, data_files, read_preference_file
from routing.offline.data.outcomes import OutcomeTable, outcome_tables
from routing.offline.data.schema import Battle
from routing.offline.training.common import Log
from routing.routers.checkpoint import DataFile, data_record


@dataclass(frozen=True)
class TrainingData:
    battles: list[Battle]
    weights: list[float] | None  # each battle's, from its reference's weight; None when none is given
    files: list[DataFile]  # what the checkpoint records of each file
    licences: list[str]
    tables: list[OutcomeTable]  # the same rows, one table per source (a row's source, else its file's name)
    table_weights: list[float]


def source_name(path: Path) -> str:
    """A file's source when its rows name none: its name up to the first dot."""
    return path.name.split(".")[0]


def read_training_data(refs: Sequence[str], weights: Mapping[str, float], log: Log) -> TrainingData:
    """Battles from every reference (files, folders or Hugging Face dataset ids), weighted as ``weights`` says."""
    unknown = sorted(set(weights) - set(refs))
    if unknown:
        raise ValueError(f"--weight {unknown[0]}=...: not one of the --data references ({', '.join(refs)})")
    battles: list[Battle] = []
    battle_weights: list[float] = []
    files: list[DataFile] = []
    licences: set[str] = set()
    tables: list[OutcomeTable] = []
    table_weights: list[float] = []
    rows_read = 0
    for ref in refs:
        weight = weights.get(ref, 1.0)
        rows: list = []
        for path in data_files(ref):
            # A row without a source is of its file's: validation holds out one source at a time.
            loaded = read_preference_file(path, source=source_name(path))
            rows.extend(loaded)
            for table in outcome_tables(loaded, default_source=source_name(path)):
                tables.append(table)
                table_weights.append(weight)
            files.append(data_record(path, len(loaded), weight))
            sources = path.parent / SOURCES_FILE
            known = json.loads(sources.read_text(encoding="utf-8")) if sources.is_file() else {}
            licences.add(known.get(path.name, {}).get("licence", f"not recorded ({ref})"))
        converted = to_battles(rows)
        battles += converted
        battle_weights += [weight] * len(converted)
        rows_read += len(rows)
        if weights:
            log(f"{ref}: {len(rows)} rows -> {len(converted)} battles, weight {weight:g}")
    log(f"{rows_read} rows -> {len(battles)} battles")
    return TrainingData(battles, battle_weights if weights else None, files, sorted(licences), tables, table_weights)
