"""Thresholds for a share of strong calls: the tables, the CLI, the ``router-<name>-<p>%`` syntax
and router defaults changed at run time."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routing.calibration import CALIBRATION_FILE, CalibrationTable, load_calibration
from routing.config import load_app_config
from routing.errors import InvalidRequest
from routing.model_names import RouterAlias, parse_router_alias
from routing.offline.commands.prompts import read_prompts
from routing.protocol import ChatMessage
from routing.resources import CHECKPOINT_DIR
from routing.routers.checkpoint import CheckpointError
from routing.routers.kind import RouterDefaults
from routing.serving.in_process import in_process_engine
from routing.serving.preflight import check_routers
from routing.settings import ConfigError
from testing import ROOT
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

POOL = ROOT / "data" / "calibration" / "arena-hard.jsonl.gz"


def test_table_thresholds_send_the_asked_share() -> None:
    scores = np.random.default_rng(0).beta(2, 8, size=1000)  # far below 0.5, like MF's
    table = CalibrationTable.from_scores("mf", "pool", scores)
    assert table.threshold(0) == 1.0 and table.threshold(100) == 0.0
    assert all(a >= b for a, b in zip(table.thresholds, table.thresholds[1:], strict=False))
    for percent in (5, 12.5, 30, 50, 80):
        share = 100 * np.mean(scores >= table.threshold(percent))
        assert share == pytest.approx(percent, abs=0.2)
    assert table.threshold(30) < 0.5
    with pytest.raises(ValueError, match="percentage"):
        table.threshold(101)


def test_a_pair_table_names_its_candidates_and_one_saved_with_the_pair_keys_reads_alike(tmp_path: Path) -> None:
    shipped = load_calibration(CHECKPOINT_DIR / "mf")
    assert shipped is not None and shipped.candidates == ["mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"]
    saved = shipped.model_dump(exclude={"candidates"}) | {
        "strong_model": "gpt-4-1106-preview",
        "weak_model": "mixtral-8x7b-instruct-v0.1",
    }
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(saved))
    assert load_calibration(tmp_path) == shipped


@pytest.mark.parametrize(
    ("model", "expected"),
    [("router-mf-30%", RouterAlias("mf", strong_percent=30.0)), ("router-bert-12.5%", RouterAlias("bert", None, 12.5))],
)
def test_share_syntax(model: str, expected: RouterAlias) -> None:
    assert parse_router_alias(model) == expected


@pytest.mark.parametrize(
    "model", ["router-mf-130%", "router-mf-%", "router-mf-abc%", "router-mf--5%", "router-mf-inf%"]
)
def test_bad_shares_are_invalid_requests(model: str) -> None:
    with pytest.raises(InvalidRequest, match="percentage") as info:
        parse_router_alias(model)
    assert info.value.status_code == 400 and info.value.param == "model"


@pytest.mark.parametrize("kind", ["random", "sw_ranking", "mf", "ensemble", "bert", "causal_llm"])
def test_every_shipped_checkpoint_has_a_table_from_the_arena_hard_pool(kind: str) -> None:
    table = load_calibration(CHECKPOINT_DIR / kind)
    assert table is not None and table.router == kind
    assert table.pool == "data/calibration/arena-hard.jsonl.gz" and table.prompts == len(read_prompts(POOL)) == 1250
    assert all(a >= b for a, b in zip(table.thresholds, table.thresholds[1:], strict=False))
    # What each threshold sends where, to price budgets: the weak and strong candidates' shares.
    assert table.costs is not None and table.costs.completion_tokens == 256
    assert [share.share for share in table.costs.shares[0]] == [1.0, 0.0]
    assert [share.share for share in table.costs.shares[100]] == [0.0, 1.0]


def test_calibrate_then_route_by_share(tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream) -> None:
    """The command's table, saved with a checkpoint, makes ``router-mf-30%`` send 30 % (± 2
    points) of the pool to the strong model through the whole request path."""
    from routing.offline.cli import main as cli

    checkpoint = tmp_path / "mf"
    shutil.copytree(CHECKPOINT_DIR / "mf", checkpoint)
    (checkpoint / CALIBRATION_FILE).unlink()
    pool = tmp_path / "pool.jsonl"
    prompts = read_prompts(POOL)[:300]
    pool.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))

    # The table's thresholds themselves: share control off (it would take over after 200 requests).
    routers: dict[str, dict[str, Any]] = {"mf": {"type": "mf", "checkpoint": str(checkpoint), "share_control": "off"}}
    config = load_app_config(fake_pair_args(strong, weak, routers=routers))
    routers["mf"]["default_strong_percent"] = 30
    with pytest.raises(ConfigError, match=r"args\.routers\.mf\.default_strong_percent: .*no calibration table"):
        check_routers(load_app_config(fake_pair_args(strong, weak, routers=routers)))
    engine = in_process_engine(config)
    with pytest.raises(InvalidRequest, match="calibrate --router mf="):
        asyncio.run(engine.route("router-mf-30%", [ChatMessage(role="user", content=prompts[0])]))
    # Nor can it take a default share (its Router's user_config would be refused and shown).
    uncalibrated = engine.rankers["mf"].router  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="default_strong_percent: .*calibrate --router mf="):
        uncalibrated.set_defaults(RouterDefaults(default_strong_percent=70))
    assert uncalibrated.defaults.default_strong_percent is None

    cli(["calibrate", "--router", f"mf={checkpoint}", "--prompts", str(pool), "--strong-percent", "30", "--save"])
    engine = in_process_engine(config)

    async def strong_share(model: str) -> float:
        decisions = [await engine.route(model, [ChatMessage(role="user", content=p)]) for p in prompts]
        assert all(d.router == "mf" for d in decisions)
        return 100 * np.mean([d.target == "big" for d in decisions])

    assert asyncio.run(strong_share("router-mf-30%")) == pytest.approx(30, abs=2)
    assert asyncio.run(strong_share("router-mf-70%")) == pytest.approx(70, abs=2)
    decision = asyncio.run(engine.route("router-mf-30%", [ChatMessage(role="user", content=prompts[0])]))
    assert decision.strong_percent == 30 and decision.threshold == pytest.approx(
        load_calibration(checkpoint).threshold(30)  # type: ignore[union-attr]
    )

    # Router defaults at run time (its Router's user_config sets them): a share, then a raw threshold.
    router = engine.rankers["mf"].router  # type: ignore[attr-defined]
    router.set_defaults(RouterDefaults(default_strong_percent=70))
    assert asyncio.run(strong_share("router-mf")) == pytest.approx(70, abs=2)
    router.set_defaults(RouterDefaults(default_threshold=1.0))
    assert asyncio.run(strong_share("router-mf")) == 0

    # A checkpoint swapped in brings its own table; a missing one is refused and changes nothing.
    router.swap_to("builtin:mf")
    shipped = load_calibration(CHECKPOINT_DIR / "mf").threshold(30)  # type: ignore[union-attr]
    assert asyncio.run(engine.route("router-mf-30%", [ChatMessage(role="user", content="hi")])).threshold == shipped
    with pytest.raises(
        CheckpointError, match=r"user_config.checkpoint: checkpoint directory '/nowhere' does not exist"
    ):
        router.swap_to("/nowhere")
    assert asyncio.run(engine.route("router-mf-30%", [ChatMessage(role="user", content="hi")])).threshold == shipped


def test_share_needs_a_table_for_the_scored_pair(strong: FakeUpstream, weak: FakeUpstream) -> None:
    """A table measured for one pair of models says nothing about another pair's scores."""
    routers = {"mf": {"type": "mf", "strong_model_id": "gpt-4o-2024-05-13", "weak_model_id": "llama-13b"}}
    engine = in_process_engine(load_app_config(fake_pair_args(strong, weak, routers=routers)))
    with pytest.raises(InvalidRequest, match="scores gpt-4o-2024-05-13 against llama-13b, but its calibration"):
        asyncio.run(engine.route("router-mf-30%", [ChatMessage(role="user", content="hi")]))
    assert asyncio.run(engine.route("router-mf-0.5", [ChatMessage(role="user", content="hi")])).strong_percent is None
