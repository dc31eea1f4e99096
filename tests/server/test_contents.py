"""Reading over Nessie's API v2: contents, entries, every reference syntax, key escaping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from lakehouse.catalog.model import NO_ANCESTOR
from tests.server.helpers import (
    API,
    ApiClient,
    commit,
    commit_response,
    content_id,
    create_branch,
    error,
    head,
    key,
    namespace,
    ok,
    put,
    put_table,
    table,
    with_namespace,
)


def snapshot(client: ApiClient, ref: str, path: str = "bronze.orders") -> int:
    snapshot_id: int = ok(client.get(f"{API}/trees/{ref}/contents/{path}"))["content"]["snapshotId"]
    return snapshot_id


def test_one_content_with_the_effective_reference(client: ApiClient) -> None:
    with_namespace(client)
    h = put_table(client, 1, "bronze", "orders")
    body = ok(client.get(f"{API}/trees/main/contents/bronze.orders"))
    cid = body["content"]["id"]
    assert body == {
        "content": table(1, cid),
        "effectiveReference": {"type": "BRANCH", "name": "main", "hash": h},
    }
    missing = client.get(f"{API}/trees/main/contents/bronze.nope")
    assert "bronze.nope" in error(missing, 404, "CONTENT_NOT_FOUND")["message"]
    error(client.get(f"{API}/trees/nope/contents/bronze.orders"), 404, "REFERENCE_NOT_FOUND")


def test_every_reference_syntax_reads_the_right_commit(client: ApiClient) -> None:
    with_namespace(client)
    h1 = put_table(client, 1, "bronze", "orders")
    time.sleep(0.01)
    between = datetime.now(tz=UTC)
    time.sleep(0.01)
    h2 = put_table(client, 2, "bronze", "orders")
    h3 = put_table(client, 3, "bronze", "orders")
    assert snapshot(client, "main") == 3
    assert snapshot(client, "-") == 3
    assert snapshot(client, f"main@{h2}") == 2
    assert snapshot(client, f"-@{h2}") == 2
    assert snapshot(client, f"@{h1}") == 1
    assert snapshot(client, f"DETACHED@{h1}") == 1
    assert snapshot(client, f"@{h1[:12]}") == 1
    assert snapshot(client, "main~2") == 1
    assert snapshot(client, f"main@{h3}~1") == 2
    assert snapshot(client, f"@{h3}~1") == 2
    assert snapshot(client, "main^1") == 2
    instant = between.isoformat().replace("+00:00", "Z")
    assert snapshot(client, f"main*{instant}") == 1
    assert snapshot(client, f"main*{int(between.timestamp() * 1000)}") == 1
    assert snapshot(client, quote(f"main@{h3}~1", safe="")) == 2  # URL-encoded '@' and '~'
    effective = ok(client.get(f"{API}/trees/main~2/contents/bronze.orders"))["effectiveReference"]
    assert effective == {"type": "BRANCH", "name": "main", "hash": h1}
    detached = ok(client.get(f"{API}/trees/@{h1}/contents/bronze.orders"))["effectiveReference"]
    assert detached == {"type": "DETACHED", "hash": h1}
    create_branch(client, "v3", kind="tag")
    tagged = ok(client.get(f"{API}/trees/v3/contents/bronze.orders"))["effectiveReference"]
    assert tagged == {"type": "TAG", "name": "v3", "hash": h3}


@pytest.mark.parametrize(
    ("ref", "status", "code"),
    [
        ("main@xyz", 400, "BAD_REQUEST"),
        ("main@12", 400, "BAD_REQUEST"),
        ("main~x", 400, "BAD_REQUEST"),
        ("main*yesterday", 400, "BAD_REQUEST"),
        ("9main", 400, "BAD_REQUEST"),
        ("DETACHED", 400, "BAD_REQUEST"),
        ("main~10", 404, "REFERENCE_NOT_FOUND"),
        ("main^2", 404, "REFERENCE_NOT_FOUND"),
        (f"@{'ab' * 32}", 404, "REFERENCE_NOT_FOUND"),
        ("nope", 404, "REFERENCE_NOT_FOUND"),
    ],
)
def test_bad_reference_specs(client: ApiClient, ref: str, status: int, code: str) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    error(client.get(f"{API}/trees/{ref}/contents/bronze.orders"), status, code)


def test_time_travel_before_the_first_commit_is_the_empty_catalog(client: ApiClient) -> None:
    with_namespace(client)
    body = ok(client.get(f"{API}/trees/main*2000-01-01T00:00:00Z/entries"))
    assert body["entries"] == [] and body["effectiveReference"]["hash"] == NO_ANCESTOR


def test_several_contents_by_query_and_by_body(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    h = put_table(client, 2, "bronze", "customers")
    by_query = ok(
        client.get(
            f"{API}/trees/main/contents",
            params=[("key", "bronze.orders"), ("key", "bronze.nope"), ("key", "bronze.customers")],
        )
    )
    assert [c["key"]["elements"][-1] for c in by_query["contents"]] == ["orders", "customers"]
    assert by_query["effectiveReference"] == {"type": "BRANCH", "name": "main", "hash": h}
    by_body = ok(
        client.post(
            f"{API}/trees/main/contents",
            json={"requestedKeys": [key("bronze", "customers"), key("x", "y")]},
        )
    )
    [found] = by_body["contents"]
    assert found["key"] == key("bronze", "customers") and found["content"]["snapshotId"] == 2
    empty = ok(client.post(f"{API}/trees/main~1/contents", json={"requestedKeys": []}))
    assert empty["contents"] == [] and empty["effectiveReference"]["hash"] != h
    error(client.post(f"{API}/trees/main/contents", json={"keys": []}), 400, "BAD_REQUEST")


def test_keys_with_dots_slashes_and_escapes(client: ApiClient) -> None:
    commit(client, [put(namespace("a.b"), "a.b")])
    commit(client, [put(table(1), "a.b", "c/d")])
    commit(client, [put(table(2), "a.b", "50%")])
    # Nessie's path form: U+001D for a dot inside an element, URL-encoded as %1D
    assert ok(client.get(f"{API}/trees/main/contents/a%1Db.c%2Fd"))["content"]["snapshotId"] == 1
    assert ok(client.get(f"{API}/trees/main/contents/a%1Db.c/d"))["content"]["snapshotId"] == 1
    # the escaped form: leading '.', '*.' for '.', '*{' for '/', '*[' for '%'
    assert ok(client.get(f"{API}/trees/main/contents/.a*.b.c*{{d"))["content"]["snapshotId"] == 1
    assert ok(client.get(f"{API}/trees/main/contents/.a*.b.50*["))["content"]["snapshotId"] == 2
    assert ok(client.get(f"{API}/trees/main/contents/a%1Db.50%25"))["content"]["snapshotId"] == 2
    by_query = ok(client.get(f"{API}/trees/main/contents", params={"key": "a\x1db.c/d"}))
    assert by_query["contents"][0]["key"] == key("a.b", "c/d")
    error(client.get(f"{API}/trees/main/contents/.a*xb"), 400, "BAD_REQUEST")
    error(client.get(f"{API}/trees/main/contents/a..b"), 400, "BAD_REQUEST")
    # a dotted path without escaping is two elements, not the one named 'a.b'
    error(client.get(f"{API}/trees/main/contents/a.b"), 404, "CONTENT_NOT_FOUND")


@pytest.mark.parametrize(
    "elements",
    [(".",), ("..",), ("bronze", ".."), ("../../evil",), ("bronze", "a/../b"), ("a/.",)],
)
def test_keys_with_dot_or_dot_dot_elements_are_refused_and_nothing_changes(
    client: ApiClient, elements: tuple[str, ...]
) -> None:
    with_namespace(client)
    before = head(client)
    body = error(commit_response(client, [put(table(1), *elements)]), 400, "BAD_REQUEST")
    assert "'.' and '..' are not allowed" in body["message"]
    assert head(client) == before
    path = ".".join(e.replace(".", "\x1d") for e in elements)
    error(client.get(f"{API}/trees/main/contents", params={"key": path}), 400, "BAD_REQUEST")


def test_dots_inside_an_element_stay_allowed(client: ApiClient) -> None:
    commit(client, [put(namespace("a..b"), "a..b")])
    commit(client, [put(table(1), "a..b", ".hidden/x")])
    found = ok(client.get(f"{API}/trees/main/contents", params={"key": "a\x1d\x1db.\x1dhidden/x"}))
    assert found["contents"][0]["key"] == key("a..b", ".hidden/x")


def test_entries_list_keys_types_ids_and_optionally_contents(client: ApiClient) -> None:
    with_namespace(client)
    h = put_table(client, 1, "bronze", "orders")
    body = ok(client.get(f"{API}/trees/main/entries"))
    cid = content_id(client, "main", "bronze", "orders")
    assert body["effectiveReference"] == {"type": "BRANCH", "name": "main", "hash": h}
    assert body["hasMore"] is False and body["token"] is None
    assert body["entries"][1] == {
        "name": key("bronze", "orders"),
        "type": "ICEBERG_TABLE",
        "contentId": cid,
        "content": None,
    }
    with_content = ok(client.get(f"{API}/trees/main/entries", params={"content": "true"}))
    assert with_content["entries"][1]["content"] == table(1, cid)
    assert with_content["entries"][0]["content"]["type"] == "NAMESPACE"


def test_entries_filter_by_key_range_prefix_and_cel(client: ApiClient) -> None:
    with_namespace(client)
    with_namespace(client, "silver")
    for name in ["a", "b", "c"]:
        put_table(client, 1, "bronze", name)
    put_table(client, 1, "silver", "x")

    def names(**params: str) -> list[str]:
        body = ok(client.get(f"{API}/trees/main/entries", params=params))
        return [".".join(e["name"]["elements"]) for e in body["entries"]]

    assert names() == ["bronze", "bronze.a", "bronze.b", "bronze.c", "silver", "silver.x"]
    assert names(**{"prefix-key": "bronze"}) == ["bronze", "bronze.a", "bronze.b", "bronze.c"]
    assert names(**{"min-key": "bronze.b", "max-key": "silver"}) == [
        "bronze.b",
        "bronze.c",
        "silver",
    ]
    assert names(key="silver.x") == ["silver.x"]
    assert names(filter="entry.contentType == 'NAMESPACE'") == ["bronze", "silver"]
    assert names(filter="entry.namespace.startsWith('bronze') && entry.name != 'b'") == [
        "bronze.a",
        "bronze.c",
    ]
    assert names(
        filter="entry.contentType in ['ICEBERG_TABLE'] && size(entry.keyElements) == 2"
    ) == [
        "bronze.a",
        "bronze.b",
        "bronze.c",
        "silver.x",
    ]
    error(
        client.get(f"{API}/trees/main/entries", params={"filter": "entry.nope =="}),
        400,
        "BAD_REQUEST",
    )
    error(client.get(f"{API}/trees/main/entries", params={"filter": "x == 1"}), 400, "BAD_REQUEST")
    error(client.get(f"{API}/trees/main/entries", params={"filter": "'text'"}), 400, "BAD_REQUEST")


def test_entries_page_with_tokens(client: ApiClient) -> None:
    with_namespace(client)
    for i in range(7):
        put_table(client, i, "bronze", f"t{i}")
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"max-records": 3}
        if token:
            params["page-token"] = token
        body = ok(client.get(f"{API}/trees/main/entries", params=params))
        seen += [".".join(e["name"]["elements"]) for e in body["entries"]]
        pages += 1
        if not body["hasMore"]:
            assert body["token"] is None
            break
        token = body["token"]
    assert pages == 3 and seen == ["bronze"] + [f"bronze.t{i}" for i in range(7)]
    bad = client.get(f"{API}/trees/main/entries", params={"page-token": "not-hex"})
    error(bad, 400, "BAD_REQUEST")
