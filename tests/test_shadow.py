"""Shadow evaluation without a cluster: which logged requests are shadowed, the budget that
stops it, and the "as good" share's interval."""

from __future__ import annotations

import math
from pathlib import Path

import learning_setup
import pytest
from learning_setup import learner_args, log_requests, questions

from routing.config import load_app_config
from routing.judge_settings import JudgePrompts
from routing.offline.learning.learner import Learner
from routing.offline.learning.shadow import ShadowEvaluator, ShadowSettings, ShadowVerdict, as_good, shadowed
from routing.serving.request_log import LoggedMessage, RequestRecord
from testing.fake_upstream import FakeUpstream


class FakeUpstreamAddress:
    """Where no server listens: the selection asks no upstream."""

    base_url = "http://127.0.0.1:9/v1"


def record(i: int, router: str = "mf", answered_by: str = "small", last: str = "user") -> RequestRecord:
    messages = [LoggedMessage(role="user", content=f"question {i}"), LoggedMessage(role=last, content=f"turn {i}")]
    return RequestRecord(
        time=1000.0 + i, model="router-mf", stream=False, messages=messages, router=router, answered_by=answered_by
    )


def test_the_shadowed_share_is_the_fraction_of_the_cheaper_answers_and_fixed_by_the_request() -> None:
    records = [record(i) for i in range(4000)]
    chosen = shadowed(records, "mf", ["small"], 0.1)
    assert abs(len(chosen) - 400) <= 3 * math.sqrt(4000 * 0.1 * 0.9)
    assert [c.record.time for c in chosen] == [c.record.time for c in shadowed(records, "mf", ["small"], 0.1)]
    assert {c.order for c in chosen} == {"strong_first", "weak_first"}  # the judge sees both orders
    # Never the most capable model's answers, another router's, or a tool loop's inner steps.
    others = [record(1, answered_by="big"), record(2, router="random"), record(3, last="tool")]
    assert shadowed(others, "mf", ["small"], 1.0) == []


def test_a_request_judged_before_a_crash_is_not_judged_again(tmp_path: Path) -> None:
    records = [record(i) for i in range(50)]
    config = load_app_config(learner_args(*[FakeUpstreamAddress] * 3, tmp_path, shadow={"fraction": 1.0}))
    upstream = config.upstreams["strong"]
    settings = ShadowSettings("mf", 1.0, upstream, {"small": upstream}, upstream, JudgePrompts(), 8, 8, 1)
    (tmp_path / "shadow-seen.json").write_text('{"until": 0}')  # on since before these requests
    first = ShadowEvaluator(tmp_path, settings).pending(records)[0]
    verdict = ShadowVerdict(
        request_time=first.record.time, prompt_id=first.prompt_id, prompt=first.question, router="mf",
        served="small", most_capable="big", order=first.order, outcome="tie", cost_usd=0.0, time=1.0,
    )  # fmt: skip
    (tmp_path / "shadow.ndjson").write_text(verdict.model_dump_json() + "\n")  # judged; the watermark never moved
    again = ShadowEvaluator(tmp_path, settings).pending(records)
    assert len(again) == 49 and first.record.time not in {i.record.time for i in again}


def test_the_as_good_share_has_a_wilson_interval() -> None:
    verdicts = learning_setup.verdicts(8, 2)
    share = as_good(verdicts, "key")["team-a"]
    assert (share.judged, share.as_good, share.share) == (10, 8, 0.8)
    assert share.low == pytest.approx(0.490, abs=1e-3) and share.high == pytest.approx(0.943, abs=1e-3)


def test_shadow_evaluation_stops_at_the_budget(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge_server: FakeUpstream
) -> None:
    strong.behave("ok", answer="per_prompt")
    weak.behave("ok", answer="per_prompt")
    judge_server.behave("ok", answer="judge")
    prompts = questions("Budget", 60)
    # A judgement's bound is about $0.84 at this price, what it costs $0.009: the budget holds the
    # bound before each call, so it stops the evaluation once less than that is left.
    price = {"input_per_million": 1000.0, "output_per_million": 1000.0}
    args = learner_args(
        strong, weak, judge_server, tmp_path, budget_usd_per_day=1.0, shadow={"fraction": 1.0},
        answer_max_tokens=8, judge_max_tokens=8,
    )  # fmt: skip
    args["learner"]["judge"]["price"] = price
    learner = Learner(load_app_config(args))
    log_requests(tmp_path / "requests", prompts, answered_by="small")  # after shadowing was turned on

    record = learner.run_round()

    status = learner.status()
    assert status.spent_today_usd <= 1.0 and record.spent_usd > 0
    assert 0 < record.shadowed < 60  # the budget ran out before every request was judged
    assert status.shadow is not None and status.shadow.verdicts == record.shadowed
