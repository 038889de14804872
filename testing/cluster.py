"""Local Ray clusters serving the graph, in each way the service is started: in this process as
``serve run`` does (:func:`in_process`), a config deployed as ``serve deploy`` does
(:func:`deployed`), an empty cluster that ``serve deploy`` is then pointed at
(:func:`for_serve_deploy`), ``routellm-serve up`` in a child process (:func:`served_by_up`), and
two nodes joined with ``ray start`` (:func:`two_nodes`). Each yields a :class:`Cluster` and stops
only what it started (``ray stop`` would stop every Ray on the machine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from routing.serve_env import HAPROXY_PORTS, SERVE_ENV, free_port
from testing import ROOT
from testing.traffic import wait_for

STARTUP_DEADLINE_S = 240


@dataclass
class Cluster:
    """Where a started cluster is reached: the application (``url``), its HTTP port, and Ray's
    metrics endpoint and dashboard where they were asked for."""

    url: str
    http_port: int
    metrics_url: str | None = None
    dashboard_url: str | None = None
    pid: int | None = None  # the serving process, when it is a child of this one
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)  # node id → resources


def wait_until_healthy(url: str, deadline_s: float = STARTUP_DEADLINE_S, status: int = 200) -> None:
    """Polls ``url`` with GET until it answers ``status``."""
    wait_for(lambda: httpx.get(url, timeout=10).status_code == status, f"{url} to answer {status}", deadline_s)


def _ray_init(metrics_port: int | None = None, dashboard_port: int | None = None, **options: Any) -> None:
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=dashboard_port is not None,
        dashboard_port=dashboard_port,
        _metrics_export_port=metrics_port,
        logging_level="ERROR",
        log_to_driver=False,
        **options,
    )


def _metrics_url(port: int | None) -> str | None:
    return f"http://127.0.0.1:{port}/metrics" if port else None


@contextmanager
def in_process(args: dict[str, Any], metrics_port: int | None = None, dashboard: bool = False) -> Iterator[Cluster]:
    """The graph for ``args`` on a new local cluster, as ``serve run`` starts it.
    ``metrics_port``: where Ray's metrics endpoint listens (None: Ray's choice, not reported)."""
    import ray
    from ray import serve

    from graph import build_app

    _ray_init(metrics_port, free_port() if dashboard else None)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args), name="router", route_prefix="/")
        yield Cluster(f"http://127.0.0.1:{port}", port, _metrics_url(metrics_port))
    finally:
        ray.shutdown()


@contextmanager
def deployed(
    config: dict[str, Any], workdir: Path, health_path: str = "/health", dashboard: bool = False
) -> Iterator[Cluster]:
    """``config`` (a Serve config file's content) deployed on a new local cluster as ``serve
    deploy`` deploys it, with its metrics endpoint on (and the dashboard, which Ray's state API
    needs, when asked for); the HTTP port is chosen here."""
    import ray
    from ray.serve._private.api import serve_start
    from ray.serve.schema import ServeDeploySchema

    http_port, metrics_port = free_port(), free_port()
    config = {**config, "http_options": {**config.get("http_options", {}), "port": http_port}}
    _ray_init(metrics_port, free_port() if dashboard else None, _temp_dir=str(workdir / "ray"))
    try:
        client = serve_start(http_options=config["http_options"])
        client.deploy_apps(ServeDeploySchema.model_validate(config), _blocking=True)
        cluster = Cluster(f"http://127.0.0.1:{http_port}", http_port, _metrics_url(metrics_port))
        wait_until_healthy(cluster.url + health_path)
        yield cluster
    finally:
        ray.shutdown()


@contextmanager
def for_serve_deploy() -> Iterator[Cluster]:
    """A new local cluster with its dashboard, for ``serve deploy --address <dashboard_url>``;
    the application is to listen on ``http_port``."""
    import ray

    dashboard, metrics, http_port = free_port(), free_port(), free_port()
    _ray_init(metrics, dashboard)
    try:
        yield Cluster(
            f"http://127.0.0.1:{http_port}", http_port, _metrics_url(metrics), f"http://127.0.0.1:{dashboard}"
        )
    finally:
        ray.shutdown()


def serve_deploy(cluster: Cluster, config: dict[str, Any], workdir: Path) -> None:
    """``serve deploy`` of ``config`` (a Serve config file's content) to ``cluster``, as an operator runs it."""
    assert cluster.dashboard_url is not None, "a cluster started for serve deploy"
    path = workdir / f"config-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(config))
    subprocess.run(
        ["serve", "deploy", "--address", cluster.dashboard_url, str(path)], cwd=ROOT, check=True, capture_output=True
    )


@contextmanager
def served_by_up(config_file: str, workdir: Path, extra_env: dict[str, str]) -> Iterator[Cluster]:
    """``routellm-serve up`` on a copy of ``config_file`` (its port changed) in a child process on
    a private cluster, with neither the upstreams' variables nor the Serve settings of this
    process (``up`` sets the latter); ready once ``/health`` answers 200. Its log:
    ``workdir/serve.log``."""
    config = yaml.safe_load((ROOT / config_file).read_text())
    port = free_port()
    config["http_options"]["port"] = port
    path = workdir / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    own = ("STRONG_", "MID_", "LOCAL_", *SERVE_ENV, *HAPROXY_PORTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra_env, RAY_ADDRESS="local")  # a private cluster, whatever else runs on this machine
    log_path = workdir / "serve.log"
    with log_path.open("w") as log:
        up = [str(Path(sys.executable).with_name("routellm-serve")), "up", str(path)]
        process = subprocess.Popen(up, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE_S
            while not _answers(url + "/health"):
                if process.poll() is not None:
                    raise RuntimeError(f"routellm-serve up exited: {log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not start in time")
                time.sleep(1)
            yield Cluster(url, port, pid=process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            kill_session(process.pid)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def two_nodes(temp: Path, head_resources: str, worker_resources: str) -> Iterator[Cluster]:
    """A head and a worker node on 127.0.0.1 (``ray start``), one CPU each, offering the custom
    resources given (JSON), and this process connected to them; the application is to listen on
    ``http_port``."""
    import ray

    # A private cluster on 127.0.0.1, reached by this process alone: no token needed.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    gcs, dashboard, http_port = free_port(), free_port(), free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1"]
    try:
        _ray_start(
            "--head",
            f"--port={gcs}",
            f"--temp-dir={temp}",
            "--include-dashboard=true",
            f"--dashboard-port={dashboard}",
            f"--resources={head_resources}",
            *common,
            env=env,
        )
        # Both nodes on one machine: the worker's HAProxy needs ports of its own.
        worker_env = env | {key: str(free_port()) for key in HAPROXY_PORTS}
        _ray_start(f"--address=127.0.0.1:{gcs}", f"--resources={worker_resources}", *common, env=worker_env)
        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address=f"127.0.0.1:{gcs}", logging_level="ERROR", log_to_driver=False)
        nodes = {node["NodeID"]: node["Resources"] for node in ray.nodes() if node["Alive"]}
        dashboard_url = f"http://127.0.0.1:{dashboard}"
        yield Cluster(f"http://127.0.0.1:{http_port}", http_port, dashboard_url=dashboard_url, nodes=nodes)
    finally:
        ray.shutdown()
        os.environ.pop("RAY_AUTH_MODE", None)
        _kill_cluster(temp, gcs)


def _ray_start(*args: str, env: dict[str, str]) -> None:
    subprocess.run(["ray", "start", *args, "--disable-usage-stats"], env=env, check=True, capture_output=True)


def _kill_cluster(temp: Path, gcs: int) -> None:
    """Stops this cluster's processes only, with what they started (HAProxy among them)."""
    ours = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(temp) in cmdline or f"127.0.0.1:{gcs}" in cmdline:
            ours += [process, *_children(process)]
    _kill(ours)


def kill_session(session: int) -> None:
    """Kills what is left of the session a child was started in (``start_new_session``): a
    service stopped abruptly can leave HAProxy running, holding its ports."""
    left = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == session:
                left.append(process)
        except ProcessLookupError:
            pass
    _kill(left)


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
