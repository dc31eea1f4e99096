"""Snapshot expiry: metadata only, one catalog commit per branch, ingestion state kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lakehouse.client import Lakehouse
from lakehouse.errors import ReadOnlyReferenceError
from lakehouse.ingest.bronze import read_state
from lakehouse.maintenance import ConcurrentChangeError, compact, expire_snapshots
from lakehouse.maintenance._common import ProgressEvent, utcnow
from lakehouse.maintenance.expire import plan_expiry
from lakehouse.maintenance.policies import CompactionPolicy, Policies, SnapshotPolicy

from .conftest import aggressive, batch, make_table, rows, warehouse_files


def _policy(**snapshots: object) -> Policies:
    return Policies().with_changes(snapshots=snapshots)


def test_keep_last_and_max_age(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 5)
    now = utcnow()
    metadata = table.metadata
    keep2 = plan_expiry(metadata, SnapshotPolicy(keep_last=2, max_age=timedelta(0)), now)
    assert len(keep2.expire) == 3
    current = table.current_snapshot()
    assert current is not None and current.snapshot_id not in keep2.expire
    assert (
        plan_expiry(metadata, SnapshotPolicy(keep_last=10, max_age=timedelta(0)), now).expire == ()
    )
    young = SnapshotPolicy(keep_last=1, max_age=timedelta(days=1))
    assert plan_expiry(metadata, young, now).expire == ()
    assert len(plan_expiry(metadata, young, now + timedelta(days=2)).expire) == 4


def test_iceberg_tags_inside_the_table_are_kept(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 4)
    first = table.snapshots()[0].snapshot_id
    table.manage_snapshots().create_tag(first, "audit").commit()
    table = lh.table("bronze.orders")
    plan = plan_expiry(table.metadata, SnapshotPolicy(keep_last=1, max_age=timedelta(0)), utcnow())
    assert first not in plan.expire and len(plan.expire) == 2


def test_expiry_is_one_catalog_commit_and_deletes_no_file(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 5)
    make_table(lh, "silver.customers", 3)
    expected = {name: rows(lh.table(name)) for name in ("bronze.orders", "silver.customers")}
    commits = len(lh.log("main", None))
    files = warehouse_files(lh)
    result = expire_snapshots(lh, policies=_policy(keep_last=1, max_age=0))
    assert result.committed and result.expired == 4 + 2
    assert len(lh.log("main", None)) == commits + 1
    assert files <= warehouse_files(lh)
    for name, data in expected.items():
        table = lh.table(name)
        assert rows(table) == data
        assert len(table.snapshots()) == 1
    # the previous commit still reads every old snapshot (time travel inside the table)
    old = lh.table("bronze.orders", "main~1")
    assert len(old.snapshots()) == 5
    for snapshot in old.snapshots():
        old.scan(snapshot_id=snapshot.snapshot_id).to_arrow()


def test_dry_run_commits_nothing(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 4)
    head = lh.resolve("main").hash
    result = expire_snapshots(lh, policies=_policy(keep_last=1, max_age=0), dry_run=True)
    assert result.expired == 3 and not result.committed
    assert lh.resolve("main").hash == head


def test_table_selection_and_tags_are_read_only(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    make_table(lh, "silver.customers", 3)
    result = expire_snapshots(
        lh, tables=["silver"], policies=_policy(keep_last=1, max_age=0), dry_run=True
    )
    assert [t.table for t in result.tables] == ["silver.customers"]
    lh.create_tag("t", "main")
    with pytest.raises(ReadOnlyReferenceError):
        expire_snapshots(lh, "t", policies=_policy(keep_last=1, max_age=0))


def test_per_table_overrides_apply(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 4)
    make_table(lh, "silver.customers", 4)
    policies = Policies.model_validate(
        {
            "snapshots": {"keep_last": 1, "max_age": "0s"},
            "overrides": {"bronze": {"snapshots": {"keep_last": 3}}},
        }
    )
    result = expire_snapshots(lh, policies=policies)
    expired = {t.table: len(t.expired) for t in result.tables}
    assert expired == {"bronze.orders": 1, "silver.customers": 3}


def _ingest(table, i: int) -> None:  # type: ignore[no-untyped-def]
    table.append(
        batch(i * 10),
        snapshot_properties={
            "lakehouse.ingest.batch-id": f"batch-{i}",
            "lakehouse.ingest.source": "src",
            "lakehouse.ingest.files": f'[["f{i}.csv", "sha{i}"]]',
        },
    )


def test_ingestion_snapshots_expire_and_ingestion_stays_exactly_once(lh: Lakehouse) -> None:
    table = lh.catalog("main").create_table("bronze.landed", batch(0).schema)
    for i in range(4):
        _ingest(table, i)
    compact(lh, policies=Policies().with_changes(compaction={"min_small_files": 2}))
    _ingest(lh.table("bronze.landed"), 4)
    state_before = read_state(lh.table("bronze.landed"), "bronze.landed", "src")
    assert len(state_before.batches) == 5

    result = expire_snapshots(lh, policies=_policy(keep_last=1, max_age=0))
    (only,) = result.tables
    # every snapshot but the current one expires; the state moves to a checkpoint
    assert len(only.expired) == 5 and only.kept_for_ingest == 0 and only.checkpoint
    assert len(lh.table("bronze.landed").snapshots()) == 1
    state = read_state(lh.table("bronze.landed"), "bronze.landed", "src")
    assert state.batches == state_before.batches
    assert state.loaded == state_before.loaded
    assert state.last_batch == state_before.last_batch


def test_without_checkpoints_the_ingestion_chain_is_kept_or_lost(lh: Lakehouse) -> None:
    table = lh.catalog("main").create_table("bronze.landed", batch(0).schema)
    for i in range(5):
        _ingest(table, i)
    legacy = _policy(keep_last=1, max_age=0, ingest_checkpoints=False)
    result = expire_snapshots(lh, policies=legacy)
    (only,) = result.tables
    assert only.expired == () and only.kept_for_ingest == 4 and only.checkpoint is None
    assert len(read_state(lh.table("bronze.landed"), "bronze.landed", "src").batches) == 5

    # without keep_ingest_history the chain is cut and ingestion would load files again
    unsafe = _policy(keep_last=1, max_age=0, keep_ingest_history=False)
    assert expire_snapshots(lh, policies=unsafe).tables[0].checkpoint is None
    assert len(read_state(lh.table("bronze.landed"), "bronze.landed", "src").batches) == 1


def test_a_concurrent_append_makes_expiry_plan_again(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 4)
    appended: list[int] = []

    def append_once(event: ProgressEvent) -> None:
        if event.step == "expire" and event.done == event.total and not appended:
            lh.table("bronze.orders").append(batch(900, 2))
            appended.append(1)

    result = expire_snapshots(lh, policies=_policy(keep_last=1, max_age=0), on_progress=append_once)
    assert result.committed
    table = lh.table("bronze.orders")
    assert len(rows(table)) == 42
    assert len(table.snapshots()) == 1


def test_gives_up_when_tables_keep_changing(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)

    def always_append(event: ProgressEvent) -> None:
        if event.step == "expire" and event.done == event.total:
            lh.table("bronze.orders").append(batch(900, 1))

    with pytest.raises(ConcurrentChangeError, match="3 attempts"):
        expire_snapshots(
            lh, policies=_policy(keep_last=1, max_age=0), on_progress=always_append, attempts=3
        )


def test_aggressive_expiry_after_compaction(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 6)
    before = rows(lh.table("bronze.orders"))
    compact(lh, policies=aggressive())
    expire_snapshots(lh, policies=aggressive())
    table = lh.table("bronze.orders")
    assert rows(table) == before
    assert len(table.snapshots()) == 1
    assert CompactionPolicy().small_file_size == int(128 * 1024 * 1024 * 0.75)
