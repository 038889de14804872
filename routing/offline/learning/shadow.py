"""Shadow evaluation: were the answers a cheaper candidate gave as good as the most capable one's?

A share (``learner.shadow.fraction``) of the requests the learner's router sent to a cheaper
candidate, chosen by a hash of each logged request so that the share is exact in expectation and
reproducible, are asked again of the most capable candidate, off the response path: the learner
reads them from the request log in its rounds. The judge compares the two answers blind, in an
order drawn per request (one verdict, not two), within the learner's daily budget. A verdict
says whether the cheaper answer was as good (a tie or better); the verdicts of requests the
cheapest candidate answered are also labels the learner trains on, except for prompts of the
test slice, which stays a uniform sample of the traffic.

Where the request log keeps answers (``request_log.answers``) the served answer is the one judged,
and a verdict costs one answer and one judgement; otherwise the cheaper candidate is asked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from routing.errors import UpstreamError
from routing.judge_settings import JudgePrompts
from routing.offline.data.schema import Battle
from routing.offline.labelling.budget import Budget, BudgetExhausted, call_bound_usd
from routing.offline.labelling.journal import Journal, write_atomically
from routing.offline.labelling.judge import Outcome, read_choice
from routing.offline.labelling.run import CHARS_PER_TOKEN, WINNER, Prompt, ask_within, distinct_prompts
from routing.offline.learning.sampling import in_test_slice
from routing.offline.learning.store import AsGood, ShadowSummary
from routing.protocol import ChatMessage
from routing.serving.request_log import RequestRecord
from routing.serving.resilience import ResilientUpstream
from routing.upstreams import close_connections, make_backend
from routing.upstreams.config import Upstream

SHADOW_FILE = "shadow.ndjson"
SEEN_FILE = "shadow-seen.json"
SHADOW_LABELS = "shadow.jsonl"  # in the training labels' folder
Order = Literal["strong_first", "weak_first"]
# What the judge's choice means in each order.
MEANING: dict[Order, dict[str, Outcome]] = {
    "strong_first": {"A": "strong", "B": "weak", "C": "tie"},
    "weak_first": {"A": "weak", "B": "strong", "C": "tie"},
}
SENT_ROLES = ("system", "developer", "user", "assistant")
Z_95 = 1.959964
OPEN = "(open)"  # the requests of a service without API keys


class ShadowVerdict(BaseModel):
    """One shadowed request: who answered, what the judge said, what it cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_time: float
    prompt_id: str
    prompt: str
    router: str
    key: str | None = None
    served: str
    most_capable: str
    order: Order
    outcome: Outcome | None  # None: the judge gave no readable choice
    cost_usd: float
    time: float

    @property
    def as_good(self) -> bool | None:
        return None if self.outcome is None else self.outcome != "strong"


class _Seen(BaseModel):
    until: float


def _unit(tag: str, record: RequestRecord) -> float:
    """A number in [0, 1) fixed by the logged request (its time and messages) and ``tag``."""
    text = "\n".join(f"{m.role}:{m.content}" for m in record.messages or [])
    digest = hashlib.sha256(f"{tag}:{record.time!r}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Shadowed:
    record: RequestRecord
    question: str  # the routed turn, what the judge reads as the question
    prompt_id: str
    order: Order


def shadowed(records: Iterable[RequestRecord], router: str, cheaper: Iterable[str], fraction: float) -> list[Shadowed]:
    """The requests to shadow: ``router`` sent them to one of its ``cheaper`` candidates, they
    end on a user turn (a tool loop's inner steps are not judged), and their hash falls in ``fraction``."""
    found, cheaper = [], set(cheaper)
    for record in records:
        messages = record.messages or []
        if record.router != router or record.answered_by not in cheaper or not messages:
            continue
        if messages[-1].role != "user" or not messages[-1].content.strip() or _unit("shadow", record) >= fraction:
            continue
        (prompt,) = distinct_prompts([messages[-1].content])
        order: Order = "strong_first" if _unit("order", record) < 0.5 else "weak_first"
        found.append(Shadowed(record, prompt.text, prompt.id, order))
    return found


@dataclass(frozen=True)
class ShadowSettings:
    router: str
    fraction: float
    most_capable: Upstream
    cheaper: dict[str, Upstream]  # by public model name
    judge: Upstream
    prompts: JudgePrompts
    answer_max_tokens: int
    judge_max_tokens: int
    concurrency: int


class ShadowEvaluator:
    """Shadows the logged requests after its watermark, keeping every verdict in ``directory``."""

    def __init__(self, directory: Path, settings: ShadowSettings) -> None:
        self.directory = directory
        self.settings = settings
        self.journal = Journal(directory / SHADOW_FILE, ShadowVerdict)
        self.verdicts = read_verdicts(directory / SHADOW_FILE)
        seen = directory / SEEN_FILE
        if not seen.is_file():  # turned on now: the traffic from here on is shadowed, not the log's past
            write_atomically(seen, _Seen(until=time.time()).model_dump_json())
        self.until = _Seen.model_validate_json(seen.read_text()).until

    def pending(self, records: Iterable[RequestRecord]) -> list[Shadowed]:
        """What the watermark has not passed, less what was judged before a crash kept it back."""
        s = self.settings
        judged = {(v.request_time, v.prompt_id) for v in self.verdicts}
        new = [r for r in records if r.time > self.until]
        return [i for i in shadowed(new, s.router, s.cheaper, s.fraction) if (i.record.time, i.prompt_id) not in judged]

    def run(self, records: Sequence[RequestRecord], budget: Budget) -> tuple[int, str | None]:
        """Shadows what was logged since the last run; returns how many verdicts were added and
        why any were not (the budget, an upstream failing). The watermark moves past every
        record looked at: a request is shadowed once or never."""
        todo = self.pending(records)
        latest = max((r.time for r in records), default=self.until)
        added, failure = asyncio.run(self._shadow_all(todo, budget))
        self.until = max(self.until, latest)
        write_atomically(self.directory / SEEN_FILE, _Seen(until=self.until).model_dump_json())
        return added, failure

    async def _shadow_all(self, todo: list[Shadowed], budget: Budget) -> tuple[int, str | None]:
        s = self.settings
        upstreams = {u.model: ResilientUpstream(make_backend(u), u) for u in (s.most_capable, *s.cheaper.values())}
        judge = ResilientUpstream(make_backend(s.judge), s.judge)
        pending = iter(todo)
        added, failures = 0, []

        async def worker() -> None:
            nonlocal added
            for item in pending:
                try:
                    verdict = await self._shadow(item, upstreams, judge, budget)
                except UpstreamError as exc:
                    failures.append(exc.message)
                    continue
                except BudgetExhausted as exc:
                    failures.append(f"over budget: {exc}")
                    return
                self.journal.append(verdict)
                self.verdicts.append(verdict)
                added += 1

        try:
            await asyncio.gather(*(worker() for _ in range(s.concurrency)))
        finally:
            self.journal.close()
            await close_connections(*(u.backend for u in (*upstreams.values(), judge)))
        return added, (failures[0] if failures else None)

    async def _shadow(
        self, item: Shadowed, upstreams: dict[str, ResilientUpstream], judge: ResilientUpstream, budget: Budget
    ) -> ShadowVerdict:
        s, record = self.settings, item.record
        cheaper = s.cheaper[record.answered_by]
        messages = [
            ChatMessage(role=m.role, content=m.content)  # type: ignore[arg-type]
            for m in record.messages or []
            if m.role in SENT_ROLES
        ]
        asked = sum(len(m.content.encode()) for m in messages)
        served = record.answer
        asking = (s.most_capable,) if served is not None else (s.most_capable, cheaper)
        answer_bound = sum(call_bound_usd(u, asked, s.answer_max_tokens) for u in asking)
        judged = (
            len(s.prompts.pairwise.encode()) + len(item.question.encode()) + 2 * CHARS_PER_TOKEN * s.answer_max_tokens
        )
        hold = budget.hold(answer_bound + call_bound_usd(s.judge, judged, s.judge_max_tokens))

        async def answer(upstream: Upstream) -> tuple[str, float]:
            text, _, cost = await ask_within(upstreams[upstream.model], upstream, messages, s.answer_max_tokens, hold)
            return text, cost

        try:
            if served is not None:  # the request log kept what the cheaper model answered
                (strong, strong_cost), (weak, weak_cost) = await answer(s.most_capable), (served, 0.0)
            else:
                (strong, strong_cost), (weak, weak_cost) = await asyncio.gather(answer(s.most_capable), answer(cheaper))
            first, second = (strong, weak) if item.order == "strong_first" else (weak, strong)
            question = [ChatMessage(role="user", content=s.prompts.pairwise_prompt(item.question, first, second))]
            text, _, judge_cost = await ask_within(judge, s.judge, question, s.judge_max_tokens, hold)
        finally:
            hold.release()
        choice = read_choice(text)
        return ShadowVerdict(
            request_time=record.time,
            prompt_id=item.prompt_id,
            prompt=item.question,
            router=record.router or s.router,
            key=record.key,
            served=record.answered_by,
            most_capable=s.most_capable.model,
            order=item.order,
            outcome=MEANING[item.order][choice] if choice is not None else None,
            cost_usd=round(strong_cost + weak_cost + judge_cost, 9),
            time=time.time(),
        )

    def summary(self) -> ShadowSummary:
        return ShadowSummary(
            fraction=self.settings.fraction,
            verdicts=len(self.verdicts),
            by_router=as_good(self.verdicts, "router"),
            by_key=as_good(self.verdicts, "key"),
        )

    def spent_usd(self, since: float) -> float:
        return sum(v.cost_usd for v in self.verdicts if v.time >= since)

    def write_labels(self, path: Path, strong: str, weak: str, cheapest: str, test_fraction: float) -> int:
        """The verdicts on the cheapest candidate's answers, outside the test slice, as battles
        between the names the router scores the pair by; written whole to ``path``."""
        lines = [
            Battle(
                prompt=v.prompt,
                model_a=strong,
                model_b=weak,
                winner=WINNER[v.outcome],
                source=f"shadow:{self.settings.judge.model}",
            ).model_dump_json(exclude_none=True)
            for v in self.verdicts
            if v.outcome is not None
            and v.served == cheapest
            and not in_test_slice(Prompt(v.prompt_id, v.prompt), test_fraction)
        ]
        if lines:
            write_atomically(path, "\n".join(lines) + "\n")
        return len(lines)


def as_good(verdicts: Iterable[ShadowVerdict], by: Literal["router", "key"]) -> dict[str, AsGood]:
    """The "as good" share per router or per API key name (an open service's requests: ``(open)``),
    with a 95 % Wilson interval."""
    counts: dict[str, list[int]] = {}
    for v in verdicts:
        if v.as_good is None:
            continue
        name = (v.router if by == "router" else v.key) or OPEN
        judged = counts.setdefault(name, [0, 0])
        judged[0] += 1
        judged[1] += int(v.as_good)
    return {name: wilson(judged, good) for name, (judged, good) in sorted(counts.items())}


def read_verdicts(path: Path) -> list[ShadowVerdict]:
    return list(Journal(path, ShadowVerdict).read())


def wilson(judged: int, good: int) -> AsGood:
    p, z2 = good / judged, Z_95**2
    centre = (p + z2 / (2 * judged)) / (1 + z2 / judged)
    half = Z_95 * math.sqrt(p * (1 - p) / judged + z2 / (4 * judged * judged)) / (1 + z2 / judged)
    return AsGood(judged=judged, as_good=good, share=p, low=max(0.0, centre - half), high=min(1.0, centre + half))
