"""A labelling run: what is left to ask, what it may cost, asking it, and the data it yields.

Prompts are identified by a hash of their text, so a prompt asked twice is labelled once and a
rerun recognises the prompts it has already done. The split into ``train/`` and ``test/`` is by
the same hash: a prompt is on the same side in every run, whatever else the input holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from routing.errors import UpstreamError
from routing.judge_settings import Grading, JudgePrompts
from routing.offline.data.schema import Battle, JudgeScore, Winner
from routing.offline.labelling.budget import Budget, BudgetExhausted, Hold, call_bound_usd, call_cost_usd
from routing.offline.labelling.config import LabelConfig
from routing.offline.labelling.journal import Answer, Journal, Side, Subject, Verdict, write_atomically
from routing.offline.labelling.judge import pairwise_outcome, read_choice, read_rating
from routing.protocol import ChatCompletionRequest, ChatMessage
from routing.serving.resilience import ResilientUpstream
from routing.settings import ConfigError
from routing.upstreams import close_connections, make_backend
from routing.upstreams.config import Upstream

RUN_FILE = "judge.yaml"
CHARS_PER_TOKEN = 4  # a rough English average, for the estimate only
SUBJECTS: dict[Grading, tuple[Subject, Subject]] = {
    "single": ("strong", "weak"),
    "pairwise": ("strong_first", "weak_first"),
}
WINNER: dict[str, Winner] = {"strong": "model_a", "weak": "model_b", "tie": "tie"}


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


def distinct_prompts(texts: Iterable[str]) -> list[Prompt]:
    """One :class:`Prompt` per distinct text, in first-seen order."""
    seen: dict[str, Prompt] = {}
    for text in texts:
        pid = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
        seen.setdefault(pid, Prompt(pid, text))
    return list(seen.values())


def in_test_split(prompt: Prompt, fraction: float) -> bool:
    return int(prompt.id[:8], 16) / 16**8 < fraction


class RunRecord(BaseModel):
    """Stored beside the labels (``judge.yaml``): who answered, who judged, and with what prompts.
    A rerun into the same folder must match it, so that one folder never mixes two judges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strong: str
    weak: str
    judge: str
    grading: list[Grading]
    answer_max_tokens: int
    judge_max_tokens: int
    prompts: JudgePrompts

    @classmethod
    def of(cls, config: LabelConfig) -> RunRecord:
        return cls(
            strong=config.upstreams[config.strong].model,
            weak=config.upstreams[config.weak].model,
            judge=config.judge.model,
            grading=config.grading,
            answer_max_tokens=config.answer_max_tokens,
            judge_max_tokens=config.judge_max_tokens,
            prompts=config.prompts,
        )


@dataclass
class Estimate:
    """Calls still to make and their cost, bounded above: every output at its token limit."""

    calls: dict[str, int] = field(default_factory=dict)
    input_tokens: dict[str, int] = field(default_factory=dict)
    output_tokens: dict[str, int] = field(default_factory=dict)
    usd: float = 0.0
    unpriced: set[str] = field(default_factory=set)

    def add(self, upstream: Upstream, input_chars: int, max_output: int) -> None:
        model = upstream.model
        tokens_in = math.ceil(input_chars / CHARS_PER_TOKEN)
        self.calls[model] = self.calls.get(model, 0) + 1
        self.input_tokens[model] = self.input_tokens.get(model, 0) + tokens_in
        self.output_tokens[model] = self.output_tokens.get(model, 0) + max_output
        if upstream.price is None:
            self.unpriced.add(model)
        else:
            self.usd += (
                tokens_in * upstream.price.input_per_million + max_output * upstream.price.output_per_million
            ) / 1e6

    def lines(self) -> list[str]:
        out = [
            f"  {model}: {calls} calls, about {self.input_tokens[model]:,} input tokens, "
            f"at most {self.output_tokens[model]:,} output tokens"
            for model, calls in self.calls.items()
        ]
        priced = f"at most ${self.usd:,.2f}"
        if self.unpriced:
            priced += f" plus the calls to {', '.join(sorted(self.unpriced))} (no 'price' configured)"
        return [*out, f"  cost: {priced}"]


@dataclass
class Written:
    battles: dict[str, int] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)
    unreadable_verdicts: int = 0
    incomplete_prompts: int = 0


class Labeller:
    """Labels prompts into ``out``; with a ``budget``, no call is made that could take the spend
    past it (see :mod:`routing.offline.labelling.budget`)."""

    def __init__(self, config: LabelConfig, out: Path, budget: Budget | None = None) -> None:
        self.config = config
        self.out = out
        self.budget = budget
        self.sides: dict[Side, Upstream] = {
            "strong": config.upstreams[config.strong],
            "weak": config.upstreams[config.weak],
        }
        self._check_run_record()
        self.answer_log = Journal(out / "work" / "answers.ndjson", Answer)
        self.verdict_log = Journal(out / "work" / "verdicts.ndjson", Verdict)
        self.answers = {(a.prompt_id, a.side): a for a in self.answer_log.read()}
        self.verdicts = {(v.prompt_id, v.grading, v.subject): v for v in self.verdict_log.read()}

    def _check_run_record(self) -> None:
        record, path = RunRecord.of(self.config), self.out / RUN_FILE
        if path.exists():
            stored = RunRecord.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
            if stored != record:
                raise ConfigError(
                    f"{self.out} holds labels made with other settings ({path}); "
                    "label into a new folder, or restore those settings to continue that run"
                )
        self.record = record

    def _save_run_record(self) -> None:
        path = self.out / RUN_FILE
        if not path.exists():
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomically(path, yaml.safe_dump(self.record.model_dump(), sort_keys=False, allow_unicode=True))

    def done(self, prompt: Prompt) -> bool:
        answered = all((prompt.id, side) in self.answers for side in self.sides)
        return answered and all(
            (prompt.id, grading, subject) in self.verdicts
            for grading in self.config.grading
            for subject in SUBJECTS[grading]
        )

    def estimate(self, prompts: Sequence[Prompt]) -> Estimate:
        estimate = Estimate()
        judge_output = self.config.judge_max_tokens
        for prompt in prompts:
            lengths = {}
            for side, upstream in self.sides.items():
                known = self.answers.get((prompt.id, side))
                if known is None:
                    estimate.add(upstream, len(prompt.text), self.config.answer_max_tokens)
                lengths[side] = len(known.text) if known else self.config.answer_max_tokens * CHARS_PER_TOKEN
            for grading in self.config.grading:
                template = getattr(self.config.prompts, grading)
                for subject in SUBJECTS[grading]:
                    if (prompt.id, grading, subject) in self.verdicts:
                        continue
                    answers = lengths[subject] if grading == "single" else sum(lengths.values())
                    estimate.add(self.config.judge, len(template) + len(prompt.text) + answers, judge_output)
        return estimate

    async def run(self, prompts: Sequence[Prompt], progress: Callable[[], None]) -> dict[str, str]:
        """Labels ``prompts`` (what the journal holds of them is not asked again), ``concurrency``
        at a time; returns the prompts that failed (id → reason), which a rerun tries again."""
        self._save_run_record()
        upstreams = {side: _resilient(upstream) for side, upstream in self.sides.items()}
        judge = _resilient(self.config.judge)
        pending = iter(prompts)
        failures: dict[str, str] = {}

        async def worker() -> None:
            for prompt in pending:
                try:
                    await self._label(prompt, upstreams, judge)
                except UpstreamError as exc:
                    failures[prompt.id] = exc.message
                except BudgetExhausted as exc:
                    failures[prompt.id] = f"over budget: {exc}"
                    return  # the prompts after it would be refused alike
                progress()

        try:
            await asyncio.gather(*(worker() for _ in range(self.config.concurrency)))
        finally:
            self.answer_log.close()
            self.verdict_log.close()
            await close_connections(*(u.backend for u in (*upstreams.values(), judge)))
        return failures

    async def _label(self, prompt: Prompt, upstreams: dict[Side, ResilientUpstream], judge: ResilientUpstream) -> None:
        hold = self.budget.hold(self.bound_usd(prompt)) if self.budget is not None else None
        try:
            await self._label_within(prompt, upstreams, judge, hold)
        finally:
            if hold is not None:
                hold.release()

    def bound_usd(self, prompt: Prompt) -> float:
        """The most the calls still to make for ``prompt`` can cost; an answer not yet given
        counts as its token limit at four bytes a token."""
        total = 0.0
        lengths = {}
        for side, upstream in self.sides.items():
            known = self.answers.get((prompt.id, side))
            if known is None:
                total += call_bound_usd(upstream, len(prompt.text.encode()), self.config.answer_max_tokens)
            lengths[side] = len(known.text.encode()) if known else self.config.answer_max_tokens * CHARS_PER_TOKEN
        for grading in self.config.grading:
            template = len(getattr(self.config.prompts, grading).encode()) + len(prompt.text.encode())
            for subject in SUBJECTS[grading]:
                if (prompt.id, grading, subject) not in self.verdicts:
                    answers = lengths[subject] if grading == "single" else sum(lengths.values())
                    total += call_bound_usd(self.config.judge, template + answers, self.config.judge_max_tokens)
        return total

    async def _label_within(
        self, prompt: Prompt, upstreams: dict[Side, ResilientUpstream], judge: ResilientUpstream, hold: Hold | None
    ) -> None:
        for side, upstream in upstreams.items():
            if (prompt.id, side) not in self.answers:
                text, usage, cost = await ask_within(
                    upstream,
                    self.sides[side],
                    [ChatMessage(role="user", content=prompt.text)],
                    self.config.answer_max_tokens,
                    hold,
                )
                answer = Answer(
                    prompt_id=prompt.id,
                    side=side,
                    model=upstream.model,
                    text=text,
                    time=time.time(),
                    cost_usd=cost,
                    **usage,
                )
                self.answer_log.append(answer)
                self.answers[(prompt.id, side)] = answer
        strong, weak = self.answers[(prompt.id, "strong")].text, self.answers[(prompt.id, "weak")].text
        questions: dict[tuple[Grading, Subject], str] = {}
        prompts = self.config.prompts
        if "single" in self.config.grading:
            questions[("single", "strong")] = prompts.single_prompt(prompt.text, strong)
            questions[("single", "weak")] = prompts.single_prompt(prompt.text, weak)
        if "pairwise" in self.config.grading:
            questions[("pairwise", "strong_first")] = prompts.pairwise_prompt(prompt.text, strong, weak)
            questions[("pairwise", "weak_first")] = prompts.pairwise_prompt(prompt.text, weak, strong)
        for (grading, subject), question in questions.items():
            if (prompt.id, grading, subject) in self.verdicts:
                continue
            text, usage, cost = await ask_within(
                judge,
                self.config.judge,
                [ChatMessage(role="user", content=question)],
                self.config.judge_max_tokens,
                hold,
            )
            verdict = Verdict(
                prompt_id=prompt.id,
                grading=grading,
                subject=subject,
                text=text,
                time=time.time(),
                cost_usd=cost,
                **usage,
            )
            self.verdict_log.append(verdict)
            self.verdicts[(prompt.id, grading, subject)] = verdict

    def write(self, prompts: Sequence[Prompt], split_of: Callable[[Prompt], str] | None = None) -> Written:
        """The labels of every finished prompt, in input order, as ``train/`` and ``test/`` data
        files (replaced whole, never half-written); ``split_of`` names each prompt's split
        (default: by its hash, ``test_fraction`` of them in ``test``)."""
        names = {side: upstream.router_model_id or upstream.model for side, upstream in self.sides.items()}
        source = f"judge:{self.config.judge.model}"
        rows: dict[tuple[str, str], list[str]] = {}
        written = Written()
        for prompt in prompts:
            if not self.done(prompt):
                written.incomplete_prompts += 1
                continue
            if split_of is not None:
                split = split_of(prompt)
            else:
                split = "test" if in_test_split(prompt, self.config.test_fraction) else "train"
            verdict = {(g, s): self.verdicts[(prompt.id, g, s)].text for g in self.config.grading for s in SUBJECTS[g]}
            if "pairwise" in self.config.grading:
                first, second = (
                    read_choice(verdict[("pairwise", "strong_first")]),
                    read_choice(verdict[("pairwise", "weak_first")]),
                )
                if first is None or second is None:
                    written.unreadable_verdicts += 1
                else:
                    battle = Battle(
                        prompt=prompt.text,
                        model_a=names["strong"],
                        model_b=names["weak"],
                        winner=WINNER[pairwise_outcome(first, second)],
                        source=source,
                    )
                    rows.setdefault((split, "battles"), []).append(battle.model_dump_json(exclude_none=True))
            if "single" in self.config.grading:
                for side in self.sides:
                    rating = read_rating(verdict[("single", side)])
                    if rating is None:
                        written.unreadable_verdicts += 1
                        continue
                    score = JudgeScore(
                        prompt=prompt.text, model=names[side], score=rating, prompt_id=prompt.id, source=source
                    )
                    rows.setdefault((split, "judge_scores"), []).append(score.model_dump_json(exclude_none=True))
        for (split, kind), lines in rows.items():
            path = self.out / split / f"{kind}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, "\n".join(lines) + "\n")
            (written.battles if kind == "battles" else written.scores)[split] = len(lines)
        return written

    def spent_usd(self, since: float | None = None) -> float:
        """What the journal's calls cost (calls without a price count 0); ``since``: only the
        calls that returned at or after that time."""
        total = 0.0
        entries: list[tuple[Upstream, Answer | Verdict]] = [(self.sides[a.side], a) for a in self.answers.values()]
        entries += [(self.config.judge, v) for v in self.verdicts.values()]
        for upstream, entry in entries:
            if since is not None and (entry.time is None or entry.time < since):
                continue
            cost = entry.cost_usd
            if cost is None:
                cost = call_cost_usd(upstream, entry.prompt_tokens, entry.completion_tokens)
            total += cost or 0.0
        return total


def _resilient(upstream: Upstream) -> ResilientUpstream:
    return ResilientUpstream(make_backend(upstream), upstream)


async def ask_within(
    upstream: ResilientUpstream, config: Upstream, messages: list[ChatMessage], max_tokens: int, hold: Hold | None
) -> tuple[str, dict[str, int], float]:
    """One call, paid from ``hold``: its text, usage and cost (its bound when a priced upstream
    reports no usage)."""
    bound = call_bound_usd(config, sum(len(m.text().encode()) for m in messages), max_tokens)
    if hold is not None:
        hold.call(bound)
    request = ChatCompletionRequest(model=config.model, messages=messages, max_tokens=max_tokens, temperature=0)
    completion = await upstream.complete(request)
    usage = completion.usage
    tokens = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens} if usage else {}
    cost = call_cost_usd(config, tokens.get("prompt_tokens"), tokens.get("completion_tokens"))
    paid = bound if cost is None else cost  # without reported usage a call costs its bound
    if hold is not None:
        hold.paid(bound, paid)
    return completion.choices[0].message.content or "", tokens, paid
