"""Branches and tags over Nessie's API v2: config, list, create, get, assign, delete."""

from __future__ import annotations

import pytest

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


def test_config_describes_a_nessie_v2_server(client: ApiClient) -> None:
    config = ok(client.get(f"{API}/config"))
    assert config == {
        "defaultBranch": "main",
        "minSupportedApiVersion": 1,
        "maxSupportedApiVersion": 2,
        "actualApiVersion": 2,
        "specVersion": "2.2.0",
        "noAncestorHash": NO_ANCESTOR,
    }


def test_main_exists_from_the_start(client: ApiClient) -> None:
    listing = ok(client.get(f"{API}/trees"))
    assert listing == {
        "references": [{"type": "BRANCH", "name": "main", "hash": NO_ANCESTOR}],
        "hasMore": False,
        "token": None,
    }
    assert ok(client.get(f"{API}/trees/main"))["reference"]["hash"] == NO_ANCESTOR
    assert ok(client.get(f"{API}/trees/-"))["reference"]["name"] == "main"


def test_create_from_a_reference_a_hash_or_a_detached_commit(client: ApiClient) -> None:
    h1 = with_namespace(client)
    h2 = put_table(client, 1, "bronze", "orders")
    dev = ok(
        client.post(
            f"{API}/trees",
            params={"name": "dev", "type": "branch"},
            json={"type": "BRANCH", "name": "main", "hash": h2},
        )
    )
    assert dev == {"reference": {"type": "BRANCH", "name": "dev", "hash": h2}}
    old = client.post(
        f"{API}/trees",
        params={"name": "old", "type": "BRANCH"},
        json={"type": "BRANCH", "name": "main", "hash": h1[:12]},
    )
    assert ok(old)["reference"]["hash"] == h1
    tag = client.post(
        f"{API}/trees", params={"name": "v1", "type": "tag"}, json={"type": "DETACHED", "hash": h1}
    )
    assert ok(tag)["reference"] == {"type": "TAG", "name": "v1", "hash": h1}
    # relative parts are resolved from the hash given
    prev = client.post(
        f"{API}/trees",
        params={"name": "p", "type": "tag"},
        json={"name": "main", "hash": h2 + "~1"},
    )
    assert ok(prev)["reference"]["hash"] == h1
    # as Nessie: the source needs a hash with an absolute part (not "the head now")
    for body, problem in (
        ({"name": "main"}, "must be provided"),
        ({"name": "main", "hash": "~1"}, "must contain a starting commit ID"),
        (None, "must be provided"),
    ):
        refused = client.post(f"{API}/trees", params={"name": "h", "type": "tag"}, json=body)
        assert f"Target hash {problem}." in error(refused, 400, "BAD_REQUEST")["message"]
    names = [r["name"] for r in ok(client.get(f"{API}/trees"))["references"]]
    assert names == ["dev", "main", "old", "p", "v1"]


def test_a_name_can_only_be_used_once(client: ApiClient) -> None:
    create_branch(client, "dev")
    body = {"name": "main", "hash": head(client)}
    again = client.post(f"{API}/trees", params={"name": "dev", "type": "tag"}, json=body)
    assert "dev" in error(again, 409, "REFERENCE_ALREADY_EXISTS")["message"]


@pytest.mark.parametrize(
    "name", ["1dev", "-dev", "a..b", "has space", "dev/", "x;drop", "HEAD", "detached", "cafebabe"]
)
def test_invalid_and_forbidden_names_are_refused(client: ApiClient, name: str) -> None:
    response = client.post(
        f"{API}/trees", params={"name": name, "type": "branch"}, json={"name": "main"}
    )
    error(response, 400, "BAD_REQUEST")
    assert [r["name"] for r in ok(client.get(f"{API}/trees"))["references"]] == ["main"]


def test_create_needs_a_valid_type(client: ApiClient) -> None:
    missing = client.post(f"{API}/trees", params={"name": "dev"}, json={"name": "main"})
    error(missing, 400, "BAD_REQUEST")
    wrong = client.post(f"{API}/trees", params={"name": "dev", "type": "twig"}, json={})
    assert "type" in error(wrong, 400, "BAD_REQUEST")["message"]


def test_create_from_an_unknown_reference_or_commit_is_not_found(client: ApiClient) -> None:
    unknown_ref = client.post(
        f"{API}/trees",
        params={"name": "d", "type": "branch"},
        json={"name": "nope", "hash": NO_ANCESTOR},
    )
    error(unknown_ref, 404, "REFERENCE_NOT_FOUND")
    unknown_hash = client.post(
        f"{API}/trees",
        params={"name": "d", "type": "branch"},
        json={"type": "DETACHED", "hash": "ab" * 32},
    )
    error(unknown_hash, 404, "REFERENCE_NOT_FOUND")


def test_get_a_reference_by_name_only(client: ApiClient) -> None:
    create_branch(client, "dev")
    assert ok(client.get(f"{API}/trees/dev"))["reference"]["type"] == "BRANCH"
    error(client.get(f"{API}/trees/nope"), 404, "REFERENCE_NOT_FOUND")
    error(client.get(f"{API}/trees/main@{NO_ANCESTOR}"), 400, "BAD_REQUEST")
    error(client.get(f"{API}/trees/main~1"), 400, "BAD_REQUEST")


def test_fetch_all_adds_the_metadata_of_the_head(client: ApiClient) -> None:
    h = with_namespace(client)
    reference = ok(client.get(f"{API}/trees/main", params={"fetch": "ALL"}))["reference"]
    meta = reference["metadata"]["commitMetaOfHEAD"]
    assert meta["hash"] == h and meta["message"] == "namespace"
    assert "metadata" not in ok(client.get(f"{API}/trees/main"))["reference"]
    listed = ok(client.get(f"{API}/trees", params={"fetch": "ALL"}))["references"]
    assert listed[0]["metadata"]["commitMetaOfHEAD"]["hash"] == h
    error(client.get(f"{API}/trees", params={"fetch": "SOME"}), 400, "BAD_REQUEST")


def test_fetch_all_counts_commits_as_nessie_does(client: ApiClient) -> None:
    """numTotalCommits for all; ahead/behind/common ancestor of branches vs the default."""
    fork = with_namespace(client)
    create_branch(client, "dev")
    create_branch(client, "v1", kind="tag")
    put_table(client, 1, "bronze", "a", branch="dev")
    put_table(client, 2, "bronze", "b", branch="dev")
    put_table(client, 3, "bronze", "c")
    listed = ok(client.get(f"{API}/trees", params={"fetch": "ALL"}))["references"]
    numbers = {
        r["name"]: {k: v for k, v in r["metadata"].items() if k != "commitMetaOfHEAD"}
        for r in listed
    }
    unset = {"numCommitsAhead": None, "numCommitsBehind": None, "commonAncestorHash": None}
    assert numbers == {
        "main": {**unset, "numTotalCommits": 2},
        "v1": {**unset, "numTotalCommits": 1},
        "dev": {
            "numTotalCommits": 3,
            "numCommitsAhead": 2,
            "numCommitsBehind": 1,
            "commonAncestorHash": fork,
        },
    }
    one = ok(client.get(f"{API}/trees/dev", params={"fetch": "ALL"}))["reference"]["metadata"]
    assert one["numCommitsAhead"] == 2 and one["commonAncestorHash"] == fork


def test_references_page_and_filter(client: ApiClient) -> None:
    for name in ["a", "b", "c", "d"]:
        create_branch(client, name)
    create_branch(client, "t1", kind="tag")
    first = ok(client.get(f"{API}/trees", params={"max-records": 2}))
    assert [r["name"] for r in first["references"]] == ["a", "b"] and first["hasMore"]
    rest = ok(client.get(f"{API}/trees", params={"max-records": 10, "page-token": first["token"]}))
    assert [r["name"] for r in rest["references"]] == ["c", "d", "main", "t1"]
    assert not rest["hasMore"] and rest["token"] is None
    tags = ok(client.get(f"{API}/trees", params={"filter": "refType == 'TAG'"}))
    assert [r["name"] for r in tags["references"]] == ["t1"]
    named = ok(client.get(f"{API}/trees", params={"filter": "ref.name.startsWith('m')"}))
    assert [r["name"] for r in named["references"]] == ["main"]


def test_assign_needs_the_expected_hash_and_moves_only_from_it(client: ApiClient) -> None:
    h1 = with_namespace(client)
    h2 = put_table(client, 1, "bronze", "orders")
    ok(
        client.post(
            f"{API}/trees", params={"name": "v1", "type": "tag"}, json={"name": "main", "hash": h1}
        )
    )
    target = {"type": "BRANCH", "name": "main", "hash": h2}
    no_hash = client.put(f"{API}/trees/v1", params={"type": "tag"}, json=target)
    assert "Expected hash" in error(no_hash, 400, "BAD_REQUEST")["message"]
    stale = client.put(f"{API}/trees/v1@{h2}", params={"type": "tag"}, json=target)
    body = error(stale, 409, "REFERENCE_CONFLICT")
    assert body["errorDetails"]["conflicts"][0]["conflictType"] == "UNEXPECTED_HASH"
    assert head(client, "v1") == h1
    moved = ok(client.put(f"{API}/trees/v1@{h1}", params={"type": "tag"}, json=target))
    assert moved == {"reference": {"type": "TAG", "name": "v1", "hash": h2}}
    wrong_type = client.put(f"{API}/trees/v1@{h2}", params={"type": "branch"}, json=target)
    error(wrong_type, 400, "BAD_REQUEST")
    detached = client.put(f"{API}/trees/v1@{h2}", json={"type": "DETACHED", "hash": h1})
    assert ok(detached)["reference"]["hash"] == h1


def test_delete_needs_the_expected_hash_and_spares_the_default_branch(client: ApiClient) -> None:
    with_namespace(client)
    h = create_branch(client, "dev")
    error(client.delete(f"{API}/trees/dev"), 400, "BAD_REQUEST")
    error(client.delete(f"{API}/trees/dev@{NO_ANCESTOR}"), 409, "REFERENCE_CONFLICT")
    error(client.delete(f"{API}/trees/dev@{h}", params={"type": "tag"}), 400, "BAD_REQUEST")
    deleted = ok(client.delete(f"{API}/trees/dev@{h[:16]}", params={"type": "branch"}))
    assert deleted == {"reference": {"type": "BRANCH", "name": "dev", "hash": h}}
    error(client.get(f"{API}/trees/dev"), 404, "REFERENCE_NOT_FOUND")
    main = head(client)
    assert (
        "Default branch 'main' cannot be deleted"
        in error(client.delete(f"{API}/trees/main@{main}"), 400, "BAD_REQUEST")["message"]
    )
    error(client.delete(f"{API}/trees/nope@{main}"), 404, "REFERENCE_NOT_FOUND")


def test_names_with_slashes_work_in_paths(client: ApiClient) -> None:
    with_namespace(client)
    body = {"name": "main", "hash": head(client)}
    created = client.post(f"{API}/trees", params={"name": "feature/x", "type": "branch"}, json=body)
    h = ok(created)["reference"]["hash"]
    assert ok(client.get(f"{API}/trees/feature/x@"))["reference"]["name"] == "feature/x"
    assert ok(client.get(f"{API}/trees/feature%2Fx"))["reference"]["name"] == "feature/x"
    assert ok(client.get(f"{API}/trees/feature%2Fx%40"))["reference"]["name"] == "feature/x"
    put_table(client, 1, "bronze", "orders", branch="feature/x")
    assert ok(client.get(f"{API}/trees/feature%2Fx/entries"))["entries"]
    diff = ok(client.get(f"{API}/trees/main/diff/feature%2Fx"))
    assert [d["key"]["elements"] for d in diff["diffs"]] == [["bronze", "orders"]]
    assert ok(client.get(f"{API}/trees/feature/x@/diff/main"))["diffs"]
    assert ok(client.get(f"{API}/trees/feature/x@{h}/entries"))["effectiveReference"]["hash"] == h
    unrouted = client.get(f"{API}/trees/feature/x")
    assert "followed by '@'" in error(unrouted, 404, "UNKNOWN")["message"]
