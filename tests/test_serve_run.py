"""``routellm-serve up`` as a user runs it: the shipped configs, real SmolLM2 generation; and the
three-model example, over three fake upstreams."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from routing.calibration import load_calibration
from routing.resources import CHECKPOINT_DIR
from routing.serve_env import HAPROXY_PORTS, SERVE_ENV
from testing.cluster import served_by_up
from testing.fake_upstream import FakeUpstream

PROMPT = "What is the capital of France?"
# serve_config.three_models.yaml's candidates, by the names the mf checkpoint scores them by.
EXAMPLE_MODELS = ["meta-llama-3.1-8b-instruct", "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"]


@contextmanager
def serve_run(tmp_path: Path, extra_env: dict[str, str], file: str = "serve_config.yaml") -> Iterator[httpx.Client]:
    with served_by_up(file, tmp_path, extra_env) as cluster, httpx.Client(base_url=cluster.url, timeout=120) as client:
        # `up` became `serve run` in the same process, with the service's Serve settings.
        environ = Path(f"/proc/{cluster.pid}/environ").read_bytes().split(b"\0")
        assert all(f"{key}={value}".encode() in environ for key, value in SERVE_ENV.items())
        # HAProxy takes the HTTP port, and its own ports are free ones `up` chose (not Ray's fixed ones).
        given = dict(item.decode().split("=", 1) for item in environ if item.startswith(b"RAY_SERVE_HAPROXY_"))
        ports = {int(given[key]) for key in HAPROXY_PORTS} | {cluster.http_port}
        assert ports.isdisjoint({8404, 9101}) and ports <= haproxy_listening()
        yield client


def haproxy_listening() -> set[int]:
    return {
        c.laddr.port
        for process in psutil.process_iter(["name"])
        if process.info["name"] == "haproxy"
        for c in process.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    }


def chat(client: httpx.Client, model: str, **fields: object) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "max_tokens": 24, "messages": [{"role": "user", "content": PROMPT}], **fields},
    )


def test_default_config_answers_offline_with_the_embedded_model(tmp_path: Path) -> None:
    with serve_run(tmp_path, {}) as client:
        response = chat(client, "router-mf-0.5")
        assert response.status_code == 200, response.text
        headers = response.headers
        assert headers["x-route-router"] == "mf" and headers["x-route-threshold"] == "0.5"
        assert 0 < float(headers["x-route-score"]) < 1 and headers["x-route-target"] in {
            "gpt-4o",
            "smollm2-135m-instruct",
        }
        body = response.json()
        assert body["model"] == "smollm2-135m-instruct" and "Paris" in body["choices"][0]["message"]["content"]

        response = chat(client, "router-mf-0")  # always strong: not configured, so answered by the weak model
        assert response.headers["x-route-target"] == "gpt-4o"
        assert response.headers["x-route-fallback"] == "upstream_unconfigured"
        assert response.json()["model"] == "smollm2-135m-instruct"

        response = chat(client, "gpt-4o")
        assert response.status_code == 503 and "STRONG_BASE_URL" in response.json()["error"]["message"]
        assert client.get("/health").json()["upstreams"] == {
            "gpt-4o": "unconfigured",
            "smollm2-135m-instruct": "configured",
        }


ROUTERS = ["random", "sw_ranking", "mf", "ensemble", "bert", "causal_llm"]


@pytest.mark.canary
@pytest.mark.usefixtures("weak")
def test_every_shipped_router_routes_through_the_graph(tmp_path: Path, strong: FakeUpstream) -> None:
    """The strong endpoint comes from the environment; each of the six routers, each its own
    deployment, sends a request to it when the threshold is just below the prompt's score, and to
    the embedded weak model when just above."""
    env = {"STRONG_BASE_URL": strong.base_url, "STRONG_MODEL": "remote-large", "STRONG_API_KEY": "sk-env-key"}
    with serve_run(tmp_path, env, "serve_config.all_routers.yaml") as client:
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert sorted(listed) == sorted([f"router-{r}" for r in ROUTERS] + ["remote-large", "smollm2-135m-instruct"])
        for number, router in enumerate(ROUTERS, start=1):
            decision = client.post(
                "/v1/route", json={"model": f"router-{router}", "messages": [{"role": "user", "content": PROMPT}]}
            ).json()
            score = decision["score"]
            assert decision["router"] == router and 0 <= score <= 1, decision

            # The random router draws a new score per request: only 0 and 1 are sure to route one way.
            below, above = (0.0, 1.0) if router == "random" else (max(score - 1e-3, 0), score + 1e-3)
            response = chat(client, f"router-{router}-{below:.6f}")
            assert response.headers["x-route-target"] == "remote-large", (router, response.text)
            assert "x-route-fallback" not in response.headers and response.json()["model"] == "remote-large"
            assert len(strong.requests()) == number
            received = strong.requests()[-1]
            assert received["body"]["model"] == "remote-large" and received["authorization"] == "Bearer sk-env-key"

            if above <= 1:
                response = chat(client, f"router-{router}-{above:.6f}")
                assert response.headers["x-route-target"] == "smollm2-135m-instruct", router
                assert "Paris" in response.json()["choices"][0]["message"]["content"]
                assert len(strong.requests()) == number


def test_three_candidates_route_by_threshold_and_fall_back_along_them(
    tmp_path: Path, weak: FakeUpstream, mid: FakeUpstream, strong: FakeUpstream
) -> None:
    """The README's three-model example: each threshold band sends the prompt to a different one
    of the three, and a failing choice falls back to the next more capable candidate."""
    servers = {"small": weak, "medium": mid, "big": strong}
    env = {}
    for prefix, (model, server) in zip(("LOCAL", "MID", "STRONG"), servers.items(), strict=True):
        env |= {f"{prefix}_BASE_URL": server.base_url, f"{prefix}_MODEL": model, f"{prefix}_API_KEY": "sk-test"}
    with serve_run(tmp_path, env, "serve_config.three_models.yaml") as client:
        messages = [{"role": "user", "content": PROMPT}]
        decision = client.post("/v1/route", json={"model": "router-mf", "messages": messages}).json()
        as_good = decision["candidates"]
        assert list(as_good) == ["small", "medium", "big"] and as_good["big"] == 1, decision
        beats_small, beats_medium = 1 - as_good["small"], 1 - as_good["medium"]
        assert beats_medium < beats_small, "the prompt is one the mid model is predicted to do better on"

        bands = {"small": (beats_small + 1) / 2, "medium": (beats_small + beats_medium) / 2, "big": beats_medium / 2}
        for model, threshold in bands.items():
            response = chat(client, f"router-mf-{threshold:.6f}")
            assert response.status_code == 200, response.text
            assert response.headers["x-route-target"] == model and "x-route-fallback" not in response.headers
            assert response.json()["model"] == model
            listed = dict(item.split("=") for item in response.headers["x-route-candidates"].split(","))
            assert list(listed) == ["small", "medium", "big"]
            assert float(listed["small"]) == pytest.approx(as_good["small"], abs=1e-4)
        assert [len(server.requests()) for server in servers.values()] == [1, 1, 1]

        # The shipped checkpoint carries a table for these three: shares and budgets work as shipped.
        table = load_calibration(CHECKPOINT_DIR / "mf", EXAMPLE_MODELS)
        assert table is not None and table.costs is not None
        shared = client.post("/v1/route", json={"model": "router-mf-30%", "messages": messages})
        assert shared.status_code == 200, shared.text
        assert shared.json()["threshold"] == pytest.approx(table.threshold(30), abs=1e-6)
        budgeted = client.post("/v1/route", json={"model": "router-mf-$0.002", "messages": messages})
        assert budgeted.status_code == 200 and budgeted.json()["budget_usd"] == 0.002, budgeted.text

        weak.behave("status", status=500)
        response = chat(client, f"router-mf-{bands['small']:.6f}")
        assert response.headers["x-route-target"] == "small" and response.json()["model"] == "medium"
        assert response.headers["x-route-fallback"] == "upstream_error"
        mid.behave("status", status=500)
        response = chat(client, f"router-mf-{bands['small']:.6f}")
        assert response.json()["model"] == "big" and response.headers["x-route-fallback"] == "upstream_error"
