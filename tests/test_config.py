from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.config import AppConfig, load_app_config, load_batching_config
from routing.serving.preflight import check_routers
from routing.settings import ConfigError
from routing.upstreams.config import LocalUpstream, OpenAIUpstream

ROOT = Path(__file__).resolve().parent.parent


def error_of(args: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_app_config(args)
    return str(info.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"routers": {"mf": {"type": "mf", "checkpont": "x"}}}, "args.routers.mf.checkpont: unknown key 'checkpont'"),
        ({"embeding": {}}, "args.embeding: unknown key 'embeding'"),
        ({"embedding": {"backend": "openai", "base_ur": "x"}}, "args.embedding.base_ur: unknown key 'base_ur'"),
        (
            {
                "upstreams": {
                    "strong": {"backend": "openai", "model": "a", "api_key": "sk-1"},
                    "weak": {"backend": "local"},
                }
            },
            "args.upstreams.strong.api_key: unknown key 'api_key'",
        ),
        ({"fallback": {"on_error": "other_model"}}, "args.fallback.on_error: unknown key 'on_error'"),
    ],
)
def test_unknown_keys_are_named_with_their_path(args: dict, expected: str) -> None:
    assert expected in error_of(args)


def test_every_bad_key_is_reported_at_once() -> None:
    message = error_of({"routers": {"mf": {"type": "mf", "a": 1, "b": 2}}, "c": 3})
    assert "args.routers.mf.a" in message and "args.routers.mf.b" in message and "args.c" in message


def test_value_errors_name_the_field() -> None:
    assert "args.routers.mf.default_threshold" in error_of({"routers": {"mf": {"type": "mf", "default_threshold": 2}}})
    assert "args.upstreams.strong: missing key 'backend'" in error_of(
        {"upstreams": {"strong": {"model": "a"}, "weak": {"backend": "local"}}}
    )
    assert "'strong: nope' names no entry of 'upstreams'" in error_of({"strong": "nope"})
    assert "router name 'Big-Router'" in error_of({"routers": {"Big-Router": {"type": "random"}}})
    assert "share the model name x" in error_of(
        {"upstreams": {"strong": {"backend": "openai", "model": "x"}, "weak": {"backend": "local", "model": "x"}}}
    )
    assert "may not start with 'router-'" in error_of(
        {"upstreams": {"strong": {"backend": "openai", "model": "router-x"}, "weak": {"backend": "local"}}}
    )


def test_defaults_are_the_embedded_service() -> None:
    config = load_app_config({})
    assert isinstance(config.upstreams["weak"], LocalUpstream)
    strong = config.upstreams["strong"]
    assert isinstance(strong, OpenAIUpstream) and not strong.configured
    shipped = serve_config()["applications"][0]["args"]["routers"]
    assert list(config.routers) == list(shipped) == ["random", "sw_ranking", "mf", "ensemble"]
    assert all(config.routers[name].strong_percent == 50 for name in shipped)


def test_environment_configures_the_strong_model() -> None:
    config = load_app_config({}).resolve_env(
        {"STRONG_BASE_URL": "http://10.0.0.1:8000/v1", "STRONG_MODEL": "llama-70b"}
    )
    strong = config.upstreams["strong"]
    assert strong.configured and strong.base_url == "http://10.0.0.1:8000/v1"
    assert config.upstream_by_model("llama-70b") == "strong"
    unset = load_app_config({}).resolve_env({"STRONG_BASE_URL": ""})
    assert not unset.upstreams["strong"].configured and unset.upstreams["strong"].model == "gpt-4o"


def test_environment_cannot_make_two_models_share_a_name() -> None:
    with pytest.raises(ConfigError, match="share the model name smollm2-135m-instruct"):
        load_app_config({}).resolve_env({"STRONG_MODEL": "smollm2-135m-instruct"})


def test_the_application_builder_reports_config_errors() -> None:
    from graph import build_app

    with pytest.raises(ConfigError, match="args.upstreams.weak.max_new_token: unknown key"):
        build_app(
            {
                "upstreams": {
                    "strong": {"backend": "openai", "model": "a"},
                    "weak": {"backend": "local", "max_new_token": 5},
                }
            }
        )


def test_router_checkpoints_must_match_the_embedding_model() -> None:
    check_routers(load_app_config({}))
    with pytest.raises(ConfigError, match="trained on embeddings of 'sentence-transformers/all-MiniLM-L6-v2'"):
        check_routers(load_app_config({"embedding": {"backend": "openai", "model": "text-embedding-3-small"}}))
    with pytest.raises(ConfigError, match="args.routers.mf: no shipped checkpoint 'nope'"):
        check_routers(load_app_config({"routers": {"mf": {"type": "mf", "checkpoint": "builtin:nope"}}}))
    with pytest.raises(ConfigError, match="args.routers.mf: strong model 'gpt-5' is not one the checkpoint"):
        check_routers(load_app_config({"routers": {"mf": {"type": "mf", "strong_model_id": "gpt-5"}}}))
    with pytest.raises(ConfigError, match="args.routers.sw: .*/mf: a 'mf' checkpoint, not 'sw_ranking'"):
        check_routers(load_app_config({"routers": {"sw": {"type": "sw_ranking", "checkpoint": "builtin:mf"}}}))


def test_upstreams_name_the_pair_that_pair_routers_score() -> None:
    upstreams = {
        "strong": {"backend": "openai", "model": "a", "router_model_id": "gpt-4-0314"},
        "weak": {"backend": "local", "router_model_id": "llama-13b"},
    }
    config = load_app_config({"upstreams": upstreams})
    assert [c.router_model_id for c in config.candidates("mf")] == ["llama-13b", "gpt-4-0314"]
    # No shipped table is for this pair: router-mf's default share needs one, a fixed threshold does not.
    with pytest.raises(ConfigError) as refused:
        check_routers(config)
    assert (
        "args.routers.mf.default_strong_percent (unset: 50 %): router 'mf' scores gpt-4-0314 against llama-13b, "
        "but its calibration table is for gpt-4-1106-preview against mixtral-8x7b-instruct-v0.1: run "
        "'routellm-serve calibrate --router mf="
    ) in str(refused.value) and "or set default_threshold to route by a fixed threshold" in str(refused.value)
    routers = {name: {"type": name, "default_threshold": 0.5} for name in ("mf", "sw_ranking")}
    check_routers(load_app_config({"upstreams": upstreams, "routers": routers}))
    upstreams["weak"]["router_model_id"] = "my-finetune"
    with pytest.raises(ConfigError, match="args.routers.sw_ranking: weak model 'my-finetune' is not one"):
        check_routers(load_app_config({"upstreams": upstreams, "routers": routers}))


SERVE_CONFIGS = ["serve_config.yaml", "serve_config.all_routers.yaml", "serve_config.three_models.yaml"]


def serve_config(file: str = "serve_config.yaml") -> dict:
    return yaml.safe_load((ROOT / file).read_text())


@pytest.mark.parametrize("file", SERVE_CONFIGS)
def test_serve_config_is_valid_for_ray_and_for_us(file: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(serve_config(file))
    (application,) = serve_config(file)["applications"]
    assert isinstance(load_app_config(application["args"]), AppConfig)


@pytest.mark.parametrize("file", SERVE_CONFIGS)
def test_serve_config_fits_two_cores_and_names_real_deployments(file: str) -> None:
    from graph import build_app

    (application,) = serve_config(file)["applications"]
    options = {d["name"]: d for d in application["deployments"]}
    built = build_app(application["args"])
    names = {d.name for d in _deployments(built)}
    assert set(options) == names
    for name, option in options.items():
        assert option["ray_actor_options"]["num_cpus"] <= 0.5, name
        # Bounded queues: an overloaded stage answers 503 with Retry-After instead of piling up.
        assert option["max_queued_requests"] > 0 and option["backpressure_config"]["retry_after_s"] > 0, name
        scaling = option["autoscaling_config"]
        assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"], name
        assert 0 < scaling["target_ongoing_requests"] <= option["max_ongoing_requests"], name
        assert scaling["upscale_delay_s"] > 0 and scaling["downscale_delay_s"] > 0, name
        if name == "Embedding" or name.startswith("Router-"):
            batching = load_batching_config(option["user_config"])
            assert batching.max_batch_size <= option["max_ongoing_requests"], name
        else:
            assert "user_config" not in option, name
    # At the minimum replica counts the graph fits two cores.
    assert (
        sum(o["ray_actor_options"]["num_cpus"] * o["autoscaling_config"]["min_replicas"] for o in options.values()) <= 2
    )


def test_all_routers_is_the_default_with_the_two_classifiers() -> None:
    default, every = serve_config(), serve_config("serve_config.all_routers.yaml")
    routers = every["applications"][0]["args"]["routers"]
    added = {name: routers.pop(name) for name in ("bert", "causal_llm")}
    deployments = every["applications"][0]["deployments"]
    every["applications"][0]["deployments"] = [
        d for d in deployments if d["name"] not in {"Router-bert", "Router-causal_llm"}
    ]
    assert default == every and [a["type"] for a in added.values()] == ["bert", "causal_llm"]
    assert list(default["applications"][0]["args"]["routers"]) == ["random", "sw_ranking", "mf", "ensemble"]


def test_batching_user_config_is_checked_with_paths() -> None:
    assert load_batching_config({"max_batch_size": 8}).batch_wait_timeout_s == 0.0
    with pytest.raises(ConfigError) as info:
        load_batching_config({"max_batch_size": 0, "batch_wait_timout_s": 0.1})
    assert "user_config.max_batch_size: Input should be greater than or equal to 1" in str(info.value)
    assert "user_config.batch_wait_timout_s: unknown key 'batch_wait_timout_s'" in str(info.value)


def _deployments(app):  # type: ignore[no-untyped-def]
    """Every deployment reachable from the ingress's bound arguments."""
    from ray.serve.deployment import Application

    seen, stack = [], [app]
    while stack:
        node = stack.pop()
        seen.append(node._bound_deployment)
        args = list(node._bound_deployment.init_args) + list(node._bound_deployment.init_kwargs.values())
        while args:
            arg = args.pop()
            if isinstance(arg, Application):
                stack.append(arg)
            elif isinstance(arg, dict):
                args.extend(arg.values())
    return seen


def test_a_routers_user_config_takes_its_defaults_beside_its_checkpoint() -> None:
    from routing.config import load_router_user_config

    settings = load_router_user_config({"checkpoint": "/models/mf", "default_threshold": 0.3, "max_batch_size": 8})
    assert (settings.checkpoint, settings.default_threshold, settings.max_batch_size) == ("/models/mf", 0.3, 8)
    with pytest.raises(ConfigError, match="set default_strong_percent or default_threshold, not both"):
        load_router_user_config({"default_threshold": 0.3, "default_strong_percent": 30})


def test_a_router_chooses_among_its_named_candidates_cheapest_first() -> None:
    upstreams = {
        "strong": {"backend": "openai", "model": "a", "price": {"input_per_million": 5, "output_per_million": 15}},
        "weak": {"backend": "local"},
        "mid": {"backend": "openai", "model": "m", "router_model_id": "gpt-3.5-turbo-0125"},
    }
    config = load_app_config({"upstreams": upstreams, "routers": {"mf": {"type": "mf", "candidates": ["weak", "mid"]}}})
    assert [(c.key, c.model, c.router_model_id) for c in config.candidates("mf")] == [
        ("weak", "smollm2-135m-instruct", None),
        ("mid", "m", "gpt-3.5-turbo-0125"),
    ]
    three = load_app_config(
        {"upstreams": upstreams, "routers": {"mf": {"type": "mf", "candidates": ["weak", "mid", "strong"]}}}
    )
    assert [c.key for c in three.candidates("mf")] == ["weak", "mid", "strong"]
    upstreams["mid"]["price"] = {"input_per_million": 10, "output_per_million": 30}
    for router, message in (
        ({"type": "mf", "candidates": ["mid"]}, "routers.mf.candidates: names at least two upstreams"),
        ({"type": "mf", "candidates": ["weak", "nope"]}, "candidate 'nope' names no entry of 'upstreams'"),
        ({"type": "mf", "candidates": ["weak", "weak"]}, "'weak' is listed twice"),
        (
            {"type": "mf", "candidates": ["weak", "mid", "strong"]},
            "routers.mf.candidates: candidates are listed cheapest first and the most capable last, "
            "but 'mid' costs more than 'strong'",
        ),
        (
            {"type": "bert", "candidates": ["weak", "strong", "mid"]},
            "a bert router scores only the pair it was trained for, so it takes two candidates, not 3; "
            "the kinds that route among more are: sw_ranking, mf",
        ),
    ):
        assert message in error_of({"upstreams": upstreams, "routers": {"mf": router}})


def test_the_learner_trains_a_router_of_two_candidates() -> None:
    upstreams = {
        "strong": {"backend": "openai", "model": "a"},
        "weak": {"backend": "local"},
        "mid": {"backend": "openai", "model": "m"},
    }
    message = error_of(
        {
            "upstreams": upstreams,
            "routers": {"mf": {"type": "mf", "candidates": ["weak", "mid", "strong"]}},
            "request_log": {"directory": "/tmp/log"},
            "learner": {
                "router": "mf",
                "directory": "/tmp/x",
                "judge": {"model": "j", "base_url": "http://j"},
                "budget_usd_per_day": 1,
            },
        }
    )
    assert "learner.router: router 'mf' chooses among more than two candidates" in message
