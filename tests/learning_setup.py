"""Traffic a learner can learn from: hard questions the strong model wins, easy ones the weak
model wins, a judge that knows which is which, and the application args around them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routing.config import RequestLogConfig
from routing.offline.learning.shadow import ShadowVerdict
from routing.protocol import ChatMessage, RouteDecision
from routing.serving.request_log import RequestLog
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

HARD = ["integrate this function by parts", "prove the theorem about primes", "solve the differential equation"]
EASY = ["say hello to my friend", "name a nice colour", "suggest a greeting for a card"]


def questions(tag: str, count: int) -> list[str]:
    """``count`` distinct questions, three hard ones for each easy one."""
    return [f"{tag} {i}: please {(EASY if i % 4 == 0 else HARD)[i % 3]}" for i in range(count)]


def winners(prompts: list[str], inverted: bool = False) -> dict[str, str]:
    """Who wins each question: the strong model the hard ones, the weak model the easy ones."""
    return {p: ("weak" if any(e in p for e in EASY) else "strong") if not inverted else _other(p) for p in prompts}


def _other(prompt: str) -> str:
    return "strong" if any(e in prompt for e in EASY) else "weak"


def learner_args(
    strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream, state: Path, **learner: Any
) -> dict[str, Any]:
    """An application whose ``mf`` router learns, on fake upstreams ('big' and 'small')."""
    return fake_pair_args(
        strong,
        weak,
        routers={"mf": {"type": "mf"}, "random": {"type": "random", "seed": 0}},
        request_log={"directory": str(state / "requests")},
        learner={
            "router": "mf",
            "directory": str(state / "learner"),
            "judge": {
                "model": "judge-1",
                "base_url": judge.base_url,
                "retry": {"max_retries": 0},
                "timeouts": {"total_s": 5},
            },
            "budget_usd_per_day": 10.0,
            "labels_per_round": 60,
            "min_test_labels": 8,
            "check_s": 1,
            "every_requests": 60,
            **learner,
        },
    )


def log_requests(directory: Path, prompts: list[str], router: str = "mf", answered_by: str = "big") -> None:
    """Records ``prompts`` in the request log as ``router`` routed them, at its threshold, and
    ``answered_by`` answered them."""
    log = RequestLog(RequestLogConfig(directory=str(directory)))
    decision = RouteDecision(router=router, score=0.5, threshold=0.5, target="big")
    for prompt in prompts:
        log.record(
            "router-mf-0.5", [ChatMessage(role="user", content=prompt)], False, decision, answered_by, None, None, None
        )
    log.close()


def verdicts(as_good: int, worse: int, key: str = "team-a", start: float = 0.0) -> list[ShadowVerdict]:
    """Shadow verdicts of ``mf`` on requests of ``key`` one second apart from ``start``: first
    ``as_good`` where the cheaper answer tied, then ``worse`` where the most capable one won."""
    return [
        ShadowVerdict(
            request_time=start + i,
            prompt_id=str(i),
            prompt="q",
            router="mf",
            key=key,
            served="small",
            most_capable="big",
            order="strong_first",
            outcome="tie" if i < as_good else "strong",
            cost_usd=0.0,
            time=start + i,
        )  # fmt: skip
        for i in range(as_good + worse)
    ]
