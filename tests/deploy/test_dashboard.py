"""The Grafana dashboard queries metrics the services export.

Each service's app is started in-process (its own SQLite database, no broker) and its
/metrics scraped; every metric a panel queries must be in some service's exposition
(in the one its ``service="..."`` matcher names, when it names one).
"""

from __future__ import annotations

import importlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collect_common.clock import FrozenClock
from collect_common.testing.apps import offline_settings, service_client

SERVICES = ["case", "contact", "complaint", "qa"]
# What a panel must show, by the metric it reads (the dashboard's reason to exist).
REQUIRED = {
    "case_accounts_imported_total": "intake volume",
    "contact_decisions_total": "decisions allowed/denied",
    "contact_decision_denials_total": "denials by rule",
    "outbox_backlog": "outbox backlog per service",
    "consumer_lag": "consumer lag per service",
    "complaint_sla_alerts_total": "SLA warnings and breaches per step",
    "alerts_raised_total": "alerts per rule",
    "qa_sample_records": "sample coverage",
    "http_requests_total": "HTTP rate and errors per service",
    "http_request_duration_seconds_bucket": "HTTP latency per service",
}
# The series the dashboard expects from metrics the services are to export (type, labels).
PLANNED = {
    "case_accounts_imported_total": "Counter case_accounts_imported_total{service, result}, "
    "result = created | updated | unchanged | rejected, per intake row (CASE-INTAKE)",
    "contact_decisions_total": "Counter contact_decisions_total{service, channel, outcome}, "
    "outcome = allowed | denied, one per contact decision",
    "contact_decision_denials_total": "Counter contact_decision_denials_total{service, channel, "
    "rule}, one per rule that denied a decision",
    "qa_sample_records": "Gauge qa_sample_records{service, week, part}, part = population | "
    "sampled, set when a week's sample is drawn (QA-SAMPLE)",
}
PROMQL_WORDS = {"bool", "and", "or", "unless", "offset", "inf", "nan", "group_left", "group_right"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
SERIES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)", text):
        if text[m.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def service_matchers(expr: str) -> dict[str, set[str]]:
    """metric -> the services its selectors name with ``service="..."``."""
    out: dict[str, set[str]] = {}
    for metric, labels in SELECTOR.findall(expr):
        for service in re.findall(r'\bservice\s*=\s*"([^"]+)"', labels):
            out.setdefault(metric, set()).add(service)
    return out


def _queries(root: Path) -> list[tuple[str, str]]:
    dashboard = json.loads((root / "deploy/grafana/dashboards/platform.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_the_promql_reader_finds_metrics_and_only_metrics() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (service, le) "
        '(rate(http_request_duration_seconds_bucket{service="qa-svc",le!="+Inf"}[$__rate_interval])))'
        ' / on (service) group_left sum(up{job="x"}) offset 5m'
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert service_matchers(expr) == {"http_request_duration_seconds_bucket": {"qa-svc"}}


def test_dashboard_has_a_panel_for_each_view_of_the_platform(root: Path) -> None:
    queried = {name for _, expr in _queries(root) for name in metric_names(expr)}
    missing = {metric: view for metric, view in REQUIRED.items() if metric not in queried}
    assert not missing, f"no panel reads {missing}"
    for title, expr in _queries(root):
        assert metric_names(expr), f"panel {title!r} selects no metric: {expr}"


async def _exported(name: str, tmp_path: Path) -> set[str]:
    """Series names the service's /metrics declares (families without samples included)."""
    settings_mod = importlib.import_module(f"{name}_svc.settings")
    main = importlib.import_module(f"{name}_svc.main")
    overrides: dict[str, Any] = {}
    if name == "contact":
        overrides["sms_file_path"] = tmp_path / "sms.jsonl"
    settings = offline_settings(
        settings_mod.Settings, f"sqlite+aiosqlite:///{tmp_path}/{name}.db", **overrides
    )
    clock = FrozenClock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    async with service_client(main.create_app, settings, clock) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        response = await client.get("/metrics")
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        names.update(family.name + suffix for suffix in SERIES[family.type])
    return names


async def test_every_metric_the_dashboard_queries_is_exported(root: Path, tmp_path: Path) -> None:
    exported = {name: await _exported(name, tmp_path) for name in SERVICES}
    by_service = {f"{name}-svc": names for name, names in exported.items()}
    everywhere = set().union(*exported.values())
    assert "http_requests_total" in everywhere  # the scrape worked
    missing: dict[str, set[str]] = {}
    for title, expr in _queries(root):
        wanted = service_matchers(expr)
        for metric in metric_names(expr):
            services = wanted.get(metric)
            if services:
                lacking = {s for s in services if metric not in by_service.get(s, set())}
                for service in lacking:
                    missing.setdefault(f"{metric} (in {service})", set()).add(title)
            elif metric not in everywhere:
                missing.setdefault(metric, set()).add(title)
    if missing:
        lines = []
        for metric, titles in sorted(missing.items()):
            lines.append(f"  {metric}: panel {', '.join(sorted(titles))}")
            planned = PLANNED.get(metric.split(" ", 1)[0])
            if planned:
                lines.append(f"      expected: {planned}")
        pytest.fail(
            "The dashboard deploy/grafana/dashboards/platform.json queries metrics no service "
            "exports yet:\n" + "\n".join(lines),
            pytrace=False,
        )
