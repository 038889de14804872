"""RouteLLM's evaluation sets, converted into the project's benchmark file format.

Source: ``lm-sys/RouteLLM`` (Apache-2.0), ``routellm/evals``: precomputed results of
gpt-4-1106-preview (strong) and Mixtral-8x7B-Instruct-v0.1 (weak). The items RouteLLM lists in
each ``contaminated_prompts.jsonl`` are dropped.

- MT Bench: the first turn is the prompt (routers route on it); a model's quality is the mean of
  its GPT-4 grades on both turns, since the routed model answers both.
- MMLU (57 subjects) and GSM8K: correctness, 1 or 0.

Beside MT Bench, its questions' two turns (``mt_bench_turns``), for measuring how a conversation's
follow-up is routed; no quality column, never a benchmark.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from routing.routers.model_aliases import canonical_model_name

STRONG = "gpt-4-1106-preview"
WEAK = "mixtral-8x7b-instruct-v0.1"
Row = dict[str, object]


def _contaminated(folder: Path) -> set[str]:
    lines = (folder / "contaminated_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["eval_prompt"].strip() for line in lines if line.strip()}


def _correctness(row: dict[str, str]) -> dict[str, float]:
    return {
        canonical_model_name(m): float(row[m] == "True")
        for m in ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1")
    }


def mt_bench(evals: Path) -> list[Row]:
    folder = evals / "mt_bench"
    dropped = _contaminated(folder)
    grades: dict[tuple[int, str], list[float]] = defaultdict(list)
    for line in (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines():
        judgement = json.loads(line)
        grades[(judgement["question_id"], canonical_model_name(judgement["model"]))].append(float(judgement["score"]))
    rows = []
    for line in (folder / "question.jsonl").read_text(encoding="utf-8").splitlines():
        question = json.loads(line)
        if any(turn.strip() in dropped for turn in question["turns"]):
            continue
        quality = {m: sum(grades[(question["question_id"], m)]) / 2 for m in (STRONG, WEAK)}
        rows.append({"id": str(question["question_id"]), "prompt": question["turns"][0], **quality})
    return rows


def mt_bench_turns(evals: Path, ids: set[str]) -> list[Row]:
    """The two user turns of each MT Bench question in ``ids`` (the ones kept as the benchmark)."""
    lines = (evals / "mt_bench" / "question.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    return [{"id": str(q["question_id"]), "turns": q["turns"]} for q in questions if str(q["question_id"]) in ids]


def mmlu(evals: Path) -> list[Row]:
    folder = evals / "mmlu"
    dropped = _contaminated(folder)
    rows: list[Row] = []
    for path in sorted((folder / "responses").glob("mmlu_*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for index, row in enumerate(csv.DictReader(f)):
                if row["prompt"].strip() not in dropped:
                    rows.append({"id": f"{path.stem}#{index}", "prompt": row["prompt"], **_correctness(row)})
    return rows


def gsm8k(evals: Path) -> list[Row]:
    folder = evals / "gsm8k"
    dropped = _contaminated(folder)
    with (folder / "gsm8k_responses.csv").open(newline="", encoding="utf-8") as f:
        return [
            {"id": f"gsm8k#{index}", "prompt": row["prompt"], **_correctness(row)}
            for index, row in enumerate(csv.DictReader(f))
            if row["prompt"].strip() not in dropped
        ]


BENCHMARKS = {"mt_bench": mt_bench, "mmlu": mmlu, "gsm8k": gsm8k}
