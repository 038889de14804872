"""Routers: each learns a planted signal, survives save → load, and the shipped checkpoints load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.cli import main as cli
from routing.offline.data.files import write_jsonl
from routing.offline.data.schema import Battle
from routing.offline.training import classifier, mf, sw_ranking
from routing.offline.training.common import Trained
from routing.resources import CHECKPOINT_DIR, checkpoint_path
from routing.routers.checkpoint import CheckpointError, load_manifest, save
from routing.routers.classifier import ClassifierRouter
from routing.routers.kinds import (
    BertRouterConfig,
    CausalLLMRouterConfig,
    MFRouterConfig,
    RandomRouterConfig,
    SWRankingRouterConfig,
    load_router,
)
from routing.routers.mf import MFRouter, load_model
from routing.routers.sw_ranking import SWRankingRouter

MATHS = [
    "Compute the definite integral of x^{n} sin(x) from 0 to {n}.",
    "Prove that the sum of the first {n} odd numbers is a perfect square.",
    "Solve the differential equation y'' + {n}y = 0 with y(0)=1.",
    "Find all real roots of x^3 - {n}x + 1 = 0 and justify each step.",
]
CHAT = [
    "Hi! Can you suggest a fun name for my pet hamster number {n}?",
    "Say hello to my friend Sam, it is their birthday number {n} today.",
    "What is a nice greeting to start an email to a colleague, version {n}?",
    "Tell me something cheerful, I feel a bit bored this afternoon ({n}).",
]


def prompts(templates: list[str], numbers: range) -> list[str]:
    return [t.format(n=n) for n in numbers for t in templates]


def planted_battles() -> list[Battle]:
    """The strong model 'big' wins maths prompts; on small talk the weak 'small' is as good or better."""
    battles = []
    rng = np.random.default_rng(0)
    for prompt in prompts(MATHS, range(2, 30)):
        battles.append(
            Battle(prompt=prompt, model_a="big", model_b="small", winner="model_a" if rng.random() < 0.9 else "tie")
        )
        battles.append(Battle(prompt=prompt, model_a="mid", model_b="small", winner="model_a"))
    for prompt in prompts(CHAT, range(2, 30)):
        battles.append(
            Battle(prompt=prompt, model_a="big", model_b="small", winner="model_b" if rng.random() < 0.6 else "tie")
        )
        battles.append(Battle(prompt=prompt, model_a="big", model_b="mid", winner="tie"))
    return battles


HELD_OUT = prompts(MATHS, range(100, 115)) + prompts(CHAT, range(100, 115))
IS_MATHS = np.array([True] * 60 + [False] * 60)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    pos, neg = scores[positive][:, None], scores[~positive][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


# What mf and sw_ranking need besides battles, embeddings and their own config.
PAIR: dict = {
    "embedding_model_id": "minilm",
    "default_strong": "big",
    "default_weak": "small",
    "log": lambda line: None,
}


@pytest.fixture(scope="module")
def encoder() -> LocalEmbedder:
    return LocalEmbedder(LocalEmbedding())


def held_out_scores(router: object, embed: Callable[[list[str]], np.ndarray] | None) -> np.ndarray:
    return router.score(HELD_OUT, embed(HELD_OUT) if embed else None)  # type: ignore[attr-defined]


def test_random_router_is_chance(tmp_path: Path) -> None:
    cli(["train", "random", "--data", str(_battle_file(tmp_path)), "--out", str(tmp_path / "random")])
    router = load_router(RandomRouterConfig(type="random", checkpoint=str(tmp_path / "random")))
    scores = router.score(["p"] * 4000, None)
    assert 0 <= scores.min() and scores.max() < 1 and abs(scores.mean() - 0.5) < 0.03
    assert abs(auc(held_out_scores(router, None), IS_MATHS) - 0.5) < 0.15
    again = load_router(RandomRouterConfig(type="random", checkpoint=str(tmp_path / "random"))).score(
        ["p"] * 4000, None
    )
    np.testing.assert_array_equal(scores, again)


def test_sw_ranking_learns_the_planted_signal(tmp_path: Path, encoder: LocalEmbedder) -> None:
    trained = sw_ranking.build(planted_battles(), encoder.encode, config=sw_ranking.SWRankingTrainConfig(), **PAIR)
    assert sorted(trained.manifest.params["tiers"].values()) == [0, 1, 2]
    in_memory = SWRankingRouter(
        trained.manifest, trained.tensors["prompt_embeddings"].float().numpy(), trained.tensors["tier_wins"].numpy()
    )
    scores = held_out_scores(in_memory, encoder.encode)
    assert auc(scores, IS_MATHS) >= 0.9 and scores[IS_MATHS].mean() > 0.5 > scores[~IS_MATHS].mean()
    save(tmp_path / "sw", trained.manifest, trained.tensors)
    loaded = load_router(SWRankingRouterConfig(type="sw_ranking", checkpoint=str(tmp_path / "sw")))
    np.testing.assert_allclose(held_out_scores(loaded, encoder.encode), scores, rtol=1e-9)
    assert trained.manifest.training.metrics["validation_accuracy"] > 0.8


def test_mf_learns_the_planted_signal_for_any_known_pair(tmp_path: Path, encoder: LocalEmbedder) -> None:
    config = mf.MFTrainConfig(epochs=40, hidden_dim=16, lr=1e-2)
    trained = mf.train(planted_battles(), encoder.encode, config=config, **PAIR)
    save(tmp_path / "mf", trained.manifest, trained.tensors)
    router = MFRouter(tmp_path / "mf")
    scores = held_out_scores(router, encoder.encode)
    assert auc(scores, IS_MATHS) >= 0.9

    # The collapsed serving form equals the paper's full model, loaded from disk.
    model = load_model(tmp_path / "mf")
    q = torch.from_numpy(encoder.encode(HELD_OUT))
    with torch.no_grad():
        margin = model(torch.zeros(len(q), dtype=torch.long), q) - model(torch.full((len(q),), 2), q)
    np.testing.assert_allclose(scores, torch.sigmoid(margin).numpy(), atol=1e-5)

    # Many-model: the same checkpoint scores another pair, chosen by config or by the upstreams.
    swapped = load_router(MFRouterConfig(type="mf", checkpoint=str(tmp_path / "mf")), ("small", "big"))
    np.testing.assert_allclose(held_out_scores(swapped, encoder.encode) + scores, 1.0, atol=1e-5)
    with pytest.raises(CheckpointError, match="'gpt-5' is not one the checkpoint was trained on"):
        load_router(MFRouterConfig(type="mf", checkpoint=str(tmp_path / "mf"), strong_model_id="gpt-5"))


def _classifier_round_trip(tmp_path: Path, trained: Trained, kind: str) -> np.ndarray:
    save(tmp_path / kind, trained.manifest, trained.tensors)
    config = (BertRouterConfig if kind == "bert" else CausalLLMRouterConfig)(type=kind, checkpoint=str(tmp_path / kind))
    router = load_router(config)
    scores = held_out_scores(router, None)
    assert auc(scores, IS_MATHS) >= 0.9
    # Loaded twice from disk: the same scores; and the held-out loss recorded at training time is
    # reproduced by the loaded weights.
    again = ClassifierRouter(tmp_path / kind, kind)  # type: ignore[arg-type]
    np.testing.assert_allclose(again.score(HELD_OUT), scores, atol=1e-6)
    return scores


def test_bert_classifier_learns_the_planted_signal(tmp_path: Path) -> None:
    config = classifier.ClassifierTrainConfig(
        kind="bert", strong_models=["big"], weak_models=["small"], epochs=4, lr=2e-3, max_length=32
    )
    trained = classifier.train(planted_battles(), config, log=lambda line: None)
    assert trained.manifest.params["mode"] == "lora" and all(k.startswith(("head.", "lora.")) for k in trained.tensors)
    _classifier_round_trip(tmp_path, trained, "bert")


def test_causal_llm_classifier_learns_the_planted_signal(tmp_path: Path) -> None:
    config = classifier.ClassifierTrainConfig(
        kind="causal_llm", strong_models=["big"], weak_models=["small"], max_length=32
    )
    trained = classifier.train(planted_battles(), config, log=lambda line: None)
    assert trained.manifest.params["mode"] == "head" and set(trained.tensors) == {"head.weight", "head.bias"}
    _classifier_round_trip(tmp_path, trained, "causal_llm")
    with pytest.raises(ValueError, match="needs --device cuda"):
        classifier.ClassifierTrainConfig(kind="causal_llm", mode="full")


def _battle_file(tmp_path: Path) -> Path:
    path = tmp_path / "battles.jsonl"
    write_jsonl(path, planted_battles()[:60])
    return path


def test_cli_trains_a_tiny_checkpoint_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _battle_file(tmp_path)
    out = tmp_path / "mf"
    cli(["train", "mf", "--data", str(data), "--out", str(out), "--epochs", "2", "--strong", "big", "--weak", "small"])
    assert "saved" in capsys.readouterr().out
    manifest = load_manifest(out, "mf")
    assert manifest.models == ["big", "mid", "small"] and manifest.embedding is not None
    assert manifest.training.data[0].file == "battles.jsonl" and manifest.training.data[0].rows == 60
    scores = load_router(MFRouterConfig(type="mf", checkpoint=str(out))).score(["x"], np.ones((1, 384), np.float32))
    assert 0 < scores[0] < 1

    # Reproducible: the same command gives the same manifest and weights.
    cli(
        [
            "train",
            "mf",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "again"),
            "--epochs",
            "2",
            "--strong",
            "big",
            "--weak",
            "small",
        ]
    )
    assert (tmp_path / "again" / "manifest.json").read_text() == (out / "manifest.json").read_text()
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_cli_names_the_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "a"}\n')
    with pytest.raises(SystemExit) as exit_:
        cli(["train", "sw_ranking", "--data", str(bad), "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2
    assert f"{bad}: row 1: field 'winner'" in capsys.readouterr().err


SHIPPED = ["random", "sw_ranking", "mf", "bert", "causal_llm"]


def test_shipped_checkpoints_are_small_licensed_and_load(encoder: LocalEmbedder) -> None:
    size = sum(p.stat().st_size for p in CHECKPOINT_DIR.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    configs = [
        RandomRouterConfig(type="random"),
        SWRankingRouterConfig(type="sw_ranking"),
        MFRouterConfig(type="mf"),
        BertRouterConfig(type="bert"),
        CausalLLMRouterConfig(type="causal_llm"),
    ]
    sample = [
        "What is 2+2?",
        "Prove that there are infinitely many primes, then generalise to primes of the form 4k+3.",
    ]
    for kind, config in zip(SHIPPED, configs, strict=True):
        manifest = load_manifest(checkpoint_path(config.checkpoint), kind)  # type: ignore[arg-type]
        assert set(manifest.training.data_licences) <= {"Apache-2.0", "MIT"}, kind
        if kind != "random":
            assert manifest.training.metrics["validation_accuracy"] > 0.5, kind
            assert json.loads(manifest.model_dump_json())["training"]["data"], kind
        scores = load_router(config).score(sample, encoder.encode(sample))
        assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all(), kind


def _flipped(battle: Battle) -> Battle:
    flip = {"model_a": "model_b", "model_b": "model_a"}
    return battle.model_copy(update={"winner": flip.get(battle.winner, battle.winner)})


@pytest.mark.parametrize("kind", ["mf", "sw_ranking"])
def test_weight_per_source_decides_between_conflicting_data(tmp_path: Path, encoder: LocalEmbedder, kind: str) -> None:
    planted, flipped = tmp_path / "planted.jsonl", tmp_path / "flipped.jsonl"
    write_jsonl(planted, planted_battles())
    write_jsonl(flipped, [_flipped(b) for b in planted_battles()])
    aucs = {}
    for favoured in (planted, flipped):
        out = tmp_path / f"{kind}-{favoured.stem}"
        options = ["--epochs", "30", "--lr", "0.01"] if kind == "mf" else []
        cli(
            ["train", kind, "--data", str(planted), "--data", str(flipped), "--weight", f"{favoured}=4"]
            + ["--strong", "big", "--weak", "small", "--out", str(out), *options]
        )
        router = load_router(
            MFRouterConfig(type="mf", checkpoint=str(out))
            if kind == "mf"
            else SWRankingRouterConfig(type="sw_ranking", checkpoint=str(out))
        )
        aucs[favoured.stem] = auc(held_out_scores(router, encoder.encode), IS_MATHS)
        assert {(f.file, f.weight) for f in load_manifest(out).training.data} == {
            (planted.name, 4.0 if favoured == planted else 1.0),
            (flipped.name, 4.0 if favoured == flipped else 1.0),
        }
    assert aucs["planted"] >= 0.8 and aucs["flipped"] <= 0.2


def test_a_weight_names_a_data_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _battle_file(tmp_path)
    for weight, message in (("other.jsonl=2", "not one of the --data references"), (f"{data}=0", "above 0")):
        with pytest.raises(SystemExit) as exit_:
            cli(["train", "mf", "--data", str(data), "--weight", weight, "--out", str(tmp_path / "x")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_an_option_the_kinds_trainer_does_not_take_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _battle_file(tmp_path)
    for kind, option, message in (
        ("mf", ["--mode", "lora"], "--mode: the mf trainer takes no such option"),
        ("random", ["--epochs", "3"], "--epochs: the random trainer takes no such option"),
        ("bert", ["--strong", "big"], "--strong: the bert trainer takes no such option"),
        ("mf", ["--epochs", "0"], "--epochs: Input should be greater than or equal to 1"),
    ):
        with pytest.raises(SystemExit) as exit_:
            cli(["train", kind, "--data", str(data), *option, "--out", str(tmp_path / "x")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_classifier_weights_decide_between_conflicting_data(tmp_path: Path) -> None:
    battles = planted_battles() + [_flipped(b) for b in planted_battles()]
    half = len(battles) // 2
    config = classifier.ClassifierTrainConfig(
        kind="bert", mode="head", strong_models=["big"], weak_models=["small"], epochs=60, lr=1e-2, max_length=32
    )
    aucs = []
    for n, weights in enumerate(([4.0] * half + [1.0] * half, [1.0] * half + [4.0] * half)):
        trained = classifier.train(battles, config, weights=weights, log=lambda line: None)
        save(tmp_path / str(n), trained.manifest, trained.tensors)
        router = load_router(BertRouterConfig(type="bert", checkpoint=str(tmp_path / str(n))))
        aucs.append(auc(held_out_scores(router, None), IS_MATHS))
    assert aucs[0] >= 0.8 and aucs[1] <= 0.2
