"""Nessie spec 2.1/2.2 over API v2: repository config objects and reference history."""

from __future__ import annotations

from lakehouse.catalog.model import NO_ANCESTOR
from tests.server.helpers import (
    API,
    ApiClient,
    create_branch,
    error,
    head,
    ok,
    put_table,
    with_namespace,
)

GC = {"type": "GARBAGE_COLLECTOR", "defaultCutoffPolicy": "P30D", "newFilesGracePeriod": "PT3H"}


def test_recent_changes_lists_the_previous_heads_newest_first(client: ApiClient) -> None:
    start = with_namespace(client)
    create_branch(client, "dev")
    c1 = put_table(client, 1, "bronze", "t", branch="dev")
    c2 = put_table(client, 2, "bronze", "t", branch="dev")
    body = ok(client.get(f"{API}/trees/dev/recent-changes", params={"scan-commits": 1000}))
    assert body["reference"] == {"type": "BRANCH", "name": "dev", "hash": c2}
    assert body["commitLogConsistency"] == "COMMIT_CONSISTENT"
    assert body["current"]["commitHash"] == c2
    assert body["current"]["commitConsistency"] == "COMMIT_CONSISTENT"
    assert body["current"]["meta"]["hash"] == c2
    assert [p["commitHash"] for p in body["previous"]] == [c1, start]
    plain = ok(client.get(f"{API}/trees/dev/recent-changes"))
    assert plain["commitLogConsistency"] == "NOT_CHECKED"
    assert ok(client.get(f"{API}/trees/main/recent-changes"))["previous"][0] == {
        "commitHash": NO_ANCESTOR,
        "commitConsistency": "COMMIT_CONSISTENT",
        "meta": None,
    }


def test_recent_changes_needs_an_existing_reference_by_name(client: ApiClient) -> None:
    error(client.get(f"{API}/trees/nope/recent-changes"), 404, "REFERENCE_NOT_FOUND")
    body = error(client.get(f"{API}/trees/main@{head(client)}/recent-changes"), 400, "BAD_REQUEST")
    assert "Hashes are not allowed" in body["message"]


def test_repository_config_is_created_then_replaced(client: ApiClient) -> None:
    url = f"{API}/config/repository"
    assert ok(client.get(url, params={"type": "GARBAGE_COLLECTOR"}))["configs"] == []
    assert ok(client.post(url, json={"config": GC})) == {"previous": None}
    assert ok(client.get(url, params={"type": "GARBAGE_COLLECTOR"}))["configs"] == [GC]
    updated = {"type": "GARBAGE_COLLECTOR", "defaultCutoffPolicy": "10"}
    assert ok(client.post(url, json={"config": updated})) == {"previous": GC}
    assert ok(client.get(url, params={"type": "GARBAGE_COLLECTOR"}))["configs"] == [updated]
    assert ok(client.get(url))["configs"] == []


def test_repository_config_refuses_unknown_types_and_invalid_values(client: ApiClient) -> None:
    url = f"{API}/config/repository"
    body = error(
        client.post(url, json={"config": {"type": "FOO_BAR", "foo": "bar"}}), 400, "BAD_REQUEST"
    )
    assert (
        "Repository config type bundle for 'FOO_BAR' is not available on the Nessie server side"
        in body["message"]
    )
    error(client.get(url, params={"type": "FOO_BAR"}), 400, "BAD_REQUEST")
    bad = {"type": "GARBAGE_COLLECTOR", "defaultCutoffPolicy": "foo"}
    body = error(client.post(url, json={"config": bad}), 400, "BAD_REQUEST")
    assert "default-cutoff-value" in body["message"]
    error(client.post(url, json={"config": {"foo": 1}}), 400, "BAD_REQUEST")
    assert ok(client.get(url, params={"type": "GARBAGE_COLLECTOR"}))["configs"] == []
