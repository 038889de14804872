"""The Grafana dashboard and the Kubernetes manifests of the router's observability.

    python observability/build.py

writes ``observability/dashboard.json`` (import it into Grafana, with a Prometheus data source),
``k8s/monitoring/base/grafana-dashboard.yaml`` (the same dashboard as a ConfigMap for Grafana's
dashboard sidecar) and ``k8s/monitoring/<profile>/prometheusrule.yaml`` (``observability/alerts.yml``
as a PrometheusRule for the Prometheus Operator, with the profile's bounds). The panels are listed
here once; tests query each against a real Prometheus scraping a real cluster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DASHBOARD = HERE / "dashboard.json"
ALERTS = HERE / "alerts.yml"
MONITORING = ROOT / "k8s" / "monitoring"
DASHBOARD_CONFIGMAP = MONITORING / "base" / "grafana-dashboard.yaml"
# Each profile's alert bounds where they differ from observability/alerts.yml's, which are the cpu
# profile's (a local run is on CPU too): on GPU workers the routing step takes milliseconds, on
# CPU workers hundreds of them under load (docs/observability/routing_p99.md).
PROFILE_BOUNDS: dict[str, dict[str, float]] = {"cpu": {}, "gpu": {"RouteLLMRoutingOverheadHigh": 0.1}}
BOUND = re.compile(r"(?P<comparison>>=|<=|==|!=|>|<)\s*[0-9.]+\s*$")
RATE = "[5m]"


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana's unit id
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)


def _quantiles(metric: str, by: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{RATE})))", f"p{round(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.99)
    )


PANELS = (
    Panel(
        "Requests per second, by status",
        "reqps",
        (("sum by (status_code) (rate(ray_serve_num_http_requests_total[5m]))", "{{status_code}}"),),
    ),
    Panel(
        "Errors per second, by code",
        "reqps",
        (("sum by (error_code) (rate(ray_serve_num_http_error_requests_total[5m]))", "{{error_code}}"),),
    ),
    Panel(
        "Decisions per second, by router and target",
        "reqps",
        (("sum by (router, target) (rate(ray_routellm_decisions_total[5m]))", "{{router}} → {{target}}"),),
    ),
    Panel(
        "Conversations: requests per second, by how they were decided; pins held",
        "short",
        (
            (
                "sum by (router, decided) (rate(ray_routellm_conversation_decisions_total[5m]))",
                "{{router}} {{decided}}",
            ),
            ("sum(ray_routellm_session_pins)", "pins held"),
        ),
    ),
    Panel(
        "Strong share per share alias: realized against target",
        "percentunit",
        (
            ("avg by (alias) (ray_routellm_share_realized)", "{{alias}} realized"),
            ("avg by (alias) (ray_routellm_share_target)", "{{alias}} target"),
        ),
    ),
    Panel(
        "Strong share per router, since each ingress started",
        "percentunit",
        (("avg by (router) (ray_routellm_strong_share)", "{{router}}"),),
    ),
    Panel(
        "Cost and net saving against the most capable candidates, USD per hour",
        "currencyUSD",
        (
            ("3600 * sum by (model) (rate(ray_routellm_cost_usd_total[5m]))", "cost {{model}}"),
            (
                "3600 * (sum(rate(ray_routellm_cost_saved_usd_total[5m]))"
                " - (sum(rate(ray_routellm_cost_overspent_usd_total[5m])) or vector(0)))",
                "net saving",
            ),
        ),
    ),
    Panel(
        "Spent, would have spent (all most capable) and net saving, per API key, USD per hour",
        "currencyUSD",
        (
            ("3600 * sum by (key) (rate(ray_routellm_cost_usd_total[5m]))", "spent {{key}}"),
            ("3600 * sum by (key) (rate(ray_routellm_cost_all_strong_usd_total[5m]))", "would have spent {{key}}"),
            (
                "3600 * (sum by (key) (rate(ray_routellm_cost_saved_usd_total[5m]))"
                " - (sum by (key) (rate(ray_routellm_cost_overspent_usd_total[5m]))"
                " or 0 * sum by (key) (rate(ray_routellm_cost_saved_usd_total[5m]))))",
                "net saving {{key}}",
            ),
        ),
    ),
    Panel(
        "Fallbacks per second, by reason and the model that answered",
        "reqps",
        (("sum by (reason, model) (rate(ray_routellm_fallbacks_total[5m]))", "{{reason}} → {{model}}"),),
    ),
    Panel("Circuits open, by upstream", "short", (("max by (model) (ray_routellm_circuit_open)", "{{model}}"),)),
    Panel("Upstream latency, p50 and p99", "s", _quantiles("ray_routellm_upstream_latency_seconds", "model")),
    Panel("Routing overhead, p50 and p99", "s", _quantiles("ray_routellm_routing_seconds", "router")),
    Panel(
        "Mean batch size, by deployment",
        "short",
        (
            (
                "sum by (deployment) (rate(ray_routellm_batched_requests_total[5m]))"
                " / sum by (deployment) (rate(ray_routellm_batches_total[5m]))",
                "{{deployment}}",
            ),
        ),
    ),
    Panel(
        "Healthy replicas, by deployment",
        "short",
        (("sum by (deployment) (ray_serve_deployment_replica_healthy)", "{{deployment}}"),),
    ),
    Panel(
        "Learner: labelling spend today and budget, USD",
        "currencyUSD",
        (
            ("max by (router) (ray_routellm_learner_spent_usd)", "spent {{router}}"),
            ("max by (router) (ray_routellm_learner_budget_usd)", "budget {{router}}"),
        ),
    ),
    Panel(
        "Shadow evaluation: cheaper answers as good as the most capable one's, per API key",
        "percentunit",
        (("max by (router, key) (ray_routellm_shadow_as_good_share)", "{{router}} {{key}}"),),
    ),
)


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard: two panels a row, each a time series of its queries."""
    source = {"type": "prometheus", "uid": "${datasource}"}
    panels = [
        {
            "id": i + 1,
            "type": "timeseries",
            "title": panel.title,
            "datasource": source,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
            "targets": [
                {"refId": chr(ord("A") + j), "datasource": source, "expr": expr, "legendFormat": legend}
                for j, (expr, legend) in enumerate(panel.queries)
            ],
        }
        for i, panel in enumerate(PANELS)
    ]
    variable = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}
    return {
        "uid": "routellm",
        "title": "RouteLLM router",
        "tags": ["routellm", "ray-serve"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [variable]},
        "panels": panels,
    }


def alert_groups(profile: str = "cpu") -> list[dict[str, Any]]:
    """The alert rules, with ``profile``'s bounds."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    bounds = PROFILE_BOUNDS[profile]
    for group in groups:
        for rule in group["rules"]:
            if rule["alert"] in bounds:
                rule["expr"] = BOUND.sub(rf"\g<comparison> {bounds[rule['alert']]:g}", rule["expr"].rstrip())
    return groups


def prometheus_rule_file(profile: str) -> Path:
    return MONITORING / profile / "prometheusrule.yaml"


def _manifest(api_version: str, kind: str, labels: dict[str, str], **content: Any) -> dict[str, Any]:
    """A Kubernetes object labelled as this service's."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": content.pop("name"), "labels": {"app.kubernetes.io/name": "routellm-serve", **labels}},
        **content,
    }


def dashboard_configmap() -> dict[str, Any]:
    data = {"routellm.json": json.dumps(dashboard(), indent=1, ensure_ascii=False) + "\n"}
    return _manifest("v1", "ConfigMap", {"grafana_dashboard": "1"}, name="routellm-dashboard", data=data)


def prometheus_rule(profile: str) -> dict[str, Any]:
    # release: the label a default kube-prometheus-stack (Helm release of that name) selects rules by.
    spec = {"groups": alert_groups(profile)}
    return _manifest(
        "monitoring.coreos.com/v1", "PrometheusRule", {"release": "kube-prometheus-stack"}, name="routellm", spec=spec
    )


def _literal(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    # Multi-line strings as block literals: the dashboard's JSON stays readable in the ConfigMap.
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as yamllint wants


_Dumper.add_representer(str, _literal)


def manifest(document: dict[str, Any], comment: str, long_lines: bool = False) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=90)
    # The dashboard's JSON lines are as long as its queries.
    lint = "# yamllint disable rule:line-length\n" if long_lines else ""
    return f"# {comment}\n# Written by python observability/build.py: edit that, not this file.\n{lint}{body}"


def main() -> None:
    DASHBOARD.write_text(json.dumps(dashboard(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    DASHBOARD_CONFIGMAP.write_text(
        manifest(dashboard_configmap(), "The router's Grafana dashboard, for Grafana's dashboard sidecar.", True),
        encoding="utf-8",
    )
    written = [DASHBOARD, DASHBOARD_CONFIGMAP]
    for profile in PROFILE_BOUNDS:
        comment = f"The router's alert rules (observability/alerts.yml) with the {profile} profile's bounds."
        prometheus_rule_file(profile).write_text(manifest(prometheus_rule(profile), comment), encoding="utf-8")
        written.append(prometheus_rule_file(profile))
    print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
