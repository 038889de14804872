"""Readers for the public preference and evaluation data this project trains and checks against.

``shared`` is a folder laid out like the project's data drop (see ``data/README.md``): the
training sources keep their upstream paths, and ``contamination_vs_eval.csv`` lists training
rows whose text overlaps an evaluation item.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from routing.data.schema import JudgeScore

ARENA_BENCH_V1 = "arena-hard-auto/arena-bench-v1"


def contaminated_keys(shared: Path, dataset: str, file: str) -> set[str]:
    with (shared / "contamination_vs_eval.csv").open(newline="", encoding="utf-8") as f:
        return {row["key"] for row in csv.DictReader(f) if row["dataset"] == dataset and row["file"] == file}


def arena_bench_v1_scores(shared: Path) -> list[JudgeScore]:
    """GPT-4 single-answer grades (1–10) of 15 models on Arena prompts, contaminated prompts dropped."""
    folder = shared / ARENA_BENCH_V1
    dropped = contaminated_keys(shared, "arena-hard-auto", "arena-bench-v1/question.jsonl")
    prompts = {}
    for line in (folder / "question.jsonl").read_text(encoding="utf-8").splitlines():
        question = json.loads(line)
        if f"question_id={question['question_id']}" not in dropped:
            prompts[question["question_id"]] = question["turns"][0]
    rows = []
    with (folder / "judgment_scores.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # The judge's output could not be parsed for a few answers: no label, not a zero.
            if row["question_id"] in prompts and row["score"].strip():
                rows.append(
                    JudgeScore(
                        prompt_id=row["question_id"],
                        prompt=prompts[row["question_id"]],
                        model=row["model"],
                        score=float(row["score"]),
                        source=ARENA_BENCH_V1,
                    )
                )
    return rows


def evaluation_prompts(shared: Path) -> list[str]:
    """Every prompt of the evaluation benchmarks (MT Bench turns, MMLU, GSM8K test)."""
    evals = shared / "routellm" / "evals"
    prompts = []
    for line in (evals / "mt_bench" / "question.jsonl").read_text(encoding="utf-8").splitlines():
        prompts.extend(json.loads(line)["turns"])
    for line in (evals / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines():
        prompts.append(json.loads(line)["question"])
    for path in sorted((evals / "mmlu" / "responses").glob("mmlu_*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            prompts.extend(row["prompt"] for row in csv.DictReader(f))
    return prompts
