"""Bad input is a 4xx with Nessie's error shape, never a 5xx; store failures map as Nessie's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lakehouse.catalog.model import CommitMeta, CommitResult, Operation, Reference
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.errors import CommitStateUnknownError, TransientCatalogError
from lakehouse.server import ServerSettings, create_app
from tests.server.helpers import API, ApiClient, error, head, ok, put, table, with_namespace


def test_malformed_json_is_400(client: ApiClient) -> None:
    h = with_namespace(client)
    url = f"{API}/trees/main@{h}/history/commit"
    for headers in [{"Content-Type": "application/json"}, {}]:
        response = client.post(url, content=b'{"commitMeta": {', headers=headers)
        assert "malformed JSON" in error(response, 400, "BAD_REQUEST")["message"]
    assert head(client) == h


def test_wrong_types_are_400_naming_the_field(client: ApiClient) -> None:
    h = with_namespace(client)
    url = f"{API}/trees/main@{h}/history/commit"
    body = {"commitMeta": {"message": 5}, "operations": [put(table(1), "bronze", "t")]}
    assert "commitMeta.message" in error(client.post(url, json=body), 400, "BAD_REQUEST")["message"]
    body = {"commitMeta": {"message": "m"}, "operations": {"type": "PUT"}}
    assert "operations" in error(client.post(url, json=body), 400, "BAD_REQUEST")["message"]
    error(client.post(url, json="text"), 400, "BAD_REQUEST")
    error(client.post(url, json=None), 400, "BAD_REQUEST")


def test_a_non_json_body_is_415(client: ApiClient) -> None:
    h = head(client)
    response = client.post(
        f"{API}/trees/main@{h}/history/commit",
        content=b"message=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("settings", [ServerSettings(max_request_bytes=2000)])
def test_a_body_over_the_limit_is_413_before_it_is_read(client: ApiClient) -> None:
    h = head(client)
    url = f"{API}/trees/main@{h}/history/commit"
    big = {"commitMeta": {"message": "x" * 5000}, "operations": []}
    assert "2000 bytes" in error(client.post(url, json=big), 413, "BAD_REQUEST")["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"commitMeta": {"message": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}, "operations": []}'

    response = client.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    error(response, 413, "BAD_REQUEST")
    assert head(client) == h


def test_the_default_limit_is_10_mb(client: ApiClient) -> None:
    h = head(client)
    body = b'{"commitMeta": {"message": "' + b"z" * (10 * 1024 * 1024) + b'"}, "operations": []}'
    response = client.post(
        f"{API}/trees/main@{h}/history/commit",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    error(response, 413, "BAD_REQUEST")


def test_unknown_paths_and_methods_have_the_error_shape(client: ApiClient) -> None:
    error(client.get(f"{API}/nope"), 404, "UNKNOWN")
    error(client.request("PATCH", f"{API}/config"), 405, "UNKNOWN")
    error(client.get(f"{API}/trees/main/entries", params={"max-records": "-1"}), 400, "BAD_REQUEST")


def test_head_is_answered_as_get_without_a_body(client: ApiClient) -> None:
    """As Nessie (JAX-RS): HEAD wherever GET is served; a missing reference is a 404."""
    found = client.request("HEAD", f"{API}/trees/main")
    assert found.status_code == 200 and found.content == b""
    assert int(found.headers["content-length"]) == len(client.get(f"{API}/trees/main").content)
    assert client.request("HEAD", f"{API}/trees/not-there").status_code == 404
    assert client.request("HEAD", f"{API}/nope").status_code == 404


def test_error_details_follow_the_client_spec_header(client: ApiClient) -> None:
    h = with_namespace(client)
    body = {"commitMeta": {"message": "m"}, "operations": [put(table(1), "x", "t")]}
    url = f"{API}/trees/main@{h}/history/commit"
    for spec, expect_details in [
        ("2", True),
        ("2.1", True),
        ("3", True),
        ("1", False),
        ("x", False),
    ]:
        response = client.post(url, json=body, headers={"Nessie-Client-Spec": spec})
        assert ("errorDetails" in error(response, 409, "REFERENCE_CONFLICT")) is expect_details


class _FailingStore(SqlStore):
    """A real store whose chosen calls fail the way a broken backend does."""

    failure: dict[str, Exception]

    def get_reference(self, name: str) -> Reference:
        if "get_reference" in self.failure:
            raise self.failure["get_reference"]
        return super().get_reference(name)

    def list_references(self) -> list[Reference]:
        if "list_references" in self.failure:
            raise self.failure["list_references"]
        return super().list_references()

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        if "commit" in self.failure:
            raise self.failure["commit"]
        return super().commit(branch, operations, meta, expected_hash=expected_hash)


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[tuple[_FailingStore, ApiClient]]:
    store = _FailingStore(f"sqlite:///{tmp_path}/failing.db")
    store.failure = {}
    with ApiClient(create_app(store), raise_app_exceptions=False) as c:
        yield store, c
    store.close()


def test_an_unexpected_failure_is_a_500_without_internals(
    failing: tuple[_FailingStore, ApiClient],
) -> None:
    store, client = failing
    store.failure["get_reference"] = RuntimeError("password=hunter2 in a driver message")
    body = error(client.get(f"{API}/trees/main"), 500, "UNKNOWN")
    assert "hunter2" not in body["message"] and "RuntimeError" in body["message"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").json()["status"] == "DOWN"


def test_an_unknown_commit_outcome_is_503_saying_so(
    failing: tuple[_FailingStore, ApiClient],
) -> None:
    store, client = failing
    store.failure["commit"] = CommitStateUnknownError("connection lost during COMMIT")
    h = head(client)
    body: dict[str, Any] = {
        "commitMeta": {"message": "m"},
        "operations": [put({"type": "NAMESPACE", "elements": ["a"]}, "a")],
    }
    response = client.post(f"{API}/trees/main@{h}/history/commit", json=body)
    message = error(response, 503, "UNKNOWN")["message"]
    assert "outcome" in message and "unknown" in message
    store.failure["list_references"] = TransientCatalogError("database is locked")
    error(client.get(f"{API}/trees"), 503, "SERVICE_UNAVAILABLE")
    assert ok(client.get(f"{API}/config"))["defaultBranch"] == "main"
