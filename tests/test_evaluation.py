"""Routing metrics against hand-computed values on toy curves, and the benchmark file format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing.offline.data.files import DataFileError
from routing.offline.evaluation.benchmark import read_benchmark
from routing.offline.evaluation.in_domain import (
    STRONG_WINS,
    TIE,
    WEAK_WINS,
    cross_fit,
    head_fit_and_score,
    mf_fit_and_score,
    outcomes,
)
from routing.offline.evaluation.metrics import (
    Curve,
    apgr,
    auc,
    cpt,
    optimal_curve,
    random_baseline,
    router_curve,
    ten_point_apgr,
    threshold_grid,
)
from routing.offline.evaluation.report import LENGTH_BASELINE

# Bends up: 80 % of the gain at 50 % strong calls.
BENT = Curve.of([(0, 0.0), (50, 0.8), (100, 1.0)])


def test_decile_grid_routes_at_or_above_each_edge_and_strictly_above_the_last() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(threshold_grid(scores, bins=4), [0.1, 0.175, 0.25, 0.325, 0.4])
    curve, _ = router_curve(scores, strong_quality=np.ones(4), weak_quality=np.zeros(4), bins=4)
    np.testing.assert_allclose(curve.strong_pct, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(curve.quality, [0, 0.25, 0.5, 0.75, 1.0])
    assert auc(curve) == pytest.approx(0.5) and apgr(curve, 0.0, 1.0) == pytest.approx(0.5)
    # The paper's 10-point mean counts 10 %…100 %: (0.1 + … + 1.0) / 10.
    assert ten_point_apgr(curve, 0.0, 1.0) == pytest.approx(0.55)


def test_area_apgr_and_cpt_on_a_bent_curve() -> None:
    assert auc(BENT) == pytest.approx(0.5 * 0.4 + 0.5 * 0.9)  # two trapezoids: 0.65
    assert apgr(BENT, 0.0, 1.0) == pytest.approx(0.65)
    assert cpt(BENT, 0.0, 1.0, 0.5) == pytest.approx(31.25)  # 0.5 / 0.8 of the way to 50 %
    assert cpt(BENT, 0.0, 1.0, 0.2) == pytest.approx(12.5)
    assert cpt(BENT, 0.0, 1.0, 0.8) == pytest.approx(50.0)
    # At 10 %…100 %: 0.16, 0.32, 0.48, 0.64, 0.8, 0.84, 0.88, 0.92, 0.96, 1.0 → mean 0.70.
    assert ten_point_apgr(BENT, 0.0, 1.0) == pytest.approx(0.70)


def test_metrics_are_normalised_between_weak_and_strong() -> None:
    """The same shape on an MT-Bench-like 8.0 → 9.0 scale gives the same APGR and CPT."""
    scaled = Curve(BENT.strong_pct, 8.0 + BENT.quality)
    assert apgr(scaled, 8.0, 9.0) == pytest.approx(0.65)
    assert cpt(scaled, 8.0, 9.0, 0.5) == pytest.approx(31.25)
    assert np.isnan(apgr(scaled, 8.5, 8.5))  # equally good models: no gap to recover


def test_cpt_takes_the_first_crossing_and_says_when_there_is_none() -> None:
    wavy = Curve.of([(0, 0.0), (20, 0.6), (40, 0.4), (100, 1.0)])
    assert cpt(wavy, 0.0, 1.0, 0.5) == pytest.approx(20 * 0.5 / 0.6)
    assert np.isnan(cpt(Curve.of([(0, 0.0), (100, 0.7)]), 0.0, 1.0, 0.8))
    assert cpt(Curve.of([(0, 0.9), (100, 1.0)]), 0.5, 1.0, 0.5) == 0.0


def test_optimal_curve_spends_strong_calls_where_they_gain() -> None:
    strong, weak = np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0])
    curve = optimal_curve(strong, weak, bins=4)
    np.testing.assert_allclose(curve.strong_pct, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(curve.quality, [0.25, 0.5, 0.75, 0.75, 0.75])


def test_tied_scores_do_not_break_the_grid() -> None:
    curve, _ = router_curve(np.full(10, 0.5), np.ones(10), np.zeros(10))
    assert apgr(curve, 0.0, 1.0) == pytest.approx(0.5)


def test_random_router_is_the_diagonal() -> None:
    rng = np.random.default_rng(12345)  # not one of the baseline's seeds 0–9, whose draws it would share
    strong, weak = (rng.random(4000) < 0.8).astype(float), (rng.random(4000) < 0.65).astype(float)
    baseline = random_baseline(strong, weak, seeds=10)
    low, high = baseline.interval
    assert len(baseline.apgrs) == 10 and low < 0.5 < high and high - low < 0.1
    assert apgr(baseline.curve, weak.mean(), strong.mean()) == pytest.approx(0.5, abs=0.02)
    assert cpt(baseline.curve, weak.mean(), strong.mean(), 0.5) == pytest.approx(50, abs=3)


def test_benchmark_file_with_any_two_model_columns(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("id,prompt,big,small,judge\nq1,Prove it,true,false,9\nq2,Say hi,1,1,7.5\n")
    benchmark = read_benchmark(path)
    assert benchmark.ids == ["q1", "q2"] and list(benchmark.quality) == ["big", "small", "judge"]
    strong, weak = benchmark.pair("big", "small")
    np.testing.assert_array_equal(strong, [1, 1])
    np.testing.assert_array_equal(weak, [0, 1])
    np.testing.assert_array_equal(benchmark.pair("judge", "big")[0], [9, 7.5])
    with pytest.raises(DataFileError, match="no column 'gpt' for the strong model; model columns: big, small"):
        benchmark.pair("gpt", "small")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("prompt,a\np,1\n", "at least two models"),
        ("id,a,b\n1,1,0\n", "missing column 'prompt'"),
        ("prompt,a,b\np,1,maybe\n", "row 1: field 'b': not a score or true/false (got 'maybe')"),
        ("prompt,a,b\np,1,0\nq,1,\n", "row 2: field 'b': missing"),
        ("prompt,a,b\n", "no rows"),
    ],
)
def test_bad_benchmark_files_name_row_and_column(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_benchmark(path)


EVAL = Path(__file__).resolve().parent.parent / "data" / "eval"


@pytest.mark.parametrize(
    ("name", "items", "weak", "strong"),
    [("mt_bench", 72, 8.2812, 9.2118), ("mmlu", 14037, 0.6809, 0.8059), ("gsm8k", 1307, 0.6373, 0.8577)],
)
def test_shipped_benchmarks_give_the_papers_baselines(name: str, items: int, weak: float, strong: float) -> None:
    """Item counts after RouteLLM's decontamination and the two models' mean quality, as the
    paper's harness has them; the random router lands on the diagonal (APGR ≈ 0.5)."""
    benchmark = read_benchmark(EVAL / f"{name}.jsonl.gz")
    strong_q, weak_q = benchmark.pair("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")
    assert len(benchmark.prompts) == items == len(set(benchmark.ids))
    assert weak_q.mean() == pytest.approx(weak, abs=1e-4) and strong_q.mean() == pytest.approx(strong, abs=1e-4)
    baseline = random_baseline(strong_q, weak_q, seeds=10)
    assert apgr(baseline.curve, weak_q.mean(), strong_q.mean()) == pytest.approx(0.5, abs=0.05)


def test_evaluate_command_on_a_user_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Any CSV in the documented format, any two model columns, no code: a table, JSON and a plot
    per setting. The novice fails a third of the maths items: the in-domain setting learns that."""
    from routing.offline.cli import main as cli

    rows = ["id,prompt,expert,novice"]
    for n in range(40):
        rows.append(f"m{n},Prove that the integral of x^{n} from 0 to 1 equals 1/{n + 1},1,{int(n % 3 == 0)}")
        rows.append(f"c{n},Say hello to my friend number {n},1,1")
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "results"
    cli(["evaluate", "--benchmark", str(path), "--router", "random", "--router", "mf", "--strong", "expert",
         "--weak", "novice", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    for setting in ("out-of-domain", "in-domain"):
        assert f"### mine, {setting} (80 items; strong expert 1.0000, weak novice 0.6750)" in printed
        assert (out / f"mine-{setting}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| random (10 seeds) |" in printed and "| mf |" in printed and "| optimal |" in printed
    outside, inside = json.loads((out / "results.json").read_text())
    assert (outside["setting"], inside["setting"]) == ("out-of-domain", "in-domain")
    by_router = {r["router"]: r for r in outside["routers"]}
    assert outside["items"] == 80 and set(by_router) == {"random (10 seeds)", "mf", LENGTH_BASELINE, "optimal"}
    low, high = by_router["random (10 seeds)"]["apgr_95_interval"]
    assert low < 0.5 < high
    # The optimal router sends only the 26 maths items the novice gets wrong: full quality at 32.5 %.
    assert by_router["optimal"]["cpt_80%"] <= 40 and by_router["optimal"]["apgr"] > by_router["mf"]["apgr"]
    learnt = {r["router"]: r for r in inside["routers"]}["mf"]
    assert learnt["apgr"] > 0.65 > by_router["mf"]["apgr"] and learnt["cpt_50%"] < by_router["mf"]["cpt_50%"] - 20


def test_in_domain_folds_never_score_an_item_they_learnt_from() -> None:
    prompts = [f"question {n % 37}" for n in range(200)]  # repeated prompts must share a fold
    seen: list[tuple[set[int], set[int]]] = []

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        seen.append((set(train.tolist()), set(test.tolist())))
        return np.full(len(test), float(len(seen)))

    scores = cross_fit(prompts, fit_and_score, folds=5)
    assert len(seen) == 5 and sorted(set(scores)) == [1.0, 2.0, 3.0, 4.0, 5.0]
    for train, test in seen:
        assert not train & test and len(train | test) == 200
        assert not {prompts[i] for i in train} & {prompts[i] for i in test}
    assert sorted(i for _, test in seen for i in test) == list(range(200))


def test_outcomes_compare_the_two_models_quality() -> None:
    labels = outcomes(np.array([1.0, 0.0, 1.0, 9.5, 7.0]), np.array([0.0, 1.0, 1.0, 8.0, 7.0]))
    assert labels.tolist() == [STRONG_WINS, WEAK_WINS, TIE, STRONG_WINS, TIE]


def test_in_domain_refits_learn_a_planted_direction_and_survive_one_sided_folds() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    labels = np.where(features[:, 0] > 0.5, STRONG_WINS, np.where(features[:, 0] < -0.5, WEAK_WINS, TIE))
    prompts = [f"p{i}" for i in range(300)]
    for fit in (mf_fit_and_score(features, labels), head_fit_and_score(features, labels)):
        scores = cross_fit(prompts, fit)
        assert np.corrcoef(scores, features[:, 0])[0, 1] > 0.8
    # Only ties and a single weak win: nothing to rank by, so one score for every item, no error.
    flat = np.full(300, TIE)
    flat[0] = WEAK_WINS
    for fit in (mf_fit_and_score(features, flat), head_fit_and_score(features, flat)):
        assert len(set(cross_fit(prompts, fit).tolist())) == 1


def test_labels_become_one_benchmark_per_kind(tmp_path: Path) -> None:
    from routing.offline.data.files import write_jsonl
    from routing.offline.data.schema import Battle, JudgeScore
    from routing.offline.evaluation.labels import labels_benchmarks

    def battle(prompt: str, winner: str, a: str = "Org/Big", b: str = "small") -> Battle:
        return Battle(prompt=prompt, model_a=a, model_b=b, winner=winner)  # type: ignore[arg-type]

    write_jsonl(
        tmp_path / "test" / "battles.jsonl",
        [
            battle("p1", "model_a"),
            battle("p2", "model_a", a="small", b="big"),  # either side may be the strong one
            battle("p3", "tie"),
            battle("p4", "tie (bothbad)"),
            battle("p5", "model_a"),
            battle("p5", "model_b"),  # two battles of one prompt average
            battle("p6", "model_a", b="other"),  # not the pair
        ],
    )
    write_jsonl(
        tmp_path / "test" / "judge_scores.jsonl",
        [
            JudgeScore(prompt="q1", model="big", score=8),
            JudgeScore(prompt="q1", model="small", score=3),
            JudgeScore(prompt="q2", model="big", score=5),  # the weak model was not graded
        ],
    )
    pairwise, graded = labels_benchmarks(tmp_path / "test", "big", "small")
    assert pairwise.name == "test-pairwise" and pairwise.prompts == ["p1", "p2", "p3", "p4", "p5"]
    np.testing.assert_array_equal(pairwise.quality["big"], [1, 0, 1, 0, 0.5])
    np.testing.assert_array_equal(pairwise.quality["small"], [0, 1, 1, 0, 0.5])
    assert graded.name == "test-graded" and graded.prompts == ["q1"]
    np.testing.assert_array_equal(graded.pair("big", "small"), ([8], [3]))

    with pytest.raises(
        DataFileError, match=r"labelled for both 'gpt-4' and 'small' \(models in the labels: big, other"
    ):
        labels_benchmarks(tmp_path / "test", "gpt-4", "small")
