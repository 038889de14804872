"""The Kubernetes manifests and the GPU profile, validated offline.

- every RayService against KubeRay v1.7.0's CRD schema, made strict: an unknown field anywhere
  the schema describes is an error (the CRD alone lets a misspelling through);
- its ``serveConfigV2`` by Ray's ``ServeDeploySchema``, by an unknown-key check of our own (Ray's
  schema ignores unknown keys) and by the application's own config; and equal to
  ``serve_config.gpu.yaml``, which differs from ``serve_config.all_routers.yaml`` only in placement;
- every YAML file by yamllint.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, TESTS
from pydantic import BaseModel

from routing.config import load_app_config
from routing.serve_env import SERVE_ENV

CRD = TESTS / "data" / "kuberay-v1.7.0" / "ray.io_rayservices.yaml"
K8S = ROOT / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rayservices() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in documents(path) if doc["kind"] == "RayService"]


def strict(schema: Any) -> Any:
    """The schema with unknown properties forbidden wherever it lists the known ones."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(item) for item in schema]
    return schema


@cache
def rayservice_schema() -> dict[str, Any]:
    (crd,) = documents(CRD)
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    return strict(v1["schema"]["openAPIV3Schema"])


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(rayservice_schema())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def test_the_rayservice_passes_the_strict_crd_schema() -> None:
    (service,) = rayservices()
    assert schema_errors(service) == []


@pytest.mark.parametrize(
    ("path", "misspelled"),
    [
        (("spec", "rayClusterConfig"), "enableInTreeAutoscalling"),
        (("spec", "rayClusterConfig", "workerGroupSpecs", 1), "maxReplica"),
        (("spec", "rayClusterConfig", "headGroupSpec", "template", "spec", "containers", 0), "imagePullPolcy"),
    ],
)
def test_a_misspelled_field_fails_the_validation(path: tuple[Any, ...], misspelled: str) -> None:
    (service,) = rayservices()
    broken = copy.deepcopy(service)
    node = broken
    for key in path:
        node = node[key]
    node[misspelled] = "x"
    assert any(misspelled in error for error in schema_errors(broken))


def unknown_keys(model: type[BaseModel], data: Any, path: str) -> list[str]:
    """Keys of ``data`` that ``model`` (a pydantic schema of Ray's) does not define, recursively."""
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{path}.{key}")
            continue
        for inner in _models_in(field.annotation):
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                where = f"{path}.{key}" + (f"[{index}]" if isinstance(value, list) else "")
                found += unknown_keys(inner, item, where)
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


@cache
def serve_config_v2() -> dict[str, Any]:
    (service,) = rayservices()
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def test_serve_config_v2_is_valid_for_ray_and_for_us() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = serve_config_v2()
    ServeDeploySchema.model_validate(config)
    assert unknown_keys(ServeDeploySchema, config, "serveConfigV2") == []
    (application,) = config["applications"]
    load_app_config(application["args"])


def test_the_unknown_key_check_finds_a_misspelling() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = copy.deepcopy(serve_config_v2())
    config["applications"][0]["deployments"][1]["autoscaling_confg"] = {}
    assert unknown_keys(ServeDeploySchema, config, "serveConfigV2") == [
        "serveConfigV2.applications[0].deployments[1].autoscaling_confg"
    ]


def test_serve_config_v2_is_the_gpu_profile() -> None:
    assert serve_config_v2() == yaml.safe_load((ROOT / "serve_config.gpu.yaml").read_text())


def test_the_gpu_profile_differs_from_all_routers_only_in_placement() -> None:
    default = yaml.safe_load((ROOT / "serve_config.all_routers.yaml").read_text())
    gpu = yaml.safe_load((ROOT / "serve_config.gpu.yaml").read_text())
    placements = {}
    for config in (default, gpu):
        config["http_options"].pop("host")
        (application,) = config["applications"]
        application["args"].pop("auth", None)
        placements[id(config)] = {d["name"]: d.pop("ray_actor_options") for d in application["deployments"]}
    assert default == gpu
    placed = placements[id(gpu)]
    for name, options in placed.items():
        on_gpu = name == "Embedding" or name.startswith("Router-")
        assert (options.get("num_gpus", 0) > 0) == on_gpu, name
        assert ("cpu_worker" in options.get("resources", {})) == (not on_gpu), name
    # At the minimum replica counts the GPU deployments share one GPU.
    assert sum(options.get("num_gpus", 0) for options in placed.values()) <= 1


def test_worker_groups_offer_what_the_deployments_ask_for() -> None:
    (service,) = rayservices()
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert cluster["enableInTreeAutoscaling"] is True
    groups = {group["groupName"]: group for group in cluster["workerGroupSpecs"]}
    assert "cpu_worker" in groups["cpu"]["resources"]
    gpu_pod = groups["gpu"]["template"]["spec"]
    (container,) = gpu_pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod["tolerations"]


def test_every_ray_pod_starts_with_the_services_serve_settings() -> None:
    (service,) = rayservices()
    (config_map,) = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in documents(path)
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "routellm-serve-env"
    ]
    assert config_map["data"] == SERVE_ENV
    cluster = service["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [group["template"] for group in cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert {"configMapRef": {"name": "routellm-serve-env"}} in container["envFrom"], container["name"]


def test_every_yaml_file_passes_yamllint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
