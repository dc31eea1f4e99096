"""Row-delta snapshots: delete files every reader decodes, metadata cached as written."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import ManifestEntry, ManifestFile, read_manifest_list
from pyiceberg.table import Table

from lakehouse.client import Lakehouse
from lakehouse.tables import upsert
from lakehouse.tables.rowdelta import (
    FILE_PATH_FIELD_ID,
    POS_FIELD_ID,
    manifest_entries,
    position_delete_file,
    read_position_deletes,
    snapshot_manifests,
)
from tests.tables.conftest import make_rows

NewTable = Callable[..., Table]


def test_a_position_delete_file_reads_back_as_the_spec_defines_it() -> None:
    path = "s3://bronze/t/data/00000-0-a.parquet"
    positions = pa.array([3, 17, 18, 400, 99_999], pa.int64())

    payload = position_delete_file(path, positions)

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
