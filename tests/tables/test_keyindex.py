"""Key indexes: large upserts find keys and tell changed rows by an index beside each file.

The tables here have more rows than :data:`~lakehouse.tables.keyindex.MIN_ROWS` and the
upserts more keys than ``IN`` prunes with, as a large upsert into a real table has.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, StringType

from lakehouse.client import Lakehouse
from lakehouse.maintenance.compact import compact_table
from lakehouse.maintenance.policies import CompactionPolicy
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, keyindex, upsert
from lakehouse.tables.keyindex import (
    INDEX_PROPERTY,
    INDEX_SUFFIX,
    Layout,
    forget_indexes,
    index_path,
    indexed_file,
    read_index,
    row_hashes,
    write_index,
)
from tests.tables.conftest import content, make_rows

upsert_module = importlib.import_module("lakehouse.tables.upsert")
SMALL_FILE_ROWS = upsert_module.SMALL_FILE_ROWS

NewTable = Callable[..., Table]
ROWS = 12_000


def _indexes(table: Table) -> dict[str, Path]:
    """The live data files of ``table`` that have an index, and the index's path."""
    out = {}
    for task in table.scan().plan_files():
        path = Path(index_path(task.file.file_path).removeprefix("file://"))
        if path.exists():
            out[task.file.file_path] = path
    return out


def _updates(ids: range, tag: str) -> pa.Table:
    return make_rows(list(ids), tag=tag)


def test_a_large_upsert_indexes_the_files_it_reads_and_the_file_it_writes(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(ROWS)))  # one data file, written by an append
    assert _indexes(table) == {}

    upsert(table, _updates(range(0, ROWS + 10_000, 2), "u"), ["id"])

    table = lh.catalog("main").load_table("s.t")
    indexed = _indexes(table)
    assert len(indexed) == 2  # the appended file (read whole) and the upserted one
    layout = Layout.of(table.schema(), "id")
    forget_indexes()
    for task in table.scan().plan_files():
        index = read_index(table.io, task.file, layout)
        assert index is not None
        ids = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["id"])
        assert index.keys.equals(ids.column("id").combine_chunks())  # position by position


def test_an_indexed_upsert_tells_changed_rows_from_unchanged_ones(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(ROWS)))
    upsert(table, _updates(range(0, ROWS, 3), "a"), ["id"])  # indexes the file
    forget_indexes()  # as a new process: the index is read from its file
    table = lh.catalog("main").load_table("s.t")
    before = content(table)
    same = [{"id": i, "name": before[i][0], "amount": before[i][1]} for i in range(0, 6000)]
    changed = [{"id": i, "name": f"b{i}", "amount": 1.0} for i in range(6000, 8000)]
    rows = pa.Table.from_pylist([*same, *changed], schema=table.schema().as_arrow())

    result = upsert(table, rows, ["id"])

    assert (result.inserted, result.updated, result.unchanged) == (0, 2000, 6000)
    expected = {**before, **{r["id"]: (r["name"], r["amount"]) for r in changed}}
    assert content(lh.catalog("main").load_table("s.t")) == expected


def test_a_few_equal_rows_in_a_write_that_changes_the_table_are_rewritten_unread(
    lh: Lakehouse, new_table: NewTable, decoded_columns: list[list[str]]
) -> None:
    # no small file rewritten with the new rows (that reads whole files on purpose)
    table = new_table(ids=list(range(ROWS)), properties={SMALL_FILE_ROWS: "0"})
    upsert(table, _updates(range(0, ROWS, 3), "a"), ["id"])  # indexes the file
    forget_indexes()
    table = lh.catalog("main").load_table("s.t")
    before = content(table)
    # two rows as they are in the 12,000-row file (fewer than 1/64 of it) and 100 new rows
    same = [{"id": i, "name": before[i][0], "amount": before[i][1]} for i in (1, 2)]
    new = [{"id": i, "name": f"n{i}", "amount": 0.5} for i in range(ROWS, ROWS + 100)]
    rows = pa.Table.from_pylist([*same, *new], schema=table.schema().as_arrow())
    decoded_columns.clear()  # only what this upsert reads
    result = upsert(table, rows, ["id"])

    assert decoded_columns == []  # proving them unchanged would decode the file's value columns
    assert (result.inserted, result.updated, result.unchanged) == (100, 2, 0)
    expected = {**before, **{r["id"]: (r["name"], r["amount"]) for r in new}}
    assert content(lh.catalog("main").load_table("s.t")) == expected


def test_equal_hashes_are_checked_value_by_value(lh: Lakehouse, new_table: NewTable) -> None:
    # an index whose hashes say "unchanged" for every row (as a collision would) must not
    # make a changed row look unchanged: equal hashes are only a hint
    table = new_table(ids=list(range(ROWS)))
    changed = _updates(range(0, ROWS, 2), "c")
    (task,) = table.scan().plan_files()
    layout = Layout.of(table.schema(), "id")
    lying = row_hashes(changed, layout.values)
    assert lying is not None
    hashes = [0] * ROWS
    for i, h in zip(range(0, ROWS, 2), lying, strict=True):
        hashes[i] = int(h)
    write_index(
        table.io, task.file, layout, pa.array(range(ROWS), pa.int64()), pa.array(hashes).to_numpy()
    )

    result = upsert(table, changed, ["id"])

    assert (result.updated, result.unchanged) == (ROWS // 2, 0)
    assert content(lh.catalog("main").load_table("s.t"))[4] == ("c4", 2.0)


def test_an_index_that_does_not_fit_is_ignored(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(ROWS)))
    (task,) = table.scan().plan_files()
    path = Path(index_path(task.file.file_path).removeprefix("file://"))
    layout = Layout.of(table.schema(), "id")
    # an index of fewer rows than the file (as a half-written one would be), then garbage
    write_index(
        table.io, task.file, layout, pa.array(range(10), pa.int64()), pa.array([0] * 10).to_numpy()
    )
    forget_indexes()
    assert read_index(table.io, task.file, layout) is None
    path.write_bytes(b"not an arrow file")
    assert read_index(table.io, task.file, layout) is None

    result = upsert(table, _updates(range(0, ROWS, 2), "g"), ["id"])

    assert result.updated == ROWS // 2
    assert content(lh.catalog("main").load_table("s.t"))[2] == ("g2", 1.0)
    forget_indexes()
    assert read_index(table.io, task.file, layout) is not None  # rebuilt on the way


def test_an_index_of_other_columns_is_ignored(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(ROWS)))
    upsert(table, _updates(range(0, ROWS, 2), "a"), ["id"])
    table = lh.catalog("main").load_table("s.t")
    with table.transaction() as tx, tx.update_schema() as schema:
        schema.add_column("extra", StringType())
    table = lh.catalog("main").load_table("s.t")
    forget_indexes()
    old = table.scan().plan_files()[0].file
    assert read_index(table.io, old, Layout.of(table.schema(), "id")) is None


def test_an_index_of_a_column_since_promoted_is_ignored(lh: Lakehouse) -> None:
    schema = pa.schema([("id", pa.int64()), ("n", pa.int32())])
    catalog = lh.catalog("main")
    table = catalog.create_table("s.p", schema=schema, properties=DEFAULT_TABLE_PROPERTIES)
    ids = pa.array(range(ROWS), pa.int64())
    table.append(pa.table({"id": ids, "n": pa.array(range(ROWS), pa.int32())}, schema=schema))
    upsert(catalog.load_table("s.p"), catalog.load_table("s.p").scan().to_arrow(), ["id"])
    table = catalog.load_table("s.p")
    (task,) = table.scan().plan_files()
    assert read_index(table.io, task.file, Layout.of(table.schema(), "id")) is not None
    with table.update_schema() as update:
        update.update_column("n", LongType())  # int to long: the values hash as longs now
    table = catalog.load_table("s.p")
    forget_indexes()

    assert read_index(table.io, task.file, Layout.of(table.schema(), "id")) is None
    rows = table.scan().to_arrow()
    assert upsert(table, rows, ["id"]).unchanged == ROWS


def test_a_table_can_turn_key_indexes_off(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(ROWS)), properties={INDEX_PROPERTY: "false"})

    result = upsert(table, _updates(range(0, ROWS + 10_000, 2), "u"), ["id"])

    assert result.updated == ROWS // 2
    assert _indexes(lh.catalog("main").load_table("s.t")) == {}


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        (pa.string(), "a", "b"),
        (pa.float64(), 1.5, 2.5),
        (pa.int32(), 1, 2),
        (pa.bool_(), True, False),
        (pa.decimal128(10, 2), decimal.Decimal("1.10"), decimal.Decimal("1.20")),
        (pa.date32(), dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
        (pa.timestamp("us"), dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1)),
        (pa.timestamp("us", tz="UTC"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None),
        (pa.binary(), b"x", b"y"),
    ],
    ids=str,
)
def test_every_common_type_hashes_alike_from_the_file_and_from_memory(
    lh: Lakehouse, kind: pa.DataType, old: object, new: object
) -> None:
    schema = pa.schema([("id", pa.int64()), ("v", kind)])
    catalog = lh.catalog("main")
    table = catalog.create_table("s.k", schema=schema, properties=DEFAULT_TABLE_PROPERTIES)
    ids = pa.array(range(ROWS), pa.int64())
    table.append(pa.table({"id": ids, "v": pa.array([old] * ROWS, kind)}, schema=schema))
    table = catalog.load_table("s.k")
    first = upsert(table, table.scan().to_arrow(), ["id"])  # reads the file: indexes it
    assert first.unchanged == ROWS
    assert len(_indexes(catalog.load_table("s.k"))) == 1
    forget_indexes()  # the next upsert reads the index from its file
    rows = pa.table({"id": ids, "v": pa.array([old] * 6000 + [new] * 6000, kind)}, schema=schema)

    result = upsert(catalog.load_table("s.k"), rows, ["id"])

    # a value hashed differently from the file than from memory would count as updated
    assert (result.unchanged, result.updated) == (6000, 6000)


def test_index_names_say_which_data_file_they_index() -> None:
    assert indexed_file("s3://b/t/data/x.parquet" + INDEX_SUFFIX) == "s3://b/t/data/x.parquet"
    assert indexed_file("s3://b/t/data/x.parquet") is None


def test_compaction_writes_the_key_index_of_each_file_it_writes(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(2 * ROWS)), batches=2)
    upsert(table, _updates(range(0, 2 * ROWS, 2), "u"), ["id"])  # the table's key: id
    table = lh.catalog("main").load_table("s.t")
    # small output files: the rows are spread over several, each indexed from its slice
    compact_table(
        table,
        CompactionPolicy(min_small_files=2, delete_ratio=0.0, target_file_size=200_000),
    )

    table = lh.catalog("main").load_table("s.t")
    tasks = table.scan().plan_files()
    layout = Layout.of(table.schema(), "id")
    forget_indexes()
    assert len(tasks) > 1
    assert sum(t.file.record_count >= keyindex.MIN_ROWS for t in tasks) >= 1
    for task in tasks:
        assert not task.delete_files
        index = read_index(table.io, task.file, layout)
        if task.file.record_count < keyindex.MIN_ROWS:
            assert index is None
            continue
        assert index is not None
        ids = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["id"])
        assert index.keys.equals(ids.column("id").combine_chunks())
    # and the indexes tell a changed row from an unchanged one
    rows = table.scan().to_arrow()
    result = upsert(table, rows, ["id"])
    assert (result.unchanged, result.snapshot_id) == (rows.num_rows, None)


@pytest.mark.parametrize(
    ("keys", "ascending"),
    [
        (pa.array(range(ROWS), pa.int64()), True),  # by 1: two bytes a row
        (pa.array([*range(ROWS - 1), 10_000_000_000], pa.int64()), False),  # range past 2^32
        (pa.array([*range(ROWS - 1), 70_000], pa.int32()), True),  # past 2^16, narrow type
        (pa.array(range(ROWS, 0, -1), pa.int64()), False),  # descending offsets
        (pa.array([-5, *range(ROWS - 1)], pa.int64()), True),  # a negative base
        (pa.array([None, *range(1, ROWS)], pa.int64()), False),  # a NULL: as they are
        (pa.array([f"k{i:05d}" for i in range(ROWS)]), False),  # not integers: as they are
    ],
    ids=["by-one", "huge-range", "int32", "descending", "negative", "null", "strings"],
)
def test_an_index_gives_back_the_keys_it_was_written_with(
    lh: Lakehouse, new_table: NewTable, keys: pa.Array, ascending: bool
) -> None:
    table = new_table(ids=list(range(ROWS)))
    (task,) = table.scan().plan_files()
    layout = Layout.of(table.schema(), "id")
    hashes = pa.array(range(ROWS), pa.uint32()).to_numpy()
    write_index(table.io, task.file, layout, keys, hashes)
    forget_indexes()

    index = read_index(table.io, task.file, layout)

    assert index is not None
    assert index.keys.equals(keys) and index.hashes.tolist() == hashes.tolist()
    # known to ascend only when stored as offsets (unknown keys are checked when looked up)
    assert index.ascending == ascending


def test_a_table_with_a_sort_order_gets_an_index_in_the_files_row_order(
    lh: Lakehouse, new_table: NewTable
) -> None:
    # the upsert writes its rows as the table's sort order leaves them (it sorts only
    # unsorted tables by key): the index must follow the file's order, whatever it is
    table = new_table(ids=list(range(ROWS)))
    with table.update_sort_order() as order:
        order.desc("amount", IdentityTransform())
    table = lh.catalog("main").load_table("s.t")
    rows = make_rows(list(range(ROWS + 10_000, ROWS, -1)), tag="s")  # descending ids

    upsert(table, rows, ["id"])

    table = lh.catalog("main").load_table("s.t")
    layout = Layout.of(table.schema(), "id")
    forget_indexes()
    checked = 0
    for task in table.scan().plan_files():
        index = read_index(table.io, task.file, layout)
        if index is not None:
            ids = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["id"])
            assert index.keys.equals(ids.column("id").combine_chunks())
            checked += 1
    assert checked == 1  # the upserted file (the appended one was not read whole)
