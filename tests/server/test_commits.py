"""Commits over Nessie's API v2: content ids, optimistic concurrency, conflicts, metadata."""

from __future__ import annotations

from tests.server.helpers import (
    API,
    ApiClient,
    commit,
    commit_response,
    content_id,
    create_branch,
    delete,
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


def test_a_commit_returns_the_new_head_and_the_assigned_content_ids(client: ApiClient) -> None:
    before = head(client)
    result = commit(client, [put(namespace("bronze"), "bronze")], message="create bronze")
    assert result["targetBranch"]["type"] == "BRANCH" and result["targetBranch"]["name"] == "main"
    new_head = result["targetBranch"]["hash"]
    assert new_head != before and head(client) == new_head
    [added] = result["addedContents"]
    assert added["key"] == key("bronze") and added["contentId"]
    assert content_id(client, "main", "bronze") == added["contentId"]


def test_updates_carry_the_content_id_and_renames_keep_it(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    cid = content_id(client, "main", "bronze", "orders")
    updated = commit(client, [put(table(2, cid), "bronze", "orders")])
    assert updated["addedContents"] is None  # Nessie: null when nothing new was added
    renamed = commit(
        client, [delete("bronze", "orders"), put(table(2, cid), "bronze", "sales")], message="mv"
    )
    assert renamed["addedContents"] is None
    assert content_id(client, "main", "bronze", "sales") == cid
    assert content_id(client, "main", "bronze", "orders") is None


def test_a_conflict_names_the_key_for_spec_2_clients(client: ApiClient) -> None:
    with_namespace(client)
    before = put_table(client, 1, "bronze", "orders")
    cid = content_id(client, "main", "bronze", "orders")
    put_table(client, 2, "bronze", "orders")
    after = head(client)
    ops = [put(table(3, cid), "bronze", "orders")]
    response = commit_response(client, ops, expected=before)
    body = error(response, 409, "REFERENCE_CONFLICT")
    assert "bronze.orders" in body["message"]
    assert body["errorDetails"] == {
        "type": "REFERENCE_CONFLICTS",
        "conflicts": [
            {
                "conflictType": "VALUE_DIFFERS",
                "key": {"elements": ["bronze", "orders"]},
                "message": body["errorDetails"]["conflicts"][0]["message"],
            }
        ],
    }
    assert head(client) == after
    # without Nessie-Client-Spec: 2 the details are left out (Nessie's rule)
    old_client = commit_response(client, ops, expected=before, headers={"Nessie-Client-Spec": "1"})
    assert "errorDetails" not in error(old_client, 409, "REFERENCE_CONFLICT")


def test_a_stale_expected_hash_is_fine_for_other_keys(client: ApiClient) -> None:
    base = with_namespace(client)
    moved = put_table(client, 1, "bronze", "orders")
    result = commit(client, [put(table(1), "bronze", "customers")], expected=base)
    log = ok(client.get(f"{API}/trees/main/history", params={"max-records": 1}))["logEntries"]
    assert log[0]["commitMeta"]["hash"] == result["targetBranch"]["hash"]
    assert log[0]["parentCommitHash"] == moved  # rebased on the new head
    entries = ok(client.get(f"{API}/trees/main/entries"))["entries"]
    assert [e["name"]["elements"] for e in entries] == [
        ["bronze"],
        ["bronze", "customers"],
        ["bronze", "orders"],
    ]


def test_per_key_conflict_types(client: ApiClient) -> None:
    no_namespace = error(
        commit_response(client, [put(table(1), "bronze", "orders")]), 409, "REFERENCE_CONFLICT"
    )
    assert no_namespace["errorDetails"]["conflicts"][0]["conflictType"] == "NAMESPACE_ABSENT"
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    exists = error(
        commit_response(client, [put(table(2), "bronze", "orders")]), 409, "REFERENCE_CONFLICT"
    )
    assert exists["errorDetails"]["conflicts"][0]["conflictType"] == "KEY_EXISTS"
    missing = error(commit_response(client, [delete("bronze", "nope")]), 409, "REFERENCE_CONFLICT")
    assert missing["errorDetails"]["conflicts"][0]["conflictType"] == "KEY_DOES_NOT_EXIST"
    other = create_branch(client, "dev")
    put_table(client, 5, "bronze", "x", branch="dev")
    unexpected = commit_response(
        client, [put(table(3), "bronze", "y")], expected=head(client, "dev")
    )
    # an expected hash outside the branch's history: Nessie's 404
    message = error(unexpected, 404, "REFERENCE_NOT_FOUND")["message"]
    assert message == f"Could not find commit '{head(client, 'dev')}' in reference 'main'."
    assert other


def test_writes_need_a_branch_with_an_expected_hash(client: ApiClient) -> None:
    h = with_namespace(client)
    body = {"commitMeta": {"message": "x"}, "operations": [put(table(1), "bronze", "t")]}
    no_hash = client.post(f"{API}/trees/main/history/commit", json=body)
    assert "Expected hash must be provided" in error(no_hash, 400, "BAD_REQUEST")["message"]
    create_branch(client, "v1", kind="tag")
    tag = client.post(f"{API}/trees/v1@{h}/history/commit", json=body)
    assert "v1" in error(tag, 400, "BAD_REQUEST")["message"]
    detached = client.post(f"{API}/trees/@{h}/history/commit", json=body)
    error(detached, 400, "BAD_REQUEST")
    unknown = client.post(f"{API}/trees/nope@{h}/history/commit", json=body)
    error(unknown, 404, "REFERENCE_NOT_FOUND")
    unknown_hash = client.post(f"{API}/trees/main@{'ab' * 32}/history/commit", json=body)
    error(unknown_hash, 404, "REFERENCE_NOT_FOUND")
    assert head(client) == h


def test_commit_metadata_round_trips_in_nessie_v2_form(client: ApiClient) -> None:
    with_namespace(client)
    body = {
        "commitMeta": {
            "message": "load orders",
            "authors": ["ana <ana@example.com>"],
            "authorTime": "2026-01-02T03:04:05Z",
            "allProperties": {"job": ["ingest"]},
        },
        "operations": [put(table(1), "bronze", "orders")],
    }
    h = ok(client.post(f"{API}/trees/main@{head(client)}/history/commit", json=body))[
        "targetBranch"
    ]["hash"]
    [entry] = ok(client.get(f"{API}/trees/main/history", params={"max-records": 1}))["logEntries"]
    meta = entry["commitMeta"]
    assert meta["hash"] == h
    assert meta["message"] == "load orders"
    assert meta["authors"] == ["ana <ana@example.com>"]
    assert meta["authorTime"] == "2026-01-02T03:04:05Z"
    assert meta["allProperties"] == {"job": ["ingest"]}
    assert meta["committer"] == "" and meta["allSignedOffBy"] == []
    assert meta["commitTime"].endswith("Z")
    assert len(meta["parentCommitHashes"]) == 1


def test_v1_style_metadata_fields_are_accepted(client: ApiClient) -> None:
    with_namespace(client)
    body = {
        "commitMeta": {"message": "m", "author": "bob", "properties": {"a": "1"}},
        "operations": [put(table(1), "bronze", "orders")],
    }
    ok(client.post(f"{API}/trees/main@{head(client)}/history/commit", json=body))
    meta = ok(client.get(f"{API}/trees/main/history"))["logEntries"][0]["commitMeta"]
    assert meta["authors"] == ["bob"] and meta["allProperties"] == {"a": ["1"]}


def test_commit_headers_override_the_metadata(client: ApiClient) -> None:
    with_namespace(client)
    headers = {
        "Nessie-Commit-Message": "from header",
        "Nessie-Commit-Authors": "carol",
        "Nessie-Commit-Property-Pipeline": "daily",
    }
    ok(commit_response(client, [put(table(1), "bronze", "t")], headers=headers))
    meta = ok(client.get(f"{API}/trees/main/history"))["logEntries"][0]["commitMeta"]
    assert meta["message"] == "from header"
    assert meta["authors"] == ["carol"]
    assert meta["allProperties"] == {"pipeline": ["daily"]}


def test_server_set_metadata_is_refused(client: ApiClient) -> None:
    with_namespace(client)
    for field, value in [
        ("committer", "me"),
        ("commitTime", "2026-01-01T00:00:00Z"),
        ("hash", "ab" * 32),
        ("parentCommitHashes", ["ab" * 32]),
    ]:
        body = {
            "commitMeta": {"message": "m", field: value},
            "operations": [put(table(1), "bronze", "t")],
        }
        response = client.post(f"{API}/trees/main@{head(client)}/history/commit", json=body)
        assert "server" in error(response, 400, "BAD_REQUEST")["message"]


def test_malformed_operations_are_refused_and_change_nothing(client: ApiClient) -> None:
    h = with_namespace(client)
    url = f"{API}/trees/main@{h}/history/commit"
    bad_bodies = [
        {"operations": [put(table(1), "bronze", "t")]},  # no commitMeta
        {"commitMeta": {"message": "m"}},  # no operations
        {"commitMeta": {"message": "m"}, "operations": []},  # empty
        {
            "commitMeta": {"message": "m"},
            "operations": [{"type": "PUT", "key": key("bronze", "t")}],
        },
        {"commitMeta": {"message": "m"}, "operations": [{"type": "MOVE", "key": key("a")}]},
        {"commitMeta": {"message": "m"}, "operations": [put({"type": "DELTA_LAKE_TABLE"}, "a")]},
        {"commitMeta": {"message": "m"}, "operations": [put({"type": "ICEBERG_TABLE"}, "a")]},
        {"commitMeta": {"message": "m"}, "operations": [put(table(1, "made-up"), "bronze", "t")]},
        {"commitMeta": {"message": "m"}, "operations": [put(table(1), "bronze", "")]},
        {
            "commitMeta": {"message": "m"},
            "operations": [{"type": "DELETE", "key": {"elements": []}}],
        },
        {
            "commitMeta": {"message": "m"},
            "operations": [put(table(1), "bronze", "t"), delete("bronze", "t")],
        },
        {
            "commitMeta": {"message": "m"},
            "operations": [put({"type": "NAMESPACE", "elements": "x"}, "x")],
        },
        {"commitMeta": {"message": "m"}, "operations": [put(table(1) | {"id": 7}, "bronze", "t")]},
        {"commitMeta": {"message": "m", "authors": ["a", "b"]}, "operations": [delete("bronze")]},
        {
            "commitMeta": {"message": "m", "allProperties": {"k": ["1", "2"]}},
            "operations": [delete("bronze")],
        },
        {"commitMeta": "just text", "operations": [delete("bronze")]},
        [1, 2, 3],
    ]
    for body in bad_bodies:
        error(client.post(url, json=body), 400, "BAD_REQUEST")
    assert head(client) == h
