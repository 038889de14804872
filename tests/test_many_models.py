"""Evaluation among many models: the rule, the hull, AIQ and the oracle by hand; the file formats
(RouterBench's cost columns, LLMRouter's nested scores with per-token prices); and the command
end to end on a planted signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing.offline.data.files import DataFileError
from routing.offline.evaluation.many_models import (
    aiq,
    cheapest_at,
    curve,
    hull,
    oracle,
    read_model_table,
    read_prices,
)
from routing.routers.rule import choose
from routing.upstreams.config import Price


def test_the_rule_picks_the_cheapest_candidate_below_the_threshold() -> None:
    beaten = np.array([[0.9, 0.4], [0.2, 0.1], [0.8, 0.7]])  # P(last wins over candidate 0, 1)
    assert choose(beaten, 0.5).tolist() == [1, 0, 2]
    assert choose(beaten, 0.0).tolist() == [2, 2, 2] and choose(beaten, 1.0).tolist() == [0, 0, 0]
    quality = np.array([[0, 1, 1], [1, 1, 1], [0, 0, 1]], dtype=float)
    cost = np.array([[1, 2, 10]] * 3, dtype=float)
    assert curve(beaten, quality, cost, np.array([0.5])).tolist() == [[0.5, (2 + 1 + 10) / 3, 1.0]]


def test_hull_aiq_and_the_lowest_cost_to_a_quality_by_hand() -> None:
    points = np.array([[1.0, 0.5], [2.0, 0.6], [3.0, 0.9], [4.0, 0.8], [5.0, 0.95]])
    # (2, 0.6) lies under the chord from (1, 0.5) to (3, 0.9); (4, 0.8) lowers quality.
    assert hull(points).tolist() == [[1.0, 0.5], [3.0, 0.9], [5.0, 0.95]]
    # Over [1, 5]: a trapezoid 2 × 0.7 and one 2 × 0.925, divided by the width 4.
    assert aiq(points, 1.0, 5.0) == pytest.approx((2 * 0.7 + 2 * 0.925) / 4, abs=1e-4)
    # One model is a step at its cost: nothing left of it, its quality right of it.
    assert aiq(np.array([[3.0, 0.8]]), 1.0, 5.0) == pytest.approx(0.8 * 2 / 4, abs=1e-3)
    assert cheapest_at(points, 0.7) == pytest.approx(2.0)
    assert cheapest_at(points, 0.4) == 1.0 and cheapest_at(points, 0.99) is None


def test_the_oracle_takes_the_cheapest_of_the_best_answers() -> None:
    quality = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 0]], dtype=float)
    cost = np.array([[1, 2, 3]] * 3, dtype=float)
    assert oracle(quality, cost) == (pytest.approx((1 + 2 + 1) / 3), pytest.approx(2 / 3))


def test_routerbench_columns_are_read_with_their_costs_and_incomplete_rows_left_out(tmp_path: Path) -> None:
    path = tmp_path / "bench.csv"
    path.write_text(
        "sample_id,prompt,big,small,big|total_cost,small|total_cost,big|model_response\n"
        "1,What is 2+2?,1,1,0.01,0.001,four\n"
        "2,Prove it,1,0,0.03,0.002,proof\n"
        "3,Skipped,1,,0.03,,x\n",
        encoding="utf-8",
    )
    table = read_model_table([path], None)
    assert table.models == ["small", "big"] and table.skipped == 1
    assert table.quality.tolist() == [[1, 1], [0, 1]] and table.cost.tolist() == [[0.001, 0.01], [0.002, 0.03]]
    path.write_text("prompt,big,small,big|total_cost,small|total_cost\nx,1,high,0.1,0.1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="row 1: column 'small': expected a number, got 'high'"):
        read_model_table([path], None)


def test_nested_scores_are_priced_from_tokens(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    rows = [{"question": "one two three", "scores": {"a": 0.5, "b": 1.0, "c": 0.0}}]
    path.write_text(json.dumps(rows), encoding="utf-8")
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"a": {"input_price": 2.0, "output_price": 4.0}, "b": {"input_price": 1, "output_price": 1}})
    )
    read = read_prices(prices)
    assert read == {
        "a": Price(input_per_million=2.0, output_per_million=4.0),
        "b": Price(input_per_million=1.0, output_per_million=1.0),
    }
    table = read_model_table([path], None, read, lambda texts: [len(t.split()) for t in texts], completion_tokens=10)
    assert table.models == ["b", "a"] and table.quality.tolist() == [[1.0, 0.5]]
    assert table.cost.tolist() == [[pytest.approx((3 * 1 + 10 * 1) / 1e6), pytest.approx((3 * 2 + 10 * 4) / 1e6)]]
    with pytest.raises(DataFileError, match="--prices: no price for c"):
        read_model_table([path], ["a", "c"], read, lambda texts: [1], 10)
    with pytest.raises(DataFileError, match="give per-token prices"):
        read_model_table([path], ["a", "b"])
    prices.write_text(json.dumps({"a": {"input_price": -1, "output_price": 1}}))
    with pytest.raises(DataFileError, match="'a': expected input_price and output_price"):
        read_prices(prices)


MATHS = "Prove that the integral of x^{n} sin(x) from 0 to pi converges, step by step ({n})."
CHAT = "Say hello to my friend number {n}, it is a sunny day."


def test_the_command_routes_hard_prompts_up_and_reports_curve_aiq_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the dear model solves the maths prompts, every model the small talk: routed by
    prompt, the router reaches the dear model's quality at a fraction of its cost."""
    from routing.offline.cli import main as cli

    rows = []
    for n in range(40):
        rows.append({"prompt": MATHS.format(n=n), "cheap": 0, "mid": 0, "dear": 1})
        rows.append({"prompt": CHAT.format(n=n), "cheap": 1, "mid": 1, "dear": 1})
    for row in rows:
        row |= {"cheap|total_cost": 0.001, "mid|total_cost": 0.002, "dear|total_cost": 0.01}
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cli(["evaluate", "--benchmark", str(path), "--models", "cheap,mid,dear", "--folds", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "80 prompts (0 without every model's value left out), 3 models" in out
    assert "best single model: dear, quality 1.0000 at $0.010000 per prompt" in out
    lines = {x["name"]: x for x in json.loads((tmp_path / "many_models.json").read_text())["lines"]}
    routed = lines["mf, 3 candidates: cheap, mid, dear"]
    assert set(lines) >= {"random", "prompt length", "oracle", "cheap", "mid", "dear"}
    assert routed["cost"] < 0.6 * 0.01 and routed["aiq"] > lines["random"]["aiq"]
    assert routed["aiq"] > max(lines[m]["aiq"] for m in ("cheap", "mid", "dear"))
    assert lines["oracle"]["points"] == [[pytest.approx(0.0055), 1.0]]
    assert "| mf, 3 candidates: cheap, mid, dear |" in out
    curve_rows = [r for r in out.split("the curve over thresholds\n")[1].splitlines()[2:] if r.startswith("|")]
    assert len(curve_rows) == 11 and curve_rows[0].startswith("| 0.0000 | $0.010000 | 1.0000 |")
    assert curve_rows[-1] == "| 1.0000 | $0.001000 | 0.5000 |"
    assert (tmp_path / "many_models.png").stat().st_size > 10_000


def test_the_command_names_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    from routing.offline.cli import main as cli

    with pytest.raises(SystemExit):
        cli(["evaluate", "--models", "a,b"])
    assert "--models: name the benchmark files of many models with --benchmark" in capsys.readouterr().err


def test_all_models_route_among_the_cost_quality_frontier() -> None:
    from routing.offline.commands.evaluate_models import frontier
    from routing.offline.evaluation.many_models import ModelTable

    quality = np.array([[0.5, 0.4, 0.7, 0.6, 0.9, 0.1]])
    table = ModelTable(["p"], list("abcdef"), quality, np.arange(6.0)[None, :], "test")
    assert frontier(table) == [0, 2, 4]  # b, d: worse than a cheaper model; f: the dearest, and the worst
