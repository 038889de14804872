"""The composed graph in Serve's local testing mode: every deployment in this process."""

from __future__ import annotations

import json

from conftest import FakeUpstream, fake_pair_args
from ray import serve

from graph import build_app
from routing.protocol import ChatCompletionRequest


def test_graph_routes_through_every_deployment(strong: FakeUpstream, weak: FakeUpstream) -> None:
    handle = serve.run(
        build_app(fake_pair_args(strong, weak)), name="local", route_prefix=None, _local_testing_mode=True
    )
    request = ChatCompletionRequest.model_validate(
        {"model": "router-mf-0", "messages": [{"role": "user", "content": "Summarise the plot of Hamlet."}]}
    )

    response = handle.chat_completions.remote(request).result()
    assert response.status_code == 200
    assert response.headers["x-route-router"] == "mf" and response.headers["x-route-target"] == "big"
    assert 0 < float(response.headers["x-route-score"]) < 1
    assert json.loads(response.body)["choices"][0]["message"]["content"] == "strong answer #1"

    decision = json.loads(handle.route.remote(request.model_copy(update={"model": "router-mf-1"})).result().body)
    assert decision["target"] == "small" and decision["threshold"] == 1
    assert len(strong.requests()) == 1 and weak.requests() == []
