"""How often a conversation's follow-up, decided afresh, would leave the model its first turn
went to: every shipped router, each way of scoring a conversation, on MT Bench's two-turn
questions (``data/eval/mt_bench_turns.jsonl.gz``, 72 conversations).

    python -m bench.conversations --out docs/conversations/follow_ups.md

Each router of ``serve_config.all_routers.yaml`` decides in this process (its checkpoint, its
MiniLM embeddings, no model called) at the threshold its calibration table gives its default share
(50 %; share control off, so that no live threshold moves between the two turns): the first turn
alone, then the follow-up as the service scores it (``conversation.scored``); ``random``'s coin
shows what switching by chance looks like. A switch
down is what ``escalate_only`` (the default stickiness) holds back; a switch up is what it lets
through; ``never`` holds both. Writes a markdown table (``--out``) and its JSON beside it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from bench.report import write_table
from routing.config import load_app_config
from routing.offline.data.files import records
from routing.protocol import ChatMessage
from routing.routers.conversation_settings import Scored
from routing.routers.kind import DEFAULT_STRONG_PERCENT
from routing.serving.conversation import scored_text
from routing.serving.engine import RoutingEngine
from routing.serving.in_process import in_process_engine
from testing import ROOT
from testing.apps import shipped_config

CONFIG = "serve_config.all_routers.yaml"
TURNS = ROOT / "data" / "eval" / "mt_bench_turns.jsonl.gz"
NOBODY = "http://127.0.0.1:9/v1"  # routing decisions only: no upstream is called
ANSWER = "(the first answer)"  # never scored


class Switches(BaseModel):
    router: str
    scored: str
    conversations: int
    up_percent: float
    down_percent: float

    @property
    def any_percent(self) -> float:
        return self.up_percent + self.down_percent


async def switches(engine: RoutingEngine, router: str, conversations: list[list[str]]) -> list[Switches]:
    models = [engine.config.upstreams[c.key].model for c in engine.candidates[router]]
    alias = f"router-{router}-{DEFAULT_STRONG_PERCENT:g}%"  # share control off: the table's threshold

    async def chosen(text: str) -> int:
        decision = await engine.route(alias, [ChatMessage(role="user", content=text)])
        return models.index(decision.target)

    first = [await chosen(turns[0]) for turns in conversations]
    measured = []
    for scored in get_args(Scored):
        follow = []
        for turns in conversations:
            convo = [
                ChatMessage(role="user", content=turns[0]),
                ChatMessage(role="assistant", content=ANSWER),
                ChatMessage(role="user", content=turns[1]),
            ]
            follow.append(await chosen(scored_text(convo, scored, engine.config.limits.router_prompt_chars)))
        n = len(conversations)
        up = sum(f > s for f, s in zip(follow, first, strict=True))
        down = sum(f < s for f, s in zip(follow, first, strict=True))
        measured.append(Switches(router=router, scored=scored, conversations=n, up_percent=100 * up / n,
                                 down_percent=100 * down / n))  # fmt: skip
    return measured


def report(measured: list[Switches]) -> str:
    lines = [
        "# A conversation's follow-up, decided afresh",
        "",
        "Output of `python -m bench.conversations`: the 72 two-turn MT Bench questions, each router of",
        f"`{CONFIG}` at its table's threshold for {DEFAULT_STRONG_PERCENT:g} %, the first turn alone, then the",
        "follow-up as `conversation.scored` scores it. Up: the follow-up would go to a more capable",
        "candidate than the first turn (what `escalate_only` lets through); down: to a cheaper one (what it",
        "holds back).",
        "",
        "| router | scored | switches, % | up, % | down, % |",
        "|---|---|---:|---:|---:|",
    ]
    for m in measured:
        lines.append(f"| {m.router} | {m.scored} | {m.any_percent:.1f} | {m.up_percent:.1f} | {m.down_percent:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="the markdown table; the JSON goes beside it")
    args = parser.parse_args()
    conversations = [list(row["turns"]) for _, row in records(TURNS)]
    application = shipped_config(NOBODY, file=CONFIG)["applications"][0]
    app_args = application["args"]
    for router in app_args["routers"].values():
        router["share_control"] = "off"
    config = load_app_config(app_args).resolve_env({})
    engine = in_process_engine(config)
    measured: list[Switches] = []
    for router in config.routers:
        measured += asyncio.run(switches(engine, router, conversations))
        print("\n".join(m.model_dump_json() for m in measured[-2:]), flush=True)
    write_table(args.out, report(measured), measured)


if __name__ == "__main__":
    main()
