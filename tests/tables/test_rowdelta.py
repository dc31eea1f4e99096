"""Row-delta snapshots: delete files every reader decodes, metadata cached as written."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import (
    DataFile,
    ManifestContent,
    ManifestEntry,
    ManifestFile,
    read_manifest_list,
)
from pyiceberg.table import Table

from lakehouse.client import Lakehouse
from lakehouse.tables import RowLevelWriteError, upsert
from lakehouse.tables.rowdelta import (
    DELETE_COMPRESSION,
    FILE_PATH_FIELD_ID,
    POS_FIELD_ID,
    manifest_entries,
    position_delete_file,
    read_position_deletes,
    referenced_data_file,
    referenced_data_files,
    snapshot_manifests,
)
from lakehouse.tables.upsert import SMALL_FILE_ROWS
from tests.tables.conftest import content, make_rows

NewTable = Callable[..., Table]


def test_a_position_delete_file_reads_back_as_the_spec_defines_it() -> None:
    path = "s3://bronze/t/data/00000-0-a.parquet"
    positions = pa.array([3, 17, 18, 400, 99_999], pa.int64())

    payload = position_delete_file({path: positions})

    parquet = pq.ParquetFile(io.BytesIO(payload))
    table = parquet.read()
    assert table.column_names == ["file_path", "pos"]
    assert table.schema.field("file_path").type == pa.string()  # not the dictionary written
    assert table.column("file_path").to_pylist() == [path] * 5
    assert table.column("pos").to_pylist() == [3, 17, 18, 400, 99_999]
    ids = [table.schema.field(n).metadata[b"PARQUET:field_id"] for n in ("file_path", "pos")]
    assert ids == [str(FILE_PATH_FIELD_ID).encode(), str(POS_FIELD_ID).encode()]
    assert not table.schema.field("file_path").nullable
    pos_chunk = parquet.metadata.row_group(0).column(1)
    assert "DELTA_BINARY_PACKED" in pos_chunk.encodings


def test_a_delete_file_of_many_data_files_is_sorted_by_path_then_position() -> None:
    later, earlier = "s3://b/t/data/2.parquet", "s3://b/t/data/1.parquet"

    payload = position_delete_file(
        {later: pa.array([0, 5], pa.int64()), earlier: pa.array([7, 9, 11], pa.int64())}
    )

    table = pq.read_table(io.BytesIO(payload))
    assert table.column("file_path").to_pylist() == [earlier] * 3 + [later] * 2
    assert table.column("pos").to_pylist() == [7, 9, 11, 0, 5]


def _delete_codecs(table: Table) -> set[str]:
    codecs = set()
    for task in table.scan().plan_files():
        for delete_file in task.delete_files:
            meta = pq.ParquetFile(delete_file.file_path.removeprefix("file://")).metadata
            codecs.add(meta.row_group(0).column(1).compression)
    return codecs


def test_delete_files_take_the_tables_codec_snappy_by_default(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(50)), properties={SMALL_FILE_ROWS: "0"})
    upsert(table, make_rows([3], tag="x"), ["id"])
    assert _delete_codecs(lh.catalog("main").load_table("s.t")) == {"SNAPPY"}

    zstd = new_table(
        "z", ids=list(range(50)), properties={SMALL_FILE_ROWS: "0", DELETE_COMPRESSION: "zstd"}
    )
    upsert(zstd, make_rows([3], tag="x"), ["id"])
    assert _delete_codecs(lh.catalog("main").load_table("s.z")) == {"ZSTD"}


def test_an_unknown_delete_codec_is_refused_before_anything_is_written(
    lh: Lakehouse, new_table: NewTable, tmp_path: Path
) -> None:
    table = new_table(ids=list(range(50)), properties={DELETE_COMPRESSION: "zip"})
    head = table.current_snapshot()
    files_before = sorted(tmp_path.rglob("*.parquet"))

    with pytest.raises(RowLevelWriteError, match="compression-codec='zip' is not one of"):
        upsert(table, make_rows([3], tag="x"), ["id"])

    assert lh.catalog("main").load_table("s.t").current_snapshot() == head
    assert sorted(tmp_path.rglob("*.parquet")) == files_before


def test_the_metadata_a_row_delta_caches_is_what_reading_its_files_gives(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(50)))
    upsert(table, make_rows([3, 70], tag="x"), ["id"])  # a delete file and a data file
    table = lh.catalog("main").load_table("s.t")
    upsert(table, make_rows([4, 71], tag="y"), ["id"])  # folds the delete file written above
    table = lh.catalog("main").load_table("s.t")
    snapshot = table.current_snapshot()
    assert snapshot is not None

    cached = snapshot_manifests(table.io, snapshot)  # as the row delta remembered it
    read = tuple(read_manifest_list(table.io.new_input(snapshot.manifest_list)))

    assert [_manifest(m) for m in cached] == [_manifest(m) for m in read]
    for ours, theirs in zip(cached, read, strict=True):
        remembered = manifest_entries(table.io, ours)
        fetched = theirs.fetch_manifest_entry(table.io, discard_deleted=True)
        assert [_entry(e) for e in remembered] == [_entry(e) for e in fetched]


def test_deleted_positions_are_read_back_from_the_folded_delete_file(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(20)), properties={"lakehouse.upsert.small-file-rows": "0"})
    upsert(table, make_rows([2, 5], tag="x"), ["id"])
    upsert(lh.catalog("main").load_table("s.t"), make_rows([9, 12], tag="y"), ["id"])
    table = lh.catalog("main").load_table("s.t")

    tasks = [t for t in table.scan().plan_files() if t.delete_files]
    assert len(tasks) == 1
    (task,) = tasks
    assert len(task.delete_files) == 1
    gone = read_position_deletes(table.io, task.delete_files, task.file.file_path)
    assert gone.to_pylist() == [2, 5, 9, 12]


def _delete_files(table: Table) -> list[DataFile]:
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return [
        e.data_file
        for m in snapshot.manifests(table.io)
        if m.content == ManifestContent.DELETES
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
    ]


def _ten_files(new_table: NewTable) -> Table:
    """``s.t``: ids 0..99 in ten data files of ten rows (no small file rewritten)."""
    return new_table(ids=list(range(100)), batches=10, properties={SMALL_FILE_ROWS: "0"})


def test_a_write_to_many_data_files_adds_one_delete_file_naming_them_all(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = _ten_files(new_table)
    data_files = {t.file.file_path for t in table.scan().plan_files()}

    upsert(table, make_rows(list(range(0, 100, 10)), tag="x"), ["id"])  # one row of each

    table = lh.catalog("main").load_table("s.t")
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    assert summary["added-delete-files"] == "1" and summary["added-position-deletes"] == "10"
    (delete,) = _delete_files(table)
    assert referenced_data_files(table.io, delete) == data_files
    assert content(table) == {i: (f"x{i}" if i % 10 == 0 else f"v{i}", i / 2) for i in range(100)}
    sql = lh.sql("SELECT count(*) AS n, count(*) FILTER (name LIKE 'x%') AS x FROM s.t")
    assert sql.to_pylist() == [{"n": 100, "x": 10}]


def test_few_data_files_deleted_from_get_a_delete_file_each(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = _ten_files(new_table)

    upsert(table, make_rows([0, 10, 20], tag="x"), ["id"])

    table = lh.catalog("main").load_table("s.t")
    deletes = _delete_files(table)
    assert len(deletes) == 3
    assert all(referenced_data_file(d) is not None for d in deletes)


def test_large_writes_fold_earlier_delete_files_no_larger_than_their_own(
    lh: Lakehouse, new_table: NewTable
) -> None:
    # four writes of ten positions each, over all ten files: a binary counter
    table = _ten_files(new_table)
    counts = []
    for i in range(4):
        upsert(table, make_rows(list(range(i, 100, 10)), tag=f"w{i}-"), ["id"])
        table = lh.catalog("main").load_table("s.t")
        counts.append(sorted(d.record_count for d in _delete_files(table)))

    assert counts == [[10], [20], [10, 20], [40]]
    expected = {i: (f"w{i % 10}-{i}" if i % 10 < 4 else f"v{i}", i / 2) for i in range(100)}
    assert content(table) == expected
    assert lh.sql("SELECT count(*) AS n FROM s.t").to_pylist() == [{"n": 100}]


def test_a_shared_delete_file_naming_a_data_file_not_written_to_is_left_alone(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = _ten_files(new_table)
    upsert(table, make_rows(list(range(0, 100, 10)), tag="a"), ["id"])  # all ten files
    table = lh.catalog("main").load_table("s.t")
    (first,) = _delete_files(table)

    # two rows of nine of them: more positions than the first file holds, yet not folded
    upsert(table, make_rows([*range(1, 90, 10), *range(2, 90, 10)], tag="b"), ["id"])

    table = lh.catalog("main").load_table("s.t")
    deletes = _delete_files(table)
    assert first.file_path in {d.file_path for d in deletes} and len(deletes) == 2
    assert sum(1 for name, _ in content(table).values() if name.startswith(("a", "b"))) == 28
    assert lh.sql("SELECT count(*) AS n FROM s.t").to_pylist() == [{"n": 100}]


def _manifest(m: ManifestFile) -> dict[str, Any]:
    fields = [
        "manifest_path",
        "manifest_length",
        "partition_spec_id",
        "content",
        "sequence_number",
        "min_sequence_number",
        "added_snapshot_id",
        "added_files_count",
        "existing_files_count",
        "deleted_files_count",
        "added_rows_count",
        "existing_rows_count",
        "deleted_rows_count",
    ]
    return {f: getattr(m, f) for f in fields}


def _entry(e: ManifestEntry) -> dict[str, Any]:
    f = e.data_file
    return {
        "status": e.status,
        "snapshot_id": e.snapshot_id,
        "sequence_number": e.sequence_number,
        "file_sequence_number": e.file_sequence_number,
        "content": f.content,
        "file_path": f.file_path,
        "record_count": f.record_count,
        "file_size_in_bytes": f.file_size_in_bytes,
        "spec_id": f.spec_id,
        "lower_bounds": dict(f.lower_bounds or {}),
        "upper_bounds": dict(f.upper_bounds or {}),
        "value_counts": dict(f.value_counts or {}),
        "null_value_counts": dict(f.null_value_counts or {}),
    }
