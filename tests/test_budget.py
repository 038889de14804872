"""Budgets: ``router-<name>-$<usd>`` picks the dearest threshold whose mean cost per request on the
calibration pool, at the candidates' configured prices, is within the budget; for a pair and for
three candidates, with the table ``calibrate`` writes."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routing.calibration import calibration_path, load_calibration
from routing.config import load_app_config
from routing.errors import InvalidRequest
from routing.model_names import RouterAlias, parse_router_alias
from routing.offline.commands.prompts import read_prompts
from routing.protocol import ChatCompletionRequest, ChatMessage
from routing.resources import CHECKPOINT_DIR
from routing.serving.headers import route_headers
from routing.serving.in_process import in_process_engine
from routing.upstreams.config import Price
from testing import ROOT
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

POOL = ROOT / "data" / "calibration" / "arena-hard.jsonl.gz"
CHEAP, MID, TOP = "mistral-7b-instruct-v0.1", "gpt-3.5-turbo-0125", "gpt-4-1106-preview"
OTHER_MID = "mixtral-8x7b-instruct-v0.1"
PRICES = {"weak": (0.1, 0.2), "mid": (1.0, 2.0), "strong": (10.0, 30.0)}


def price(pair: tuple[float, float]) -> Price:
    return Price(input_per_million=pair[0], output_per_million=pair[1])


@pytest.mark.parametrize(
    ("model", "expected"),
    [("router-mf-$0.002", RouterAlias("mf", budget_usd=0.002)), ("router-mf-$0", RouterAlias("mf", budget_usd=0.0))],
)
def test_budget_syntax(model: str, expected: RouterAlias) -> None:
    assert parse_router_alias(model) == expected


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("router-mf-$", "budget '$' in 'router-mf-$' is not a number of USD after the '$'"),
        ("router-mf-$abc", "is not a number of USD"),
        ("router-mf-$-1", "budget '$-1' in 'router-mf-$-1' is negative or not finite"),
        ("router-mf-$inf", "is negative or not finite"),
    ],
)
def test_bad_budgets_are_invalid_requests(model: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("$", r"\$")) as info:
        parse_router_alias(model)
    assert info.value.status_code == 400 and info.value.param == "model" and info.value.code == "invalid_threshold"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    prompts = read_prompts(POOL)[:200]
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path, prompts


def calibrated(tmp_path: Path, pool: Path, *options: str) -> Path:
    from routing.offline.cli import main as cli

    checkpoint = tmp_path / "mf"
    shutil.copytree(CHECKPOINT_DIR / "mf", checkpoint)
    cli(["calibrate", "--router", f"mf={checkpoint}", "--prompts", str(pool), "--save", *options])
    return checkpoint


def app(strong: FakeUpstream, weak: FakeUpstream, checkpoint: Path, **router: Any) -> dict[str, Any]:
    args = fake_pair_args(strong, weak, routers={"mf": {"type": "mf", "checkpoint": str(checkpoint), **router}})
    args["upstreams"]["mid"] = {"backend": "openai", "model": "medium", "base_url": weak.base_url}
    for key, (price_in, price_out) in PRICES.items():
        args["upstreams"][key]["price"] = {"input_per_million": price_in, "output_per_million": price_out}
    for key, name in (("weak", CHEAP), ("mid", MID), ("strong", TOP)):
        args["upstreams"][key]["router_model_id"] = name
    return args


def test_a_budget_sends_the_dearest_share_within_it(
    tmp_path: Path, pool: tuple[Path, list[str]], strong: FakeUpstream, weak: FakeUpstream
) -> None:
    path, prompts = pool
    checkpoint = calibrated(tmp_path, path, "--weak", CHEAP)
    table = load_calibration(checkpoint)
    assert table is not None and table.costs is not None and table.costs.completion_tokens == 256
    prices = [price(PRICES["weak"]), price(PRICES["strong"])]
    at_30 = table.costs.mean_usd(30, prices)
    assert table.costs.mean_usd(0, prices) < at_30 < table.costs.mean_usd(100, prices)
    engine = in_process_engine(load_app_config(app(strong, weak, checkpoint)))

    async def decisions(model: str) -> list[Any]:
        return [await engine.route(model, [ChatMessage(role="user", content=p)]) for p in prompts]

    within = asyncio.run(decisions(f"router-mf-${at_30 * 1.0001:.10f}"))
    assert {d.threshold for d in within} == {table.thresholds[30]}
    assert within[0].budget_usd == pytest.approx(at_30, rel=1e-3)
    assert 100 * np.mean([d.target == "big" for d in within]) == pytest.approx(30, abs=2)
    assert {d.target for d in asyncio.run(decisions("router-mf-$1"))} == {"big"}  # room for every answer

    with pytest.raises(InvalidRequest, match=r"a budget of \$1e-09 is below the least mean cost per request") as info:
        asyncio.run(engine.route("router-mf-$0.000000001", [ChatMessage(role="user", content=prompts[0])]))
    assert info.value.code == "budget_too_low"

    request = ChatCompletionRequest(model=f"router-mf-${at_30:.10f}", messages=[{"role": "user", "content": "hi"}])
    outcome, _ = asyncio.run(engine.complete(request))
    assert route_headers(outcome)["x-route-budget"] == f"{float(f'{at_30:.10f}'):g}"


def test_three_candidates_take_a_share_and_a_budget_from_their_own_table(
    tmp_path: Path, pool: tuple[Path, list[str]], strong: FakeUpstream, weak: FakeUpstream
) -> None:
    path, prompts = pool
    checkpoint = calibrated(tmp_path, path, "--candidates", f"{CHEAP},{MID},{TOP}")
    assert load_calibration(checkpoint) == load_calibration(CHECKPOINT_DIR / "mf")  # the pair's table stays
    table = load_calibration(checkpoint, [CHEAP, MID, TOP])
    assert table is not None and table.candidates == [CHEAP, MID, TOP] and table.costs is not None
    assert [len(shares) for shares in table.costs.shares] == [3] * 101
    engine = in_process_engine(load_app_config(app(strong, weak, checkpoint, candidates=["weak", "mid", "strong"])))

    async def targets(model: str) -> list[str]:
        return [(await engine.route(model, [ChatMessage(role="user", content=p)])).target for p in prompts]

    assert 100 * np.mean([t == "big" for t in asyncio.run(targets("router-mf-30%"))]) == pytest.approx(30, abs=2)
    prices = [price(PRICES[k]) for k in ("weak", "mid", "strong")]
    budget = table.costs.mean_usd(50, prices)
    chosen = asyncio.run(targets(f"router-mf-${budget * 1.0001:.10f}"))
    assert 100 * np.mean([t == "big" for t in chosen]) == pytest.approx(50, abs=2)
    assert {"small", "medium", "big"} >= set(chosen)

    # The pair's own table serves the pair; other candidates, or a table without costs, say how to
    # make the right one.
    pair = in_process_engine(load_app_config(app(strong, weak, checkpoint, candidates=["weak", "strong"])))
    with pytest.raises(InvalidRequest, match=f"scores {TOP} against {CHEAP}, but its calibration table is for {TOP}"):
        asyncio.run(pair.route("router-mf-30%", [ChatMessage(role="user", content="hi")]))
    args = app(strong, weak, checkpoint, candidates=["weak", "mid", "strong"])
    args["upstreams"]["mid"]["router_model_id"] = OTHER_MID
    other = in_process_engine(load_app_config(args))
    with pytest.raises(InvalidRequest, match="its checkpoint has no calibration table for them") as info:
        asyncio.run(other.route("router-mf-30%", [ChatMessage(role="user", content="hi")]))
    assert f"--candidates {CHEAP},{OTHER_MID},{TOP} --save" in info.value.message
    path = calibration_path(checkpoint, [CHEAP, MID, TOP])
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in saved.items() if k != "costs"}))
    engine = in_process_engine(load_app_config(app(strong, weak, checkpoint, candidates=["weak", "mid", "strong"])))
    with pytest.raises(InvalidRequest, match="its calibration table has no costs: run calibrate --save again"):
        asyncio.run(engine.route("router-mf-$0.01", [ChatMessage(role="user", content="hi")]))


def test_a_budget_needs_every_candidates_price(
    tmp_path: Path, pool: tuple[Path, list[str]], strong: FakeUpstream, weak: FakeUpstream
) -> None:
    args = app(strong, weak, calibrated(tmp_path, pool[0], "--weak", CHEAP))
    del args["upstreams"]["strong"]["price"]
    engine = in_process_engine(load_app_config(args))
    with pytest.raises(InvalidRequest, match=r"upstreams.strong.price is not set") as info:
        asyncio.run(engine.route("router-mf-$0.01", [ChatMessage(role="user", content="hi")]))
    assert info.value.code == "no_prices"


def test_calibrate_names_bad_candidate_options(capsys: pytest.CaptureFixture[str]) -> None:
    from routing.offline.cli import main as cli

    for options, message in (
        (["--router", "mf", "--candidates", f"{CHEAP},{TOP}"], "--candidates: name three or more models"),
        (["--router", "bert", "--candidates", f"{CHEAP},{MID},{TOP}"], "a bert router scores only its own pair"),
        (["--router", "mf", "--candidates", f"{CHEAP},{MID},{TOP}", "--strong", TOP], "leave out --strong"),
        (["--router", "mf", "--candidates", f"{CHEAP},gpt-9,{TOP}"], "'gpt-9' is not one the checkpoint was"),
    ):
        with pytest.raises(SystemExit):
            cli(["calibrate", *options])
        assert message in capsys.readouterr().err
