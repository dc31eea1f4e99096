"""Git-like recovery (reset, revert, prune, merge strategies), run against every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.catalog.model import (
    CommitMeta,
    ContentKey,
    IcebergTable,
    Namespace,
    Put,
    ReferenceType,
    Unchanged,
)
from lakehouse.catalog.recovery import (
    MergeStrategy,
    parse_age,
    prune_branches,
    reset_branch,
    revert,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import (
    CommitConflictError,
    InvalidInputError,
    MergeConflictError,
    ReadOnlyReferenceError,
    ReferenceConflictError,
)

NS = ContentKey.of("bronze")
T1 = ContentKey.of("bronze", "orders")
T2 = ContentKey.of("bronze", "customers")


def table(n: int, content_id: str | None = None) -> IcebergTable:
    return IcebergTable(f"file:///wh/m/v{n}.metadata.json", snapshot_id=n, id=content_id)


def put(store: VersionStore, key: ContentKey, n: int, branch: str = "main") -> str:
    existing = store.get_contents(branch, [key]).get(key)
    content = table(n, existing.id if existing else None)
    return store.commit(branch, [Put(key, content)], f"put {key} v{n}").hash


def snapshot(store: VersionStore, key: ContentKey, ref: str = "main") -> int | None:
    found = store.get_contents(ref, [key]).get(key)
    return found.snapshot_id if isinstance(found, IcebergTable) else None


@pytest.fixture
def seeded(store: VersionStore) -> VersionStore:
    store.commit("main", [Put(NS, Namespace(NS.elements))], "namespace")
    put(store, T1, 1)
    return store


# -- reset -------------------------------------------------------------------------------


def test_reset_points_a_branch_at_an_older_commit(seeded: VersionStore) -> None:
    old = seeded.get_reference("main").hash
    put(seeded, T1, 2)
    reset = reset_branch(seeded, "main", "main~1")
    assert reset.hash == old == seeded.get_reference("main").hash
    assert snapshot(seeded, T1) == 1


def test_reset_refuses_a_tag_as_the_branch_to_move(seeded: VersionStore) -> None:
    seeded.create_reference("v1", ReferenceType.TAG)
    put(seeded, T1, 2)
    with pytest.raises(ReadOnlyReferenceError, match="cannot write to tag 'v1'"):
        reset_branch(seeded, "v1", "main")
    assert seeded.get_reference("v1").hash != seeded.get_reference("main").hash


def test_reset_to_a_tag_is_fine(seeded: VersionStore) -> None:
    tagged = seeded.create_reference("v1", ReferenceType.TAG).hash
    put(seeded, T1, 2)
    assert reset_branch(seeded, "main", "v1").hash == tagged


def test_reset_with_a_stale_expected_hash_changes_nothing(seeded: VersionStore) -> None:
    seen = seeded.get_reference("main").hash
    head = put(seeded, T1, 2)
    with pytest.raises(ReferenceConflictError):
        reset_branch(seeded, "main", "main~1", expected_hash=seen)
    assert seeded.get_reference("main").hash == head


# -- revert ------------------------------------------------------------------------------


def test_revert_undoes_one_commit_with_a_new_commit(seeded: VersionStore) -> None:
    bad = put(seeded, T1, 2)
    put(seeded, T2, 7)  # a later, unrelated commit stays
    result = revert(seeded, bad, "main")
    assert snapshot(seeded, T1) == 1 and snapshot(seeded, T2) == 7
    meta = seeded.commit_meta(result.hash)
    assert meta.parent_hashes[0] != bad and f"This reverts commit {bad}" in meta.message


def test_revert_of_a_create_deletes_and_of_a_delete_restores(seeded: VersionStore) -> None:
    created = put(seeded, T2, 5)
    revert(seeded, created, "main")
    assert snapshot(seeded, T2) is None
    restored = revert(seeded, seeded.get_reference("main").hash, "main")
    assert snapshot(seeded, T2) == 5 and restored.hash == seeded.get_reference("main").hash


def test_revert_reports_each_key_changed_again_and_commits_nothing(seeded: VersionStore) -> None:
    h = seeded.get_reference("main").hash
    existing = seeded.get_contents("main", [T1])[T1]
    bad = seeded.commit(
        "main", [Put(T1, table(2, existing.id)), Put(T2, table(3))], CommitMeta("two keys")
    ).hash
    put(seeded, T1, 4)
    head = seeded.get_reference("main").hash
    with pytest.raises(CommitConflictError, match=r"bronze\.orders") as caught:
        revert(seeded, bad, "main")
    assert [str(c.key) for c in caught.value.conflicts] == ["bronze.orders"]
    assert seeded.get_reference("main").hash == head != h


def test_revert_of_a_commit_without_content_changes_is_refused(seeded: VersionStore) -> None:
    marker = seeded.commit("main", [Unchanged(T1)], "a run record").hash
    with pytest.raises(InvalidInputError, match="changed no content"):
        revert(seeded, marker, "main")
    assert seeded.get_reference("main").hash == marker


def test_revert_writes_only_to_a_branch(seeded: VersionStore) -> None:
    bad = put(seeded, T1, 2)
    seeded.create_reference("v1", ReferenceType.TAG)
    with pytest.raises(ReadOnlyReferenceError, match="tag 'v1'"):
        revert(seeded, bad, "v1")


# -- merge strategies --------------------------------------------------------------------


def diverged(store: VersionStore) -> None:
    store.create_reference("dev", ReferenceType.BRANCH)
    put(store, T1, 2, "dev")
    put(store, T1, 3, "main")


@pytest.mark.parametrize(
    ("strategy", "winner"), [(MergeStrategy.SOURCE_WINS, 2), (MergeStrategy.TARGET_WINS, 3)]
)
def test_a_strategy_resolves_every_conflicting_key(
    seeded: VersionStore, strategy: MergeStrategy, winner: int
) -> None:
    diverged(seeded)
    seeded.merge("dev", "main", default_behavior=strategy.behavior)
    assert snapshot(seeded, T1) == winner


def test_the_normal_strategy_conflicts(seeded: VersionStore) -> None:
    diverged(seeded)
    with pytest.raises(MergeConflictError):
        seeded.merge("dev", "main", default_behavior=MergeStrategy.NORMAL.behavior)


# -- prune -------------------------------------------------------------------------------


def test_prune_deletes_matching_idle_branches_only(seeded: VersionStore) -> None:
    for name in ("run/a/1", "run/b/2", "feature"):
        seeded.create_reference(name, ReferenceType.BRANCH)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    dry = prune_branches(
        seeded, pattern="run/*", older_than=dt.timedelta(days=7), now=later, dry_run=True
    )
    assert [p.name for p in dry] == ["run/a/1", "run/b/2"]
    assert len(seeded.list_references()) == 4
    assert prune_branches(seeded, pattern="run/*", older_than=dt.timedelta(days=9), now=later) == []
    pruned = prune_branches(seeded, pattern="run/*", older_than=dt.timedelta(days=7), now=later)
    assert [p.name for p in pruned] == ["run/a/1", "run/b/2"]
    assert sorted(r.name for r in seeded.list_references()) == ["feature", "main"]


def test_prune_never_deletes_the_default_branch(seeded: VersionStore) -> None:
    assert prune_branches(seeded, pattern="*") == []
    assert [r.name for r in seeded.list_references()] == ["main"]


def test_a_run_branch_named_after_a_recent_start_is_not_idle(seeded: VersionStore) -> None:
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    seeded.create_reference(f"run/p/{stamp}-abcdef", ReferenceType.BRANCH)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    # its head is main's (old) commit, but the name says the run started just now
    seeded.commit("main", [Put(T2, table(9))], CommitMeta("newer main"))
    assert (
        prune_branches(seeded, pattern="run/*", older_than=dt.timedelta(hours=3), now=later) == []
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("12h", 43200), ("30m", 1800), ("2w", 1209600)]
)
def test_ages_parse(text: str, seconds: int) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["7", "d7", "7 days", "-1d"])
def test_a_malformed_age_is_one_line(text: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid age"):
        parse_age(text)
