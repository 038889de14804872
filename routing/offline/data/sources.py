"""Readers for the public preference and evaluation data this project trains and checks against.

``shared`` is a folder laid out like the project's data drop (see ``data/README.md``): each
source keeps its upstream paths, and ``contamination_vs_eval.csv`` lists training rows whose
text overlaps an evaluation item; those rows are dropped here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from routing.offline.data.schema import Battle, GoldenLabel, JudgeScore, PreferenceRow


@dataclass(frozen=True)
class Source:
    name: str
    file: str
    licence: str
    upstream: str
    shippable: bool
    read: Callable[[Path], list[PreferenceRow]]


def contaminated_keys(shared: Path, dataset: str, file: str) -> set[str]:
    with (shared / "contamination_vs_eval.csv").open(newline="", encoding="utf-8") as f:
        return {row["key"] for row in csv.DictReader(f) if row["dataset"] == dataset and row["file"] == file}


def _jsonl(path: Path) -> list[dict]:
    # Split on newlines only: prompts may hold U+2028 and other characters splitlines() breaks on.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def arena_bench_v1(shared: Path) -> list[PreferenceRow]:
    """GPT-4 single-answer grades (1–10) of 15 models on 300 hard Arena prompts."""
    folder = shared / "arena-hard-auto" / "arena-bench-v1"
    dropped = contaminated_keys(shared, "arena-hard-auto", "arena-bench-v1/question.jsonl")
    prompts = {
        q["question_id"]: q["turns"][0]
        for q in _jsonl(folder / "question.jsonl")
        if f"question_id={q['question_id']}" not in dropped
    }
    rows: list[PreferenceRow] = []
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
                        source="arena-bench-v1",
                    )
                )
    return rows


def vicuna_bench(shared: Path) -> list[PreferenceRow]:
    """GPT-4 pairwise reviews (two 1–10 scores per review) on the 80 Vicuna-bench questions."""
    folder = shared / "vicuna-blog-eval"
    dropped = contaminated_keys(shared, "vicuna-blog-eval", "question.jsonl")
    prompts = {
        q["question_id"]: q["text"]
        for q in _jsonl(folder / "question.jsonl")
        if f"question_id={q['question_id']}" not in dropped
    }
    model_of = {a["answer_id"]: a["model_id"].split(":")[0] for p in folder.glob("answer/*.jsonl") for a in _jsonl(p)}
    rows: list[PreferenceRow] = []
    for path in sorted(folder.glob("review/*/*.jsonl")):
        for review in _jsonl(path):
            if review["question_id"] not in prompts:
                continue
            a, b = model_of[review["answer1_id"]], model_of[review["answer2_id"]]
            s1, s2 = review["score"]
            winner = "model_a" if s1 > s2 else "model_b" if s2 > s1 else "tie"
            rows.append(
                Battle(
                    prompt=prompts[review["question_id"]], model_a=a, model_b=b, winner=winner, source="vicuna-bench"
                )
            )
    return rows


def llmrouter(shared: Path) -> list[PreferenceRow]:
    """Per-query task scores in [0, 1] (mostly 0/1 correctness) of 9 open models (LLMRouter train split)."""
    file = "dcrouter_preprocessed/train.json"
    dropped = contaminated_keys(shared, "llmrouter-uiuc", file)
    records = json.loads((shared / "llmrouter-uiuc" / file).read_text(encoding="utf-8"))
    return [
        JudgeScore(prompt_id=str(index), prompt=record["question"], model=model, score=score, source="llmrouter")
        for index, record in enumerate(records)
        if f"index={index}" not in dropped and record["question"].strip()
        for model, score in sorted(record["scores"].items())
    ]


def _zeroeval(shared: Path, task: str) -> list[PreferenceRow]:
    """Per-question correctness of many models on one ZeroEval task (``<task>_questions.jsonl``
    and ``<task>_correctness.csv``)."""
    folder = shared / "zeroeval"
    dropped = contaminated_keys(shared, "zeroeval", f"{task}_questions.jsonl")
    questions = _jsonl(folder / f"{task}_questions.jsonl")
    prompts = {str(q["id"]): q["question"] for q in questions if f"id={q['id']}" not in dropped}
    with (folder / f"{task}_correctness.csv").open(newline="", encoding="utf-8") as f:
        return [
            GoldenLabel(
                prompt_id=row["id"],
                prompt=prompts[row["id"]],
                model=row["model"],
                correct=row["correct"] == "1",
                source=task,
            )
            for row in csv.DictReader(f)
            if row["id"] in prompts
        ]


def math_l5(shared: Path) -> list[PreferenceRow]:
    """Correctness of 40 models on MATH level-5 problems (ZeroEval)."""
    return _zeroeval(shared, "math-l5")


def crux(shared: Path) -> list[PreferenceRow]:
    """Correctness of 51 models on CRUXEval output prediction: read a short Python function, give
    its output (ZeroEval)."""
    return _zeroeval(shared, "crux")


def routerbench(shared: Path) -> list[PreferenceRow]:
    """Correctness of 11 models (GPT-4 and Mixtral among them) on RouterBench train splits."""
    rows: list[PreferenceRow] = []
    for name in ("arc_challenge_train.csv", "winograde_train.csv", "mbpp_train.csv"):
        dropped = contaminated_keys(shared, "routerbench-routerdc", name)
        with (shared / "routerbench-routerdc" / name).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            # A model's correctness column is the one with a "<model>|model_response" sibling.
            models = [c for c in reader.fieldnames or [] if f"{c}|model_response" in (reader.fieldnames or [])]
            for row in reader:
                if f"sample_id={row['sample_id']}" in dropped:
                    continue
                for model in models:
                    if not row[model].strip():
                        continue  # the model was not run on this item
                    rows.append(
                        GoldenLabel(
                            prompt_id=f"{name}:{row['sample_id']}",
                            prompt=row["prompt"],
                            model=model,
                            correct=float(row[model]) >= 0.5,
                            source="routerbench",
                        )
                    )
    return rows


SOURCES = (
    Source(
        "arena-bench-v1",
        "arena-bench-v1.judge_scores.jsonl.gz",
        "Apache-2.0",
        "lmarena/arena-hard-auto",
        True,
        arena_bench_v1,
    ),
    Source(
        "vicuna-bench", "vicuna-bench.battles.jsonl.gz", "Apache-2.0", "lm-sys/vicuna-blog-eval", True, vicuna_bench
    ),
    Source("llmrouter", "llmrouter.judge_scores.jsonl.gz", "MIT", "ulab-uiuc/LLMRouter", True, llmrouter),
    Source("math-l5", "math-l5.golden_labels.jsonl.gz", "Apache-2.0", "yuchenlin/ZeroEval", True, math_l5),
    Source("crux", "crux.golden_labels.jsonl.gz", "Apache-2.0", "yuchenlin/ZeroEval", True, crux),
    Source("routerbench", "routerbench.golden_labels.jsonl.gz", "none stated", "shuhao02/RouterDC", False, routerbench),
)


def evaluation_prompts(shared: Path) -> list[str]:
    """Every prompt of the evaluation benchmarks (MT Bench turns, MMLU, GSM8K test)."""
    evals = shared / "routellm" / "evals"
    prompts = []
    for question in _jsonl(evals / "mt_bench" / "question.jsonl"):
        prompts.extend(question["turns"])
    prompts.extend(q["question"] for q in _jsonl(evals / "gsm8k" / "test.jsonl"))
    for path in sorted((evals / "mmlu" / "responses").glob("mmlu_*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            prompts.extend(row["prompt"] for row in csv.DictReader(f))
    return prompts


ARENA_HARD_SETS = ("arena-hard-v0.1", "arena-hard-v2.0")


def arena_hard_prompts(shared: Path) -> list[dict[str, str]]:
    """Arena-Hard's prompts (lmarena/arena-hard-auto, Apache-2.0), unlabelled: the default pool
    that routing thresholds are calibrated on."""
    return [
        {"id": q["uid"], "set": name, "prompt": q["prompt"]}
        for name in ARENA_HARD_SETS
        for q in _jsonl(shared / "arena-hard-auto" / name / "question.jsonl")
    ]
