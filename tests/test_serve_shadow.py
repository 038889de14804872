"""Shadow evaluation on a running service: of the requests the cheaper model answered, the
configured share is asked again of the most capable one and judged against the answer served
(kept by the request log), within the budget; the verdicts give the "as good" share per router
and key, and become the learner's labels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import openai
import pytest
from learning_setup import EASY, learner_args, questions, winners

from routing.offline.labelling.run import distinct_prompts
from routing.offline.learning.sampling import in_test_slice
from routing.serving.request_log import read_request_log
from testing.cluster import in_process
from testing.fake_upstream import FakeUpstream
from testing.traffic import wait_for

pytestmark = pytest.mark.cluster

FRACTION = 0.3
TRAFFIC = 200
TEST = 0.3
BUDGET_USD = 1.0
PRICE = {"input_per_million": 1.0, "output_per_million": 2.0}


def test_shadow_evaluation_judges_its_share_within_budget_and_its_verdicts_become_labels(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge_server: FakeUpstream
) -> None:
    strong.behave("ok", answer="per_prompt")
    weak.behave("ok", answer="per_prompt")
    prompts = questions("Shadow", TRAFFIC)
    truth = winners(prompts)  # the hard questions the strong model answers better, the easy ones alike
    judge_server.behave("ok", answer="oracle", winners={p: "tie" if truth[p] == "weak" else "strong" for p in prompts})
    args = learner_args(
        strong, weak, judge_server, tmp_path, labels_per_round=1, every_requests=TRAFFIC, test_fraction=TEST,
        budget_usd_per_day=BUDGET_USD, shadow={"fraction": FRACTION},
    )  # fmt: skip
    args["learner"]["judge"]["price"] = PRICE
    args["request_log"]["answers"] = True
    served: dict[str, str] = {}
    with in_process(args) as cluster:
        client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key="unused")
        for number, prompt in enumerate(prompts):  # a threshold of 1: every request goes to the cheaper model
            asked = {"model": "router-mf-1", "messages": [{"role": "user", "content": prompt}]}
            if number % 2:
                chunks = client.chat.completions.create(**asked, stream=True)  # type: ignore[call-overload]
                served[prompt] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                served[prompt] = client.chat.completions.create(**asked).choices[0].message.content or ""
        status = wait_for(
            lambda: (s := _status(cluster.url)).get("rounds") == 1 and s, "the first round", 240, interval_s=0.5
        )

    records = [r for r in read_request_log(tmp_path / "requests") if r.router == "mf"]
    assert len(records) == TRAFFIC and {r.answered_by for r in records} == {"small"}
    assert {r.messages[-1].content: r.answer for r in records if r.messages} == served  # plain and streamed
    shadowed = status["last_round"]["shadowed"]
    spread = 3 * math.sqrt(TRAFFIC * FRACTION * (1 - FRACTION))
    assert abs(shadowed - TRAFFIC * FRACTION) <= spread, shadowed
    # The most capable model and the judge were asked once per shadowed request (besides the
    # round's one labelled prompt: two answers, two verdicts), and not on the response path; the
    # cheaper one only for that label: its served answer is the one judged.
    asked = [r for r in strong.requests() if r["body"].get("temperature") == 0]
    assert len(asked) == shadowed + 1
    assert len([r for r in weak.requests() if r["body"].get("temperature") == 0]) == 1
    assert len(judge_server.requests()) == shadowed + 2
    assert 0 < status["spent_today_usd"] <= BUDGET_USD

    # The verdicts: a cheaper answer is as good on the easy questions, worse on the hard ones.
    verdicts = [json.loads(line) for line in (tmp_path / "learner" / "mf" / "shadow.ndjson").read_text().splitlines()]
    assert len(verdicts) == shadowed
    easy = sum(any(e in v["prompt"] for e in EASY) for v in verdicts)
    share = status["shadow"]["by_router"]["mf"]
    assert (share["judged"], share["as_good"]) == (shadowed, easy)
    assert share["low"] <= easy / shadowed <= share["high"]
    assert status["shadow"]["by_key"]["(open)"]["judged"] == shadowed  # an open service: no key names

    # …and labels: those outside the test slice train, as battles between the router's pair.
    labels = (tmp_path / "learner" / "mf" / "labels" / "train" / "shadow.jsonl").read_text().splitlines()
    trained = [v for v in verdicts if not in_test_slice(distinct_prompts([v["prompt"]])[0], TEST)]
    assert len(labels) == len(trained) > 0
    winners_by_prompt = {json.loads(line)["prompt"]: json.loads(line)["winner"] for line in labels}
    for v in trained:
        assert winners_by_prompt[v["prompt"]] == ("tie" if truth[v["prompt"]] == "weak" else "model_a")
    assert status["train_labels"] >= len(trained)


def _status(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}/health/learner", timeout=30).raise_for_status().json()
