"""The VersionStore contract (DESIGN §3), run against every backend.

Each test reads as one rule of the contract.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from lakehouse.catalog.model import (
    NO_ANCESTOR,
    Branch,
    CommitConsistency,
    CommitMeta,
    ConflictType,
    ContentKey,
    Delete,
    IcebergTable,
    MergeBehavior,
    Namespace,
    Put,
    ReferenceType,
    RepositoryConfig,
    ResolvedContent,
    Tag,
    Unchanged,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import (
    CommitConflictError,
    ContentNotFoundError,
    InvalidInputError,
    MergeConflictError,
    ReadOnlyReferenceError,
    ReferenceAlreadyExistsError,
    ReferenceConflictError,
    ReferenceNotFoundError,
)

NS = ContentKey.of("bronze")
T1 = ContentKey.of("bronze", "orders")
T2 = ContentKey.of("bronze", "customers")
T3 = ContentKey.of("bronze", "nation")


def table(n: int, content_id: str | None = None) -> IcebergTable:
    return IcebergTable(
        f"file:///wh/iceberg-metadata/v{n}.metadata.json", snapshot_id=n, id=content_id
    )


def with_namespace(store: VersionStore, branch: str = "main") -> str:
    return store.commit(branch, [Put(NS, Namespace(NS.elements))], "create namespace").hash


def put_table(store: VersionStore, key: ContentKey, n: int, branch: str = "main") -> str:
    existing = store.get_contents(branch, [key]).get(key)
    content = table(n, existing.id if existing else None)
    return store.commit(branch, [Put(key, content)], f"put {key} v{n}").hash


def head(store: VersionStore, name: str = "main") -> str:
    return store.get_reference(name).hash


def conflict_types(exc: pytest.ExceptionInfo[CommitConflictError]) -> dict[str, ConflictType]:
    return {str(c.key): c.type for c in exc.value.conflicts}


# -- references ------------------------------------------------------------------------


def test_main_exists_from_the_start_at_the_empty_catalog(store: VersionStore) -> None:
    assert store.list_references() == [Branch("main", NO_ANCESTOR)]
    assert store.entries("main") == []


def test_branches_and_tags_are_created_from_a_ref_or_a_hash(store: VersionStore) -> None:
    h1 = with_namespace(store)
    put_table(store, T1, 1)
    dev = store.create_reference("dev", ReferenceType.BRANCH, "main")
    old = store.create_reference("old", ReferenceType.BRANCH, f"main@{h1}")
    tag = store.create_reference("v1", ReferenceType.TAG, "dev")
    assert dev == Branch("dev", head(store))
    assert old == Branch("old", h1)
    assert tag == Tag("v1", head(store))
    assert [r.name for r in store.list_references()] == ["dev", "main", "old", "v1"]


def test_a_reference_name_can_only_be_used_once(store: VersionStore) -> None:
    store.create_reference("dev", ReferenceType.BRANCH)
    with pytest.raises(ReferenceAlreadyExistsError, match="dev"):
        store.create_reference("dev", ReferenceType.TAG)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1dev",
        "-dev",
        "a..b",
        "has space",
        "dev/",
        "x;drop",
        "dév",
        "HEAD",
        "DETACHED",
        "deadbeef",
    ],
)
def test_invalid_reference_names_are_refused(store: VersionStore, name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid reference name"):
        store.create_reference(name, ReferenceType.BRANCH)
    assert [r.name for r in store.list_references()] == ["main"]


def test_feature_branch_names_with_slashes_are_valid(store: VersionStore) -> None:
    assert store.create_reference("feature/foo", ReferenceType.BRANCH, "main").name == "feature/foo"


def test_unknown_references_and_commits_are_not_found(store: VersionStore) -> None:
    with pytest.raises(ReferenceNotFoundError, match="nope"):
        store.get_reference("nope")
    with pytest.raises(ReferenceNotFoundError):
        store.resolve("@" + "ab" * 32)
    with pytest.raises(InvalidInputError, match="hash"):
        store.resolve("main@xyz")


def test_assign_moves_a_reference_only_from_the_expected_hash(store: VersionStore) -> None:
    h1 = with_namespace(store)
    h2 = put_table(store, T1, 1)
    store.create_reference("v1", ReferenceType.TAG, f"main@{h1}")
    with pytest.raises(ReferenceConflictError):
        store.assign_reference("v1", h2, "main")
    assert store.get_reference("v1").hash == h1
    assert store.assign_reference("v1", h1, "main") == Tag("v1", h2)


def test_delete_needs_the_expected_hash_and_spares_the_default_branch(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 1, branch="dev")
    with pytest.raises(ReferenceConflictError):
        store.delete_reference("dev", NO_ANCESTOR)
    store.delete_reference("dev", head(store, "dev"))
    assert [r.name for r in store.list_references()] == ["main"]
    with pytest.raises(InvalidInputError, match="default branch"):
        store.delete_reference("main")


def test_a_tag_is_not_a_write_target(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("v1", ReferenceType.TAG)
    with pytest.raises(ReadOnlyReferenceError, match="v1"):
        store.commit("v1", [Put(T1, table(1))], "nope")
    with pytest.raises(ReadOnlyReferenceError):
        store.merge("main", "v1")
    with pytest.raises(ReadOnlyReferenceError):
        store.writable_branch(f"@{head(store)}")


# -- commits ---------------------------------------------------------------------------


def test_a_commit_assigns_content_ids_and_records_its_metadata(store: VersionStore) -> None:
    with_namespace(store)
    meta = CommitMeta(message="load orders", author="ana", properties={"job": "ingest"})
    result = store.commit("main", [Put(T1, table(1))], meta)
    content = store.get_content("main", T1)
    assert content.id == result.added_contents[T1]
    assert content == table(1, content.id)
    logged = store.commit_meta(result.hash)
    assert (logged.message, logged.author, dict(logged.properties)) == (
        "load orders",
        "ana",
        {"job": "ingest"},
    )
    assert logged.parent_hashes and logged.commit_time is not None


def test_sign_offs_are_recorded_on_commits_and_merges(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    signed = CommitMeta(message="load", author="ana", signed_off_by=("bo", "cy"))
    landed = store.commit("dev", [Put(T1, table(1))], signed).hash
    assert store.commit_meta(landed).signed_off_by == ("bo", "cy")
    merge_meta = CommitMeta(message="release", signed_off_by=("dee",), properties={"k": "v"})
    merged = store.merge("dev", "main", meta=merge_meta).resultant_target_hash
    logged = store.commit_meta(merged)
    assert (logged.signed_off_by, dict(logged.properties)) == (("dee",), {"k": "v"})
    assert store.commit_meta(put_table(store, T2, 1, branch="dev")).signed_off_by == ()


def test_an_update_must_carry_the_existing_content_id(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    with pytest.raises(CommitConflictError) as no_id:
        store.commit("main", [Put(T1, table(2))], "no id")
    assert conflict_types(no_id) == {"bronze.orders": ConflictType.KEY_EXISTS}
    with pytest.raises(CommitConflictError) as wrong_id:
        store.commit("main", [Put(T1, table(2, "some-other-id"))], "wrong id")
    assert conflict_types(wrong_id) == {"bronze.orders": ConflictType.CONTENT_ID_DIFFERS}
    assert store.get_content("main", T1).snapshot_id == 1  # type: ignore[union-attr]


def test_new_content_must_not_carry_an_id_except_in_a_rename(store: VersionStore) -> None:
    with_namespace(store)
    with pytest.raises(InvalidInputError, match="must not carry a content id"):
        store.commit("main", [Put(T1, table(1, "made-up"))], "bad")
    put_table(store, T1, 1)
    original = store.get_content("main", T1)
    store.commit("main", [Delete(T1), Put(T2, original)], "rename orders to customers")
    assert store.get_contents("main", [T1, T2]) == {T2: original}


def test_delete_then_put_replaces_content_with_a_new_id(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    old = store.get_content("main", T1)
    result = store.commit("main", [Delete(T1), Put(T1, table(2))], "replace orders")
    new = store.get_content("main", T1)
    assert new.id == result.added_contents[T1] != old.id
    assert new == table(2, new.id)


def test_deleting_a_missing_key_conflicts(store: VersionStore) -> None:
    with pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Delete(T1)], "nope")
    assert conflict_types(exc) == {"bronze.orders": ConflictType.KEY_DOES_NOT_EXIST}


def test_content_needs_its_namespace(store: VersionStore) -> None:
    with pytest.raises(CommitConflictError) as absent:
        store.commit("main", [Put(T1, table(1))], "no namespace")
    assert conflict_types(absent) == {"bronze": ConflictType.NAMESPACE_ABSENT}
    with_namespace(store)
    put_table(store, T1, 1)
    inside_table = ContentKey.of("bronze", "orders", "x")
    with pytest.raises(CommitConflictError) as not_ns:
        store.commit("main", [Put(inside_table, table(2))], "table in a table")
    assert conflict_types(not_ns) == {"bronze.orders": ConflictType.NOT_A_NAMESPACE}
    deep = ContentKey.of("a", "b", "t")
    with pytest.raises(CommitConflictError) as ancestors:
        store.commit("main", [Put(deep, table(2))], "two missing levels")
    assert conflict_types(ancestors) == {
        "a": ConflictType.NAMESPACE_ABSENT,
        "a.b": ConflictType.NAMESPACE_ABSENT,
    }
    # a namespace and its content may arrive in one commit, in any order
    silver = ContentKey.of("silver")
    store.commit(
        "main",
        [Put(ContentKey.of("silver", "t"), table(3)), Put(silver, Namespace(("silver",)))],
        "both",
    )
    assert set(store.get_contents("main", [silver, ContentKey.of("silver", "t")])) == {
        silver,
        ContentKey.of("silver", "t"),
    }


def test_a_namespace_with_content_cannot_be_deleted(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    with pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Delete(NS)], "drop namespace")
    assert conflict_types(exc) == {"bronze": ConflictType.NAMESPACE_NOT_EMPTY}
    store.commit("main", [Delete(T1), Delete(NS)], "drop both")
    assert store.entries("main") == []


def test_malformed_commits_are_refused_and_change_nothing(store: VersionStore) -> None:
    h = with_namespace(store)
    with pytest.raises(InvalidInputError, match="twice"):
        store.commit("main", [Put(T1, table(1)), Delete(T1)], "dup")
    with pytest.raises(InvalidInputError, match="twice"):
        store.commit("main", [Put(T1, table(1)), Put(T1, table(2))], "dup")
    with pytest.raises(InvalidInputError, match="at least one"):
        store.commit("main", [], "empty")
    with pytest.raises(InvalidInputError):
        ContentKey.of("bronze", "")
    with pytest.raises(ReferenceNotFoundError):
        store.commit("nope", [Put(T1, table(1))], "unknown branch")
    assert head(store) == h


def test_a_stale_expected_hash_is_fine_when_other_keys_changed(store: VersionStore) -> None:
    base = with_namespace(store)
    put_table(store, T1, 1)
    result = store.commit("main", [Put(T2, table(2))], "independent", expected_hash=base)
    assert set(store.get_contents("main", [T1, T2])) == {T1, T2}
    assert store.commit_meta(result.hash).parent_hashes[0] != base  # rebased on the new head


def test_a_stale_expected_hash_conflicts_on_a_changed_key(store: VersionStore) -> None:
    with_namespace(store)
    before = put_table(store, T1, 1)
    content_id = store.get_content("main", T1).id
    put_table(store, T1, 2)
    after = head(store)
    with pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Put(T1, table(3, content_id))], "stale", expected_hash=before)
    assert conflict_types(exc) == {"bronze.orders": ConflictType.VALUE_DIFFERS}
    with pytest.raises(CommitConflictError) as unchanged:
        store.commit("main", [Unchanged(T1), Put(T2, table(4))], "guarded", expected_hash=before)
    assert conflict_types(unchanged) == {"bronze.orders": ConflictType.VALUE_DIFFERS}
    assert head(store) == after


def test_an_expected_hash_from_another_branch_is_unexpected(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    other = put_table(store, T1, 1, branch="dev")
    with pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Put(T2, table(2))], "x", expected_hash=other)
    assert [c.type for c in exc.value.conflicts] == [ConflictType.UNEXPECTED_HASH]


# -- reading: contents, time travel, log, diff -----------------------------------------


def test_contents_at_any_point_of_history(store: VersionStore) -> None:
    with_namespace(store)
    h1 = put_table(store, T1, 1)
    time.sleep(0.01)
    between = datetime.now(tz=UTC)
    time.sleep(0.01)
    h2 = put_table(store, T1, 2)
    h3 = put_table(store, T1, 3)

    def snap(ref: str) -> int:
        return store.get_content(ref, T1).snapshot_id  # type: ignore[union-attr]

    assert snap("main") == 3
    assert snap(f"main@{h2}") == 2
    assert snap(f"@{h1}") == 1
    assert snap("main~2") == 1
    assert snap(f"@{h3}~1") == 2
    assert snap(f"main*{between.isoformat()}") == 1
    assert snap(f"main*{int(between.timestamp() * 1000)}") == 1
    assert store.resolve("main*2000-01-01T00:00:00Z").hash == NO_ANCESTOR
    with pytest.raises(ContentNotFoundError):
        store.get_content("main~3", T1)
    with pytest.raises(ReferenceNotFoundError):
        store.resolve("main~10")


def test_entries_list_keys_with_types_and_can_filter_by_namespace(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.commit("main", [Put(ContentKey.of("silver"), Namespace(("silver",)))], "ns")
    store.commit("main", [Put(ContentKey.of("silver", "x"), table(2))], "x")
    keys = [str(e.key) for e in store.entries("main")]
    assert keys == ["bronze", "bronze.orders", "silver", "silver.x"]
    inside = store.entries("main", prefix=NS, with_content=True)
    assert [str(e.key) for e in inside] == ["bronze.orders"]
    assert inside[0].content is not None and inside[0].content.id == inside[0].content_id


def test_log_pages_through_history_newest_first(store: VersionStore) -> None:
    with_namespace(store)
    for i in range(24):
        put_table(store, T1, i)
    pages = []
    token = None
    while True:
        page = store.log("main", limit=10, page_token=token)
        pages.append([e.meta.message for e in page.entries])
        token = page.next_token
        if token is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert pages[0][0] == "put bronze.orders v23" and pages[-1][-1] == "create namespace"
    full = list(store.iter_log("main", fetch_operations=True))
    assert len(full) == 25
    assert full[0].operations is not None and isinstance(full[0].operations[0], Put)


def test_diff_shows_added_changed_and_removed_keys(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    put_table(store, T2, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    store.commit("dev", [Delete(T2)], "drop customers")
    put_table(store, T3, 1, branch="dev")
    diff = {str(d.key): (d.from_content, d.to_content) for d in store.diff("main", "dev")}
    assert set(diff) == {"bronze.orders", "bronze.customers", "bronze.nation"}
    assert diff["bronze.customers"][1] is None and diff["bronze.nation"][0] is None
    assert store.diff("dev", "dev") == []


# -- merge ------------------------------------------------------------------------------


def test_merge_brings_source_changes_as_one_commit_with_two_parents(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    put_table(store, T2, 1, branch="dev")
    before = head(store)
    result = store.merge("dev", "main")
    assert result.was_applied and result.was_successful
    meta = store.commit_meta(head(store))
    assert meta.parent_hashes == (before, head(store, "dev"))
    assert store.diff("main", "dev") == []
    assert store.resolve("main^2").hash == head(store, "dev")


def test_nothing_to_merge_makes_no_commit(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    before = head(store)
    result = store.merge("dev", "main")
    assert not result.was_applied and result.was_successful
    assert head(store) == before


def test_a_key_changed_on_both_sides_is_a_conflict_and_nothing_lands(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    put_table(store, T2, 2, branch="dev")
    put_table(store, T1, 3)
    before = head(store)
    with pytest.raises(MergeConflictError, match=r"bronze\.orders") as exc:
        store.merge("dev", "main")
    assert [(str(c.key), c.type) for c in exc.value.conflicts] == [
        ("bronze.orders", ConflictType.VALUE_DIFFERS)
    ]
    assert head(store) == before
    result = store.merge("dev", "main", raise_on_conflict=False)
    assert not result.was_successful and not result.was_applied
    assert [str(c.key) for c in result.conflicts] == ["bronze.orders"]


def test_identical_changes_on_both_sides_still_conflict(store: VersionStore) -> None:
    """As in Nessie: a key changed on both sides is a conflict, whatever the values."""
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    put_table(store, T1, 2)
    with pytest.raises(MergeConflictError) as exc:
        store.merge("dev", "main")
    assert [(str(c.key), c.type) for c in exc.value.conflicts] == [
        ("bronze.orders", ConflictType.VALUE_DIFFERS)
    ]
    assert store.merge("dev", "main", default_behavior=MergeBehavior.FORCE).was_successful


def test_delete_versus_update_is_a_conflict(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    store.commit("dev", [Delete(T1)], "drop on dev")
    put_table(store, T1, 2)
    with pytest.raises(MergeConflictError) as exc:
        store.merge("dev", "main")
    assert [str(c.key) for c in exc.value.conflicts] == ["bronze.orders"]
    put_table(store, T2, 1)
    store.create_reference("dev2", ReferenceType.BRANCH)
    put_table(store, T2, 2, branch="dev2")
    store.commit("main", [Delete(T2)], "drop on main")
    with pytest.raises(MergeConflictError):
        store.merge("dev2", "main")


def test_merge_behaviours_force_and_drop_resolve_conflicts(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    put_table(store, T2, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    put_table(store, T2, 2, branch="dev")
    put_table(store, T1, 3)
    put_table(store, T2, 3)
    dry = store.merge("dev", "main", default_behavior=MergeBehavior.FORCE, dry_run=True)
    assert dry.was_successful and not dry.was_applied
    store.merge(
        "dev", "main", default_behavior=MergeBehavior.FORCE, key_behaviors={T2: MergeBehavior.DROP}
    )
    got = store.get_contents("main", [T1, T2])
    assert (got[T1].snapshot_id, got[T2].snapshot_id) == (2, 3)  # type: ignore[union-attr]


def test_a_dry_run_reports_conflicts_and_changes_nothing(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    before = head(store)
    ok = store.merge("dev", "main", dry_run=True)
    assert ok.was_successful and not ok.was_applied and head(store) == before
    put_table(store, T1, 3)
    bad = store.merge("dev", "main", dry_run=True, raise_on_conflict=False)
    assert not bad.was_successful and [str(c.key) for c in bad.conflicts] == ["bronze.orders"]


def test_repeated_merges_bring_only_new_commits(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    store.merge("dev", "main")
    put_table(store, T1, 3)  # main moves on the key dev changed before
    put_table(store, T2, 1, branch="dev")
    result = store.merge("dev", "main")
    assert [str(d.key) for d in result.details] == ["bronze.customers"]
    assert store.get_content("main", T1).snapshot_id == 3  # type: ignore[union-attr]


def test_merging_the_same_branch_again_is_nothing_to_merge(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 1, branch="dev")  # dev is one commit ahead, main none
    assert store.merge("dev", "main").was_applied
    again = store.merge("dev", "main")
    assert not again.was_applied and again.was_successful
    assert again.common_ancestor == head(store, "dev")


def test_merge_into_a_moved_target_with_an_expected_hash(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    expected = head(store)
    put_table(store, T1, 1, branch="dev")
    put_table(store, T2, 1)  # main moved, on another key
    assert store.merge("dev", "main", expected_target_hash=expected).was_applied


def test_a_merge_into_a_deleted_namespace_conflicts(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 1, branch="dev")
    store.commit("main", [Delete(NS)], "drop namespace")
    with pytest.raises(MergeConflictError) as exc:
        store.merge("dev", "main")
    assert ConflictType.NAMESPACE_ABSENT in [c.type for c in exc.value.conflicts]


# -- transplant --------------------------------------------------------------------------


def test_transplant_cherry_picks_commits_in_order(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T3, 1, branch="dev")  # stays behind: not picked
    a = put_table(store, T1, 1, branch="dev")
    b = put_table(store, T2, 1, branch="dev")
    c = put_table(store, T1, 2, branch="dev")
    result = store.transplant([a, b, c], "main")
    assert result.was_applied and len(result.added_commits) == 3
    assert set(store.get_contents("main", [T1, T2, T3])) == {T1, T2}
    assert store.get_content("main", T1).snapshot_id == 2  # type: ignore[union-attr]
    assert [e.meta.message for e in store.log("main", limit=3).entries] == [
        "put bronze.orders v2",
        "put bronze.customers v1",
        "put bronze.orders v1",
    ]


# -- extensions over Nessie (docs/compatibility.md) -----------------------------------


def test_abbreviated_hashes_resolve(store: VersionStore, store_kind: str) -> None:
    if store_kind == "nessie":
        pytest.skip("extension: Nessie resolves full hashes only")
    first = with_namespace(store)
    put_table(store, T1, 1)
    assert store.resolve(f"@{first[:12]}").hash == first
    assert store.resolve(f"main@{first[:8]}").hash == first


def test_transplant_picks_any_commits_and_records_their_origin(
    store: VersionStore, store_kind: str
) -> None:
    if store_kind == "nessie":
        pytest.skip("extension: Nessie transplants contiguous runs only, without provenance")
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    a = put_table(store, T1, 1, branch="dev")
    put_table(store, T2, 1, branch="dev")
    c = put_table(store, T1, 2, branch="dev")
    result = store.transplant([a, c], "main")
    assert result.was_applied and len(result.added_commits) == 2
    assert set(store.get_contents("main", [T1, T2])) == {T1}
    assert store.commit_meta(head(store)).properties["transplanted-from"] == c


def test_transplant_onto_a_moved_target_with_an_expected_hash(store: VersionStore) -> None:
    """As a merge: a stale expected hash is fine unless the transplanted keys moved since."""
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    expected = head(store)
    pick = put_table(store, T1, 1, branch="dev")
    put_table(store, T2, 1)  # main moved, on another key
    moved = head(store)
    result = store.transplant([pick], "main", expected_target_hash=expected)
    assert result.was_applied and result.effective_target_hash == moved
    other = put_table(store, T3, 1, branch="dev")
    stale = head(store)
    put_table(store, T3, 2)  # main moved on the transplanted key
    with pytest.raises(MergeConflictError) as exc:
        store.transplant([other], "main", expected_target_hash=stale)
    assert str(T3) in [str(c.key) for c in exc.value.conflicts]


def test_transplant_conflicts_and_dry_run_change_nothing(store: VersionStore) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    pick = put_table(store, T1, 2, branch="dev")
    put_table(store, T1, 3)
    before = head(store)
    with pytest.raises(MergeConflictError):
        store.transplant([pick], "main")
    assert not store.transplant(
        [pick], "main", dry_run=True, raise_on_conflict=False
    ).was_successful
    assert head(store) == before


# -- reference history (reflog) and repository config ------------------------------------


def test_reference_history_records_every_head_change(store: VersionStore) -> None:
    start = with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    created = store.reference_history("dev")
    assert created.reference == Branch("dev", start)
    assert created.current.hash == start and created.previous == ()
    c1 = put_table(store, T1, 1, branch="dev")
    c2 = put_table(store, T1, 2, branch="dev")
    store.assign_reference("dev", c2, f"@{c1}")
    history = store.reference_history("dev")
    assert history.current.hash == c1
    assert [s.hash for s in history.previous] == [c2, c1, start]
    assert {s.consistency for s in (history.current, *history.previous)} == {
        CommitConsistency.COMMIT_CONSISTENT
    }
    assert history.current.meta is not None and history.current.meta.message == f"put {T1} v1"
    assert history.commit_log is CommitConsistency.NOT_CHECKED
    assert [s.hash for s in store.reference_history("dev", 1).previous] == [c2]
    scanned = store.reference_history("dev", scan_commits=10)
    assert scanned.commit_log is CommitConsistency.COMMIT_CONSISTENT

    merged = store.merge("dev", "main").resultant_target_hash
    main = store.reference_history("main")
    assert main.current.hash == merged and main.previous[0].hash == start


def test_reference_history_is_bounded_and_ends_with_the_reference(store: VersionStore) -> None:
    with_namespace(store)
    store.create_reference("dev", ReferenceType.BRANCH)
    heads = [put_table(store, T1, n, branch="dev") for n in range(1, 26)]
    history = store.reference_history("dev")
    assert history.current.hash == heads[-1]
    assert [s.hash for s in history.previous] == heads[-2::-1][:20]  # 20 kept, as Nessie
    store.delete_reference("dev", heads[-1])
    with pytest.raises(ReferenceNotFoundError):
        store.reference_history("dev")
    store.create_reference("dev", ReferenceType.BRANCH, f"main@{heads[0]}")
    assert store.reference_history("dev").previous == ()  # a new reference, a new log


def test_repository_config_is_stored_by_type(store: VersionStore) -> None:
    # the real Nessie server is shared and keeps its repository config between tests
    before = store.repository_config(["GARBAGE_COLLECTOR"])
    first = RepositoryConfig(
        "GARBAGE_COLLECTOR", {"defaultCutoffPolicy": "P30D", "newFilesGracePeriod": "PT3H"}
    )
    second = RepositoryConfig(
        "GARBAGE_COLLECTOR", {"defaultCutoffPolicy": "P10D", "expectedFileCountPerContent": 123}
    )
    assert store.update_repository_config(first) == (before[0] if before else None)
    assert store.repository_config(["GARBAGE_COLLECTOR"]) == [first]
    assert store.update_repository_config(second) == first
    assert store.repository_config(["GARBAGE_COLLECTOR"]) == [second]
    assert store.repository_config([]) == []


def test_repository_config_refuses_unknown_types_and_bad_policies(store: VersionStore) -> None:
    with pytest.raises(InvalidInputError, match="FOO_BAR"):
        RepositoryConfig("FOO_BAR", {"foo": "bar"})
    with pytest.raises(InvalidInputError, match="FOO_BAR"):
        store.repository_config(["FOO_BAR"])
    with pytest.raises(InvalidInputError, match="default-cutoff-value"):
        RepositoryConfig("GARBAGE_COLLECTOR", {"defaultCutoffPolicy": "foo"})


# -- commit lock (advisory) --------------------------------------------------------------------


def test_the_commit_lock_of_a_key_has_one_holder_and_a_bounded_wait(store: VersionStore) -> None:
    from lakehouse.catalog.sql_store import SqlStore

    orders, other = ContentKey.of("bronze", "orders"), ContentKey.of("bronze", "other")
    if not isinstance(store, SqlStore):  # remote servers have no such lock: say so at once
        with store.commit_lock("main", [orders], timeout=5) as held:
            assert held is False
        return
    with store.commit_lock("main", [orders], timeout=1) as held:
        assert held is True
        started = time.monotonic()
        with store.commit_lock("main", [other, orders], timeout=0.1) as second:
            assert second is False  # gave up after the timeout, did not block forever
        assert 0.1 <= time.monotonic() - started < 2
        with store.commit_lock("main", [other], timeout=0.1) as elsewhere:
            assert elsewhere is True  # other keys are not blocked
        with store.commit_lock("dev", [orders], timeout=0.1) as on_dev:
            assert on_dev is True  # nor the same key on another branch
    with store.commit_lock("main", [orders, other], timeout=0.1) as after:
        assert after is True  # released at the end of the block


def test_an_in_memory_sqlite_catalog_locks_within_the_process() -> None:
    from lakehouse.catalog.sql_store import SqlStore

    store = SqlStore("sqlite:///:memory:")
    key = ContentKey.of("bronze", "orders")
    try:
        with store.commit_lock("main", [key], timeout=1) as held:
            assert held is True
            with store.commit_lock("main", [key], timeout=0.05) as second:
                assert second is False
        with store.commit_lock("main", [key], timeout=0.05) as again:
            assert again is True
    finally:
        store.close()


def test_a_resolved_key_lands_in_the_merge_commit_when_the_target_is_as_expected(
    store: VersionStore,
) -> None:
    with_namespace(store)
    put_table(store, T1, 1)
    store.create_reference("dev", ReferenceType.BRANCH)
    put_table(store, T1, 2, branch="dev")
    put_table(store, T1, 3)
    target_now = store.get_content("main", T1)
    merged = IcebergTable("s3://b/merged.json", 4, id=target_now.id)
    stale = store.merge(
        "dev",
        "main",
        resolved={T1: ResolvedContent(store.get_content("dev", T1), merged)},
        raise_on_conflict=False,
    )
    assert not stale.was_successful and [str(c.key) for c in stale.conflicts] == ["bronze.orders"]
    result = store.merge("dev", "main", resolved={T1: ResolvedContent(target_now, merged)})
    assert result.was_applied
    assert store.get_content("main", T1).snapshot_id == 4  # type: ignore[union-attr]
    assert len(store.log("main", limit=1).entries[0].meta.parent_hashes) == 2
