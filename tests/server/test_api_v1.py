"""Nessie's REST API v1 (``/api/v1``): the shapes and rules of Nessie's v1 resources.

v1 names a reference and its hash apart (``hashOnRef``, ``expectedHash`` query
parameters), returns single objects unwrapped, answers 204 to assign/delete, and shows
commit metadata in its single-valued form. The handlers are v2's, so the errors (codes,
statuses, the ``NessieError`` body) and the access checks are too.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lakehouse.catalog.model import NO_ANCESTOR
from tests.server.helpers import ApiClient, error, key, namespace, ok, put, table

V1 = "/api/v1"


def main_hash(client: ApiClient) -> str:
    return str(ok(client.get(f"{V1}/trees/tree"))["hash"])


def v1_commit(
    client: ApiClient,
    operations: list[dict[str, Any]],
    branch: str = "main",
    *,
    expected: str | None = None,
    meta: dict[str, Any] | None = None,
) -> httpx.Response:
    expected = expected or str(ok(client.get(f"{V1}/trees/tree/{branch}"))["hash"])
    body = {"commitMeta": meta or {"message": "v1 commit"}, "operations": operations}
    return client.post(
        f"{V1}/trees/branch/{branch}/commit", params={"expectedHash": expected}, json=body
    )


def create(
    client: ApiClient, name: str, kind: str = "BRANCH", source: str = "main"
) -> dict[str, Any]:
    source_hash = ok(client.get(f"{V1}/trees/tree/{source}"))["hash"]
    body = {"type": kind, "name": name, "hash": source_hash}
    return ok(client.post(f"{V1}/trees/tree", params={"sourceRefName": source}, json=body))


@pytest.fixture
def with_table(client: ApiClient) -> str:
    """``ns`` and ``ns.t`` on main; the commit's hash."""
    done = v1_commit(client, [put(namespace("ns"), "ns"), put(table(1), "ns", "t")])
    return str(ok(done)["hash"])


# -- config and references ---------------------------------------------------------------


def test_config_is_the_v1_view_of_nessies(client: ApiClient) -> None:
    assert ok(client.get(f"{V1}/config")) == {"defaultBranch": "main", "maxSupportedApiVersion": 2}
    assert ok(client.get("/api/v2/config"))["minSupportedApiVersion"] == 1


def test_the_default_branch_and_a_reference_are_returned_unwrapped(client: ApiClient) -> None:
    main = {"type": "BRANCH", "name": "main", "hash": NO_ANCESTOR}
    assert ok(client.get(f"{V1}/trees/tree")) == main
    assert ok(client.get(f"{V1}/trees/tree/main")) == main
    assert ok(client.get(f"{V1}/trees")) == {"references": [main], "hasMore": False, "token": None}


def test_create_takes_the_hash_on_the_source_reference(client: ApiClient, with_table: str) -> None:
    assert create(client, "dev") == {"type": "BRANCH", "name": "dev", "hash": with_table}
    tag = ok(
        client.post(
            f"{V1}/trees/tree",
            params={"sourceRefName": "main"},
            json={"type": "TAG", "name": "v1", "hash": NO_ANCESTOR},
        )
    )
    assert tag == {"type": "TAG", "name": "v1", "hash": NO_ANCESTOR}
    # no source: the default branch; a hash is required (as Nessie)
    dev2 = ok(
        client.post(f"{V1}/trees/tree", json={"type": "BRANCH", "name": "dev2", "hash": with_table})
    )
    assert dev2["hash"] == with_table
    no_hash = client.post(f"{V1}/trees/tree", json={"type": "BRANCH", "name": "dev3"})
    assert error(no_hash, 400, "BAD_REQUEST")["message"] == "Target hash must be provided."


def test_create_refuses_what_nessie_refuses(client: ApiClient) -> None:
    main = main_hash(client)
    bad = client.post(f"{V1}/trees/tree", json={"type": "BRANCH", "name": "bad name!"})
    assert "Reference name must start with a letter" in error(bad, 400, "BAD_REQUEST")["message"]
    foo = client.post(f"{V1}/trees/tree", json={"type": "FOOBAR", "name": "x", "hash": main})
    assert "Could not resolve type id 'FOOBAR'" in error(foo, 400, "BAD_REQUEST")["message"]
    untyped = client.post(f"{V1}/trees/tree", json={"name": "x", "hash": main})
    assert "missing type id property 'type'" in error(untyped, 400, "BAD_REQUEST")["message"]
    for body in ({"type": "TAG", "name": "t", "hash": main}, {"type": "TAG", "name": "t"}):
        missing = client.post(f"{V1}/trees/tree", params={"sourceRefName": "nope"}, json=body)
        error(missing, 404, "REFERENCE_NOT_FOUND")
    create(client, "dev")
    again = client.post(f"{V1}/trees/tree", json={"type": "BRANCH", "name": "dev", "hash": main})
    error(again, 409, "REFERENCE_ALREADY_EXISTS")


def test_unknown_reference_is_404_everywhere(client: ApiClient) -> None:
    for url in (
        f"{V1}/trees/tree/nope",
        f"{V1}/trees/tree/nope/log",
        f"{V1}/trees/tree/nope/entries",
        f"{V1}/contents/a.b?ref=nope",
        f"{V1}/diffs/main...nope",
        f"{V1}/namespaces/nope",
    ):
        error(client.get(url), 404, "REFERENCE_NOT_FOUND")


def test_assign_and_delete_answer_204_and_check_the_expected_hash(
    client: ApiClient, with_table: str
) -> None:
    create(client, "dev")
    stale = client.put(
        f"{V1}/trees/branch/dev",
        params={"expectedHash": NO_ANCESTOR},
        json={"type": "BRANCH", "name": "main", "hash": NO_ANCESTOR},
    )
    assert "not at expected hash" in error(stale, 409, "REFERENCE_CONFLICT")["message"]
    done = client.put(
        f"{V1}/trees/branch/dev",
        params={"expectedHash": with_table},
        json={"type": "BRANCH", "name": "main", "hash": NO_ANCESTOR},
    )
    assert done.status_code == 204 and done.content == b""
    assert ok(client.get(f"{V1}/trees/tree/dev"))["hash"] == NO_ANCESTOR
    wrong_type = client.delete(f"{V1}/trees/tag/dev", params={"expectedHash": NO_ANCESTOR})
    error(wrong_type, 400, "BAD_REQUEST")
    gone = client.delete(f"{V1}/trees/branch/dev", params={"expectedHash": NO_ANCESTOR})
    assert gone.status_code == 204
    error(client.get(f"{V1}/trees/tree/dev"), 404, "REFERENCE_NOT_FOUND")


def test_missing_expected_hash_or_body_is_nessies_400(client: ApiClient) -> None:
    body = error(client.put(f"{V1}/trees/tag/t"), 400, "BAD_REQUEST")
    assert ".assignTo: must not be null" in body["message"]
    assert ".expectedHash: must not be null" in body["message"]
    merge = error(client.post(f"{V1}/trees/branch/main/merge"), 400, "BAD_REQUEST")
    assert "mergeRefIntoBranch.merge: must not be null" in merge["message"]
    delete = error(client.delete(f"{V1}/trees/branch/main"), 400, "BAD_REQUEST")
    assert "deleteReference.expectedHash: must not be null" in delete["message"]


# -- commits, log, entries, contents, diff --------------------------------------------------


def test_commit_answers_the_new_head_and_conflicts_are_409(
    client: ApiClient, with_table: str
) -> None:
    assert ok(client.get(f"{V1}/trees/tree/main"))["hash"] == with_table
    stale = v1_commit(client, [put(table(2), "ns", "t")], expected=NO_ANCESTOR)
    body = error(stale, 409, "REFERENCE_CONFLICT")
    assert "ns.t" in body["message"]
    no_branch = v1_commit(client, [put(table(2), "ns", "u")], "nope", expected=with_table)
    error(no_branch, 404, "REFERENCE_NOT_FOUND")


def test_log_shows_v1_commit_metadata_between_start_and_end_hash(client: ApiClient) -> None:
    first = ok(
        v1_commit(
            client,
            [put(namespace("ns"), "ns")],
            meta={
                "message": "one",
                "author": "ann",
                "signedOffBy": "bob",
                "properties": {"a": "b"},
            },
        )
    )["hash"]
    second = ok(v1_commit(client, [put(table(1), "ns", "t")]))["hash"]
    log = ok(client.get(f"{V1}/trees/tree/main/log"))
    assert [e["commitMeta"]["hash"] for e in log["logEntries"]] == [second, first]
    meta = log["logEntries"][1]["commitMeta"]
    assert meta["author"] == "ann" and meta["signedOffBy"] == "bob"
    assert meta["properties"] == {"a": "b"} and meta["message"] == "one"
    assert not {"authors", "allSignedOffBy", "allProperties"} & set(meta)
    assert log["logEntries"][1]["parentCommitHash"] == NO_ANCESTOR
    assert log["logEntries"][0]["operations"] is None
    # endHash: walk from there; startHash: stop there (inclusive)
    older = ok(client.get(f"{V1}/trees/tree/main/log", params={"endHash": first}))
    assert [e["commitMeta"]["hash"] for e in older["logEntries"]] == [first]
    newer = ok(client.get(f"{V1}/trees/tree/main/log", params={"startHash": second}))
    assert [e["commitMeta"]["hash"] for e in newer["logEntries"]] == [second]
    paged = ok(client.get(f"{V1}/trees/tree/main/log", params={"maxRecords": 1, "fetch": "ALL"}))
    assert paged["hasMore"] and paged["token"]
    assert [op["type"] for op in paged["logEntries"][0]["operations"]] == ["PUT"]
    assert paged["logEntries"][0]["operations"][0]["expectedContent"] is None
    rest = ok(client.get(f"{V1}/trees/tree/main/log", params={"pageToken": paged["token"]}))
    assert [e["commitMeta"]["hash"] for e in rest["logEntries"]] == [first]


def test_entries_at_a_hash_on_ref_and_by_namespace_depth(
    client: ApiClient, with_table: str
) -> None:
    entries = ok(client.get(f"{V1}/trees/tree/main/entries"))
    assert entries == {
        "entries": [
            {"type": "NAMESPACE", "name": key("ns")},
            {"type": "ICEBERG_TABLE", "name": key("ns", "t")},
        ],
        "hasMore": False,
        "token": None,
    }
    before = ok(client.get(f"{V1}/trees/tree/main/entries", params={"hashOnRef": NO_ANCESTOR}))
    assert before["entries"] == []
    depth = ok(client.get(f"{V1}/trees/tree/main/entries", params={"namespaceDepth": 1}))
    assert depth["entries"] == [{"type": "NAMESPACE", "name": key("ns")}]
    cel = ok(
        client.get(
            f"{V1}/trees/tree/main/entries", params={"filter": "entry.contentType == 'NAMESPACE'"}
        )
    )
    assert [e["name"] for e in cel["entries"]] == [key("ns")]
    bad_hash = client.get(f"{V1}/trees/tree/main/entries", params={"hashOnRef": "zz"})
    error(bad_hash, 400, "BAD_REQUEST")


def test_contents_single_and_multiple(client: ApiClient, with_table: str) -> None:
    content = ok(client.get(f"{V1}/contents/ns.t", params={"ref": "main"}))
    assert content["type"] == "ICEBERG_TABLE" and content["snapshotId"] == 1
    assert ok(client.get(f"{V1}/contents/ns.t")) == content  # default branch
    at_hash = client.get(f"{V1}/contents/ns.t", params={"ref": "main", "hashOnRef": NO_ANCESTOR})
    missing = error(at_hash, 404, "CONTENT_NOT_FOUND")
    assert "ns.t" in missing["message"]
    many = ok(
        client.post(
            f"{V1}/contents",
            params={"ref": "main"},
            json={"requestedKeys": [key("ns", "t"), key("ns", "nope")]},
        )
    )
    assert many == {"contents": [{"key": key("ns", "t"), "content": content}]}


def test_diff_sides_take_a_hash_after_a_star(client: ApiClient, with_table: str) -> None:
    create(client, "dev")
    assert ok(client.get(f"{V1}/diffs/main...dev"))["diffs"] == []
    diff = ok(client.get(f"{V1}/diffs/main*{NO_ANCESTOR}...dev"))
    assert [d["key"] for d in diff["diffs"]] == [key("ns"), key("ns", "t")]
    assert diff["diffs"][1]["from"] is None and diff["diffs"][1]["to"]["snapshotId"] == 1
    assert "effectiveFromReference" not in diff
    error(client.get(f"{V1}/diffs/main..dev"), 400, "BAD_REQUEST")


def test_merge_and_transplant_return_v1_merge_responses(client: ApiClient, with_table: str) -> None:
    create(client, "dev")
    create(client, "other")
    dev_commit = ok(v1_commit(client, [put(table(5), "ns", "u")], "dev"))["hash"]
    merged = ok(
        client.post(
            f"{V1}/trees/branch/main/merge",
            params={"expectedHash": with_table},
            json={"fromRefName": "dev", "fromHash": dev_commit},
        )
    )
    assert merged["wasApplied"] and merged["wasSuccessful"]
    assert merged["sourceCommits"] == [] and merged["targetCommits"] is None
    assert merged["details"][0]["key"] == key("ns", "u")
    assert merged["details"][0]["conflictType"] == "NONE"
    assert ok(client.get(f"{V1}/contents/ns.u"))["snapshotId"] == 5
    other_head = ok(client.get(f"{V1}/trees/tree/other"))["hash"]
    picked = ok(
        client.post(
            f"{V1}/trees/branch/other/transplant",
            params={"expectedHash": other_head},
            json={"fromRefName": "dev", "hashesToTransplant": [dev_commit]},
        )
    )
    assert picked["wasApplied"]
    squashed = client.post(
        f"{V1}/trees/branch/other/transplant",
        params={"expectedHash": other_head},
        json={
            "fromRefName": "dev",
            "hashesToTransplant": [dev_commit],
            "keepIndividualCommits": False,
        },
    )
    assert "unsquashed" in error(squashed, 400, "BAD_REQUEST")["message"]
    no_from_hash = client.post(
        f"{V1}/trees/branch/other/merge",
        params={"expectedHash": other_head},
        json={"fromRefName": "dev"},
    )
    error(no_from_hash, 400, "BAD_REQUEST")
    main_head = ok(client.get(f"{V1}/trees/tree/main"))["hash"]
    twice = client.post(
        f"{V1}/trees/branch/main/transplant",
        params={"expectedHash": main_head},
        json={"fromRefName": "dev", "hashesToTransplant": [dev_commit]},
    )
    assert "ns.u" in error(twice, 409, "REFERENCE_CONFLICT")["message"]


# -- namespaces ------------------------------------------------------------------------------


def test_namespaces_create_get_list_update_delete(client: ApiClient) -> None:
    created = ok(
        client.put(
            f"{V1}/namespaces/namespace/main/a",
            json={"type": "NAMESPACE", "elements": ["a"], "properties": {"k": "v"}},
        )
    )
    assert created["elements"] == ["a"] and created["properties"] == {"k": "v"} and created["id"]
    again = client.put(f"{V1}/namespaces/namespace/main/a", json={"elements": ["a"]})
    error(again, 409, "NAMESPACE_ALREADY_EXISTS")
    ok(client.put(f"{V1}/namespaces/namespace/main/a.b", json={"elements": ["a", "b"]}))
    assert ok(client.get(f"{V1}/namespaces/namespace/main/a")) == created
    error(client.get(f"{V1}/namespaces/namespace/main/zz"), 404, "NAMESPACE_NOT_FOUND")
    listed = ok(client.get(f"{V1}/namespaces/main"))["namespaces"]
    assert sorted(n["elements"] for n in listed) == [["a"], ["a", "b"]]
    under = ok(client.get(f"{V1}/namespaces/main", params={"name": "a.b"}))["namespaces"]
    assert [n["elements"] for n in under] == [["a", "b"]]

    update = client.post(
        f"{V1}/namespaces/namespace/main/a",
        json={"propertyUpdates": {"x": "y"}, "propertyRemovals": ["k"]},
    )
    assert update.status_code == 204
    assert ok(client.get(f"{V1}/namespaces/namespace/main/a"))["properties"] == {"x": "y"}

    v1_commit(client, [put(table(1), "a", "b", "t")])
    error(client.delete(f"{V1}/namespaces/namespace/main/a"), 409, "NAMESPACE_NOT_EMPTY")
    v1_commit(client, [{"type": "DELETE", "key": key("a", "b", "t")}])
    assert client.delete(f"{V1}/namespaces/namespace/main/a.b").status_code == 204
    assert client.delete(f"{V1}/namespaces/namespace/main/a").status_code == 204
    assert ok(client.get(f"{V1}/namespaces/main"))["namespaces"] == []
    log = ok(client.get(f"{V1}/trees/tree/main/log"))["logEntries"]
    assert log[-1]["commitMeta"]["message"] == "create namespace 'a'"


def test_a_table_at_a_namespace_key_is_other_content(client: ApiClient, with_table: str) -> None:
    taken = client.put(f"{V1}/namespaces/namespace/main/ns.t", json={"elements": ["ns", "t"]})
    body = error(taken, 409, "NAMESPACE_ALREADY_EXISTS")
    assert body["message"] == "Another content object with name 'ns.t' already exists"
    error(client.get(f"{V1}/namespaces/namespace/main/ns.t"), 404, "NAMESPACE_NOT_FOUND")


def test_a_name_with_a_slash_is_one_path_element_when_encoded(client: ApiClient) -> None:
    main = main_hash(client)
    made = ok(
        client.post(f"{V1}/trees/tree", json={"type": "BRANCH", "name": "team/x", "hash": main})
    )
    assert made["name"] == "team/x"
    assert ok(client.get(f"{V1}/trees/tree/team%2Fx"))["name"] == "team/x"
    done = v1_commit(client, [put(namespace("ns"), "ns")], "team%2Fx", expected=main)
    assert ok(done)["name"] == "team/x"
    assert ok(client.get(f"{V1}/namespaces/namespace/team%2Fx/ns"))["elements"] == ["ns"]
    assert len(ok(client.get(f"{V1}/trees/tree/team%2Fx/log"))["logEntries"]) == 1
    gone = client.delete(
        f"{V1}/trees/branch/team%2Fx", params={"expectedHash": done.json()["hash"]}
    )
    assert gone.status_code == 204
