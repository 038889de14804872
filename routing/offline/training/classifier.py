"""Training the classifier routers (bert, causal_llm) on strong-vs-weak battles.

Labels: a battle between a model of ``strong_models`` and one of ``weak_models`` becomes one
example, labelled strong wins / tie / weak wins (both kinds of tie are a tie). Modes:

- ``head``: the base is frozen; its features are computed once and a linear head is trained on them.
- ``lora``: LoRA adapters on the attention projections and the head are trained end to end.
- ``full``: every weight is trained (for a GPU; a causal LM refuses it on CPU).

The epoch with the lowest held-out loss is kept; held-out prompts are never trained on. In head
mode the frozen base computes its features in the precision the service scores in (``precision:
auto``: bfloat16 on a CPU that computes it natively, float16 on a GPU, see
:mod:`routing.inference`), so the head learns from the features it will be served; end-to-end
modes train in float32, in batches of prompts of similar length (less compute spent on padding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm.auto import tqdm

from routing.inference import autocast, forward_dtype
from routing.offline.data.schema import Battle
from routing.offline.training.common import (
    Log,
    Trained,
    TrainJob,
    held_out_prompts,
    job_options,
    seed_everything,
    weights_of,
)
from routing.routers.checkpoint import Manifest, TrainingRecord
from routing.routers.classifier import DEFAULT_BASES, LABELS, ClassifierKind, PromptClassifier, base_source
from routing.settings import Precision

# Logits for the examples at these row numbers: one for a training step, one for evaluation.
Step = Callable[[Sequence[int]], torch.Tensor]

DEFAULT_STRONG = ["gpt-4-1106-preview", "gpt-4-turbo-2024-04-09", "llama-3.1-nemotron-51b-instruct"]
DEFAULT_WEAK = ["mixtral-8x7b-instruct-v0.1", "gpt-3.5-turbo-0125", "mistral-7b-instruct-v0.3"]


class ClassifierTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ClassifierKind
    base_model: str | None = Field(default=None, description="hub id or directory; default: the embedded model")
    mode: Literal["head", "lora", "full"] | None = Field(
        default=None, description="default: lora for bert, head for causal_llm"
    )
    device: str = "cpu"
    precision: Precision = Field(default="auto", description="head mode's features: auto (as served) or float32")
    strong_models: list[str] = Field(default_factory=lambda: list(DEFAULT_STRONG), min_length=1)
    weak_models: list[str] = Field(default_factory=lambda: list(DEFAULT_WEAK), min_length=1)
    max_length: int = Field(default=128, ge=8)
    epochs: int | None = Field(default=None, ge=1, description="default: 2, or 100 in head mode")
    batch_size: int = Field(default=16, ge=1)
    lr: float | None = Field(default=None, gt=0, description="default: 1e-3 head, 5e-4 lora, 2e-5 full")
    weight_decay: float = Field(default=0.01, ge=0)
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _defaults(self) -> ClassifierTrainConfig:
        mode = self.mode or ("lora" if self.kind == "bert" else "head")
        if mode == "full" and self.kind == "causal_llm" and not self.device.startswith("cuda"):
            raise ValueError("a full fine-tune of a causal LM needs --device cuda; on CPU use --mode head or lora")
        self.mode = mode
        self.base_model = self.base_model or DEFAULT_BASES[self.kind]
        self.epochs = self.epochs or (100 if mode == "head" else 2)
        self.lr = self.lr or {"head": 1e-3, "lora": 5e-4, "full": 2e-5}[mode]
        return self


def examples(
    battles: Sequence[Battle], strong: Sequence[str], weak: Sequence[str], weights: Sequence[float] | None = None
) -> list[tuple[str, int, float]]:
    """(prompt, label index into LABELS, weight) for every strong-vs-weak battle."""
    strong_set, weak_set = set(strong), set(weak)
    out = []
    for b, weight in zip(battles, weights_of(battles, weights), strict=True):
        if b.model_a in strong_set and b.model_b in weak_set:
            won = {"model_a": 0, "model_b": 2}
        elif b.model_b in strong_set and b.model_a in weak_set:
            won = {"model_a": 2, "model_b": 0}
        else:
            continue
        out.append((b.prompt, won.get(b.winner, 1), weight))
    return out


def _batches(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _length_grouped(
    order: list[int], prompts: Sequence[str], size: int, generator: torch.Generator
) -> list[Sequence[int]]:
    """Batches of ``size`` from the shuffled ``order``: each run of 50 batches is sorted by prompt
    length before it is cut, so a batch pads little, and the batches are shuffled again so that
    lengths do not rise through the epoch."""
    batches: list[Sequence[int]] = []
    for run in _batches(order, 50 * size):
        batches += _batches(sorted(run, key=lambda i: len(prompts[i])), size)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train(
    battles: Sequence[Battle],
    config: ClassifierTrainConfig,
    weights: Sequence[float] | None = None,
    log: Log = print,
) -> Trained:
    seed_everything(config.seed)
    data = examples(battles, config.strong_models, config.weak_models, weights)
    if not data:
        raise ValueError(
            f"no battle is between a strong model ({', '.join(config.strong_models)}) "
            f"and a weak one ({', '.join(config.weak_models)})"
        )
    held_out = held_out_prompts([p for p, _, _ in data], config.val_fraction, config.seed)
    train_rows = [i for i, (p, _, _) in enumerate(data) if p not in held_out]
    val_rows = [i for i, (p, _, _) in enumerate(data) if p in held_out] or train_rows
    counts = np.bincount([label for _, label, _ in data], minlength=len(LABELS))
    log(
        f"{len(data)} examples ({', '.join(f'{n} {name}' for name, n in zip(LABELS, counts, strict=True))}): "
        f"{len(train_rows)} train, {len(val_rows)} held out"
    )
    assert config.base_model is not None and config.mode is not None
    source, gguf_file = base_source(config.base_model)
    model = PromptClassifier(config.kind, source, gguf_file, config.max_length)
    if config.mode == "lora":
        model.add_lora(config.lora_rank, config.lora_alpha)
    device = torch.device(config.device)
    model.to(device)
    labels = torch.tensor([label for _, label, _ in data], device=device)
    example_weights = torch.tensor([weight for _, _, weight in data], device=device)
    prompts = [p for p, _, _ in data]

    if config.mode == "head":
        step, evaluate = _head_mode(model, prompts, config, device)
    else:
        step, evaluate = _end_to_end_mode(model, prompts, config, device)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best: tuple[float, int, dict[str, torch.Tensor], dict[str, float]] | None = None
    assert config.epochs is not None
    for epoch in (bar := tqdm(range(1, config.epochs + 1), desc=config.kind, unit="epoch", disable=None)):
        model.train()
        order = torch.tensor(train_rows)[torch.randperm(len(train_rows), generator=generator)].tolist()
        if config.mode == "head":
            batches = _batches(order, 256)
        else:
            batches = _length_grouped(order, prompts, config.batch_size, generator)
        for rows in batches:
            losses = torch.nn.functional.cross_entropy(step(rows), labels[rows], reduction="none")
            loss = (losses * example_weights[rows]).sum() / example_weights[rows].sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.inference_mode():
            logits = evaluate(val_rows)
        metrics = _metrics(logits, labels[val_rows])
        bar.set_postfix(val_loss=f"{metrics['validation_loss']:.4f}", val_acc=f"{metrics['validation_accuracy']:.3f}")
        if config.mode != "head" or epoch % 10 == 0:
            log(
                f"epoch {epoch:3d}  "
                + "  ".join(f"{k.removeprefix('validation_')} {v:.4f}" for k, v in metrics.items())
            )
        if best is None or metrics["validation_loss"] < best[0]:
            best = (metrics["validation_loss"], epoch, model.trained_tensors(config.mode), metrics)

    assert best is not None
    _, best_epoch, tensors, metrics = best
    manifest = Manifest(
        router=config.kind,
        base_model=config.base_model,
        models=sorted(set(config.strong_models) | set(config.weak_models)),
        params={
            "mode": config.mode,
            "max_length": config.max_length,
            "labels": list(LABELS),
            "strong_models": config.strong_models,
            "weak_models": config.weak_models,
            "lora_rank": config.lora_rank,
            "lora_alpha": config.lora_alpha,
        },
        training=TrainingRecord(
            # What "auto" was on the training machine: the features' precision shapes the head learnt.
            hyperparameters={**config.model_dump(exclude={"device"}), "feature_dtype": _feature_dtype(device, config)},
            metrics={
                "best_epoch": best_epoch,
                **{k: round(v, 4) for k, v in metrics.items()},
                "examples": len(data),
                "validation_examples": len(val_rows),
            },
        ),
    )
    return Trained(manifest, tensors)


def _feature_dtype(device: torch.device, config: ClassifierTrainConfig) -> str:
    """Only head mode computes its features under :func:`autocast`; end-to-end modes train in float32."""
    dtype = forward_dtype(device, config.precision) if config.mode == "head" else torch.float32
    return str(dtype).removeprefix("torch.")


def _head_mode(
    model: PromptClassifier, prompts: list[str], config: ClassifierTrainConfig, device: torch.device
) -> tuple[Step, Step]:
    """Frozen base: every distinct prompt's features once (length-sorted batches), then the head alone."""
    for parameter in model.base.parameters():
        parameter.requires_grad_(False)
    distinct = sorted(set(prompts), key=len)
    features = torch.zeros(len(distinct), model.head.in_features, device=device)
    model.eval()
    with torch.inference_mode():
        for rows in tqdm(_batches(range(len(distinct)), 32), desc="features", unit="batch", disable=None):
            batch = {k: v.to(device) for k, v in model.tokenize([distinct[i] for i in rows]).items()}
            with autocast(device, config.precision):
                features[list(rows)] = model.features(batch)
    index = {p: i for i, p in enumerate(distinct)}
    per_example = features[[index[p] for p in prompts]].clone()
    return (lambda rows: model.head(per_example[rows])), (lambda rows: model.head(per_example[rows]))


def _end_to_end_mode(
    model: PromptClassifier, prompts: list[str], config: ClassifierTrainConfig, device: torch.device
) -> tuple[Step, Step]:
    if config.mode == "lora":
        for name, parameter in model.base.named_parameters():
            parameter.requires_grad_("lora_" in name)

    def forward(rows: Sequence[int]) -> torch.Tensor:
        batch = {k: v.to(device) for k, v in model.tokenize([prompts[i] for i in rows]).items()}
        return model(batch)

    def evaluate(rows: Sequence[int]) -> torch.Tensor:
        ordered = sorted(rows, key=lambda i: len(prompts[i]))
        logits = torch.cat([forward(chunk) for chunk in _batches(ordered, 64)])
        return _reorder(logits, ordered, rows)

    return forward, evaluate


def _reorder(logits: torch.Tensor, ordered: Sequence[int], rows: Sequence[int]) -> torch.Tensor:
    position = {row: i for i, row in enumerate(ordered)}
    return logits[[position[row] for row in rows]]


def _metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    probabilities = torch.softmax(logits.float(), dim=-1)
    decisive = labels != 1
    pairwise = (probabilities[:, 0] > probabilities[:, 2]) == (labels == 0)
    return {
        "validation_loss": torch.nn.functional.cross_entropy(logits.float(), labels).item(),
        "validation_accuracy": (probabilities.argmax(dim=-1) == labels).float().mean().item(),
        "validation_pairwise_accuracy": pairwise[decisive].float().mean().item() if decisive.any() else float("nan"),
    }


def train_router(job: TrainJob) -> Trained:
    """``routellm-serve train bert|causal_llm``: the options of :class:`ClassifierTrainConfig`."""
    config = job_options(ClassifierTrainConfig, job, kind=job.kind, seed=job.seed)
    return train(job.battles, config, weights=job.weights, log=job.log)
