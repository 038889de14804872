from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from routing.config import MFRouterConfig, RandomRouterConfig
from routing.data.convert import scores_to_battles
from routing.data.schema import Battle, JudgeScore
from routing.resources import checkpoint_path
from routing.routers import make_router
from routing.routers.mf import MFRouter, load_checkpoint, save_checkpoint
from routing.training.mf import MFTrainConfig, train_mf


def test_random_router_is_uniform_and_seedable() -> None:
    router = make_router(RandomRouterConfig(type="random", seed=7))
    scores = router.score(["p"] * 4000, None)
    assert scores.shape == (4000,) and 0 <= scores.min() and scores.max() < 1
    assert abs(scores.mean() - 0.5) < 0.03 and abs(np.median(scores) - 0.5) < 0.03
    again = make_router(RandomRouterConfig(type="random", seed=7)).score(["p"] * 4000, None)
    np.testing.assert_array_equal(scores, again)


def test_shipped_mf_checkpoint_scores_like_the_full_model() -> None:
    model, meta = load_checkpoint(checkpoint_path("builtin:mf-arena-bench-minilm"))
    assert meta.embedding_model_id == "sentence-transformers/all-MiniLM-L6-v2" and meta.embedding_dim == 384
    assert meta.default_strong == "gpt-4-1106-preview" and meta.training["decisive_battles"] > 10_000
    router = MFRouter(MFRouterConfig(type="mf"))
    embeddings = np.random.default_rng(0).standard_normal((16, 384)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    index = {name: i for i, name in enumerate(meta.model_names)}
    q = torch.from_numpy(embeddings)
    with torch.no_grad():
        margin = model(torch.full((16,), index[meta.default_strong]), q) - model(
            torch.full((16,), index[meta.default_weak]), q
        )
    np.testing.assert_allclose(router.score(["p"] * 16, embeddings), torch.sigmoid(margin).numpy(), atol=1e-5)


def test_mf_scoring_pair_is_configurable() -> None:
    embeddings = np.random.default_rng(1).standard_normal((8, 384)).astype(np.float32)
    default = MFRouter(MFRouterConfig(type="mf")).score(["p"] * 8, embeddings)
    swapped = MFRouter(
        MFRouterConfig(
            type="mf", strong_model_id="mistralai/Mixtral-8x7B-Instruct-v0.1", weak_model_id="gpt-4-1106-preview"
        )
    ).score(["p"] * 8, embeddings)
    np.testing.assert_allclose(default + swapped, 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="embeddings"):
        MFRouter(MFRouterConfig(type="mf")).score(["p"] * 2, embeddings)


def test_scores_become_battles_between_every_pair() -> None:
    rows = [JudgeScore(prompt_id="1", prompt="p", model=m, score=s) for m, s in [("c", 5), ("a", 9), ("b", 9)]]
    battles = {(b.model_a, b.model_b): b.winner for b in scores_to_battles(rows)}
    assert battles == {("a", "b"): "tie", ("a", "c"): "model_a", ("b", "c"): "model_a"}


def _keyword_embedding(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: one direction for maths prompts, another for small talk, plus noise."""
    rng = np.random.default_rng(3)
    out = rng.normal(scale=0.1, size=(len(texts), 16)).astype(np.float32)
    for i, text in enumerate(texts):
        out[i, 0 if "integral" in text else 1] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_mf_training_learns_who_wins_where(tmp_path: Path) -> None:
    battles = []
    for i in range(60):
        battles.append(Battle(prompt=f"integral number {i}", model_a="big", model_b="small", winner="model_a"))
        battles.append(
            Battle(prompt=f"hello friend {i}", model_a="big", model_b="small", winner="model_b" if i % 4 else "model_a")
        )
        battles.append(Battle(prompt=f"hello friend {i}", model_a="big", model_b="mid", winner="tie"))
    model, meta = train_mf(
        battles,
        _keyword_embedding,
        embedding_model_id="keywords",
        default_strong="big",
        default_weak="small",
        config=MFTrainConfig(epochs=60, hidden_dim=8, lr=1e-2),
        log=lambda line: None,
    )
    assert meta.model_names == ["big", "mid", "small"] and meta.training["validation_accuracy"] > 0.8
    save_checkpoint(model, meta, tmp_path / "ckpt")
    router = MFRouter(MFRouterConfig(type="mf", checkpoint=str(tmp_path / "ckpt")))
    prompts = ["integral number 999", "hello friend 999"]
    maths, chat = router.score(prompts, _keyword_embedding(prompts))
    assert maths > 0.8 and chat < 0.5
