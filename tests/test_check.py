"""``routellm-serve check``: a Serve config file checked as the service checks it at start, with
its errors, and without Ray."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.offline.commands.check import check
from routing.settings import ConfigError
from testing import ROOT
from tests.toy_kind import make_checkpoint

SHIPPED = ["serve_config.yaml", "serve_config.all_routers.yaml", "serve_config.three_models.yaml"]


def routellm_serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("routellm-serve")), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def shipped(name: str = "serve_config.yaml") -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def written(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_passes_and_says_what_it_serves(name: str) -> None:
    result = routellm_serve("check", name)
    assert result.returncode == 0, result.stderr
    routers = shipped(name)["applications"][0]["args"]["routers"]
    assert f"routers {', '.join(f'router-{r}' for r in routers)}" in result.stdout
    assert result.stdout.strip().endswith(f"{name}: ok")


def test_every_problem_is_named_by_its_path_and_the_command_fails(tmp_path: Path) -> None:
    config = shipped()
    app = config["applications"][0]
    app["args"]["routers"]["ensemble"]["checkpoint"] = str(tmp_path / "missing")
    app["deployments"][0]["user_config"] = {"routers": {"mf": {"default_strong_percent": 30}}}
    unknown = len(app["deployments"])
    app["deployments"].append({"name": "Router-mff"})
    app["deployments"].append({"name": "LLM-weak", "user_config": {"max_batch_size": 8}})
    result = routellm_serve("check", str(written(tmp_path, config)))
    assert result.returncode == 2 and result.stdout == ""
    error = result.stderr
    assert f"args.routers.ensemble: checkpoint directory '{tmp_path / 'missing'}' does not exist" in error
    assert "deployments[0] (Ingress) user_config: the Ingress takes no user_config; a router's defaults" in error
    assert (
        f"deployments[{unknown}].name: no deployment 'Router-mff' in this application (it has Ingress, Embedding"
        in error
    )
    assert f"deployments[{unknown + 1}] (LLM-weak) user_config: LLM-weak takes no user_config" in error


def test_the_errors_are_the_services_own(tmp_path: Path) -> None:
    """The same config refused by the application's builder, as ``serve run`` would be."""
    from graph import build_app

    config = shipped()
    args = config["applications"][0]["args"]
    args["routers"]["mf"]["default_threshold"] = 0.4
    args["routers"]["mf"]["default_strong_percent"] = 30
    args["upstreams"]["strong"]["timeouts"] = {"total_s": -1}
    with pytest.raises(ConfigError) as built:
        build_app(args)
    with pytest.raises(ConfigError) as checked:
        check(written(tmp_path, config))
    assert str(built.value) in str(checked.value)
    assert "args.routers.mf: set default_strong_percent or default_threshold, not both" in str(built.value)
    assert "args.upstreams.strong.timeouts.total_s: Input should be greater than 0" in str(built.value)


def test_a_default_share_needs_a_calibration_table(tmp_path: Path) -> None:
    """router-<name> sends a share by default: a checkpoint without a table is refused, naming the
    field that fixes it; with a threshold set instead it passes."""
    toy = {"type": "toy", "checkpoint": str(make_checkpoint(tmp_path / "toy"))}
    config = shipped()
    config["applications"][0]["args"]["routers"] = {"toy": toy}
    config["applications"][0].pop("deployments")
    with pytest.raises(ConfigError, match=r"args\.routers\.toy\.default_strong_percent \(unset: 50 %\): .*"):
        check(written(tmp_path, config))
    toy["default_threshold"] = 0.5
    assert [app.name for app in check(written(tmp_path, config))] == ["router"]


def test_a_swapped_checkpoint_in_a_router_user_config_is_inspected(tmp_path: Path) -> None:
    config = shipped()
    deployments = config["applications"][0]["deployments"]
    router = next(d for d in deployments if d["name"] == "Router-mf")
    router["user_config"] = {"checkpoint": "builtin:bert", "max_batch_size": 16}
    with pytest.raises(ConfigError, match=r"deployments\[\d+\] \(Router-mf\) user_config\.checkpoint: .*bert"):
        check(written(tmp_path, config))


def test_checking_starts_no_ray() -> None:
    code = "import sys; from pathlib import Path; from routing.offline.commands.check import check; "
    code += "check(Path('serve_config.yaml')); assert 'ray' not in sys.modules, 'ray imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("applications: [", "expected"), ("proxy_location: EveryNode\n", "applications: expected a Serve config file")],
)
def test_a_file_that_is_not_a_serve_config_is_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"(?s){re.escape(str(path))}: .*{expected}"):
        check(path)


def test_up_refuses_a_bad_config_before_starting_ray(tmp_path: Path) -> None:
    config = shipped()
    config["applications"][0]["args"]["routers"]["mf"]["checkpont"] = "builtin:mf"
    result = routellm_serve("up", str(written(tmp_path, config)))
    assert result.returncode == 2 and "args.routers.mf.checkpont: unknown key 'checkpont'" in result.stderr
    assert "serve run" not in result.stdout


def test_up_names_what_holds_the_http_port_before_starting_ray(tmp_path: Path) -> None:
    config = shipped()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        config["http_options"]["port"] = port = held.getsockname()[1]
        result = routellm_serve("up", str(written(tmp_path, config)))
    assert result.returncode == 2, result.stderr
    assert f"http_options.port {port} on 127.0.0.1: Address already in use (held by " in result.stderr
    assert f"pid {os.getpid()})" in result.stderr and "serve run" not in result.stdout
