from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Serve's local testing mode leaves state behind that breaks a later real cluster in the
    # same process, so every test that starts a real cluster runs first.
    items.sort(key=lambda item: 0 if item.get_closest_marker("cluster") else 1)


class FakeUpstream:
    """A running ``tests/fake_upstream.py`` process, steered over HTTP."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._spawn()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(TESTS / "fake_upstream.py"), "--name", self.name, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"fake upstream '{self.name}' did not start: {line!r}")
        self.port = int(line.split()[1])

    def refuse(self) -> None:
        """Stops the server: connections to its port are refused until :meth:`restart`."""
        self._terminate()

    def restart(self) -> None:
        if self.process.poll() is None:
            return
        self._spawn()

    def behave(self, mode: str = "ok", **options: Any) -> None:
        self.client.post("/_control", json={"mode": mode, **options}).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return self.client.get("/_requests").json()

    def reset(self) -> None:
        self.restart()
        self.behave("ok")
        self.client.delete("/_requests").raise_for_status()

    def stop(self) -> None:
        self.client.close()
        self._terminate()

    def _terminate(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    servers = {name: FakeUpstream(name) for name in ("strong", "weak")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def strong(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    upstreams["strong"].reset()
    return upstreams["strong"]


@pytest.fixture
def weak(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    upstreams["weak"].reset()
    return upstreams["weak"]


def fake_pair_args(strong: FakeUpstream, weak: FakeUpstream, **overrides: Any) -> dict[str, Any]:
    """Application args with both upstreams on fake servers, named 'big' and 'small'."""
    args: dict[str, Any] = {
        "upstreams": {
            "strong": {"backend": "openai", "model": "big", "base_url": strong.base_url, "timeouts": {"total_s": 5}},
            "weak": {"backend": "openai", "model": "small", "base_url": weak.base_url, "timeouts": {"total_s": 5}},
        },
        "routers": {"random": {"type": "random", "seed": 0}, "mf": {"type": "mf"}},
    }
    args.update(overrides)
    return args
