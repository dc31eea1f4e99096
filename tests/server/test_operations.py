"""Health, readiness, metrics, the OpenAPI document and the bearer-token hook."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.server import ServerSettings
from tests.server.helpers import (
    API,
    ApiClient,
    commit_response,
    content_id,
    create_branch,
    error,
    head,
    ok,
    put,
    put_table,
    table,
    with_namespace,
)


def samples(client: ApiClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_health_and_readiness(client: ApiClient) -> None:
    assert ok(client.get("/healthz")) == {"status": "UP"}
    ready = ok(client.get("/readyz"))
    assert ready["status"] == "UP" and ready["checks"][0]["name"] == "catalog"


def test_metrics_count_commits_conflicts_and_requests(client: ApiClient) -> None:
    with_namespace(client)
    before = put_table(client, 1, "bronze", "orders")
    cid = content_id(client, "main", "bronze", "orders")
    put_table(client, 2, "bronze", "orders")
    stale = commit_response(client, [put(table(3, cid), "bronze", "orders")], expected=before)
    error(stale, 409, "REFERENCE_CONFLICT")
    create_branch(client, "dev")
    put_table(client, 4, "bronze", "orders", branch="dev")
    url = f"{API}/trees/main@{head(client)}/history/merge"
    body = {"fromRefName": "dev", "fromHash": head(client, "dev")}
    assert ok(client.post(url, json=body))["wasApplied"]
    got = samples(client)
    assert got[("lakehouse_catalog_commits_total", (("operation", "commit"),))] == 4
    assert got[("lakehouse_catalog_commits_total", (("operation", "merge"),))] == 1
    assert got[("lakehouse_catalog_conflicts_total", (("operation", "commit"),))] == 1
    route = "/api/v2/trees/{branch}/history/commit"
    ok_commits = (("method", "POST"), ("route", route), ("status", "200"))
    assert got[("lakehouse_http_requests_total", ok_commits)] == 4
    conflicts = (("method", "POST"), ("route", route), ("status", "409"))
    assert got[("lakehouse_http_requests_total", conflicts)] == 1
    latency = (("method", "POST"), ("route", route))
    assert got[("lakehouse_http_request_duration_seconds_count", latency)] == 5


def test_merge_conflicts_returned_as_results_are_counted(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    create_branch(client, "dev")
    put_table(client, 2, "bronze", "orders", branch="dev")
    put_table(client, 3, "bronze", "orders")
    url = f"{API}/trees/main@{head(client)}/history/merge"
    source = {"fromRefName": "dev", "fromHash": head(client, "dev")}
    body = {**source, "returnConflictAsResult": True}
    assert not ok(client.post(url, json=body))["wasSuccessful"]
    error(client.post(url, json=source), 409, "REFERENCE_CONFLICT")
    got = samples(client)
    assert got[("lakehouse_catalog_conflicts_total", (("operation", "merge"),))] == 2


def test_unmatched_paths_do_not_explode_the_route_label(client: ApiClient) -> None:
    for i in range(3):
        client.get(f"/no/such/path/{i}")
    got = samples(client)
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert got[("lakehouse_http_requests_total", unmatched)] == 3


def test_the_openapi_document_lists_every_route(client: ApiClient) -> None:
    response = client.get("/openapi.json")
    document = json.loads(response.text)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    expected = {
        "/api/v2/config": {"get"},
        "/api/v2/trees": {"get", "post"},
        "/api/v2/trees/{ref}": {"get", "put", "delete"},
        "/api/v2/trees/{ref}/entries": {"get"},
        "/api/v2/trees/{ref}/contents": {"get", "post"},
        "/api/v2/trees/{ref}/contents/{key}": {"get"},
        "/api/v2/trees/{ref}/history": {"get"},
        "/api/v2/trees/{from_ref}/diff/{to_ref}": {"get"},
        "/api/v2/trees/{branch}/history/commit": {"post"},
        "/api/v2/trees/{branch}/history/merge": {"post"},
        "/api/v2/trees/{branch}/history/transplant": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) >= methods, path
    operation_ids = {op["operationId"] for item in paths.values() for op in item.values()}
    assert {"commitV2", "mergeV2", "transplantV2", "getEntriesV2", "getDiffV2"} <= operation_ids
    assert "NessieErrorModel" in document["components"]["schemas"]


@pytest.mark.parametrize("settings", [ServerSettings(token="s3cret-token")])
def test_the_bearer_token_guards_the_api(client: ApiClient) -> None:
    anonymous = client.get(f"{API}/config")
    body = error(anonymous, 401, "UNKNOWN")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "s3cret" not in body["message"]
    wrong = client.get(f"{API}/config", headers={"Authorization": "Bearer nope"})
    error(wrong, 401, "UNKNOWN")
    basic = client.get(f"{API}/config", headers={"Authorization": "Basic czNjcmV0LXRva2Vu"})
    error(basic, 401, "UNKNOWN")
    auth = {"Authorization": "Bearer s3cret-token"}
    assert ok(client.get(f"{API}/config", headers=auth))["defaultBranch"] == "main"
    h = ok(client.get(f"{API}/trees/main", headers=auth))["reference"]["hash"]
    no_write = client.post(f"{API}/trees/main@{h}/history/commit", json={})
    error(no_write, 401, "UNKNOWN")
    for open_path in ["/healthz", "/readyz", "/metrics", "/openapi.json"]:
        assert client.get(open_path).status_code == 200, open_path


def test_the_token_never_shows_in_settings() -> None:
    settings = ServerSettings(token="s3cret-token")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    with pytest.raises(ValueError, match="extra"):
        ServerSettings.model_validate({"tokn": "x"})
