"""Merge and transplant over Nessie's API v2, with Nessie's MergeResponse."""

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
    key,
    ok,
    put_table,
    with_namespace,
)


def merge(client: ApiClient, source: str = "dev", into: str = "main", **body: Any) -> Any:
    """Merge ``source`` at its current head (Nessie requires the source hash)."""
    payload = {"fromRefName": source, **body}
    if "fromHash" not in payload:
        payload["fromHash"] = head(client, source)
    return client.post(f"{API}/trees/{into}@{head(client, into)}/history/merge", json=payload)


def transplant(client: ApiClient, hashes: list[str], into: str = "main", **body: Any) -> Any:
    payload = {"fromRefName": "dev", "hashesToTransplant": hashes, **body}
    return client.post(f"{API}/trees/{into}@{head(client, into)}/history/transplant", json=payload)


def snapshot(client: ApiClient, ref: str, path: str) -> int:
    value: int = ok(client.get(f"{API}/trees/{ref}/contents/{path}"))["content"]["snapshotId"]
    return value


def diverged(client: ApiClient) -> None:
    """main and dev both changed bronze.orders; dev also added bronze.customers."""
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    create_branch(client, "dev")
    put_table(client, 2, "bronze", "orders", branch="dev")
    put_table(client, 1, "bronze", "customers", branch="dev")
    put_table(client, 3, "bronze", "orders")


def test_a_merge_is_one_commit_with_two_parents(client: ApiClient) -> None:
    with_namespace(client)
    base = put_table(client, 1, "bronze", "orders")
    create_branch(client, "dev")
    put_table(client, 2, "bronze", "orders", branch="dev")
    dev_head = put_table(client, 1, "bronze", "customers", branch="dev")
    before = head(client)
    result = ok(merge(client, commitMeta={"message": "merge dev", "authors": ["ana"]}))
    assert result["wasApplied"] is True and result["wasSuccessful"] is True
    assert result["targetBranch"] == "main"
    assert result["effectiveTargetHash"] == before and result["expectedHash"] == before
    assert result["commonAncestor"] == base
    assert result["resultantTargetHash"] == head(client) != before
    assert sorted(d["key"]["elements"][-1] for d in result["details"]) == ["customers", "orders"]
    assert all(d["mergeBehavior"] == "NORMAL" and "conflict" not in d for d in result["details"])
    meta = ok(client.get(f"{API}/trees/main/history"))["logEntries"][0]["commitMeta"]
    assert meta["parentCommitHashes"] == [before, dev_head]
    assert meta["message"] == "merge dev" and meta["authors"] == ["ana"]
    assert ok(client.get(f"{API}/trees/main/diff/dev"))["diffs"] == []
    assert snapshot(client, "main^2", "bronze.orders") == 2


def test_nothing_to_merge_is_successful_without_a_commit(client: ApiClient) -> None:
    with_namespace(client)
    create_branch(client, "dev")
    before = head(client)
    result = ok(merge(client))
    assert result["wasSuccessful"] and not result["wasApplied"]
    assert head(client) == before


def test_a_conflicting_merge_is_409_naming_the_key(client: ApiClient) -> None:
    diverged(client)
    before = head(client)
    body = error(merge(client), 409, "REFERENCE_CONFLICT")
    [conflict] = body["errorDetails"]["conflicts"]
    assert conflict["key"] == key("bronze", "orders")
    assert conflict["conflictType"] == "VALUE_DIFFERS"
    assert head(client) == before


def test_return_conflict_as_result_and_dry_run(client: ApiClient) -> None:
    diverged(client)
    before = head(client)
    result = ok(merge(client, returnConflictAsResult=True))
    assert result["wasSuccessful"] is False and result["wasApplied"] is False
    [conflicting] = [d for d in result["details"] if "conflict" in d]
    assert conflicting["key"] == key("bronze", "orders")
    assert conflicting["conflict"]["conflictType"] == "VALUE_DIFFERS"
    dry = ok(merge(client, dryRun=True, defaultKeyMergeMode="FORCE"))
    assert dry["wasSuccessful"] is True and dry["wasApplied"] is False
    assert head(client) == before


def test_key_merge_modes_resolve_conflicts(client: ApiClient) -> None:
    diverged(client)
    result = ok(
        merge(
            client,
            defaultKeyMergeMode="NORMAL",
            keyMergeModes=[{"key": key("bronze", "orders"), "mergeBehavior": "DROP"}],
            message="keep ours",
        )
    )
    assert result["wasApplied"]
    modes = {d["key"]["elements"][-1]: d["mergeBehavior"] for d in result["details"]}
    assert modes["orders"] == "DROP"
    assert snapshot(client, "main", "bronze.orders") == 3
    assert snapshot(client, "main", "bronze.customers") == 1
    assert ok(client.get(f"{API}/trees/main/history"))["logEntries"][0]["commitMeta"][
        "message"
    ] == ("keep ours")


def test_merge_from_a_hash_and_into_a_moved_target(client: ApiClient) -> None:
    with_namespace(client)
    create_branch(client, "dev")
    expected = head(client)
    first = put_table(client, 1, "bronze", "orders", branch="dev")
    put_table(client, 1, "bronze", "customers", branch="dev")
    put_table(client, 1, "bronze", "nation")  # main moved, on another key
    url = f"{API}/trees/main@{expected}/history/merge"
    result = ok(client.post(url, json={"fromRefName": "dev", "fromHash": first}))
    assert result["wasApplied"] and result["expectedHash"] == expected
    keys = {
        e["name"]["elements"][-1] for e in ok(client.get(f"{API}/trees/main/entries"))["entries"]
    }
    assert keys == {"bronze", "orders", "nation"}


def test_bad_merge_requests(client: ApiClient) -> None:
    with_namespace(client)
    create_branch(client, "dev")
    create_branch(client, "v1", kind="tag")
    h = head(client)
    error(
        client.post(f"{API}/trees/main/history/merge", json={"fromRefName": "dev"}),
        400,
        "BAD_REQUEST",
    )
    error(
        client.post(f"{API}/trees/v1@{h}/history/merge", json={"fromRefName": "dev"}),
        400,
        "BAD_REQUEST",
    )
    error(client.post(f"{API}/trees/main@{h}/history/merge", json={}), 400, "BAD_REQUEST")
    error(merge(client, "nope", fromHash=h), 404, "REFERENCE_NOT_FOUND")
    # as Nessie: the source needs a hash with an absolute part, so that the result does
    # not depend on when the request arrives
    url = f"{API}/trees/main@{h}/history/merge"
    no_hash = error(client.post(url, json={"fromRefName": "dev"}), 400, "BAD_REQUEST")
    assert no_hash["message"] == "Source hash must be provided."
    relative = error(
        client.post(url, json={"fromRefName": "dev", "fromHash": "~1"}), 400, "BAD_REQUEST"
    )
    assert relative["message"] == "Source hash must contain a starting commit ID."
    error(merge(client, fromHash="xyz"), 400, "BAD_REQUEST")
    error(merge(client, defaultKeyMergeMode="SOMETIMES"), 400, "BAD_REQUEST")
    error(merge(client, dryRun="maybe"), 400, "BAD_REQUEST")
    unsupported = merge(
        client,
        keyMergeModes=[
            {"key": key("a"), "mergeBehavior": "FORCE", "resolvedContent": {"type": "NAMESPACE"}}
        ],
    )
    error(unsupported, 400, "BAD_REQUEST")


def test_transplant_cherry_picks_in_order(client: ApiClient) -> None:
    with_namespace(client)
    create_branch(client, "dev")
    a = put_table(client, 1, "bronze", "orders", branch="dev")
    put_table(client, 1, "bronze", "customers", branch="dev")
    c = put_table(client, 2, "bronze", "orders", branch="dev")
    before = head(client)
    result = ok(transplant(client, [a, c[:16]]))
    assert result["wasApplied"] and result["wasSuccessful"]
    assert result["commonAncestor"] is None and result["effectiveTargetHash"] == before
    assert result["resultantTargetHash"] == head(client)
    log = ok(client.get(f"{API}/trees/main/history", params={"max-records": 3}))["logEntries"]
    assert [e["parentCommitHash"] for e in log[:2]] == [log[1]["commitMeta"]["hash"], before]
    assert log[0]["commitMeta"]["allProperties"]["transplanted-from"] == [c]
    keys = {
        e["name"]["elements"][-1] for e in ok(client.get(f"{API}/trees/main/entries"))["entries"]
    }
    assert keys == {"bronze", "orders"}
    assert snapshot(client, "main", "bronze.orders") == 2


def test_transplant_conflicts_dry_run_and_bad_input(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")
    create_branch(client, "dev")
    pick = put_table(client, 2, "bronze", "orders", branch="dev")
    put_table(client, 3, "bronze", "orders")
    before = head(client)
    conflict = error(transplant(client, [pick]), 409, "REFERENCE_CONFLICT")
    assert conflict["errorDetails"]["conflicts"][0]["key"] == key("bronze", "orders")
    as_result = ok(transplant(client, [pick], returnConflictAsResult=True))
    assert as_result["wasSuccessful"] is False and as_result["wasApplied"] is False
    dry = ok(transplant(client, [pick], dryRun=True, defaultKeyMergeMode="FORCE"))
    assert dry["wasSuccessful"] and not dry["wasApplied"]
    assert head(client) == before
    error(transplant(client, []), 400, "BAD_REQUEST")
    error(transplant(client, ["~1"]), 400, "BAD_REQUEST")
    error(transplant(client, ["ab" * 32]), 404, "REFERENCE_NOT_FOUND")
    error(transplant(client, [pick], fromRefName="nope"), 404, "REFERENCE_NOT_FOUND")
    commit(client, [delete("bronze", "orders")], message="drop")
    assert head(client) != before


def test_nessie_client_flag_spellings_are_honoured(client: ApiClient) -> None:
    """Nessie 0.99's Java clients send isDryRun/isReturnConflictAsResult (nessie#12130)."""
    diverged(client)
    before = head(client)
    dry = ok(merge(client, isDryRun=True, defaultKeyMergeMode="FORCE"))
    assert dry["wasApplied"] is False and head(client) == before
    # when both spellings are present, a dry run is never turned into a real merge
    both = ok(merge(client, dryRun=False, isDryRun=True, defaultKeyMergeMode="FORCE"))
    assert both["wasApplied"] is False and head(client) == before
    conflict = ok(merge(client, isReturnConflictAsResult=True))
    assert conflict["wasSuccessful"] is False and head(client) == before
