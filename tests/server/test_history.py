"""Commit log and diff over Nessie's API v2."""

from __future__ import annotations

from typing import Any

from tests.server.helpers import (
    API,
    ApiClient,
    commit,
    create_branch,
    delete,
    error,
    head,
    ok,
    put_table,
    with_namespace,
)


def log_pages(client: ApiClient, ref: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    token = None
    while True:
        query = dict(params)
        if token:
            query["page-token"] = token
        body = ok(client.get(f"{API}/trees/{ref}/history", params=query))
        pages.append(body["logEntries"])
        if not body["hasMore"]:
            assert body["token"] is None
            return pages
        token = body["token"]


def test_the_log_pages_newest_first(client: ApiClient) -> None:
    with_namespace(client)
    for i in range(11):
        put_table(client, i, "bronze", "orders")
    pages = log_pages(client, "main", **{"max-records": 5})
    assert [len(p) for p in pages] == [5, 5, 2]
    messages = [e["commitMeta"]["message"] for p in pages for e in p]
    assert messages[0] == "put v10" and messages[-1] == "namespace"
    entry = pages[0][0]
    assert entry["operations"] is None  # MINIMAL
    assert entry["parentCommitHash"] == pages[0][1]["commitMeta"]["hash"]
    assert pages[-1][-1]["commitMeta"]["parentCommitHashes"] == [pages[-1][-1]["parentCommitHash"]]


def test_fetch_all_adds_operations(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    commit(client, [delete("bronze", "orders")], message="drop")
    entries = ok(client.get(f"{API}/trees/main/history", params={"fetch": "ALL"}))["logEntries"]
    assert [op["type"] for op in entries[0]["operations"]] == ["DELETE"]
    [put_op] = entries[1]["operations"]
    assert put_op["type"] == "PUT" and put_op["key"] == {"elements": ["bronze", "orders"]}
    assert put_op["content"]["snapshotId"] == 1 and put_op["content"]["id"]


def test_the_log_of_any_reference_spec_and_limit_hash(client: ApiClient) -> None:
    with_namespace(client)
    hashes = [put_table(client, i, "bronze", "orders") for i in range(4)]
    from_second = ok(client.get(f"{API}/trees/main~2/history"))["logEntries"]
    assert from_second[0]["commitMeta"]["hash"] == hashes[1]
    limited = ok(client.get(f"{API}/trees/main/history", params={"limit-hash": hashes[1][:12]}))
    assert [e["commitMeta"]["hash"] for e in limited["logEntries"]] == hashes[:0:-1]
    assert limited["hasMore"] is False
    detached = ok(client.get(f"{API}/trees/@{hashes[0]}/history"))["logEntries"]
    assert detached[0]["commitMeta"]["hash"] == hashes[0] and len(detached) == 2
    assert ok(client.get(f"{API}/trees/main*2000-01-01T00:00:00Z/history"))["logEntries"] == []


def test_the_log_filters_with_cel(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    put_table(client, 1, "bronze", "customers")
    commit(client, [delete("bronze", "orders")], message="drop orders")

    def messages(expression: str, **params: Any) -> list[str]:
        body = ok(client.get(f"{API}/trees/main/history", params={"filter": expression, **params}))
        return [e["commitMeta"]["message"] for e in body["logEntries"]]

    assert messages("commit.message.startsWith('drop')") == ["drop orders"]
    assert messages("operations.exists(op, op.type == 'DELETE')") == ["drop orders"]
    assert messages("operations.exists(op, op.name == 'customers')") == ["put v1"]
    assert messages("timestamp(commit.commitTime) > timestamp('2000-01-01T00:00:00Z')") == [
        "drop orders",
        "put v1",
        "put v1",
        "namespace",
    ]
    # paging with a filter: pages may be short, nothing is lost or repeated
    pages = log_pages(client, "main", filter="commit.message == 'put v1'", **{"max-records": 1})
    assert [e["commitMeta"]["message"] for p in pages for e in p] == ["put v1", "put v1"]
    bad = client.get(f"{API}/trees/main/history", params={"filter": "commit.nope == 1"})
    error(bad, 400, "BAD_REQUEST")


def test_bad_log_parameters_are_400(client: ApiClient) -> None:
    with_namespace(client)
    for params in [
        {"max-records": "many"},
        {"max-records": "0"},
        {"fetch": "EVERYTHING"},
        {"page-token": "zz"},
        {"limit-hash": "xyz"},
    ]:
        error(client.get(f"{API}/trees/main/history", params=params), 400, "BAD_REQUEST")
    error(client.get(f"{API}/trees/nope/history"), 404, "REFERENCE_NOT_FOUND")


def test_diff_between_references(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    put_table(client, 1, "bronze", "customers")
    create_branch(client, "dev")
    put_table(client, 2, "bronze", "orders", branch="dev")
    commit(client, [delete("bronze", "customers")], "dev")
    put_table(client, 1, "bronze", "nation", branch="dev")
    body = ok(client.get(f"{API}/trees/main/diff/dev"))
    assert body["effectiveFromReference"] == {
        "type": "BRANCH",
        "name": "main",
        "hash": head(client),
    }
    assert body["effectiveToReference"]["hash"] == head(client, "dev")
    assert body["hasMore"] is False and body["token"] is None
    by_key = {".".join(d["key"]["elements"]): d for d in body["diffs"]}
    assert list(by_key) == ["bronze.customers", "bronze.nation", "bronze.orders"]
    assert by_key["bronze.customers"]["to"] is None and by_key["bronze.customers"]["from"]
    assert by_key["bronze.nation"]["from"] is None and by_key["bronze.nation"]["to"]
    assert by_key["bronze.orders"]["from"]["snapshotId"] == 1
    assert by_key["bronze.orders"]["to"]["snapshotId"] == 2
    assert ok(client.get(f"{API}/trees/dev/diff/dev"))["diffs"] == []
    back = ok(client.get(f"{API}/trees/dev~3/diff/dev"))["diffs"]
    assert len(back) == 3
    first = ok(client.get(f"{API}/trees/main/diff/dev", params={"max-records": 2}))
    assert len(first["diffs"]) == 2 and first["hasMore"]
    rest = ok(client.get(f"{API}/trees/main/diff/dev", params={"page-token": first["token"]}))
    assert [d["key"]["elements"][-1] for d in rest["diffs"]] == ["orders"]
    filtered = ok(client.get(f"{API}/trees/main/diff/-", params={"filter": "key.name == 'x'"}))
    assert filtered["diffs"] == []
    prefixed = ok(client.get(f"{API}/trees/main/diff/dev", params={"key": "bronze.nation"}))
    assert len(prefixed["diffs"]) == 1
    error(client.get(f"{API}/trees/main/diff/nope"), 404, "REFERENCE_NOT_FOUND")
