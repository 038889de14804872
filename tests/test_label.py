"""The ``label`` command against fake strong, weak and judge servers: its data, its estimate,
and that an interrupted run, rerun, ends with exactly the labels of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.judge_settings import JudgePrompts
from routing.offline.data.files import read_preference_data
from routing.offline.data.schema import Battle, JudgeScore
from routing.offline.labelling.config import load_label_config
from routing.offline.labelling.judge import pairwise_outcome, read_choice, read_rating
from routing.settings import ConfigError
from testing import ROOT
from testing.fake_upstream import FakeUpstream

PROMPTS = [f"Question {i}: how would you explain {topic}?" for i, topic in enumerate(["tides", "rust", "tax"] * 8)]


@pytest.fixture
def judge(judge_server: FakeUpstream) -> FakeUpstream:
    judge_server.behave("ok", answer="judge")
    return judge_server


@pytest.fixture
def answering(strong: FakeUpstream, weak: FakeUpstream) -> tuple[FakeUpstream, FakeUpstream]:
    strong.behave("ok", answer="per_prompt")
    weak.behave("ok", answer="per_prompt")
    return strong, weak


def label_config(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream, **overrides: Any
) -> Path:
    config = {
        "upstreams": {
            "strong": {
                "backend": "openai",
                "model": "big",
                "base_url": strong.base_url,
                "price": {"input_per_million": 10, "output_per_million": 30},
            },
            "weak": {"backend": "openai", "model": "small", "base_url": weak.base_url},
        },
        "judge": {
            "model": "judge-1",
            "base_url": judge.base_url,
            "price": {"input_per_million": 5, "output_per_million": 15},
            "retry": {"max_retries": 1, "backoff_initial_s": 0.01, "backoff_max_s": 0.01},
        },
        "grading": ["pairwise", "single"],
        "concurrency": 3,
        "answer_max_tokens": 100,
        "judge_max_tokens": 50,
    } | overrides
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS), encoding="utf-8")
    return path


def label(config: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "routing.offline.cli", "label", "--config", str(config), "--out", str(out)]
    command += ["--prompts", str(config.parent / "prompts.jsonl"), *extra]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        preexec_fn=default_ctrl_c,
    )


def default_ctrl_c() -> None:
    # A shell that starts pytest in the background leaves SIGINT ignored in every child, and
    # Python then never raises KeyboardInterrupt; a user's terminal has the default action.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def labels_of(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.glob("*/*.jsonl"))}


def test_labels_are_battles_and_judge_scores_split_by_prompt(
    tmp_path: Path, answering: tuple[FakeUpstream, FakeUpstream], judge: FakeUpstream
) -> None:
    strong, weak = answering
    config = label_config(tmp_path, strong, weak, judge)
    code, out, err = finished(label(config, tmp_path / "labels"))
    assert code == 0, err

    distinct = sorted(set(PROMPTS))
    assert len(strong.requests()) == len(weak.requests()) == len(distinct)  # a repeated prompt is asked once
    assert len(judge.requests()) == 4 * len(distinct)  # two single grades, both pairwise orders
    train = read_preference_data(tmp_path / "labels" / "train")
    test = read_preference_data(tmp_path / "labels" / "test")
    battles = [r for r in train + test if isinstance(r, Battle)]
    scores = [r for r in train + test if isinstance(r, JudgeScore)]
    assert sorted(b.prompt for b in battles) == distinct
    assert {(b.model_a, b.model_b, b.source) for b in battles} == {("big", "small", "judge:judge-1")}
    assert sorted(s.prompt for s in scores) == sorted(distinct * 2)
    assert {b.prompt for b in train if isinstance(b, Battle)}.isdisjoint({b.prompt for b in test})
    assert 0 < len([b for b in test if isinstance(b, Battle)]) < len(distinct) / 2

    # The pairwise question shows both answers in both orders, and the verdict combines the two.
    verdicts: dict[str, list[str]] = {}
    for body in (r["body"] for r in judge.requests()):
        text = body["messages"][-1]["content"]
        if "[[A]]" in text:
            question = next(p for p in distinct if p in text)
            verdicts.setdefault(question, []).append(text)
    answers = {r["body"]["messages"][-1]["content"]: None for r in strong.requests()}
    assert set(verdicts) == set(answers) == set(distinct)
    assert all(text.index("strong answer") < text.index("weak answer") for text in (v[0] for v in verdicts.values()))
    assert all(text.index("weak answer") < text.index("strong answer") for text in (v[1] for v in verdicts.values()))

    stored = yaml.safe_load((tmp_path / "labels" / "judge.yaml").read_text(encoding="utf-8"))
    assert stored["judge"] == "judge-1" and stored["prompts"] == JudgePrompts().model_dump()
    assert "spent about $" in out


def test_dry_run_prints_the_cost_and_calls_nothing(
    tmp_path: Path, answering: tuple[FakeUpstream, FakeUpstream], judge: FakeUpstream
) -> None:
    strong, weak = answering
    config = label_config(tmp_path, strong, weak, judge)
    code, out, err = finished(label(config, tmp_path / "labels", "--dry-run"))
    assert code == 0, err
    assert strong.requests() == weak.requests() == judge.requests() == []
    lines = out.splitlines()
    assert lines[0] == f"label: {len(set(PROMPTS))} distinct prompts, 0 already labelled in {tmp_path / 'labels'}"
    assert "judge-1: 12 calls" not in out and f"judge-1: {4 * len(set(PROMPTS))} calls" in out
    assert "plus the calls to small (no 'price' configured)" in out

    code, _, err = finished(label(config, tmp_path / "labels", "--max-usd", "0.0001"))
    assert code == 2 and "more than --max-usd" in err
    assert judge.requests() == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_an_interrupted_run_continues_to_the_same_labels(
    tmp_path: Path, answering: tuple[FakeUpstream, FakeUpstream], judge: FakeUpstream, stop: signal.Signals
) -> None:
    strong, weak = answering
    config = label_config(tmp_path, strong, weak, judge)
    code, _, err = finished(label(config, tmp_path / "whole"))
    assert code == 0, err
    whole_calls = len(judge.requests())
    judge.reset()
    # Slow enough that the stop comes with most of the 96 verdicts still to ask, however late
    # a loaded machine runs the loop below.
    judge.behave("ok", answer="judge", delay_s=0.2)

    journal = tmp_path / "cut" / "work" / "verdicts.ndjson"
    process = label(config, tmp_path / "cut")
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_text().count("\n") >= 10):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(stop)
    code, out, _ = finished(process)
    assert code == (130 if stop == signal.SIGINT else -signal.SIGKILL)
    assert labels_of(tmp_path / "cut") == {}
    if stop == signal.SIGINT:
        assert "rerun the same command to continue" in out

    code, out, err = finished(label(config, tmp_path / "cut"))
    assert code == 0, err
    assert labels_of(tmp_path / "cut") == labels_of(tmp_path / "whole") != {}
    # What was journalled is not asked again: at most the calls in flight at the stop are repeated.
    assert whole_calls <= len(judge.requests()) <= whole_calls + 3


def test_failed_prompts_are_reported_and_done_by_a_rerun(
    tmp_path: Path, answering: tuple[FakeUpstream, FakeUpstream], judge: FakeUpstream
) -> None:
    strong, weak = answering
    config = label_config(tmp_path, strong, weak, judge)
    judge.behave("status", status=500)
    code, _, err = finished(label(config, tmp_path / "labels"))
    assert code == 2 and f"{len(set(PROMPTS))} prompts not labelled" in err and "rerun" in err
    # Retried once, until the circuit breaker opens after five failures in a row and stops the calls.
    assert 5 <= len(judge.requests()) < 2 * len(set(PROMPTS))
    asked = len(strong.requests())

    judge.behave("ok", answer="judge")
    code, out, err = finished(label(config, tmp_path / "labels"))
    assert code == 0, err
    assert len(strong.requests()) == asked  # the answers were kept; only the judging was redone
    assert f"{len(set(PROMPTS))} distinct prompts, 0 already labelled" in out


def test_a_folder_holds_one_judges_labels(
    tmp_path: Path, answering: tuple[FakeUpstream, FakeUpstream], judge: FakeUpstream
) -> None:
    strong, weak = answering
    assert finished(label(label_config(tmp_path, strong, weak, judge), tmp_path / "labels"))[0] == 0
    other = label_config(tmp_path, strong, weak, judge, grading=["single"])
    code, _, err = finished(label(other, tmp_path / "labels"))
    assert code == 2 and "holds labels made with other settings" in err


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump({"upstreams": {"strong": {"backend": "openai", "model": "a"}}}))
    with pytest.raises(ConfigError) as error:
        load_label_config(path, {})
    assert "label.yaml.judge: Field required" in str(error.value)
    assert "label.yaml.upstreams" in str(error.value)

    config = {
        "upstreams": {
            "strong": {"backend": "openai", "model": "a", "base_url_env": "A_URL"},
            "weak": {"backend": "openai", "model": "b", "base_url": "http://127.0.0.1:9/v1"},
        },
        "judge": {"model": "j", "base_url": "http://127.0.0.1:9/v1"},
        "prompts": {"single": "Grade {answer}"},
    }
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"label.yaml.prompts: .*single prompt lacks \{question\}"):
        load_label_config(path, {})
    del config["prompts"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"label.yaml.upstreams.strong: no endpoint \(set base_url or A_URL\)"):
        load_label_config(path, {})
    assert load_label_config(path, {"A_URL": "http://127.0.0.1:9/v1"}).upstreams["strong"].configured


def test_verdicts_are_read_from_the_judges_last_grade() -> None:
    assert read_rating("Rating: [[11]]") is None
    assert read_rating("first Rating: [[3]] then, on reflection, Rating: [[7.5]]") == 7.5
    assert read_rating("I would say 8/10") is None
    assert read_choice("A is shorter than [[B]]... final: [[A]]") == "A"
    assert read_choice("[[D]]") is None
    assert pairwise_outcome("A", "B") == "strong"  # strong preferred in both orders
    assert pairwise_outcome("B", "A") == "weak"
    assert pairwise_outcome("A", "A") == "tie"  # the judge preferred whichever came first
    assert pairwise_outcome("C", "C") == "tie"
    # The user's own text may hold braces and placeholders: it is inserted, never interpreted.
    text = JudgePrompts().pairwise_prompt("What is {answer_b} in {x}?", "A says {question}", "B")
    assert "What is {answer_b} in {x}?" in text and "A says {question}" in text
