"""monitoring/: the Grafana dashboard, the alert rules and the scrape config (fast tier).

The dashboard is validated against a JSON schema of what Grafana needs to import it, and
every metric the dashboard and the rules query must be one the code defines, with the
labels the code gives it — a renamed metric or label fails here, not on a wall screen.
``promtool check rules`` runs in the integration tier (test_promtool.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from lakehouse.observability import PlatformMetrics
from lakehouse.server.metrics import ServerMetrics

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "lakehouse.json"
RULES = MONITORING / "prometheus" / "rules" / "lakehouse.yml"
PROMETHEUS = MONITORING / "prometheus" / "prometheus.yml"

#: What a dashboard must be for `POST /api/dashboards/db` and file provisioning to load it.
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "id": {"type": "null"},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "array", "items": {"type": "object"}}},
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": ["row", "stat", "timeseries", "gauge", "table", "text"]},
                    "title": {"type": "string", "minLength": 1},
                    "gridPos": {
                        "type": "object",
                        "required": ["x", "y", "w", "h"],
                        "properties": {
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "y": {"type": "integer", "minimum": 0},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "h": {"type": "integer", "minimum": 1},
                        },
                    },
                    "datasource": {
                        "type": "object",
                        "required": ["type", "uid"],
                        "properties": {"type": {"const": "prometheus"}},
                    },
                    "targets": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["refId", "expr"],
                            "properties": {
                                "refId": {"type": "string", "pattern": "^[A-Z]$"},
                                "expr": {"type": "string", "minLength": 1},
                            },
                        },
                    },
                },
                "if": {"properties": {"type": {"not": {"const": "row"}}}},
                "then": {"required": ["datasource", "targets"]},
            },
        },
    },
}

METRIC = re.compile(r"\b(lakehouse_[a-z0-9_]+)(\{[^}]*\})?")
LABEL_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def defined_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, of every family the code defines (platform and server)."""
    out: dict[str, set[str]] = {}
    families = [*PlatformMetrics().all(), *vars(ServerMetrics()).values()]
    for metric in families:
        if not hasattr(metric, "_labelnames"):
            continue  # the registry
        name, labels, kind = metric._name, set(metric._labelnames), metric._type
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""],
        }[kind]
        for suffix in suffixes:
            out[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def problems(expr: str, known: dict[str, set[str]]) -> list[str]:
    """Metrics in ``expr`` the code does not define, or selected by a label they lack."""
    found = []
    for name, selector in METRIC.findall(expr):
        if name not in known:
            found.append(f"unknown metric {name}")
            continue
        allowed = known[name] | {"job", "instance"}
        for label in LABEL_MATCHER.findall(selector or ""):
            if label not in allowed:
                found.append(f"{name} has no label {label!r}")
    named = {name for name, _ in METRIC.findall(expr)}
    for group in BY.findall(expr):
        for label in (part.strip() for part in group.split(",") if part.strip()):
            owners = [n for n in named if label in known.get(n, set()) | {"job", "instance"}]
            if not owners:
                found.append(f"grouping by {label!r}, which none of {sorted(named)} has")
    return found


def test_the_dashboard_matches_its_schema() -> None:
    validator = jsonschema_rs.Draft202012Validator(DASHBOARD_SCHEMA)
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(dashboard())]
    assert not errors, errors


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_dashboard_query_uses_metrics_and_labels_the_code_defines() -> None:
    known = defined_metrics()
    exprs = dashboard_exprs()
    assert exprs
    found = {p: problems(e, known) for p, e in enumerate(exprs) if problems(e, known)}
    assert not found, found


def test_the_dashboard_shows_every_platform_family() -> None:
    platform = {f._name for f in PlatformMetrics().all()}
    shown = "\n".join(dashboard_exprs())
    assert not [name for name in sorted(platform) if name not in shown]


def test_the_check_catches_a_misspelled_metric_or_label() -> None:
    known = defined_metrics()
    assert problems("rate(lakehouse_ingest_row_total[5m])", known) == [
        "unknown metric lakehouse_ingest_row_total"
    ]
    assert problems('lakehouse_pipeline_runs_total{pipline="x"}', known) == [
        "lakehouse_pipeline_runs_total has no label 'pipline'"
    ]
    assert problems("sum by (tabel) (lakehouse_cdc_lag_seconds)", known)


@pytest.mark.parametrize("rule", rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_rule_is_complete_and_uses_defined_metrics(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"]
    assert not problems(rule["expr"], defined_metrics()), rule["expr"]


def test_the_rules_cover_the_alerts_operations_asks_for() -> None:
    names = {r["alert"] for r in rules()}
    assert {
        "LakehouseCatalogDown",
        "LakehouseCatalogErrorRatio",
        "LakehouseBlockingChecksFailing",
        "LakehouseBackupTooOld",
        "LakehouseGCFailures",
        "LakehouseCDCLagHigh",
    } <= names


def test_scrape_jobs_named_by_the_rules_exist_and_rule_files_are_loaded() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    for rule in rules():
        for selector in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            for job in selector.split("|"):
                assert job in jobs, (rule["alert"], job)
    assert config["rule_files"] == ["rules/*.yml"]
    assert RULES.parent.name == "rules" and RULES.parent.parent == PROMETHEUS.parent


@pytest.mark.parametrize(
    ("copy", "source"),
    [("lakehouse-rules.yml", RULES), ("lakehouse-dashboard.json", DASHBOARD)],
)
def test_the_helm_chart_ships_monitoring_unchanged(copy: str, source: Path) -> None:
    """Helm reads files inside the chart only: helm/charts/monitoring/files keeps copies."""
    shipped = REPO / "helm" / "charts" / "monitoring" / "files" / copy
    assert shipped.read_bytes() == source.read_bytes(), f"cp {source} {shipped}"
