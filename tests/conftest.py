"""The fixtures: the fake upstream servers every test may ask for, and the order that runs every
test starting a real cluster first. What tests share besides fixtures is in ``testing/``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testing.fake_upstream import FakeUpstream

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Serve's local testing mode leaves state behind that breaks a later real cluster in the
    # same process, so every test that starts a real cluster runs first.
    items.sort(key=lambda item: 0 if item.get_closest_marker("cluster") else 1)


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    servers = {name: FakeUpstream(name) for name in ("strong", "weak", "mid", "judge")}
    yield servers
    for server in servers.values():
        server.stop()


def _reset(upstreams: dict[str, FakeUpstream], name: str) -> FakeUpstream:
    upstreams[name].reset()
    return upstreams[name]


@pytest.fixture
def strong(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    return _reset(upstreams, "strong")


@pytest.fixture
def weak(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    return _reset(upstreams, "weak")


@pytest.fixture
def mid(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    return _reset(upstreams, "mid")


@pytest.fixture
def judge_server(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    """The server a judge's requests go to, reset; each test file has it grade its own way."""
    return _reset(upstreams, "judge")
