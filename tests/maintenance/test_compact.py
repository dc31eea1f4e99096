"""Compaction: same rows in fewer files, committed as a replace, safe under concurrent writes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ByteSize
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.snapshots import (
    Operation,
    SnapshotSummaryCollector,
    Summary,
    update_snapshot_summaries,
)
from pyiceberg.table.update.snapshot import _SnapshotProducer
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField, StringType

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.maintenance import ConcurrentChangeError, compact, compact_table
from lakehouse.maintenance._common import ProgressEvent
from lakehouse.maintenance._producers import DeleteManifestWriterV2
from lakehouse.maintenance.compact import plan_compaction, rewrite_manifests
from lakehouse.maintenance.policies import CompactionPolicy, Policies
from lakehouse.tables import RowLevelWriteError
from lakehouse.tables.rowdelta import DELETE_COMPRESSION

from .conftest import SCHEMA, aggressive, batch, make_table, rows, warehouse_files

POLICY = CompactionPolicy(min_small_files=2, max_manifests=1)


def _data_files(table: Table) -> list[str]:
    return [t.file.file_path for t in table.scan().plan_files()]


def test_compaction_rewrites_small_files_into_one_with_the_same_rows(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 12)
    before = rows(table)
    commits = len(lh.log("main", None))
    result = compact_table(table, CompactionPolicy(min_small_files=2, rewrite_manifests=False))
    table = lh.table("bronze.orders")
    assert rows(table) == before
    assert len(_data_files(table)) == 1
    assert result.files_rewritten == 12 and result.files_written == 1
    assert result.rows == len(before)
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation is Operation.REPLACE
    assert snapshot.summary["total-records"] == str(len(before))
    assert snapshot.summary["total-data-files"] == "1"
    assert snapshot.summary["deleted-data-files"] == "12"
    assert snapshot.summary["lakehouse.maintenance"] == "compaction"
    # one catalog commit, recorded as a replace
    log = lh.log("main", None)
    assert len(log) == commits + 1
    assert log[0].meta.properties["iceberg.operation"] == "replace"


def test_compaction_then_manifest_rewrite(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 12)
    before = rows(table)
    result = compact_table(table, POLICY)
    assert (result.manifests_before, result.manifests_after) == (12, 1)
    table = lh.table("bronze.orders")
    assert rows(table) == before
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["lakehouse.maintenance"] == "rewrite-manifests"


def test_compaction_leaves_every_file_in_place(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 6)
    before = warehouse_files(lh)
    compact(lh, policies=Policies().with_changes(compaction={"min_small_files": 2}))
    assert before <= warehouse_files(lh)


def test_dry_run_plans_but_commits_nothing(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 5)
    head = lh.resolve("main").hash
    files = warehouse_files(lh)
    result = compact(lh, policies=aggressive(), dry_run=True)
    assert lh.resolve("main").hash == head
    assert warehouse_files(lh) == files
    (only,) = result.tables
    assert only.files_rewritten == 5 and only.files_written == 0


def test_trigger_by_count_and_by_share(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 3)
    assert plan_compaction(table, CompactionPolicy(min_small_files=5)).groups == ()
    assert plan_compaction(table, CompactionPolicy(min_small_files=3)).groups != ()
    share = CompactionPolicy(min_small_files=50, min_small_share=0.5)
    assert len(plan_compaction(table, share).input_files) == 3
    # big files are not small: nothing to do
    big = CompactionPolicy(min_small_files=2, target_file_size=ByteSize(100), small_file_ratio=0.5)
    assert plan_compaction(table, big).groups == ()
    assert compact_table(table, big).skipped == "no partition needs compaction"


def test_partitions_are_compacted_separately(lh: Lakehouse) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    table = lh.catalog("main").create_table("silver.sales", schema, partition_spec=spec)
    arrow = schema_to_pyarrow(schema, include_field_ids=False)
    for i in range(8):
        region = "eu" if i % 2 else "us"
        table.append(pa.Table.from_pylist([{"id": i, "region": region}], schema=arrow))
    before = sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())
    compact_table(table, POLICY)
    table = lh.table("silver.sales")
    after = sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())
    assert after == before
    partitions = sorted(str(t.file.partition) for t in table.scan().plan_files())
    assert len(partitions) == 2  # one file per region


def test_small_target_writes_several_files(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 10, n=500)
    size = sum(t.file.file_size_in_bytes for t in table.scan().plan_files())
    policy = CompactionPolicy(
        min_small_files=2, target_file_size=ByteSize(size // 3), small_file_ratio=1
    )
    before = rows(table)
    result = compact_table(table, policy)
    assert 2 <= result.files_written < 10
    assert rows(lh.table("bronze.orders")) == before


def test_manifests_are_rewritten_when_too_many(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 8)
    snapshot = table.current_snapshot()
    assert snapshot is not None and len(snapshot.manifests(table.io)) == 8
    before = rows(table)
    policy = CompactionPolicy(min_small_files=100, max_manifests=3)
    table, count_before, count_after = rewrite_manifests(table, policy)
    assert (count_before, count_after) == (8, 1)
    assert rows(lh.table("bronze.orders")) == before
    snapshot = lh.table("bronze.orders").current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation is Operation.REPLACE
    assert snapshot.summary["total-records"] == str(len(before))
    assert snapshot.summary["manifests-replaced"] == "8"
    # appends after a manifest rewrite still work and see everything
    lh.table("bronze.orders").append(batch(5000, 3))
    assert len(rows(lh.table("bronze.orders"))) == len(before) + 3


# -- delete files ----------------------------------------------------------------------------


class _AddDeleteFiles(_SnapshotProducer[Any]):
    """Test helper: a ``delete`` snapshot adding delete files (PyIceberg cannot write them)."""

    def __init__(self, table: Table, deletes: Sequence[DataFile]) -> None:
        txn = table.transaction()
        super().__init__(Operation.DELETE, txn, table.io, branch="main")
        self.txn = txn
        self._deletes = list(deletes)

    def _manifests(self) -> list[ManifestFile]:
        parent = self._transaction.table_metadata.snapshot_by_name("main")
        assert parent is not None
        spec = self._transaction.table_metadata.spec()
        with DeleteManifestWriterV2(
            spec, self.schema(), self.new_manifest_output(), self._snapshot_id, self._compression
        ) as writer:
            for d in self._deletes:
                writer.add_entry(
                    ManifestEntry.from_args(
                        status=ManifestEntryStatus.ADDED,
                        snapshot_id=self._snapshot_id,
                        sequence_number=None,
                        file_sequence_number=None,
                        data_file=d,
                    )
                )
        return [writer.to_manifest_file(), *parent.manifests(self._io)]

    def _summary(self, snapshot_properties: dict[str, str] | None = None) -> Summary:
        collector = SnapshotSummaryCollector()
        metadata = self._transaction.table_metadata
        for d in self._deletes:
            collector.add_file(d, metadata.schema(), metadata.spec())
        parent = metadata.snapshot_by_name("main")
        return update_snapshot_summaries(
            Summary(Operation.DELETE, **collector.build()),
            previous_summary=parent.summary if parent else None,
        )

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []

    def _existing_manifests(self) -> list[ManifestFile]:
        return []

    def run(self) -> None:
        self.commit()
        self.txn.commit_transaction()


def _delete_file(
    table: Table, name: str, content: DataFileContent, data: pa.Table, **extra: Any
) -> DataFile:
    location = f"{table.metadata.properties['write.data.path']}/{name}"
    with table.io.new_output(location).create(overwrite=True) as out:
        pq.write_table(data, out)
    size = len(table.io.new_input(location))
    data_file = DataFile.from_args(
        content=content,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=data.num_rows,
        file_size_in_bytes=size,
        _table_format_version=2,
        **extra,
    )
    data_file.spec_id = 0
    return data_file


def _v2_table(lh: Lakehouse, appends: int) -> Table:
    table = lh.catalog("main").create_table(
        "bronze.events", SCHEMA, properties={"format-version": "2"}
    )
    for i in range(appends):
        table.append(batch(i * 10))
    return lh.table("bronze.events")


def test_position_deletes_are_applied_and_removed(lh: Lakehouse) -> None:
    table = _v2_table(lh, 4)
    first, second = sorted(_data_files(table))[:2]
    positions = pa.table(
        {"file_path": [first, first, second], "pos": pa.array([0, 3, 9], pa.int64())}
    )
    deletes = _delete_file(table, "pos-del.parquet", DataFileContent.POSITION_DELETES, positions)
    _AddDeleteFiles(table, [deletes]).run()
    table = lh.table("bronze.events")
    before = rows(table)
    assert len(before) == 37  # the deletes apply when reading

    plan = plan_compaction(table, CompactionPolicy(min_small_files=100))
    assert plan.groups, "files with deletes are compacted whatever their count"
    result = compact_table(table, POLICY)
    table = lh.table("bronze.events")
    assert rows(table) == before
    assert result.delete_files_removed == 1
    assert all(not t.delete_files for t in table.scan().plan_files())
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["total-delete-files"] == "0"
    assert snapshot.summary["total-records"] == "37"


def _shared_deletes(lh: Lakehouse) -> tuple[Table, str, str, str, DataFile]:
    """Data files a and b of 10 rows and c of 1,000, and one delete file for all three
    (as a large upsert writes it): 5 rows deleted, 3 in a and b, 2 in c."""
    table = lh.catalog("main").create_table(
        "bronze.events", SCHEMA, properties={"format-version": "2"}
    )
    for start, n in ((0, 10), (10, 10), (100, 1000)):
        table.append(batch(start, n))
    table = lh.table("bronze.events")
    files = {t.file.file_path: t.file.record_count for t in table.scan().plan_files()}
    a, b = sorted(path for path, n in files.items() if n == 10)
    (c,) = [path for path, n in files.items() if n == 1000]
    shared = pa.table({"file_path": [a, a, b, c, c], "pos": pa.array([0, 1, 2, 3, 4], pa.int64())})
    deletes = _delete_file(table, "shared-del.parquet", DataFileContent.POSITION_DELETES, shared)
    _AddDeleteFiles(table, [deletes]).run()
    return lh.table("bronze.events"), a, b, c, deletes


#: Rewrites a data file once a tenth of its rows is deleted, and no file for its size.
DELETES_ONLY = CompactionPolicy(small_file_ratio=1e-9, delete_ratio=0.1, max_manifests=100)


def test_a_delete_file_shared_with_kept_files_is_rewritten_with_their_positions_only(
    lh: Lakehouse,
) -> None:
    table, a, b, c, deletes = _shared_deletes(lh)
    before = rows(table)
    assert len(before) == 1015

    result = compact_table(table, DELETES_ONLY)  # a and b: half deleted; c: 0.5 %
    assert (result.files_rewritten, result.delete_files_removed) == (2, 0)
    assert result.delete_files_trimmed == 1
    table = lh.table("bronze.events")
    assert rows(table) == before
    tasks = list(table.scan().plan_files())
    assert c in {t.file.file_path for t in tasks} and not {a, b} & {t.file.file_path for t in tasks}
    (rewrite,) = {d.file_path for t in tasks for d in t.delete_files}
    assert rewrite != deletes.file_path
    with table.io.new_input(rewrite).open() as stream:
        left = pq.read_table(stream)
    assert left.column("file_path").to_pylist() == [c, c]
    assert left.column("pos").to_pylist() == [3, 4]
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["total-delete-files"] == "1"
    assert snapshot.summary["total-position-deletes"] == "2"
    assert snapshot.summary["added-position-delete-files"] == "1"
    assert snapshot.summary["removed-position-delete-files"] == "1"
    assert lh.sql("SELECT count(*) AS n FROM bronze.events").column("n")[0].as_py() == 1015


def test_a_bad_delete_file_codec_is_refused_before_compaction_writes_a_file(
    lh: Lakehouse,
) -> None:
    table, *_ = _shared_deletes(lh)
    with table.transaction() as tx:
        tx.set_properties({DELETE_COMPRESSION: "zip"})
    table = lh.table("bronze.events")
    head, files = table.current_snapshot(), warehouse_files(lh)

    with pytest.raises(RowLevelWriteError, match="compression-codec='zip'"):
        compact_table(table, DELETES_ONLY)

    assert lh.table("bronze.events").current_snapshot() == head
    assert warehouse_files(lh) == files


def test_a_dry_run_counts_the_shared_delete_files_it_would_trim(lh: Lakehouse) -> None:
    table, *_ = _shared_deletes(lh)
    result = compact_table(table, DELETES_ONLY, dry_run=True)
    assert (result.files_rewritten, result.delete_files_trimmed) == (2, 1)
    assert result.to_json()["delete_files_trimmed"] == 1
    assert lh.table("bronze.events").current_snapshot() == table.current_snapshot()


def test_tables_with_equality_deletes_are_skipped(lh: Lakehouse) -> None:
    table = _v2_table(lh, 3)
    keys = pa.table({"id": pa.array([1], pa.int64())})
    deletes = _delete_file(
        table, "eq-del.parquet", DataFileContent.EQUALITY_DELETES, keys, equality_ids=[1]
    )
    _AddDeleteFiles(table, [deletes]).run()
    result = compact_table(lh.table("bronze.events"), POLICY)
    assert result.skipped is not None and "equality" in result.skipped
    assert result.files_rewritten == 0


# -- concurrency -----------------------------------------------------------------------------


def test_a_concurrent_append_is_kept_not_lost_or_duplicated(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 6)
    before = rows(table)
    other = lakehouse.connect(lh.settings.home)

    def append_meanwhile(event: ProgressEvent) -> None:
        if event.step == "compact" and event.done == 0:
            other.table("bronze.orders").append(batch(9000, 4, "c"))

    result = compact_table(table, POLICY, on_progress=append_meanwhile)
    other.close()
    after = rows(lh.table("bronze.orders"))
    assert after == sorted(before + rows_of(batch(9000, 4, "c")))
    assert result.attempts >= 1
    # the appended file is still its own file; the 6 small ones became one
    assert len(_data_files(lh.table("bronze.orders"))) == 2


def rows_of(data: pa.Table) -> list[tuple[int, str]]:
    return [(r["id"], r["name"]) for r in data.to_pylist()]


def test_compaction_with_no_pyiceberg_retries_rebuilds_on_the_new_head(lh: Lakehouse) -> None:
    table = lh.catalog("main").create_table(
        "bronze.raw_events", SCHEMA, properties={"commit.retry.num-retries": "0"}
    )
    for i in range(4):
        table.append(batch(i * 10))
    table = lh.table("bronze.raw_events")
    before = rows(table)

    def append_meanwhile(event: ProgressEvent) -> None:
        if event.step == "compact" and event.done == 0:
            lh.table("bronze.raw_events").append(batch(700, 2))

    result = compact_table(table, POLICY, on_progress=append_meanwhile)
    assert result.attempts == 2
    assert rows(lh.table("bronze.raw_events")) == sorted(before + rows_of(batch(700, 2)))


def test_a_conflicting_concurrent_delete_fails_cleanly(lh: Lakehouse) -> None:
    table = make_table(lh, "bronze.orders", 5)
    head_before = lh.table("bronze.orders").current_snapshot()

    def delete_meanwhile(event: ProgressEvent) -> None:
        if event.step == "compact" and event.done == 0:
            lh.table("bronze.orders").delete("id = 3")

    with pytest.raises(ConcurrentChangeError, match="changed concurrently"):
        compact_table(table, POLICY, on_progress=delete_meanwhile)
    table = lh.table("bronze.orders")
    snapshot = table.current_snapshot()
    assert snapshot is not None and head_before is not None
    assert snapshot.summary is not None and snapshot.summary.operation is not Operation.REPLACE
    assert (3, "o3") not in rows(table) and len(rows(table)) == 49
    # reported per table by compact(), which goes on with the others
    make_table(lh, "silver.other", 3)

    def again(event: ProgressEvent) -> None:
        if event.step == "compact" and event.done == 0 and event.item == "bronze.orders":
            lh.table("bronze.orders").delete("id = 4")

    result = compact(lh, policies=aggressive(), on_progress=again)
    by_name = {t.table: t for t in result.tables}
    assert by_name["bronze.orders"].error is not None
    assert by_name["silver.other"].files_rewritten == 3


def test_compaction_under_continuous_concurrent_appends(lh: Lakehouse) -> None:
    """Another writer appends while compaction runs: every row exactly once."""
    table = make_table(lh, "bronze.orders", 8)
    expected = rows(table)
    stop = threading.Event()
    appended: list[pa.Table] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with lakehouse.connect(lh.settings.home) as other:
                i = 0
                while not stop.is_set() and i < 15:
                    data = batch(100_000 + i * 3, 3, "w")
                    other.table("bronze.orders").append(data)
                    appended.append(data)
                    i += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(2):
            compact_table(lh.table("bronze.orders"), POLICY, attempts=20)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    for data in appended:
        expected += rows_of(data)
    assert rows(lh.table("bronze.orders")) == sorted(expected)
