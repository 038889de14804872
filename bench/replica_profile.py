"""Where each replica's CPU goes per routed request: the kernel's CPU time per request of each
replica (as ``bench.knee`` reads it), split by what ``py-spy`` (a sampling profiler, in the lock)
finds running, at the fixed arrival rate of ``bench.knee``'s CPU figures:

    python -m bench.replica_profile [--routers random mf] [--seconds 30] [--out docs/benchmarks/replica_profile]

Each sample is charged to the library of its innermost Python frame: the model (torch,
transformers), the upstream HTTP client, the HTTP server, pydantic, logging, Serve and Ray's
Python code, gRPC, asyncio, the service's own code; a thread that shows only its entry frame
runs native code (Ray's core worker, gRPC's C core, the event loop of uvloop). Needs the right
to trace processes (root, or ``kernel.yama.ptrace_scope`` 0). Writes ``results.json`` and
``report.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.knee import CPU_RATE, Knee
from bench.served import ray_actor_name
from bench.tables import write_results
from testing import ROOT
from testing.apps import shipped_config
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream

SAMPLES_PER_S = 50
WARMUP_S = 5.0
NATIVE = "native code (Ray's core worker, gRPC's C core, uvloop)"
# The first of these found in a frame's file path, innermost frame first, names the sample's part.
LIBRARIES = (
    (("/torch/", "/transformers/", "/tokenizers/"), "model (torch, transformers)"),
    (("/openai/", "/httpx", "/httpcore/", "/h11/"), "upstream HTTP client (openai, httpx)"),
    (("/uvicorn/", "/starlette/", "/fastapi/", "/httptools/"), "HTTP server (uvicorn, Starlette, FastAPI)"),
    (("/pydantic/", "/pydantic_core/"), "pydantic"),
    (("/logging/",), "logging"),
    (("/grpc/",), "gRPC (Python)"),
    (("/ray/",), "Serve and Ray (Python)"),
    (("/asyncio/", "/anyio/", "/concurrent/"), "asyncio, threads"),
    (("/routing/", "/deployments/"), "the service's own code"),
)
# A thread's outermost frames: a sample with nothing else is native code running under them.
ENTRY_FRAMES = ("threading.py", "default_worker.py", "ray/_private/worker.py")


def part(stack: str) -> str:
    """The part a py-spy raw stack (``frame;frame;...``, outermost first) is charged to."""
    frames = stack.split(";")
    if all(any(entry in frame for entry in ENTRY_FRAMES) for frame in frames):
        return NATIVE
    for frame in reversed(frames):
        path = "/" + frame[frame.rfind("(") + 1 :]  # py-spy names a file from its package's folder
        for markers, name in LIBRARIES:
            if any(marker in path for marker in markers):
                return name
    return "other Python"


def parts(raw: str) -> dict[str, float]:
    """Each part's share of the samples in a py-spy raw profile."""
    counted: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counted[part(stack)] += int(count)
    total = sum(counted.values()) or 1
    return {name: count / total for name, count in counted.most_common()}


def replicas() -> dict[str, int]:
    found = {}
    for process in psutil.process_iter():
        try:
            command = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if command.startswith("ray::ServeReplica:"):
            found[ray_actor_name(process) or command] = process.pid
    return found


def profiled(bench: Knee, router: str, seconds: float, workdir: Path) -> dict[str, Any]:
    with deployed(shipped_config(bench.upstream.base_url, (router,)), workdir) as cluster:
        chat, model = cluster.url + "/v1/chat/completions", f"router-{router}-0.5"
        bench.run(chat, model, {}, rate=CPU_RATE, seconds=WARMUP_S)
        spies = {
            name: subprocess.Popen(
                ["py-spy", "record", "--nonblocking", "-r", str(SAMPLES_PER_S), "-d", str(int(seconds)), "-f", "raw"]
                + ["-o", str(workdir / f"{name}.txt"), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in replicas().items()
        }
        run = bench.run(chat, model, {}, rate=CPU_RATE, seconds=seconds)
        for spy in spies.values():
            spy.wait()
        cpu = run.summary()["cpu_ms_per_request"]
        return {
            name: {"cpu_ms_per_request": cpu[name], "parts": parts((workdir / f"{name}.txt").read_text())}
            for name in spies
            if (workdir / f"{name}.txt").exists()
        }


def report(results: dict[str, Any]) -> str:
    lines = [f"CPU ms per request of each replica at {CPU_RATE} req/s, split by what the samples found running:", ""]
    for router, deployments in results["routers"].items():
        lines += [f"`{router}`:", "", "| replica | part | ms per request |", "|---|---|---:|"]
        for name, figures in sorted(deployments.items(), key=lambda item: -item[1]["cpu_ms_per_request"]):
            total = figures["cpu_ms_per_request"]
            lines.append(f"| {name} | all | {total} |")
            lines += [f"| | {part} | {share * total:.2f} |" for part, share in figures["parts"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routers", nargs="+", default=["random", "mf"], choices=["random", "mf", "sw_ranking"])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the profiled run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "replica_profile")
    args = parser.parse_args()
    upstream = FakeUpstream("upstream")
    bench = Knee(args.seconds, upstream)
    results: dict[str, Any] = {"rate_per_s": CPU_RATE, "seconds": args.seconds, "routers": {}}
    try:
        for router in args.routers:
            with tempfile.TemporaryDirectory() as tmp:
                results["routers"][router] = profiled(bench, router, args.seconds, Path(tmp))
    finally:
        upstream.stop()
    write_results(results, report(results), "bench.replica_profile", args.out)


if __name__ == "__main__":
    main()
