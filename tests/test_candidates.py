"""Routing among more than two candidates: the cheapest one predicted to be as good as the most
capable, by the shipped mf and sw_ranking checkpoints, checked against their pairwise scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from routing.errors import InvalidRequest
from routing.resources import checkpoint_path
from routing.routers.checkpoint import CheckpointError, load_manifest, save
from routing.routers.kind import Candidate
from routing.routers.kinds import MFRouterConfig, SWRankingRouterConfig, load_router
from routing.routers.learned_forms import LINEAR_FORM
from routing.serving.live_router import LiveRouter, Ranking, RankQuery

CHEAP, MID, TOP = "mistral-7b-instruct-v0.1", "gpt-3.5-turbo-0125", "gpt-4-1106-preview"
EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"


def candidates(*ids: str) -> list[Candidate]:
    keys = ["cheap", "mid", "top"] if len(ids) == 3 else ["cheap", "top"]
    return [Candidate(key=key, model=f"{key}-model", router_model_id=i) for key, i in zip(keys, ids, strict=True)]


def embeddings(count: int) -> np.ndarray:
    rows = np.random.default_rng(0).normal(size=(count, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def rank(router: LiveRouter, rows: np.ndarray, threshold: float) -> list[Ranking]:
    rankings = router.rank([RankQuery(f"p{i}", row, threshold=threshold) for i, row in enumerate(rows)])
    assert all(isinstance(r, Ranking) for r in rankings)
    return rankings  # type: ignore[return-value]


@pytest.mark.parametrize("config", [MFRouterConfig(type="mf"), SWRankingRouterConfig(type="sw_ranking")])
def test_the_first_choice_is_the_cheapest_candidate_predicted_as_good_as_the_most_capable(config) -> None:
    rows = embeddings(64)
    router = LiveRouter("r", config, candidates(CHEAP, MID, TOP), EMBEDDING_ID)
    beats_cheap = load_router(config, (TOP, CHEAP)).score([""] * len(rows), rows)
    beats_mid = load_router(config, (TOP, MID)).score([""] * len(rows), rows)
    firsts = set()
    between = (np.median(beats_cheap) + np.median(beats_mid)) / 2
    for threshold in (0.0, np.median(beats_mid), between, np.median(beats_cheap), 1.0):
        for ranking, p_cheap, p_mid in zip(rank(router, rows, threshold), beats_cheap, beats_mid, strict=True):
            expected = "cheap" if p_cheap < threshold else "mid" if p_mid < threshold else "top"
            assert ranking.order[0] == expected
            # Then the more capable candidates in turn, then the cheaper ones: every candidate once.
            assert ranking.order == {"cheap": ("cheap", "mid", "top"), "mid": ("mid", "top", "cheap")}.get(
                expected, ("top", "mid", "cheap")
            )
            assert ranking.score == pytest.approx(min(p_cheap, p_mid), abs=1e-6)
            assert (ranking.score >= threshold) == (expected == "top")
            assert dict(ranking.candidates) == pytest.approx({"cheap": 1 - p_cheap, "mid": 1 - p_mid, "top": 1.0})
            firsts.add(expected)
    assert firsts == {"cheap", "mid", "top"}
    assert {r.order[0] for r in rank(router, rows, 0.0)} == {"top"}
    assert {r.order[0] for r in rank(router, rows, 1.0)} == {"cheap"}


def test_two_candidates_route_as_the_pair_did() -> None:
    rows = embeddings(32)
    router = LiveRouter("mf", MFRouterConfig(type="mf"), candidates(CHEAP, TOP), EMBEDDING_ID)
    scores = load_router(MFRouterConfig(type="mf"), (TOP, CHEAP)).score([""] * len(rows), rows)
    threshold = float(np.median(scores))
    for ranking, score in zip(rank(router, rows, threshold), scores, strict=True):
        assert ranking.score == pytest.approx(score, abs=1e-6)
        assert ranking.order == (("top", "cheap") if score >= threshold else ("cheap", "top"))


def test_a_candidate_the_checkpoint_does_not_know_is_named() -> None:
    with pytest.raises(CheckpointError) as info:
        LiveRouter("mf", MFRouterConfig(type="mf"), candidates(CHEAP, "gpt-9", TOP), EMBEDDING_ID)
    message = str(info.value)
    assert message.startswith("args.routers.mf: candidates (cheap as mistral-7b-instruct-v0.1, mid as gpt-9, top as")
    assert "'gpt-9' is not one the checkpoint was trained on; it knows: alpaca-13b" in message


def test_a_middle_candidate_is_scored_by_its_model_name_without_a_router_model_id() -> None:
    named = [candidates(CHEAP, MID, TOP)[0], Candidate(key="mid", model=MID), candidates(CHEAP, MID, TOP)[2]]
    router = LiveRouter("mf", MFRouterConfig(type="mf"), named, EMBEDDING_ID)
    rows = embeddings(4)
    expected = load_router(MFRouterConfig(type="mf"), (TOP, MID)).score([""] * 4, rows)
    assert [dict(r.candidates)["mid"] for r in rank(router, rows, 0.5)] == pytest.approx(1 - expected)


def test_a_refit_checkpoint_of_one_pair_cannot_route_three_candidates(tmp_path: Path) -> None:
    pair = {"models": [TOP, CHEAP], "default_strong": TOP, "default_weak": CHEAP}
    manifest = load_manifest(checkpoint_path("builtin:mf"), "mf").model_copy(
        update={**pair, "params": {"form": LINEAR_FORM}}
    )
    save(tmp_path / "refit", manifest, {"direction": torch.ones(384)})
    config = MFRouterConfig(type="mf", checkpoint=str(tmp_path / "refit"))
    LiveRouter("mf", config, candidates(CHEAP, TOP), EMBEDDING_ID)  # its own pair serves
    with pytest.raises(CheckpointError, match="this refit checkpoint scores only gpt-4-1106-preview against mistral"):
        LiveRouter("mf", config, candidates(CHEAP, TOP, TOP), EMBEDDING_ID)


def test_a_strong_share_needs_a_table_for_the_candidates() -> None:
    router = LiveRouter("mf", MFRouterConfig(type="mf"), candidates(CHEAP, MID, TOP), EMBEDDING_ID)
    [answer] = router.rank([RankQuery("p", embeddings(1)[0], strong_percent=30)])
    assert isinstance(answer, InvalidRequest) and answer.code == "no_calibration"
    assert f"chooses among {CHEAP}, {MID}, {TOP}, and its checkpoint has no calibration table for them" in (
        answer.message
    )
    assert f"--candidates {CHEAP},{MID},{TOP} --save" in answer.message and not router.state.calibrated


def test_the_cli_lists_the_models_a_checkpoint_can_score(capsys: pytest.CaptureFixture[str]) -> None:
    from routing.offline.cli import main as cli

    cli(["models", "builtin:mf"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "builtin:mf: a mf checkpoint"
    assert out[1].startswith("scores any pair of these 72 models, so routes among any number of them")
    assert f"  {MID}" in out and f"  {TOP}" in out
    pool = "data/calibration/arena-hard.jsonl.gz"
    assert out[-2:] == [
        f"calibration: strong shares for {TOP} against mixtral-8x7b-instruct-v0.1, on {pool}",
        "calibration: strong shares among meta-llama-3.1-8b-instruct, gpt-4o-mini-2024-07-18, "
        f"gpt-4o-2024-08-06, on {pool}",
    ]
    cli(["models", "builtin:bert"])
    assert "scores one pair, the strong and the weak model of its training labels: two candidates" in (
        capsys.readouterr().out
    )
    with pytest.raises(SystemExit) as exit_info:
        cli(["models", "/no/such/checkpoint"])
    assert exit_info.value.code == 2
    assert "checkpoint directory '/no/such/checkpoint' does not exist" in capsys.readouterr().err
