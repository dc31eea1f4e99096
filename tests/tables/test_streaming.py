"""Appending a stream of record batches: files of the target size, row groups of the limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.table import Table

from lakehouse.tables.streaming import append_batches, row_groups

from .conftest import SCHEMA, content, make_rows


def stream(n: int, size: int) -> Iterator[pa.RecordBatch]:
    """``n`` rows of :data:`SCHEMA` in batches of ``size`` rows, made one at a time."""
    for start in range(0, n, size):
        yield from make_rows(list(range(start, min(n, start + size)))).to_batches()


def row_group_sizes(table: Table) -> list[list[int]]:
    sizes = []
    for task in sorted(table.scan().plan_files(), key=lambda t: t.file.file_path):
        with table.io.new_input(task.file.file_path).open() as f:
            meta = pq.ParquetFile(f).metadata
            sizes.append([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    return sizes


def test_row_groups_regroup_batches_to_the_row_limit() -> None:
    groups = list(row_groups(stream(1000, 70), rows=300))

    assert [g.num_rows for g in groups] == [300, 300, 300, 100]
    assert pa.concat_tables(groups).column("id").to_pylist() == list(range(1000))


def test_a_stream_is_one_append_snapshot_of_files_rolled_at_the_target_size(
    new_table: Callable[..., Table],
) -> None:
    table = new_table(
        ids=[],
        properties={
            "write.parquet.row-group-limit": "500",
            "write.target-file-size-bytes": "30000",  # Arrow bytes: ~1,200 rows a file
        },
    )
    before = len(table.snapshots())

    tx = table.transaction()
    rows = append_batches(tx, stream(5000, 64), SCHEMA, snapshot_properties={"k": "v"})
    table = tx.commit_transaction()

    assert rows == 5000
    assert len(table.snapshots()) == before + 1
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["k"] == "v"
    assert snapshot.summary["added-records"] == "5000"
    sizes = row_group_sizes(table)
    assert len(sizes) >= 3  # rolled into several files
    assert all(max(groups) <= 500 for groups in sizes)
    assert sum(sum(groups) for groups in sizes) == 5000
    assert sorted(content(table)) == list(range(5000))


def test_nothing_is_visible_before_the_transaction_commits(
    new_table: Callable[..., Table],
) -> None:
    table = new_table(ids=[1, 2])

    tx = table.transaction()
    append_batches(tx, stream(100, 10), SCHEMA)

    assert sorted(content(table)) == [1, 2]
