"""What the judge is: its upstream, how it grades, and the instructions it is given. Settings
shared by the ``label`` command and the application config's learner; how verdicts are read is
:mod:`routing.offline.labelling.judge`'s.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from routing.upstreams.config import OpenAIUpstream

Grading = Literal["pairwise", "single"]


def _an_api(value: Any) -> Any:
    # Only an API can judge; its backend goes without saying.
    return {"backend": "openai", **value} if isinstance(value, dict) else value


JudgeUpstream = Annotated[OpenAIUpstream, BeforeValidator(_an_api)]


SINGLE = """You are grading an AI assistant's answer to a user's question. Consider how helpful, \
correct, relevant, thorough and clear the answer is. Explain your judgement in a few sentences, \
then give a rating from 1 to 10 in exactly this form: "Rating: [[5]]".

[Question]
{question}

[Answer]
{answer}"""

PAIRWISE = """You are comparing the answers of two AI assistants to the same user question. \
Decide which answer follows the question better and answers it more helpfully, correctly and \
clearly. Do not let the order of the answers, their length or the assistants' names sway you. \
Explain your decision in a few sentences, then give your verdict in exactly one of these forms: \
"[[A]]" if assistant A's answer is better, "[[B]]" if assistant B's answer is better, "[[C]]" for a tie.

[Question]
{question}

[Assistant A's answer]
{answer_a}

[Assistant B's answer]
{answer_b}"""


class JudgePrompts(BaseModel):
    """The judge's instructions; ``{question}``, ``{answer}``, ``{answer_a}`` and ``{answer_b}``
    are filled in. Stored with the labels they produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    single: str = Field(default=SINGLE, min_length=1)
    pairwise: str = Field(default=PAIRWISE, min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> JudgePrompts:
        for name, text, needed in (
            ("single", self.single, ("{question}", "{answer}")),
            ("pairwise", self.pairwise, ("{question}", "{answer_a}", "{answer_b}")),
        ):
            missing = [p for p in needed if p not in text]
            if missing:
                raise ValueError(f"the {name} prompt lacks {', '.join(missing)}")
        return self

    def single_prompt(self, question: str, answer: str) -> str:
        return _fill(self.single, question=question, answer=answer)

    def pairwise_prompt(self, question: str, answer_a: str, answer_b: str) -> str:
        return _fill(self.pairwise, question=question, answer_a=answer_a, answer_b=answer_b)


def _fill(template: str, **values: str) -> str:
    # str.format would read braces inside the user's own text as fields; one pass of plain
    # replacement fills each placeholder and leaves everything else as written.
    pattern = re.compile("|".join(re.escape("{" + k + "}") for k in values))
    return pattern.sub(lambda m: values[m.group(0)[1:-1]], template)
