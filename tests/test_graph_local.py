"""The composed graph in Serve's local testing mode: every deployment in one process.

Ray 2.60's local testing mode needs Serve's handle router on a loop of its own, which the
service's throughput-optimized settings (``routing/serve_env.py``, on every test cluster) turn
off. So the graph runs here as a developer runs local testing mode: in a child process with
Serve's defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from testing import ROOT, TESTS
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

PROMPT = "Summarise the plot of Hamlet."


def scenario(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: one chat completion and one routing decision through every deployment."""
    from ray import serve

    from graph import build_app
    from routing.protocol import ChatCompletionRequest

    handle = serve.run(build_app(args), name="local", route_prefix=None, _local_testing_mode=True)
    request = ChatCompletionRequest.model_validate(
        {"model": "router-mf-0", "messages": [{"role": "user", "content": PROMPT}]}
    )
    answer = handle.chat_completions.remote(request).result()
    routed = handle.route.remote(request.model_copy(update={"model": "router-mf-1"})).result()
    return {
        "status": answer.status_code,
        "headers": {k: v for k, v in answer.headers.items() if k.startswith("x-route-")},
        "completion": json.loads(answer.body),
        "decision": json.loads(routed.body),
    }


def test_graph_routes_through_every_deployment(strong: FakeUpstream, weak: FakeUpstream) -> None:
    code = "import json, sys, test_graph_local as t; print(json.dumps(t.scenario(json.loads(sys.argv[1]))))"
    env = os.environ | {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fake_pair_args(strong, weak))],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])

    assert result["status"] == 200
    headers = result["headers"]
    assert headers["x-route-router"] == "mf" and headers["x-route-target"] == "big"
    assert 0 < float(headers["x-route-score"]) < 1
    assert result["completion"]["choices"][0]["message"]["content"] == "strong answer #1"
    assert result["decision"]["target"] == "small" and result["decision"]["threshold"] == 1
    assert len(strong.requests()) == 1 and weak.requests() == []
