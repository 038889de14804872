"""The registry of router kinds: every part of a kind is found through it, and a kind from
outside the package, registered alone, is configured, calibrated, evaluated and served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import openai
import pytest

from routing.config import load_app_config
from routing.offline.commands.calibrate import calibrate
from routing.offline.commands.evaluate import evaluate
from routing.offline.evaluation.report import LENGTH_BASELINE
from routing.routers.kind import Registry, RouterKind, RouterSettings, resolve
from routing.routers.kinds import KINDS
from routing.serving.live_router import checkpoint_id
from routing.settings import ConfigError
from testing import ROOT
from testing.apps import fake_pair_args
from testing.cluster import in_process
from testing.fake_upstream import FakeUpstream
from tests.toy_kind import TOY, make_checkpoint

SHORT, LONG = "Hi there!", "Prove that every bounded monotone sequence of real numbers converges, step by step. " * 2


def test_every_built_in_kind_names_parts_that_exist() -> None:
    assert KINDS.names()[:6] == ["random", "sw_ranking", "mf", "ensemble", "bert", "causal_llm"]
    for name in ("random", "sw_ranking", "mf", "ensemble", "bert", "causal_llm"):
        kind = KINDS.get(name)
        for ref in (kind.load, kind.trainer, kind.in_domain):
            assert ref is None or callable(resolve(ref)), (name, ref)
        assert kind.settings().checkpoint == f"builtin:{name}"


def test_a_kind_is_registered_once_and_its_config_names_it() -> None:
    registry = Registry()
    registry.register(TOY)
    registry.register(TOY)  # the same kind again, as a module imported twice: nothing changes
    with pytest.raises(ValueError, match="'toy' is already registered"):
        registry.register(RouterKind(name="toy", config=TOY.config, load=TOY.load, needs_embeddings=True))

    class Misnamed(RouterSettings):
        type: Literal["other"]

    with pytest.raises(ValueError, match="must be Literal\\['wrong'\\]"):
        RouterKind(name="wrong", config=Misnamed, load=TOY.load, needs_embeddings=False)


def test_an_unknown_router_type_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"args\.routers\.x: unknown router type 'nope' \(types: random, sw_ranking"):
        load_app_config({"routers": {"x": {"type": "nope"}}})


def test_a_kind_registered_alone_is_configured_calibrated_and_evaluated(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "toy")
    config = load_app_config({"routers": {"toy": {"type": "toy", "checkpoint": str(checkpoint)}}})
    assert type(config.routers["toy"]).__name__ == "ToyRouterConfig"
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"prompt": "x" * n}) + "\n" for n in range(1, 101)))
    table = calibrate(f"toy={checkpoint}", pool, [30], save=True, echo=lambda line: None)
    assert table.threshold(30) == pytest.approx(0.71)

    reports = evaluate(
        [str(ROOT / "data" / "eval" / "mt_bench.jsonl.gz")], routers=[f"toy={checkpoint}", "random"], seeds=2, folds=2
    )
    out_of_domain, in_domain = reports
    assert "toy@toy" in {r.router for r in out_of_domain.results}
    # It has no in-domain refit: that table leaves it out rather than guessing one.
    assert [r.router for r in in_domain.results] == ["random (2 seeds)", LENGTH_BASELINE, "optimal"]


@pytest.mark.cluster
def test_a_kind_registered_alone_is_served_through_the_graph(
    tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    checkpoint = make_checkpoint(tmp_path / "toy")
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"prompt": "x" * n}) + "\n" for n in range(1, 101)))
    calibrate(f"toy={checkpoint}", pool, [30], save=True, echo=lambda line: None)
    routers = {"toy": {"type": "toy", "checkpoint": str(checkpoint)}, "random": {"type": "random"}}
    with in_process(fake_pair_args(strong, weak, routers=routers)) as cluster:
        client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key="unused", max_retries=0)
        assert "router-toy" in {m.id for m in client.models.list()}
        for prompt, model, answered_by in ((SHORT, "router-toy-0.5", "small"), (LONG, "router-toy-0.5", "big")):
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )
            assert raw.headers["x-route-router"] == "toy" and raw.parse().model == answered_by
            assert raw.headers["x-route-checkpoint"] == checkpoint_id(checkpoint)
            assert float(raw.headers["x-route-score"]) == pytest.approx(min(1.0, len(prompt) * 0.01))
        raw = client.chat.completions.with_raw_response.create(
            model="router-toy-30%", messages=[{"role": "user", "content": "y" * 80}]
        )
        assert float(raw.headers["x-route-threshold"]) == pytest.approx(0.71) and raw.parse().model == "big"
