from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.fake_upstream import FakeUpstream
from routing import serve_env

# Every cluster the tests start (in this process or in a `serve run` or `ray start` child) runs
# with the service's Serve settings.
serve_env.apply()
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Serve's local testing mode leaves state behind that breaks a later real cluster in the
    # same process, so every test that starts a real cluster runs first.
    items.sort(key=lambda item: 0 if item.get_closest_marker("cluster") else 1)


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    servers = {name: FakeUpstream(name) for name in ("strong", "weak", "mid")}
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


@pytest.fixture
def mid(upstreams: dict[str, FakeUpstream]) -> FakeUpstream:
    upstreams["mid"].reset()
    return upstreams["mid"]


@contextmanager
def serving(args: dict[str, Any], metrics_port: int | None = None) -> Iterator[str]:
    """The graph for ``args`` on a new local Ray cluster, as ``serve run`` starts it; its base URL.
    ``metrics_port``: where Ray's metrics endpoint listens (None: Ray's choice)."""
    import ray
    from ray import serve

    from bench.cluster import free_port
    from graph import build_app

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        _metrics_export_port=metrics_port,
    )
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args), name="router", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        ray.shutdown()


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
