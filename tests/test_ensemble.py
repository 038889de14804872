"""The ensemble router and its many-model training data: outcome tables, a planted signal, save →
load, byte-for-byte retraining, clear errors, and leave-one-source-out validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from test_routers import CHAT, HELD_OUT, IS_MATHS, MATHS, auc, planted_battles

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.features import FEATURE_NAMES, prompt_features
from routing.offline.cli import main as cli
from routing.offline.data.files import write_jsonl
from routing.offline.data.outcomes import outcome_tables
from routing.offline.data.schema import Battle, GoldenLabel, JudgeScore
from routing.offline.evaluation.report import LENGTH_BASELINE
from routing.offline.evaluation.validation import EmbeddingCache, leave_one_source_out, stand_in
from routing.offline.training.data import read_training_data
from routing.routers.kinds import EnsembleRouterConfig, load_router
from routing.routers.model_aliases import canonical_model_name

MODELS = {"frontier": 0.95, "big": 0.8, "mid": 0.5, "small": 0.15, "tiny": 0.05}


def planted_labels(source: str, numbers: range, seed: int) -> list[GoldenLabel]:
    """Every model answers small talk; on maths each succeeds with its own rate."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in numbers:
        for template in MATHS + CHAT:
            prompt = template.format(n=n)
            for model, skill in MODELS.items():
                correct = rng.random() < (skill if template in MATHS else 0.97)
                rows.append(GoldenLabel(prompt=prompt, model=model, correct=bool(correct), source=source))
    return rows


@pytest.fixture(scope="module")
def encoder() -> LocalEmbedder:
    return LocalEmbedder(LocalEmbedding())


def test_outcome_tables_keep_every_model_on_one_scale() -> None:
    rows = [
        JudgeScore(prompt="p", model="A/Big", score=10, source="judged"),
        JudgeScore(prompt="p", model="small", score=1, source="judged"),
        JudgeScore(prompt="q", model="small", score=5.5, source="judged"),
        GoldenLabel(prompt="p", model="big", correct=True),
        Battle(prompt="p", model_a="big", model_b="small", winner="model_a", source="fights"),
        Battle(prompt="p", model_a="big", model_b="mid", winner="tie", source="fights"),
    ]
    tables = {t.source: t for t in outcome_tables(rows, default_source="file")}
    judged = tables["judged"]
    assert judged.prompts == ["p", "q"] and judged.models == ["big", "small"]
    np.testing.assert_array_equal(judged.values, [[1.0, 0.0], [np.nan, 0.5]])
    assert tables["file"].values.tolist() == [[1.0]]
    fights = tables["fights"]
    assert fights.models == ["big", "mid", "small"] and fights.values.tolist() == [[0.75, 0.5, 0.0]]


def test_one_model_is_one_name_across_sources() -> None:
    assert canonical_model_name("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama-3.1-8b-instruct"
    assert canonical_model_name("Meta-Llama-3.1-405B-Instruct@hyperbolic") == "meta-llama-3.1-405b-instruct"
    assert canonical_model_name("mixtral-8x7b-chat") == "mixtral-8x7b-instruct-v0.1"
    assert canonical_model_name("gpt-4-0314") != canonical_model_name("gpt-4-1106-preview")


def test_prompt_features_see_code_maths_and_choices() -> None:
    prompts = [
        "hello there",
        "```python\ndef f(x):\n    return x\n```",
        "Solve $x^2 + 3 = 7$.",
        "Which?\nA) one\nB) two\nC) three",
    ]
    table = dict(zip(FEATURE_NAMES, prompt_features(prompts).T, strict=True))
    assert table["code"].argmax() == 1 and table["maths"].argmax() == 2 and table["choices"].tolist() == [0, 0, 0, 1]
    assert table["log_chars"][0] == pytest.approx(np.log1p(11))
    np.testing.assert_array_equal(prompt_features(prompts, ("maths", "code")), prompt_features(prompts)[:, [3, 2]])
    with pytest.raises(ValueError, match="unknown prompt feature.*turns"):
        prompt_features(prompts, ("turns",))


def _train(tmp_path: Path, name: str, data: list[Path], *extra: str) -> Path:
    out = tmp_path / name
    args = ["train", "ensemble", "--out", str(out), *extra]
    for path in data:
        args += ["--data", str(path)]
    cli(args)
    return out


def test_ensemble_learns_planted_difficulty_survives_save_and_load_and_retrains_byte_for_byte(
    tmp_path: Path, encoder: LocalEmbedder
) -> None:
    data = [tmp_path / "one.golden_labels.jsonl", tmp_path / "two.jsonl"]
    write_jsonl(data[0], planted_labels("one", range(2, 16), seed=1))
    write_jsonl(data[1], [row.model_copy(update={"source": None}) for row in planted_labels("two", range(16, 30), 2)])
    # What is planted is difficulty, not length (small talk here runs a little longer than maths).
    planted = _train(tmp_path, "planted", data, "--length-weight", "0")
    embeddings = encoder.encode(HELD_OUT)
    scores = load_router(EnsembleRouterConfig(type="ensemble", checkpoint=str(planted))).score(HELD_OUT, embeddings)
    assert auc(scores, IS_MATHS) >= 0.9 and scores[IS_MATHS].mean() > 0.5 > scores[~IS_MATHS].mean()

    out = _train(tmp_path, "ensemble", data)
    scores = load_router(EnsembleRouterConfig(type="ensemble", checkpoint=str(out))).score(HELD_OUT, embeddings)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["heads"] == ["one", "two"]  # a file without sources is its own source
    assert manifest["training"]["metrics"]["one.validation_spearman"] > 0.5
    assert [d["file"] for d in manifest["training"]["data"]] == ["one.golden_labels.jsonl", "two.jsonl"]

    # Loaded from disk, the default checkpoint's scores are σ((mean of z-scored heads + λ·z(log length)) / (1 + λ)).
    tensors = {k: v.double().numpy() for k, v in load_file(str(out / "model.safetensors")).items()}
    x = np.hstack([embeddings, prompt_features(HELD_OUT)])
    heads = (x @ tensors["coefficients"].T + tensors["intercepts"] - tensors["head_mean"]) / tensors["head_std"]
    params = manifest["params"]
    length = (np.log1p([len(p) for p in HELD_OUT]) - params["length_mean"]) / params["length_std"]
    weight = params["length_weight"]
    expected = 1 / (1 + np.exp(-(heads.mean(axis=1) + weight * length) / (1 + weight)))
    np.testing.assert_allclose(scores, expected, rtol=1e-6)

    again = _train(tmp_path, "again", data)
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    assert (again / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_ensemble_training_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    rows = [{"prompt": "p", "model": "a", "correct": True}, {"prompt": "q", "model": "a", "correct": "maybe"}]
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows))
    few = tmp_path / "few.jsonl"
    write_jsonl(few, planted_labels("few", range(2, 3), seed=0))
    for data, extra, message in (
        (bad, [], f"{bad}: row 2: field 'correct'"),
        (few, [], "no source has 20 prompts graded for two or more models"),
        (few, ["--features", "log_chars,turns"], "--features: unknown prompt feature(s) turns"),
        (few, ["--alpha", "0"], "--alpha: Input should be greater than 0"),
    ):
        with pytest.raises(SystemExit) as exit_:
            _train(tmp_path, "x", [data], *extra)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_leave_one_source_out_trains_without_the_held_out_source(tmp_path: Path, encoder: LocalEmbedder) -> None:
    files = []
    for number, source in enumerate(("alpha", "beta", "gamma")):
        files.append(tmp_path / f"{source}.jsonl")
        write_jsonl(files[-1], planted_labels(source, range(2 + 10 * number, 12 + 10 * number), seed=number))
    battles = tmp_path / "delta.jsonl"  # battles only: mf learns from them, the ensemble gets one more head
    write_jsonl(battles, [b.model_copy(update={"source": "delta"}) for b in planted_battles()])
    data = read_training_data([str(f) for f in [*files, battles]], {}, log=lambda line: None)
    embed = EmbeddingCache(encoder.encode)
    options = {"mf": {"epochs": 20, "hidden_dim": 8, "lr": 1e-2}, "ensemble": {"length_weight": 0}}
    folds = leave_one_source_out(["ensemble", "mf"], data, embed, options=options, log=lambda line: None)
    assert [f.source for f in folds] == ["alpha", "beta", "gamma", "delta"]
    for fold in folds[:3]:
        assert (fold.items, fold.strong, fold.weak) == (80, "frontier", "mid")
        assert list(fold.apgr) == ["random (10 seeds)", LENGTH_BASELINE, "ensemble", "mf", "optimal"]
        # Learnt on the other sources only, the ensemble still finds the maths on this one: sending
        # every maths item first would reach about 0.75, as half the items hold all of the gain.
        assert fold.apgr["ensemble"] > 0.65 > fold.apgr["random (10 seeds)"]
    # By mean result over its battles mid leads (it beats small on maths, ties big on small talk).
    assert (folds[3].strong, folds[3].weak) == ("mid", "big") and "mf" in folds[3].apgr


def test_a_model_the_other_sources_never_graded_gets_the_nearest_stand_in() -> None:
    rows = [GoldenLabel(prompt=f"p{i}", model=m, correct=(i % 4) < k, source="s") for i in range(8) for m, k in
            (("new", 3), ("near", 3), ("far", 1), ("weak", 0))]  # fmt: skip
    (table,) = outcome_tables(rows, default_source="s")
    assert stand_in("new", table, {"near", "far", "weak"}) == "near"
    assert stand_in("new", table, {"far", "weak"}) == "far"
    assert stand_in("weak", table, {"weak"}) == "weak"
    assert stand_in("new", table, {"near"}, taken="near") is None


def test_validate_command_prints_the_table_and_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number, source in enumerate(("alpha", "beta")):
        write_jsonl(tmp_path / "data" / f"{source}.jsonl", planted_labels(source, range(2, 8), seed=number))
    cli(["validate", "--data", str(tmp_path / "data"), "--set", "ensemble.alpha=30", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert "| router | alpha | beta | mean |" in printed and f"| {LENGTH_BASELINE} |" in printed
    summary = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert summary["settings"] == ["ensemble.alpha=30"] and set(summary["mean"]) >= {"ensemble", "optimal"}
    with pytest.raises(SystemExit):
        cli(["validate", "--data", str(tmp_path / "data"), "--set", "ensemble"])
    assert "expected KIND.OPTION=VALUE" in capsys.readouterr().err


def test_the_shipped_ensemble_learnt_from_every_licensed_source(encoder: LocalEmbedder) -> None:
    router = load_router(EnsembleRouterConfig(type="ensemble"))
    manifest = router.manifest  # type: ignore[attr-defined]
    assert manifest.params["heads"] == ["arena-bench-v1", "crux", "llmrouter", "math-l5", "vicuna-bench"]
    assert set(manifest.training.data_licences) <= {"Apache-2.0", "MIT"}
    assert {d.file.split(".")[0] for d in manifest.training.data} == set(manifest.params["heads"])
    prompts = ["hi", "Prove that there are infinitely many primes of the form 4k+3, step by step, with every lemma."]
    scores = router.score(prompts, encoder.encode(prompts))
    assert ((0 < scores) & (scores < 1)).all() and scores[1] > scores[0]
