"""Classifier routers (RouteLLM paper, sections 4.3 and 4.4): a pretrained model reads the prompt
and a linear head predicts one of three outcomes of a strong-vs-weak battle: strong wins, tie,
weak wins. The score is P(strong wins), as in the reference implementation.

- ``bert``: a BERT-style encoder (default all-MiniLM-L6-v2), mean-pooled over the prompt's tokens.
- ``causal_llm``: a causal LM (default SmolLM2-135M-Instruct) reads an instruction and the prompt
  in its chat template; its last hidden state is the feature, which is where the paper reads the
  label tokens' logits.

A checkpoint stores only what training changed: the head, plus LoRA adapters (``mode: lora``)
or the whole base (``mode: full``). The base comes from its recorded source.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from routing.inference import autocast, forward_batch_size, length_batches
from routing.resources import MINILM_MODEL_ID, SMOLLM2_GGUF_FILE, SMOLLM2_MODEL_ID, minilm_dir, smollm2_dir
from routing.routers.checkpoint import Manifest, load_manifest, load_tensors
from routing.routers.kind import ScoringPair
from routing.routers.kinds import BertRouterConfig, CausalLLMRouterConfig
from routing.settings import Precision

ClassifierKind = Literal["bert", "causal_llm"]
LABELS = ("strong_wins", "tie", "weak_wins")
DEFAULT_BASES: dict[str, str] = {"bert": MINILM_MODEL_ID, "causal_llm": SMOLLM2_MODEL_ID}
LORA_TARGETS: dict[str, list[str]] = {"bert": ["query", "value"], "causal_llm": ["q_proj", "v_proj"]}
INSTRUCTION = (
    "You rate requests sent to an AI assistant. Decide whether a strong, expensive model would answer "
    "the next request clearly better than a small, cheap model."
)


def base_source(base_model: str, override: str | None = None) -> tuple[str, str | None]:
    """(directory or hub id, GGUF file name or None) to load a base model from; the defaults are
    the embedded packages, so they load offline."""
    if override:
        path = Path(override)
        ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
        return override, ggufs[0].name if ggufs else None
    if base_model == MINILM_MODEL_ID:
        return str(minilm_dir()), None
    if base_model == SMOLLM2_MODEL_ID:
        return str(smollm2_dir()), SMOLLM2_GGUF_FILE
    return base_model, None


class PromptClassifier(nn.Module):
    def __init__(self, kind: ClassifierKind, source: str, gguf_file: str | None, max_length: int) -> None:
        super().__init__()
        self.kind = kind
        self.max_length = max_length
        options: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(source, **options)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.base = AutoModel.from_pretrained(source, **options)
        self.head = nn.Linear(self.base.config.hidden_size, len(LABELS))

    def tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        if self.kind == "causal_llm":
            # Cut the prompt, not the template: the features are read at the template's last token.
            ids = self.tokenizer(prompts, truncation=True, max_length=self.max_length, add_special_tokens=False)
            prompts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": self.tokenizer.decode(i)}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for i in ids["input_ids"]
            ]
            return self.tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
        return self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"]
        if self.kind == "causal_llm":
            last = mask.sum(dim=1) - 1
            return hidden[torch.arange(len(hidden), device=hidden.device), last].float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return ((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)).float()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.features(batch))

    def add_lora(self, rank: int, alpha: int) -> None:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGETS[self.kind])
        with warnings.catch_warnings():
            # peft still calls a transformers method that transformers 5 marks deprecated.
            warnings.filterwarnings(
                "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
            )
            self.base = get_peft_model(self.base, config)

    def trained_tensors(self, mode: str) -> dict[str, torch.Tensor]:
        """What a checkpoint stores: the head, and the adapters or the base that training changed."""
        tensors = {f"head.{k}": v for k, v in self.head.state_dict().items()}
        if mode == "lora":
            from peft import get_peft_model_state_dict

            tensors |= {f"lora.{k}": v for k, v in get_peft_model_state_dict(self.base).items()}
        elif mode == "full":
            tensors |= {f"base.{k}": v for k, v in self.base.state_dict().items()}
        return {k: v.detach().clone() for k, v in tensors.items()}

    def load_trained(self, params: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Applies a checkpoint's tensors; ``params`` are its manifest's (mode, LoRA settings)."""
        mode = params["mode"]
        self.head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        if mode == "lora":
            from peft import set_peft_model_state_dict

            self.add_lora(params["lora_rank"], params["lora_alpha"])
            set_peft_model_state_dict(self.base, {k[5:]: v for k, v in tensors.items() if k.startswith("lora.")})
            # Folding the adapters into the weights makes serving exactly as fast as the base.
            self.base = self.base.merge_and_unload()
        elif mode == "full":
            self.base.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("base.")})


def classifier_for(manifest: Manifest, base_override: str | None = None) -> PromptClassifier:
    kind = manifest.router
    assert manifest.base_model is not None and (kind == "bert" or kind == "causal_llm")
    source, gguf_file = base_source(manifest.base_model, base_override)
    return PromptClassifier(kind, source, gguf_file, manifest.params["max_length"])


class ClassifierRouter:
    def __init__(
        self,
        directory: Path,
        kind: ClassifierKind,
        base_override: str | None = None,
        torch_threads: int | None = None,
        precision: Precision = "auto",
    ) -> None:
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.manifest = load_manifest(directory, kind)
        self.model = classifier_for(self.manifest, base_override)
        self.model.load_trained(self.manifest.params, load_tensors(directory))
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = precision
        self.model.to(self.device).eval()
        # One forward at a time: concurrent forwards on the same cores only slow each other down.
        self._lock = threading.Lock()

    def features(self, prompts: list[str], batch_size: int | None = None) -> np.ndarray:
        """What the head reads, one row per prompt, computed in batches of similar lengths
        (``batch_size`` prompts each, by default :func:`forward_batch_size`)."""
        out = np.zeros((len(prompts), self.model.head.in_features), dtype=np.float32)
        for chunk in length_batches(prompts, batch_size or forward_batch_size(self.device)):
            batch = {k: v.to(self.device) for k, v in self.model.tokenize([prompts[i] for i in chunk]).items()}
            with self._lock, torch.inference_mode(), autocast(self.device, self.precision):
                out[chunk] = self.model.features(batch).float().cpu().numpy()
        return out

    def probabilities(self, prompts: list[str]) -> np.ndarray:
        """P(strong wins), P(tie), P(weak wins) per prompt."""
        return head_probabilities(self.model.head, self.features(prompts))

    def score(self, prompts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.probabilities(prompts)[:, 0]


def router_for(
    directory: Path, config: BertRouterConfig | CausalLLMRouterConfig, pair: ScoringPair
) -> ClassifierRouter:
    return ClassifierRouter(directory, config.type, config.base_model_path, config.torch_threads, config.precision)


def head_probabilities(head: nn.Linear, features: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        logits = head(torch.from_numpy(features).to(head.weight.device, head.weight.dtype))
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()
