"""The learner's rounds without a cluster: sample → label → retrain → evaluate → promote, within
the budget, resumed after a kill, and the operator's versions, promote and rollback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from learning_setup import learner_args, log_requests, questions, winners

from routing.config import load_app_config
from routing.offline.cli import main as cli
from routing.offline.labelling.run import Prompt
from routing.offline.learning.learner import Learner
from routing.offline.learning.sampling import Logged, choose, drawn_uniformly, in_test_slice
from routing.offline.learning.store import LearnerStore, read_champion
from routing.routers.learned_forms import LinearForm
from routing.routers.mf import MFRouter
from routing.settings import ConfigError
from testing import ROOT
from testing.fake_upstream import FakeUpstream


@pytest.fixture
def judge(judge_server: FakeUpstream, strong: FakeUpstream, weak: FakeUpstream) -> FakeUpstream:
    strong.behave("ok", answer="per_prompt")
    weak.behave("ok", answer="per_prompt")
    return judge_server


def test_a_round_promotes_a_better_challenger_and_the_operator_can_go_back(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream, capsys: pytest.CaptureFixture
) -> None:
    prompts = questions("Round one", 90)
    judge.behave("ok", answer="oracle", winners=winners(prompts))
    log_requests(tmp_path / "requests", prompts)
    learner = Learner(load_app_config(learner_args(strong, weak, judge, tmp_path, labels_per_round=90)))

    record = learner.run_round()

    assert record.labelled == 90 and record.promoted and record.challenger == 1, record
    store = LearnerStore(tmp_path / "learner", "mf")
    champion = read_champion(store.root / "champion.json")
    assert champion is not None and champion.version == 1 and champion.by == "promotion"
    assert (Path(champion.checkpoint) / "calibration.json").is_file()
    evaluation = store.evaluation(1)
    assert evaluation is not None and evaluation.test_labels >= 8
    assert evaluation.challenger.apgr > evaluation.champion.apgr + 0.02  # type: ignore[operator]
    assert evaluation.p_better is not None and evaluation.p_better >= 0.95
    # Every family was cross-validated on the round's training labels; the chosen one challenged.
    assert [f.family for f in evaluation.families] == ["length", "linear", "neighbours", "champion"]
    assert all(f.cv_apgr is not None for f in evaluation.families) and evaluation.family in evaluation.reason
    low, high = evaluation.challenger.low, evaluation.challenger.high
    assert low is not None and high is not None and low <= evaluation.challenger.apgr <= high
    sampled = list(store.sampled.read())
    assert {s.split for s in sampled if s.reason == "active"} == {"train"}
    assert {s.reason for s in sampled if s.split == "test"} == {"uniform-test"}
    # The paired draws took the test slice and the training labels drawn uniformly, not active picks.
    # (a fold with a single one of them draws none: its ranks would say nothing)
    uniform_train = sum(s.reason == "uniform" for s in sampled)
    drawn = re.search(r"of draws of (\d+) labels \(test slice and", evaluation.reason)
    assert drawn and evaluation.test_labels < int(drawn[1]) <= evaluation.test_labels + uniform_train
    # Nothing new: the next round makes no challenger.
    assert learner.run_round().outcome == "no new labels: no challenger"

    cli(["versions", "mf", "--directory", str(tmp_path / "learner")])
    listed = capsys.readouterr().out
    assert "*    1" in listed and "promoted: APGR" in listed and "cross-validated / on the test slice" in listed
    cli(["rollback", "mf", "--directory", str(tmp_path / "learner")])
    assert store.champion().version == 0 and store.champion().checkpoint == "builtin:mf"
    cli(["promote", "mf", "1", "--directory", str(tmp_path / "learner")])
    assert store.champion().version == 1
    status = learner.status()
    assert (status.promotions, status.rollbacks, status.champion_version) == (2, 1, 1)
    with pytest.raises(SystemExit):
        cli(["rollback", "mf", "7", "--directory", str(tmp_path / "learner")])
    assert "no version 7" in capsys.readouterr().err


def test_prompt_length_alone_can_become_the_champion(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream
) -> None:
    # The hard questions are the longer ones here: a router of length alone learns them.
    prompts = questions("Length", 90)
    judge.behave("ok", answer="oracle", winners=winners(prompts))
    log_requests(tmp_path / "requests", prompts)
    args = learner_args(strong, weak, judge, tmp_path, labels_per_round=90, families=["length"])
    record = Learner(load_app_config(args)).run_round()

    assert record.promoted and record.outcome.endswith("; challenger length, chosen by cross-validation of length"), (
        record
    )
    champion = LearnerStore(tmp_path / "learner", "mf").champion()
    served = MFRouter(Path(champion.checkpoint))
    assert isinstance(served.learned, LinearForm) and not served.learned.direction.any()
    assert served.learned.feature_weights["log_chars"] > 0
    long, short = served.score(["x" * 300, "x" * 10], np.zeros((2, 384), np.float32))
    assert long > short


def test_the_budget_covers_k_labels_and_the_round_stops_at_k(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream
) -> None:
    """Each verdict may cost at most 4 output tokens at $125,000 per million: $0.50, and $1 for
    the two of a pairwise label (the fake judge reports exactly 4). $7 a day buys 7 labels."""
    prompts = questions("Budget", 30)
    judge.behave("ok", answer="oracle", winners=winners(prompts))
    log_requests(tmp_path / "requests", prompts)
    args = learner_args(strong, weak, judge, tmp_path, labels_per_round=30, budget_usd_per_day=7.0, judge_max_tokens=4)
    args["learner"]["judge"]["price"] = {"input_per_million": 0, "output_per_million": 125_000}
    learner = Learner(load_app_config(args))

    first = learner.run_round()
    second = learner.run_round()

    assert first.labelled == 7 and first.spent_usd == pytest.approx(7.0), first
    assert second.labelled == 0 and second.spent_today_usd == pytest.approx(7.0), second
    assert len(judge.requests()) == 14
    assert learner.status().spent_today_usd == pytest.approx(7.0)


def test_a_learner_killed_mid_round_continues_from_its_journal(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream
) -> None:
    prompts = questions("Resumed", 40)
    judge.behave("ok", answer="oracle", winners=winners(prompts))
    log_requests(tmp_path / "requests", prompts)
    config = tmp_path / "app.yaml"
    # Retrained rather than refit, so that the kinds' trainers serve the learner too.
    args = learner_args(
        strong, weak, judge, tmp_path, labels_per_round=40, concurrency=2, method="retrain", train={"epochs": 30}
    )
    config.write_text(yaml.safe_dump(args))

    def learn_once() -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "routing.offline.cli", "learn", "--config", str(config), "--once"]
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = learn_once()
    deadline = time.monotonic() + 120
    while len(judge.requests()) < 30:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    judge.behave("hang")
    time.sleep(0.5)
    first.kill()
    first.wait()
    store = LearnerStore(tmp_path / "learner", "mf")
    sampled_before = {s.prompt_id for s in store.sampled.read()}
    asked_before = len(judge.requests())
    assert len(sampled_before) == 40 and not (store.root / "rounds.ndjson").exists()

    half_built = store.versions_dir / ".partial-1"  # as a kill mid-training leaves it
    half_built.mkdir(parents=True)
    (half_built / "manifest.json").write_text("{")
    judge.behave("ok", answer="oracle", winners=winners(prompts))
    second = learn_once()
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err

    assert {s.prompt_id for s in store.sampled.read()} == sampled_before  # nothing sampled again
    (record,) = store.rounds.read()
    assert record.sampled == 0 and 0 < record.labelled < 40 and record.challenger == 1, record
    labelled = [line for split in ("train", "test") for line in (store.labels / split / "battles.jsonl").open()]
    assert len(labelled) == 40
    assert not half_built.exists() and [v.number for v in store.versions()] == [0, 1]
    # Only what the journal lacked was asked again: the verdicts in flight at the kill at most.
    assert len(judge.requests()) - asked_before <= 2 * 40 - 30 + 2 * 2


def test_a_failing_judge_costs_the_round_and_nothing_else(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream
) -> None:
    log_requests(tmp_path / "requests", questions("Failing", 20))
    judge.behave("status", status=500)
    learner = Learner(load_app_config(learner_args(strong, weak, judge, tmp_path)))
    record = learner.run_round()
    assert (record.labelled, record.promoted, record.outcome) == (0, False, "no training labels yet")
    assert LearnerStore(tmp_path / "learner", "mf").champion().version == 0

    (tmp_path / "learner" / "mf" / "versions").write_text("not a directory")  # the disk refuses a version
    judge.behave("ok", answer="oracle", winners={})
    failed = learner.run_round()
    assert failed.outcome.startswith("failed: ") and not failed.promoted


def test_active_sampling_spends_its_share_nearest_the_threshold_and_never_on_the_test_slice() -> None:
    logged = [Logged(Prompt(f"{i:020x}", f"prompt {i}"), score=i / 100, threshold=0.5) for i in range(100)]
    chosen = choose(logged, 20, "active", 0.5, 0.3, round_number=1)
    active = {c.prompt_id for c in chosen if c.reason == "active"}
    assert len(chosen) == 20 and len(active) == 10
    distance = {c.prompt.id: abs(c.score - 0.5) for c in logged}  # type: ignore[operator]
    trainable = [c.prompt.id for c in logged if not in_test_slice(c.prompt, 0.3)]
    passed_over = [pid for pid in trainable if pid not in {c.prompt_id for c in chosen}]
    assert max(distance[pid] for pid in active) <= min(distance[pid] for pid in passed_over)
    assert {c.split for c in chosen if c.reason == "active"} == {"train"}
    for entry in chosen:
        assert (entry.split == "test") == in_test_slice(Prompt(entry.prompt_id, entry.text), 0.3)
    uniform = choose(logged, 40, "uniform", 0.5, 0.3, round_number=1)
    assert {c.reason for c in uniform} == {"uniform", "uniform-test"}
    # The promotion rule's cross-fitted draws take only the uniformly drawn training labels.
    train = [c.text for c in chosen if c.split == "train"]
    drawable = drawn_uniformly(chosen, [*train, "a shadow verdict's prompt"])
    assert list(drawable) == [c.reason == "uniform" for c in chosen if c.split == "train"] + [False]
    assert 0 < drawable.sum() < len(train)


@pytest.mark.parametrize(
    ("learner", "request_log", "message"),
    [
        ({"router": "nope"}, True, "args: learner.router: no router 'nope'"),
        ({"router": "mf"}, False, "set request_log"),
        ({"router": "mf", "sampling": "clever"}, True, "args.learner.sampling"),
        ({"router": "mf", "budget_usd_per_day": -1}, True, "args.learner.budget_usd_per_day"),
    ],
)
def test_learner_config_errors_name_the_field(learner: dict, request_log: bool, message: str) -> None:
    args = {
        "learner": {"directory": "/tmp/x", "judge": {"model": "j", "base_url": "http://j"}, "budget_usd_per_day": 1}
        | learner,
        **({"request_log": {"directory": "/tmp/requests"}} if request_log else {}),
    }
    with pytest.raises(ConfigError) as error:
        load_app_config(args)
    assert message in str(error.value)
    json.dumps(args)  # the config is plain data, as a serve_config.yaml holds it
