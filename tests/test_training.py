"""Training: the classifiers' length-grouped batches and features' precision; a checkpoint
retrained in place drops a calibration table measured on the scores it replaces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_routers import planted_battles

from routing.calibration import CALIBRATION_FILE, CalibrationTable, save_calibration
from routing.inference import native_low_precision
from routing.offline.cli import main as cli
from routing.offline.data.files import write_jsonl
from routing.offline.training.classifier import _batches, _length_grouped


def _padded(batches: list, lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)


def test_length_grouped_batches_hold_every_row_once_and_pad_less_than_random_ones() -> None:
    rng = np.random.default_rng(0)
    prompts = ["x" * int(n) for n in rng.lognormal(4, 1.2, size=2000).astype(int) + 1]
    lengths = [len(p) for p in prompts]
    order = rng.permutation(len(prompts)).tolist()
    grouped = _length_grouped(order, prompts, 16, torch.Generator().manual_seed(1))
    assert sorted(i for batch in grouped for i in batch) == list(range(len(prompts)))
    assert all(1 <= len(batch) <= 16 for batch in grouped)
    assert _padded(grouped, lengths) < 0.6 * _padded(_batches(order, 16), lengths)
    # Seeded: the same generator state gives the same batches; the epoch's order is not by length.
    again = _length_grouped(order, prompts, 16, torch.Generator().manual_seed(1))
    assert [list(b) for b in again] == [list(b) for b in grouped]
    firsts = [max(lengths[i] for i in batch) for batch in grouped]
    assert firsts != sorted(firsts)


def test_precision_is_a_train_option_recorded_in_the_manifest(tmp_path: Path) -> None:
    data = tmp_path / "battles.jsonl"
    write_jsonl(data, planted_battles()[:60])
    common = ["--data", str(data), "--mode", "head", "--strong-models", "big", "--weak-models", "small"]
    common += ["--max-length", "16", "--epochs", "2"]
    dtypes = {}
    for precision in ("auto", "float32"):
        out = tmp_path / precision
        cli(["train", "bert", *common, "--precision", precision, "--out", str(out)])
        hyperparameters = json.loads((out / "manifest.json").read_text())["training"]["hyperparameters"]
        assert hyperparameters["precision"] == precision
        dtypes[precision] = hyperparameters["feature_dtype"]
    native = native_low_precision(torch.device("cpu"))
    assert dtypes == {"auto": str(native or torch.float32).removeprefix("torch."), "float32": "float32"}
    # The head learnt from the features as computed: reduced precision moves them, and so the head.
    heads = [load_file(str(tmp_path / p / "model.safetensors"))["head.weight"] for p in ("auto", "float32")]
    assert torch.equal(heads[0], heads[1]) == (native is None)


def test_retraining_in_place_removes_a_calibration_table_of_other_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "battles.jsonl", tmp_path / "random"
    write_jsonl(data, planted_battles()[:60])
    table = CalibrationTable.from_scores("random", "pool", np.linspace(0, 1, 50))
    train = ["train", "random", "--data", str(data), "--out", str(out)]
    cli([*train, "--seed", "1"])
    save_calibration(out, table)
    cli([*train, "--seed", "1"])  # the same checkpoint again: its table still holds
    assert (out / CALIBRATION_FILE).is_file()
    cli([*train, "--seed", "2"])  # other scores: the old thresholds would mean other shares
    assert not (out / CALIBRATION_FILE).exists()
    assert f"removed {out / CALIBRATION_FILE}" in capsys.readouterr().err
