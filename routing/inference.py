"""How the project's torch models run a forward pass: reduced precision where the hardware
computes it natively, and batches of similar lengths so that little compute goes to padding."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from routing.settings import Precision


def native_low_precision(device: torch.device) -> torch.dtype | None:
    """float16 on a GPU, bfloat16 on a CPU with bfloat16 instructions (AVX512-BF16 or AMX),
    None where reduced precision would be emulated and slower than float32."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return torch.bfloat16
    return None


def forward_dtype(device: torch.device, precision: Precision) -> torch.dtype:
    """The dtype a forward pass with ``precision`` computes in on ``device``."""
    return (native_low_precision(device) if precision == "auto" else None) or torch.float32


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """The forward pass's precision. ``auto`` uses :func:`native_low_precision` (scores move by
    about 1e-3 against float32, see bench/precision.py); ``float32`` keeps full precision."""
    dtype = forward_dtype(device, precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def forward_batch_size(device: torch.device) -> int:
    """Prompts per forward pass. A CPU's cost grows with the padded batch, so a served batch of
    mixed lengths is cut into small runs of similar length (bench/run.py prints a served batch's
    rate both ways); a GPU computes a big batch in about the time of a small one."""
    return 64 if device.type == "cuda" else 8


def length_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``texts`` in chunks of ``batch_size``, shortest texts first."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
