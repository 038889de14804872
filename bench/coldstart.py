"""Cold start of the shipped service: ``routellm-serve up CONFIG`` to its first answered chat
request and until every router gives a decision, and the memory (PSS) of the whole graph at idle.

    python -m bench.coldstart serve_config.yaml serve_config.all_routers.yaml

The service starts as a user starts it (a new local Ray cluster, every deployment of the config,
the embedded models); its processes are the ``up`` process (which becomes ``serve run``) and
everything it spawned. PSS counts memory shared between processes (the model files mapped by
several replicas, Ray's shared libraries) once, split between them, so the sum is the graph's
real footprint.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import yaml
from pydantic import BaseModel

from bench.served import ray_actor_name
from testing import ROOT
from testing.cluster import free_port


class ColdStart(BaseModel):
    first_answer_s: float
    all_routers_s: float
    idle_pss_mib: float
    processes: int
    pss_by_process_mib: dict[str, float]


def _label(process: psutil.Process) -> str:
    actor = ray_actor_name(process)
    if actor:
        return actor
    command = " ".join(process.cmdline())
    if "serve" in command and " run " in f" {command} ":
        return "serve run"
    scripts = [Path(arg).name for arg in process.cmdline() if arg.endswith(".py")]
    return scripts[0] if scripts else process.name()


def _tree(root: psutil.Process) -> list[psutil.Process]:
    return [root, *root.children(recursive=True)]


def _pss_mib(processes: list[psutil.Process]) -> dict[str, float]:
    by_label: dict[str, float] = {}
    for process in processes:
        try:
            label = _label(process)
            by_label[label] = by_label.get(label, 0.0) + process.memory_full_info().pss / 2**20
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return dict(sorted(by_label.items(), key=lambda item: -item[1]))


def _first_answer(url: str, deadline: float) -> None:
    body = {"model": "router-mf", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + "/v1/chat/completions", json=body, timeout=60).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError("the service answered no chat request in time")


def _every_router_answers(url: str, routers: list[str], deadline: float) -> None:
    """Until each router in the config gives a decision: every deployment has started."""
    waiting = list(routers)
    while waiting and time.monotonic() < deadline:
        body = {"model": f"router-{waiting[0]}", "messages": [{"role": "user", "content": "Say hi."}]}
        try:
            if httpx.post(url + "/v1/route", json=body, timeout=60).status_code == 200:
                waiting.pop(0)
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    if waiting:
        raise RuntimeError(f"routers {waiting} gave no decision in time")


def measure(config: Path = ROOT / "serve_config.yaml", deadline_s: float = 600, idle_s: float = 20) -> ColdStart:
    port, dashboard = free_port(), free_port()
    shipped = config.read_text()
    local_config = ROOT / ".bench" / f"coldstart_{config.name}"
    local_config.parent.mkdir(exist_ok=True)
    # The shipped file on a free port, so a service already on 8000 does not answer for it.
    local_config.write_text(shipped.replace("port: 8000", f"port: {port}"))
    env = {**os.environ, "RAY_ADDRESS": "local", "RAY_DASHBOARD_PORT": str(dashboard)}
    started = time.monotonic()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("routellm-serve")), "up", str(local_config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = started + deadline_s
        _first_answer(f"http://127.0.0.1:{port}", deadline)
        first_answer_s = time.monotonic() - started
        routers = list(yaml.safe_load(shipped)["applications"][0]["args"]["routers"])
        _every_router_answers(f"http://127.0.0.1:{port}", routers, deadline)
        all_routers_s = time.monotonic() - started
        time.sleep(idle_s)
        processes = _tree(psutil.Process(process.pid))
        by_label = _pss_mib(processes)
        return ColdStart(
            first_answer_s=first_answer_s,
            all_routers_s=all_routers_s,
            idle_pss_mib=sum(by_label.values()),
            processes=len(processes),
            pss_by_process_mib=by_label,
        )
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C for ``serve run`` (it shuts its cluster down), then whatever is left of its tree."""
    try:
        tree = _tree(psutil.Process(process.pid))
    except psutil.NoSuchProcess:
        tree = []
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", type=Path, default=[ROOT / "serve_config.yaml"])
    configs = parser.parse_args().configs
    measured = {config.name: measure(config.resolve()) for config in configs}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs")
    print("| config | first answer, s | every router, s | PSS at idle, MiB |")
    print("|---|---:|---:|---:|")
    for name, cold in measured.items():
        print(f"| `{name}` | {cold.first_answer_s:.0f} | {cold.all_routers_s:.0f} | {cold.idle_pss_mib:,.0f} |")
    for name, cold in measured.items():
        print(f"{name}, PSS by process, MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in cold.pss_by_process_mib.items()))


if __name__ == "__main__":
    main()
