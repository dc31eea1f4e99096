"""helm/charts/monitoring: rules, dashboard and scrape jobs of monitoring/ (integration tier)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import Helm, by_kind, pod_specs
from tests.monitoring.test_monitoring_files import DASHBOARD, RULES

pytestmark = pytest.mark.integration


def config_maps(helm: Helm, values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return by_kind(helm.template(values), "ConfigMap")


def test_the_chart_ships_the_rules_and_the_dashboard_of_monitoring(helm: Helm) -> None:
    maps = config_maps(helm)
    rules = maps["lakehouse-monitoring-rules"]["data"]["lakehouse.yml"]
    assert yaml.safe_load(rules) == yaml.safe_load(RULES.read_text(encoding="utf-8"))
    dashboard = maps["lakehouse-monitoring-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["lakehouse.json"])
    assert shipped == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_the_scrape_jobs_point_at_the_catalog_service(helm: Helm) -> None:
    docs = helm.template()
    scrape = yaml.safe_load(
        by_kind(docs, "ConfigMap")["lakehouse-monitoring-scrape"]["data"]["prometheus.yml"]
    )
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "lakehouse-catalog"  # the name the alert rules use
    service = by_kind(docs, "Service")["lakehouse-catalog"]
    assert job["static_configs"][0]["targets"] == ["lakehouse-catalog.lakehouse.svc:19120"]
    assert service["spec"]["ports"][0]["port"] == 19120
    assert not by_kind(docs, "PrometheusRule")


def test_with_nessie_as_the_catalog_its_management_port_is_scraped(helm: Helm) -> None:
    values = {
        "global": {"catalogBackend": "nessie", "catalogAuth": False},
        "catalog": {"enabled": False},
        "nessie": {"enabled": True},
    }
    docs = helm.template(values)
    scrape = by_kind(docs, "ConfigMap")["lakehouse-monitoring-scrape"]["data"]["prometheus.yml"]
    [job] = yaml.safe_load(scrape)["scrape_configs"]
    assert (job["job_name"], job["metrics_path"]) == ("nessie", "/q/metrics")
    assert job["static_configs"][0]["targets"] == ["lakehouse-nessie.lakehouse.svc:9000"]
    ports = {
        p["name"]: p["port"] for p in by_kind(docs, "Service")["lakehouse-nessie"]["spec"]["ports"]
    }
    assert ports["management"] == 9000


def test_a_pushgateway_url_reaches_every_lakehouse_container_and_the_scrape_jobs(
    helm: Helm,
) -> None:
    url = "http://pushgateway.monitoring:9091"
    docs = helm.template({"global": {"metrics": {"pushgatewayUrl": url, "logFormat": "text"}}})
    scrape = yaml.safe_load(
        by_kind(docs, "ConfigMap")["lakehouse-monitoring-scrape"]["data"]["prometheus.yml"]
    )
    batch = next(j for j in scrape["scrape_configs"] if j["job_name"] == "lakehouse-batch")
    assert batch["honor_labels"] is True
    assert batch["static_configs"][0]["targets"] == ["pushgateway.monitoring:9091"]
    seen = 0
    for name, spec in pod_specs(docs):
        for container in spec.get("containers", []):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "LAKEHOUSE_PROFILE" in env:  # a lakehouse container
                assert env["LAKEHOUSE_METRICS__PUSHGATEWAY_URL"] == url, name
                assert env["LAKEHOUSE_LOG_FORMAT"] == "text", name
                seen += 1
    assert seen


def test_a_prometheus_rule_for_the_operator_on_request(helm: Helm) -> None:
    values = {"monitoring": {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}}}
    [rule] = by_kind(helm.template(values), "PrometheusRule").values()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))


def test_bad_monitoring_values_are_refused(helm: Helm) -> None:
    error = helm.template_error({"global": {"metrics": {"pushgatewayUrl": "", "logFormat": "xml"}}})
    assert "logFormat" in error
    error = helm.template_error({"monitoring": {"prometheusRules": True}})
    assert "prometheusRules" in error


def test_monitoring_can_be_left_out(helm: Helm) -> None:
    maps = config_maps(helm, {"monitoring": {"enabled": False}})
    assert not [name for name in maps if "monitoring" in name]
