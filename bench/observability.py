"""The router's dashboard and alerts against a real Prometheus scraping a real cluster.

    python -m bench.observability [--minutes 4] [--out docs/observability]

starts the graph (both models, and the learner's judge, on fake upstreams; the learner shadows
half the cheaper model's answers in a round every 65 requests),
Debian's Prometheus scraping Ray's metrics endpoint every second with the shipped
``observability/prometheus.yml``, and traffic in three phases: routed requests at a share, a
threshold and a random split; then the strong model failing (fallbacks, errors, an open circuit);
then recovered. It then queries every dashboard panel over the run and draws them, one plot per
panel, into ``dashboard.png`` (Grafana does not run here: the picture is the same queries'
results, drawn with matplotlib), and prints each alert's signal at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from observability.build import PANELS, RATE, alert_groups
from testing import ROOT
from testing.apps import on_fake
from testing.cluster import free_port
from testing.fake_upstream import FakeUpstream

PROMETHEUS_CONFIG = ROOT / "observability" / "prometheus.yml"
# The labels the shipped scrape configs drop (observability/prometheus.yml, k8s/monitoring/base/podmonitor.yaml).
DROPPED_LABELS = re.compile(r'(?:Component|NodeAddress|SessionName|Version|WorkerId|otel_scope_\w+)="[^"]*",?')
SIGNAL = re.compile(r"^\((?P<signal>.*)\)\s*(?:>|>=|<|<=|==|!=)\s*[0-9.]+$", re.DOTALL)


def alert_signals() -> dict[str, str]:
    """Each alert's signal: its expression without the final comparison."""
    signals = {}
    for group in alert_groups():
        for rule in group["rules"]:
            match = SIGNAL.match(" ".join(rule["expr"].split()))
            if match is None:
                raise ValueError(f"alert {rule['alert']}: expected '(signal) <comparison> <number>'")
            signals[rule["alert"]] = match["signal"]
    return signals


def panel_queries() -> dict[str, str]:
    return {f"{panel.title}: {legend}": expr for panel in PANELS for expr, legend in panel.queries}


@contextlib.contextmanager
def prometheus(metrics_port: int, workdir: Path, scrape_interval: str = "1s") -> Iterator[str]:
    """Prometheus on 127.0.0.1 scraping ``metrics_port`` with the shipped config and rules; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (Debian: apt-get install prometheus)")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] |= {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / name) for name in config["rule_files"]]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector of ``expr`` now; a PromQL error raises."""
    body = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=30).json()
    if body["status"] != "success":
        raise ValueError(f"{expr}: {body.get('error')}")
    return body["data"]["result"]


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params = {"query": expr, "start": start, "end": end, "step": step}
    body = httpx.get(url + "/api/v1/query_range", params=params, timeout=30).json()
    if body["status"] != "success":
        raise ValueError(f"{expr}: {body.get('error')}")
    return body["data"]["result"]


def own_metrics(exposition: str) -> str:
    """The router's own metric families (``ray_routellm_*``) of a metrics page, with the labels
    the shipped scrape configs drop removed."""
    kept, keep = [], False
    for line in exposition.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            keep = line.split()[2].startswith("ray_routellm_")
        elif not line.startswith("#"):
            keep = line.startswith("ray_routellm_")
        if keep:
            kept.append(DROPPED_LABELS.sub("", line).replace(",}", "}"))
    return "\n".join(kept) + "\n"


def app_args(strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream, state: Path) -> dict[str, Any]:
    """Both models priced, a circuit that opens after 3 failures for 20 s, and a learner whose
    rounds (every 65 requests: in the tests' traffic, once the strong model has recovered) shadow
    half the answers of the cheaper model and label one prompt (the judge set to grade:
    ``judge.behave("ok", answer="judge")``)."""
    upstream = {"timeouts": {"total_s": 5}, "retry": {"max_retries": 0}}
    breaker = {"circuit_breaker": {"failure_threshold": 3, "cooldown_s": 20}}
    return {
        "upstreams": {
            "strong": on_fake(
                strong, "big", price={"input_per_million": 2.5, "output_per_million": 10}, **upstream, **breaker
            ),
            "weak": on_fake(weak, "small", price={"input_per_million": 0.15, "output_per_million": 0.6}, **upstream),
        },
        "routers": {"mf": {"type": "mf"}, "random": {"type": "random", "seed": 0}},
        "fallback": {"on_upstream_error": "other_model"},
        "request_log": {"directory": str(state / "requests")},
        "learner": {
            "router": "mf",
            "directory": str(state / "learner"),
            "judge": {"model": "judge-1", "base_url": judge.base_url, "timeouts": {"total_s": 5}},
            "budget_usd_per_day": 5.0,
            "every_requests": 65,
            "labels_per_round": 1,
            "shadow": {"fraction": 0.5},
            "check_s": 1,
        },
    }


MODELS = ("router-mf-30%", "router-mf-0.5", "router-random-0.5")


def send(url: str, requests: int, clients: int = 4, tag: str = "q", models: tuple[str, ...] = MODELS) -> None:
    """``requests`` chat requests spread over ``models``, and one malformed request."""

    def one(i: int) -> None:
        body = {"model": models[i % len(models)], "messages": [{"role": "user", "content": f"{tag} {i}: explain"}]}
        httpx.post(url + "/v1/chat/completions", json=body, timeout=30)

    with httpx.Client() as client:
        client.post(url + "/v1/chat/completions", json={"model": "router-mf-0.5"}, timeout=30)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))


def draw(url: str, start: float, end: float, path: Path, window: str) -> None:
    """One plot per dashboard panel, of its queries over [start, end], their rates over ``window``
    (the dashboard's 5 minutes are longer than a short run's phases)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = max((end - start) / 200, 1.0)
    rows = (len(PANELS) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(14, 2.6 * rows))
    for ax, panel in zip(axes.ravel(), PANELS, strict=False):
        for expr, legend in panel.queries:
            for series in query_range(url, expr.replace(RATE, f"[{window}]"), start, end, step):
                times = [float(t) - start for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                label = re.sub(r"\{\{(\w+)\}\}", lambda m, s=series: s["metric"].get(m[1], ""), legend)
                ax.plot(times, values, label=label, linewidth=1.2)
        ax.set_title(f"{panel.title} ({panel.unit})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
    for ax in axes.ravel()[len(PANELS) :]:
        ax.axis("off")
    figure.suptitle(
        f"RouteLLM router dashboard: the panels' queries on Prometheus, rates over {window} "
        "(x: seconds since the start; healthy, strong model failing, recovered)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> None:
    import ray
    from ray import serve

    from graph import build_app

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="length of the three phases together")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "observability")
    args = parser.parse_args()
    phase_s = 60 * args.minutes / 3
    strong, weak, judge = FakeUpstream("strong"), FakeUpstream("weak"), FakeUpstream("judge")
    judge.behave("ok", answer="judge")
    with tempfile.TemporaryDirectory() as tmp:
        workdir, metrics_port = Path(tmp), free_port()
        ray.init(address="local", num_cpus=2, include_dashboard=False, _metrics_export_port=metrics_port)
        try:
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            serve.run(build_app(app_args(strong, weak, judge, workdir)), name="router", route_prefix="/")
            url = f"http://127.0.0.1:{port}"
            with prometheus(metrics_port, workdir / "prometheus") as prom:
                start = time.time()
                for phase, fault in (("healthy", None), ("strong failing", "status"), ("recovered", None)):
                    print(f"-- {phase}", flush=True)
                    strong.behave(fault or "ok", **({"status": 500} if fault else {}))
                    ends = time.monotonic() + phase_s
                    while time.monotonic() < ends:
                        send(url, 24, tag=phase)
                time.sleep(15)  # Ray exports every 10 s
                end = time.time()
                draw(prom, start, end, args.out / "dashboard.png", window="30s")
                for alert, signal in alert_signals().items():
                    values = [f"{r['value'][1]} {r['metric']}" for r in query(prom, signal)]
                    print(f"{alert}: {values}")
                print(f"wrote {args.out / 'dashboard.png'}")
        finally:
            ray.shutdown()
            for server in (strong, weak, judge):
                server.stop()


if __name__ == "__main__":
    main()
