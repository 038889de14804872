"""What operators look at: the metrics, the logs (no API key in them), request ids."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.reliability.apis import chat
from bench.reliability.service import METRICS, Service


def scrape_metrics(service: Service, expected: tuple[str, ...] = METRICS, wait_s: float = 30.0) -> dict[str, float]:
    """Each routellm metric summed over its series (histograms: their observation count; gauges:
    the largest series), waiting up to ``wait_s`` for ``expected`` to reach Ray's exporter."""
    deadline = time.monotonic() + wait_s
    while True:
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(service.metrics_url, timeout=10).text):
            for sample in family.samples:
                if not sample.name.startswith("ray_routellm_"):
                    continue
                if family.type == "histogram" and not sample.name.endswith("_count"):
                    continue
                key = sample.name.removesuffix("_count")
                if family.type == "gauge":
                    totals[key] = max(totals.get(key, 0.0), sample.value)
                else:
                    totals[key] = totals.get(key, 0.0) + sample.value
        if all(totals.get(m, 0) > 0 for m in expected) or time.monotonic() > deadline:
            return totals
        time.sleep(2)


def keys_in_logs(service: Service) -> dict[str, int]:
    """Occurrences of each API key in every file under the cluster's and Serve's log folders."""
    found = {"ingress key": 0, "upstream key": 0}
    for path in service.workdir.rglob("*"):
        if not path.is_file() or path.name == "api-keys":
            continue
        try:
            text = path.read_bytes()
        except OSError:
            continue
        found["ingress key"] += text.count(service.api_key.encode())
        found["upstream key"] += text.count(service.upstream_key.encode())
    return found


def request_id_round_trip(service: Service) -> dict[str, Any]:
    """A client's ``x-request-id`` comes back in the response and appears in the ingress's log line."""
    request_id = f"reliability-{secrets.token_hex(6)}"
    response = httpx.post(
        f"{service.url}/v1/chat/completions",
        json=chat("router-mf-0.5"),
        headers=service.headers(**{"x-request-id": request_id}),
        timeout=30,
    )
    time.sleep(1)
    logged = []
    for path in (service.workdir / "serve-logs").rglob("*Ingress*"):
        for line in path.read_text(errors="replace").splitlines():
            if request_id in line:
                logged.append(json.loads(line))
    return {
        "status": response.status_code,
        "echoed": response.headers.get("x-request-id") == request_id,
        "log_lines": [entry.get("message", "") for entry in logged],
    }
