"""RouteLLM 0.2.0's own OpenAI-compatible server, in a virtual environment of its own.

Its ``random`` router needs nothing from the hub. Its ``mf`` router runs offline here with a
random-weight checkpoint saved by its own ``MFModel.save_pretrained`` (the weights do not change
its speed) and its embeddings from an OpenAI-compatible endpoint given by ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testing.cluster import free_port, wait_until_healthy

PEER = "routellm[serve]==0.2.0"
TORCH = "torch==2.13.0"  # the CPU wheel; a bare torch would pull a CUDA build


def ensure_venv(directory: Path) -> Path:
    """The peer's Python, installing it into ``directory`` on first use."""
    python = directory / "bin" / "python"
    ready = directory / ".installed"
    if not ready.exists():
        print(f"installing {PEER} into {directory} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, PEER], check=True)
        ready.touch()
    return python


def _mf_checkpoint(python: Path, directory: Path) -> Path:
    checkpoint = directory / "mf-checkpoint"
    if not (checkpoint / "config.json").exists():
        script = textwrap.dedent(
            f"""
            import torch
            from routellm.routers.matrix_factorization.model import MFModel
            torch.manual_seed(0)
            model = MFModel(dim=128, num_models=64, text_dim=1536, num_classes=1, use_proj=True)
            model.save_pretrained({str(checkpoint)!r})
            """
        )
        subprocess.run([str(python), "-c", script], check=True, env=_env(None))
    return checkpoint


def _env(embeddings_base_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "x",
        # Without it litellm spends seconds at import fetching a cost map from the internet.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
    }
    if embeddings_base_url:
        env["OPENAI_BASE_URL"] = embeddings_base_url
    return env


@contextmanager
def peer_server(
    venv: Path, router: str, upstream_base_url: str, embeddings_base_url: str | None = None
) -> Iterator[tuple[str, int]]:
    """The peer server routing between ``openai/strong`` and ``openai/weak`` at ``upstream_base_url``;
    yields its base URL (``http://127.0.0.1:PORT``) and its process id."""
    python = ensure_venv(venv)
    port = free_port()
    command = [str(python), "-m", "routellm.openai_server", "--routers", router, "--port", str(port)]
    command += ["--strong-model", "openai/strong", "--weak-model", "openai/weak"]
    command += ["--base-url", upstream_base_url, "--api-key", "x"]
    if router == "mf":
        config = venv / "mf-config.yaml"
        config.write_text(f"mf:\n  checkpoint_path: {_mf_checkpoint(python, venv)}\n")
        command += ["--config", str(config)]
    log = open(venv / f"server-{router}.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=_env(embeddings_base_url), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        # The server has no health route: it is up once its chat route answers GET with 405.
        wait_until_healthy(url + "/v1/chat/completions", deadline_s=120, status=405)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
