"""The server's /metrics carries the platform families; its log lines name the principal."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse import observability
from lakehouse.server.app import _principal_log_context
from lakehouse.server.middleware import current_principal
from lakehouse.server.oidc import Principal
from tests.metrics_helpers import fresh_metrics
from tests.server.helpers import ApiClient

__all__ = ["fresh_metrics"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")


def test_metrics_serves_the_server_and_the_platform_families(client: ApiClient) -> None:
    observability.record_pipeline_run("tpch", "failed", 12.0, [("error", "fail")])
    assert client.get("/healthz").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"lakehouse_http_requests", "lakehouse_catalog_commits"} <= families
    assert {"lakehouse_pipeline_runs", "lakehouse_pipeline_failed_blocking_checks"} <= families
    assert 'lakehouse_pipeline_failed_blocking_checks{pipeline="tpch"} 1.0' in response.text


def test_log_lines_of_a_request_name_its_principal() -> None:
    assert _principal_log_context() == {}
    token = current_principal.set(Principal("wendy", ("admin",)))
    try:
        assert _principal_log_context() == {"principal": "wendy"}
    finally:
        current_principal.reset(token)
