"""The Kubernetes manifests, as ``kubectl kustomize k8s/overlays/<profile>`` renders them, validated
offline:

- every RayService against KubeRay v1.7.0's CRD schema, made strict: an unknown field anywhere
  the schema describes is an error (the CRD alone lets a misspelling through); everything else
  against Kubernetes' own schemas (kubernetes-validate, strict);
- each profile's ``serveConfigV2`` by Ray's ``ServeDeploySchema``, by an unknown-key check of our
  own (Ray's schema ignores unknown keys) and as ``routellm-serve check`` checks a config; and in
  step with the shipped configs, differing only in placement;
- the facts of each profile: no Secret, no GPU outside ``gpu``, no ReadWriteMany volume, a volume
  only in ``learner``, images tagged with the package's version, probes on ``/health`` and
  ``/health/live``, the ``cpu`` profile within three 4-CPU/16-GiB nodes;
- every YAML file by yamllint.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from routing.offline.commands.check import check
from routing.serve_env import SERVE_ENV
from testing import ROOT, TESTS

CRD = TESTS / "data" / "kuberay-v1.7.0" / "ray.io_rayservices.yaml"
K8S = ROOT / "k8s"
PROFILES = ["cpu", "gpu", "learner"]
# A 4-CPU/16-GiB node's room for pods, less what the kubelet and the system keep (GKE, EKS and AKS
# leave about 3.9 CPUs and 13 GiB).
NODE_CPUS, NODE_GIB, NODES = 3.9, 13.0, 3


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@cache
def rendered(directory: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is not installed (Debian: apt-get install kubectl)"
    out = subprocess.run([kubectl, "kustomize", str(K8S / directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def rayservice(profile: str) -> dict[str, Any]:
    (service,) = [doc for doc in rendered(f"overlays/{profile}") if doc["kind"] == "RayService"]
    return service


def pods(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = {g["groupName"]: g["template"] for g in cluster["workerGroupSpecs"]}
    return {"head": cluster["headGroupSpec"]["template"], **groups}


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


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_passes_strict_validation(profile: str) -> None:
    import kubernetes_validate

    for doc in rendered(f"overlays/{profile}"):
        if doc["kind"] == "RayService":
            assert schema_errors(doc) == []
        else:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_validate_refuses_a_misspelled_field() -> None:
    import kubernetes_validate

    (claim,) = [doc for doc in rendered("overlays/learner") if doc["kind"] == "PersistentVolumeClaim"]
    broken = copy.deepcopy(claim)
    broken["spec"]["acessModes"] = ["ReadWriteOnce"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    ("path", "misspelled"),
    [
        (("spec", "rayClusterConfig"), "enableInTreeAutoscalling"),
        (("spec", "rayClusterConfig", "workerGroupSpecs", 1), "maxReplica"),
        (("spec", "rayClusterConfig", "headGroupSpec", "template", "spec", "containers", 0), "imagePullPolcy"),
    ],
)
def test_a_misspelled_field_fails_the_validation(path: tuple[Any, ...], misspelled: str) -> None:
    broken = copy.deepcopy(rayservice("gpu"))
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


def serve_config_v2(profile: str) -> dict[str, Any]:
    return yaml.safe_load(rayservice(profile)["spec"]["serveConfigV2"])


@pytest.mark.parametrize("profile", PROFILES)
def test_serve_config_v2_is_valid_for_ray_and_for_us(profile: str, tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    config = serve_config_v2(profile)
    ServeDeploySchema.model_validate(config)
    assert unknown_keys(ServeDeploySchema, config, "serveConfigV2") == []
    path = tmp_path / "serveConfigV2.yaml"
    path.write_text(rayservice(profile)["spec"]["serveConfigV2"])
    (app,) = check(path)
    assert (app.config.learner is not None) == (profile == "learner")


def test_the_unknown_key_check_finds_a_misspelling() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = copy.deepcopy(serve_config_v2("cpu"))
    config["applications"][0]["deployments"][1]["autoscaling_confg"] = {}
    assert unknown_keys(ServeDeploySchema, config, "serveConfigV2") == [
        "serveConfigV2.applications[0].deployments[1].autoscaling_confg"
    ]


def placements(config: dict[str, Any]) -> dict[str, Any]:
    """Takes what a profile may place differently out of a serve config: the host, the clients'
    keys, the session store and each deployment's ray_actor_options; returns the latter by deployment."""
    config["http_options"].pop("host")
    (application,) = config["applications"]
    application["args"].pop("auth", None)
    application["args"].pop("sessions", None)
    return {d["name"]: d.pop("ray_actor_options") for d in application["deployments"]}


def test_the_cpu_profile_is_the_default_config_on_a_pod() -> None:
    default, cpu = yaml.safe_load((ROOT / "serve_config.yaml").read_text()), serve_config_v2("cpu")
    assert cpu["http_options"]["host"] == "0.0.0.0"
    assert cpu["applications"][0]["args"]["auth"] == {"api_keys_file": "/etc/routellm/api-keys"}
    assert cpu["applications"][0]["args"]["sessions"] == {"store": "redis", "url": "redis://routellm-sessions:6379/0"}
    assert placements(default) == placements(cpu) and default == cpu


def test_the_gpu_profile_differs_from_all_routers_only_in_placement() -> None:
    default = yaml.safe_load((ROOT / "serve_config.all_routers.yaml").read_text())
    gpu = serve_config_v2("gpu")
    placements(default)
    placed = placements(gpu)
    assert default == gpu
    for name, options in placed.items():
        on_gpu = name == "Embedding" or name.startswith("Router-")
        assert (options.get("num_gpus", 0) > 0) == on_gpu, name
        assert ("cpu_worker" in options.get("resources", {})) == (not on_gpu), name
    # At the minimum replica counts the GPU deployments share one GPU.
    assert sum(options.get("num_gpus", 0) for options in placed.values()) <= 1


def test_the_learner_profile_is_the_cpu_profile_with_the_learner() -> None:
    cpu, learner = serve_config_v2("cpu"), serve_config_v2("learner")
    args = learner["applications"][0]["args"]
    assert args.pop("request_log")["directory"].startswith("/var/lib/routellm/")
    assert args.pop("learner")["directory"].startswith("/var/lib/routellm/")
    deployments = learner["applications"][0]["deployments"]
    assert deployments.pop(0) == {"name": "Learner", "ray_actor_options": {"num_cpus": 0.1}}
    assert learner == cpu


@pytest.mark.parametrize("profile", PROFILES)
def test_the_facts_of_every_profile(profile: str) -> None:
    docs = rendered(f"overlays/{profile}")
    text = yaml.safe_dump_all(docs)
    assert "Secret" not in {doc["kind"] for doc in docs}, "keys are the operator's: no Secret is applied"
    assert ("nvidia.com/gpu" in text) == (profile == "gpu")
    claims = [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    assert [c["spec"]["accessModes"] for c in claims] == ([["ReadWriteOnce"]] if profile == "learner" else [])
    version = metadata.version("routellm-serve")
    for name, pod in pods(rayservice(profile)).items():
        (container,) = pod["spec"]["containers"]
        assert container["image"].rsplit(":", 1)[1] == version, (name, container["image"])
        assert {"configMapRef": {"name": "routellm-serve-env"}} in container["envFrom"], name
        assert container["resources"]["requests"] == container["resources"]["limits"], name
        if name != "head":
            assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}, name
            assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": 8000}, name
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "routellm-serve-env"]
    assert config_map["data"] == SERVE_ENV
    # The ingress replicas share the session store the profile runs, at the Service's name and port.
    sessions = serve_config_v2(profile)["applications"][0]["args"]["sessions"]
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "routellm-sessions"]
    assert sessions["url"] == f"redis://routellm-sessions:{service['spec']['ports'][0]['port']}/0"
    (store,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "routellm-sessions"]
    (container,) = store["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert "volumes" not in store["spec"]["template"]["spec"], "the store keeps nothing on disk"


def gib(quantity: str) -> float:
    return float(quantity.removesuffix("Gi")) if quantity.endswith("Gi") else float(quantity.removesuffix("Mi")) / 1024


def cpus(quantity: str) -> float:
    return float(quantity.removesuffix("m")) / 1000 if quantity.endswith("m") else float(quantity)


def test_the_cpu_profile_fits_three_4_cpu_16_gib_nodes() -> None:
    """The head with KubeRay's autoscaler and the session store beside it on one node, each worker
    the group may grow to on one of the others; and the deployments at their minimum replicas
    within the first worker."""
    cluster = rayservice("cpu")["spec"]["rayClusterConfig"]
    autoscaler = cluster["autoscalerOptions"]["resources"]["requests"]
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    (store,) = [d for d in rendered("overlays/cpu") if d["kind"] == "Deployment"]
    sessions = store["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    head_cpus = cpus(head["resources"]["requests"]["cpu"]) + cpus(autoscaler["cpu"]) + cpus(sessions["cpu"])
    head_gib = gib(head["resources"]["requests"]["memory"]) + gib(autoscaler["memory"]) + gib(sessions["memory"])
    assert head_cpus <= NODE_CPUS and head_gib <= NODE_GIB
    (group,) = cluster["workerGroupSpecs"]
    (worker,) = group["template"]["spec"]["containers"]
    assert cpus(worker["resources"]["requests"]["cpu"]) <= NODE_CPUS
    assert gib(worker["resources"]["requests"]["memory"]) <= NODE_GIB
    assert 1 + group["maxReplicas"] <= NODES
    deployments = serve_config_v2("cpu")["applications"][0]["deployments"]
    at_minimum = sum(d["ray_actor_options"]["num_cpus"] * d["autoscaling_config"]["min_replicas"] for d in deployments)
    assert at_minimum <= cpus(worker["resources"]["requests"]["cpu"]) * group["minReplicas"]


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_monitoring_objects_carry_the_label_kube_prometheus_stack_selects(profile: str) -> None:
    docs = rendered(f"monitoring/{profile}")
    operated = [doc for doc in docs if doc["kind"] in {"PodMonitor", "PrometheusRule"}]
    assert len(operated) == 2 and all(
        doc["metadata"]["labels"]["release"] == "kube-prometheus-stack" for doc in operated
    )
    (dashboard,) = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_routing_alert_bound_is_the_profiles() -> None:
    def bound(profile: str) -> float:
        (rule,) = [doc for doc in rendered(f"monitoring/{profile}") if doc["kind"] == "PrometheusRule"]
        (alert,) = [
            r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "RouteLLMRoutingOverheadHigh"
        ]
        return float(alert["expr"].rsplit(">", 1)[1])

    # GPU workers route in milliseconds; CPU workers at a p99 of hundreds of them under load.
    assert bound("gpu") == 0.1 and bound("cpu") == 1.0


def test_every_yaml_file_passes_yamllint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
