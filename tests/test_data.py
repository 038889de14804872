"""Preference data: schemas, converters and loaders (JSONL, CSV, Parquet, folders, Arena schema)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from routing.offline.data.convert import golden_to_battles, scores_to_battles, to_battles
from routing.offline.data.files import DataFileError, read_preference_data, read_preference_file, write_jsonl
from routing.offline.data.schema import Battle, GoldenLabel, JudgeScore
from routing.routers.model_aliases import canonical_model_name


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scores_become_battles_higher_wins_equal_ties() -> None:
    rows = [JudgeScore(prompt_id="1", prompt="p", model=m, score=s) for m, s in [("c", 5), ("A", 9), ("b", 9)]]
    battles = {(b.model_a, b.model_b): b.winner for b in scores_to_battles(rows)}
    assert battles == {("a", "b"): "tie", ("a", "c"): "model_a", ("b", "c"): "model_a"}


def test_golden_labels_become_battles_with_both_kinds_of_tie() -> None:
    rows = [
        GoldenLabel(prompt="q", model=m, correct=c) for m, c in [("w", True), ("x", True), ("y", False), ("z", False)]
    ]
    battles = {(b.model_a, b.model_b): b.winner for b in golden_to_battles(rows)}
    assert battles == {
        ("w", "x"): "tie",
        ("w", "y"): "model_a",
        ("w", "z"): "model_a",
        ("x", "y"): "model_a",
        ("x", "z"): "model_a",
        ("y", "z"): "tie (bothbad)",
    }


def test_model_names_are_one_player_across_sources() -> None:
    assert canonical_model_name("mistralai/Mixtral-8x7B-Instruct-v0.1") == "mixtral-8x7b-instruct-v0.1"
    rows = [
        Battle(prompt="p", model_a="OpenAI/GPT-4", model_b="small", winner="model_a"),
        JudgeScore(prompt="p", model="gpt-4", score=2),
        JudgeScore(prompt="p", model="small", score=1),
    ]
    assert {(b.model_a, b.model_b, b.winner) for b in to_battles(rows)} == {("gpt-4", "small", "model_a")}


def test_every_format_reads_the_same_rows(tmp_path: Path) -> None:
    rows = [
        {"prompt": "What is 2+2?", "model": "m1", "correct": True},
        {"prompt": "What is 2+2?", "model": "m2", "correct": False},
    ]
    expected = [GoldenLabel.model_validate(r) for r in rows]
    write_jsonl(tmp_path / "a.jsonl.gz", expected)
    (tmp_path / "b.csv").write_text("prompt,model,correct,prompt_id\nWhat is 2+2?,m1,true,\nWhat is 2+2?,m2,false,\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    _jsonl(tmp_path / "d.jsonl", rows)
    for name in ("a.jsonl.gz", "b.csv", "c.parquet", "d.jsonl"):
        assert read_preference_file(tmp_path / name) == expected, name
    assert len(read_preference_data(tmp_path)) == 8
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()).decode().count("\n") == 2


def test_arena_human_preference_schema_is_read_as_battles(tmp_path: Path) -> None:
    """The columns of lmsys/lmsys-arena-human-preference-55k and routellm/gpt4_judge_battles."""
    folder = tmp_path / "hub-snapshot" / "data"
    folder.mkdir(parents=True)
    table = {
        "id": [1, 2, 3],
        "model_a": ["gpt-4-0613", "claude-2.1", "llama-2-70b-chat"],
        "model_b": ["vicuna-13b", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"],
        "prompt": [json.dumps(["Write a haiku", "Another"]), json.dumps(["Fix my code"]), json.dumps(["Hi there!"])],
        "response_a": ["...", "...", "..."],
        "response_b": ["...", "...", "..."],
        "winner_model_a": [1, 0, 0],
        "winner_model_b": [0, 1, 0],
        "winner_tie": [0, 0, 1],
    }
    pq.write_table(pa.table(table), folder / "train-00000-of-00001.parquet")
    battles = read_preference_data(tmp_path / "hub-snapshot")
    assert [(b.prompt, b.winner) for b in battles] == [
        ("Write a haiku", "model_a"),
        ("Fix my code", "model_b"),
        ("Hi there!", "tie"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows"),
        ('{"prompt": "p", "model_a": "a", "winner": "model_a"}\n', "missing column(s) model_b"),
        (
            '{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "model_a"}\n'
            '{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "draw"}\n',
            "row 2: field 'winner': Input should be 'model_a', 'model_b', 'tie' or 'tie (bothbad)' (got 'draw')",
        ),
        ('{"prompt": "p", "model": "m", "score": "high"}\n', "row 1: field 'score': Input should be a valid number"),
        ('{"prompt": "p", "model": "m", "correct": 1, "color": "red"}\n', "row 1: field 'color': unknown column"),
        ('{"prompt": "", "model": "m", "correct": true}\n', "row 1: field 'prompt'"),
        ('{"text": "p"}\n', "cannot tell the kind of data"),
        ('{"prompt": "p", "model": "m", "correct": tru\n', "row 1: not valid JSON"),
    ],
)
def test_bad_files_name_file_row_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataFileError) as error:
        read_preference_file(path)
    assert str(error.value).startswith(f"{path}:") and message in str(error.value)


def test_bad_csv_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,model_a,model_b,winner\np,a,b,model_a\np,a,b,model_c\n")
    with pytest.raises(DataFileError, match=r"bad.csv: row 2: field 'winner'"):
        read_preference_file(path)


def test_missing_data_and_offline_hub_ids_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataFileError, match="no such file or folder"):
        read_preference_data(tmp_path / "nothing.jsonl")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataFileError, match="not a local path, and the Hugging Face dataset failed"):
        read_preference_data("nobody/no-such-dataset")


def test_shipped_training_set_reads_and_converts() -> None:
    root = Path(__file__).resolve().parent.parent / "data" / "train"
    sources = json.loads((root / "sources.json").read_text())
    assert {r["licence"] for r in sources.values()} <= {"Apache-2.0", "MIT"}
    battles = to_battles(read_preference_data(root))
    models = {b.model_a for b in battles} | {b.model_b for b in battles}
    assert {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"} <= models and len(battles) > 100_000
