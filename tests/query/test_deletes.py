"""Position deletes on the read path: the rows ``lakehouse sql`` returns are PyIceberg's.

Every case builds a table of several data files (one per append), commits position
delete files against some of them and compares the query's rows with what PyIceberg's
own scan of the same snapshot returns.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import AlwaysTrue, GreaterThanOrEqual
from pyiceberg.manifest import DataFileContent, ManifestEntry
from pyiceberg.table import Table

from lakehouse import query
from lakehouse.client import Lakehouse
from lakehouse.query import sandbox
from lakehouse.query.deletes import (
    FILE_ID,
    KEEP_MASKS,
    POSITION,
    DeleteFileCache,
    KeepMaskCache,
    keep_column,
    keep_mask_table,
    position_delete_table,
    without_unused_deletes,
)
from lakehouse.query.execution import (
    QueryPlan,
    allowed_paths,
    keep_mask_files,
    keep_mask_groups,
    parquet_sql,
    position_delete_files,
    unordered,
)
from lakehouse.query.planning import ManifestEntryCache, plan_table
from tests.query.conftest import add_delete_file, make_table, orders


def file_ids(table: Table) -> dict[str, list[int]]:
    """Data file path → the ids it holds, in row order."""
    out: dict[str, list[int]] = {}
    for task in table.scan().plan_files():
        with table.io.new_input(task.file.file_path).open() as stream:
            out[task.file.file_path] = pq.read_table(stream).column("id").to_pylist()
    return out


def file_of(files: dict[str, list[int]], first_id: int) -> str:
    [path] = [p for p, ids in files.items() if ids[0] == first_id]
    return path


def deletes(*pairs: tuple[str, int]) -> pa.Table:
    return pa.table(
        {
            "file_path": pa.array([p for p, _ in pairs], pa.string()),
            "pos": pa.array([n for _, n in pairs], pa.int64()),
        }
    )


def sorted_rows(result: pa.Table) -> list[dict[str, object]]:
    return sorted(result.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


def pyiceberg_rows(
    table: Table, columns: tuple[str, ...] = ("*",), row_filter: str = "true"
) -> list[dict[str, object]]:
    scan = table.scan(row_filter=row_filter, selected_fields=columns)
    return sorted_rows(scan.to_arrow())


@pytest.fixture
def five_files(lh: Lakehouse) -> Table:
    """``silver.orders`` with five data files of four rows: ids 0-3, 10-13, ... 40-43."""
    table = make_table(lh, "silver.orders", orders([0, 1, 2, 3]))
    for start in (10, 20, 30, 40):
        table.append(orders(list(range(start, start + 4))))
    return lh.catalog("main").load_table("silver.orders")


def test_deletes_apply_to_their_files_only_and_files_without_deletes_read_plainly(
    lh: Lakehouse, five_files: Table
) -> None:
    from lakehouse.tables import delete_rows

    files = file_ids(five_files)
    # merge-on-read deletes scoped to their data file (the writer records which one)
    delete_rows(five_files, pa.table({"id": pa.array([1, 3, 20, 42], pa.int64())}), ["id"])
    table = lh.catalog("main").load_table("silver.orders")
    plan = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    assert plan.reader == "parquet"
    with_deletes = {f.path for f in plan.files if f.position_deletes}
    assert with_deletes == {file_of(files, 0), file_of(files, 20), file_of(files, 40)}
    sql = parquet_sql(plan, '"x"')
    # files without deletes: one plain read, no row numbers; the rest one anti-joined read
    assert sql.count("file_row_number = true") == 1
    assert sql.count("read_parquet(") == 2
    got = lh.sql("SELECT * FROM silver.orders")
    assert sorted_rows(got) == pyiceberg_rows(table)
    assert len(got) == 16 and not {1, 3, 20, 42} & set(got.column("id").to_pylist())


def test_a_delete_file_for_other_rows_of_the_partition_is_not_joined(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    a = file_of(files, 10)
    # no bounds on file_path: the planner gives this delete file to every data file
    table = add_delete_file(five_files, deletes((a, 1)), DataFileContent.POSITION_DELETES)
    plan = plan_table(table, "silver.orders", AlwaysTrue())
    assert all(f.position_deletes for f in plan.files)
    used = without_unused_deletes(table.io, plan.files, DeleteFileCache())
    assert [f.path for f in used if f.position_deletes] == [a]
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)
    assert 11 not in lh.sql("SELECT id FROM silver.orders").column("id").to_pylist()


def test_one_delete_file_spanning_several_data_files(lh: Lakehouse, five_files: Table) -> None:
    files = file_ids(five_files)
    pairs = [(file_of(files, first), pos) for first in (0, 10, 30) for pos in (0, 3)]
    table = add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    assert (
        len(query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"].delete_files) == 1
    )
    ids = lh.sql("SELECT id FROM silver.orders").column("id").to_pylist()
    assert sorted(ids) == [1, 2, 11, 12, 20, 21, 22, 23, 31, 32, 40, 41, 42, 43]
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)


def test_two_delete_files_on_one_data_file_and_duplicate_positions(
    lh: Lakehouse, five_files: Table
) -> None:
    a = file_of(file_ids(five_files), 10)
    table = add_delete_file(five_files, deletes((a, 2), (a, 0)), DataFileContent.POSITION_DELETES)
    table = add_delete_file(table, deletes((a, 2), (a, 1)), DataFileContent.POSITION_DELETES)
    assert lh.sql("SELECT count(*) AS n FROM silver.orders").column("n")[0].as_py() == 17
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)


def test_filters_and_projections_are_pushed_down_with_deletes(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    pairs = [(file_of(files, 0), 0), (file_of(files, 30), 1), (file_of(files, 40), 3)]
    table = add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    sql = "SELECT id, amount FROM silver.orders WHERE id >= 30"
    plan = query.plan(lh, sql).tables["silver.orders"]
    # the files of ids below 30 are pruned by their metrics; the delete file still applies
    assert sorted(plan.data_files) == sorted([file_of(files, 30), file_of(files, 40)])
    assert plan.columns == ("amount", "id")
    got = lh.sql(sql)
    assert got.column_names == ["id", "amount"]
    assert sorted_rows(got) == pyiceberg_rows(table, ("id", "amount"), "id >= 30")
    assert sorted(got.column("id").to_pylist()) == [30, 32, 33, 40, 41, 42]
    # an aggregate over one column only
    total = lh.sql("SELECT sum(amount) AS s FROM silver.orders WHERE id < 12").column("s")
    assert total[0].as_py() == pytest.approx(1.5 * (1 + 2 + 3 + 10 + 11))


def test_an_empty_delete_file_deletes_nothing(lh: Lakehouse, five_files: Table) -> None:
    table = add_delete_file(five_files, deletes(), DataFileContent.POSITION_DELETES)
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)
    assert lh.sql("SELECT count(*) AS n FROM silver.orders").column("n")[0].as_py() == 20


def test_positions_of_a_data_file_not_in_the_scan_are_ignored(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    elsewhere = five_files.metadata.location + "/data/not-a-file-of-this-table.parquet"
    table = add_delete_file(
        five_files,
        deletes((elsewhere, 0), (elsewhere, 1), (file_of(files, 20), 1)),
        DataFileContent.POSITION_DELETES,
    )
    ids = lh.sql("SELECT id FROM silver.orders").column("id").to_pylist()
    assert len(ids) == 19 and 21 not in ids
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)


def test_position_and_equality_deletes_on_the_same_file(lh: Lakehouse, five_files: Table) -> None:
    files = file_ids(five_files)
    table = add_delete_file(
        five_files,
        deletes((file_of(files, 10), 0), (file_of(files, 30), 3)),
        DataFileContent.POSITION_DELETES,
    )
    table = add_delete_file(
        table,
        pa.table({"id": pa.array([12, 31], pa.int64())}),
        DataFileContent.EQUALITY_DELETES,
        [1],
    )
    ids = sorted(lh.sql("SELECT id FROM silver.orders").column("id").to_pylist())
    assert ids == [0, 1, 2, 3, 11, 13, 20, 21, 22, 23, 30, 32, 40, 41, 42, 43]


def test_a_full_read_masks_some_files_and_anti_joins_those_with_equality_deletes_too(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    table = add_delete_file(
        five_files, deletes((file_of(files, 10), 0)), DataFileContent.POSITION_DELETES
    )
    table = add_delete_file(
        table, pa.table({"id": pa.array([12], pa.int64())}), DataFileContent.EQUALITY_DELETES, [1]
    )
    table.append(orders([50, 51, 52]))  # newer than the equality delete: position deletes only
    table = lh.catalog("main").load_table("silver.orders")
    (newest,) = {f.path for f in plan_table(table, "t", AlwaysTrue()).files} - set(files)
    table = add_delete_file(table, deletes((newest, 1)), DataFileContent.POSITION_DELETES)
    scan = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    used = without_unused_deletes(table.io, scan.files)
    assert [f.path for f in keep_mask_files(replace(scan, files=used))] == [newest]
    assert any(f.position_deletes and f.equality_deletes for f in used)
    ids = sorted(lh.sql("SELECT id FROM silver.orders").column("id").to_pylist())
    assert ids == [0, 1, 2, 3, 11, 13, 20, 21, 22, 23, 30, 31, 32, 33, 40, 41, 42, 43, 50, 52]


def test_rows_deleted_by_merge_on_read_writes_match_pyiceberg(
    lh: Lakehouse, five_files: Table
) -> None:
    from lakehouse.tables import delete_rows

    delete_rows(five_files, pa.table({"id": pa.array([0, 11, 22, 33, 43], pa.int64())}), ["id"])
    table = lh.catalog("main").load_table("silver.orders")
    plan = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    assert plan.delete_files, "the table's default write mode is merge-on-read"
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)
    # read again: the delete files come from the cache, same rows
    ids = lh.sql("SELECT id FROM silver.orders WHERE id > 20").column("id").to_pylist()
    assert sorted(ids) == [21, 23, 30, 31, 32, 40, 41, 42]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_deletes_and_filters_match_pyiceberg(
    lh: Lakehouse, five_files: Table, seed: int
) -> None:
    import random

    rng = random.Random(seed)
    files = file_ids(five_files)
    paths = sorted(files)
    table = five_files
    for _ in range(rng.randint(1, 4)):  # delete files, some spanning several data files
        targets = rng.sample(paths, rng.randint(1, 3))
        pairs = [(p, pos) for p in targets for pos in rng.sample(range(4), rng.randint(0, 3))]
        if rng.random() < 0.3:
            pairs.append((table.metadata.location + "/data/gone.parquet", 0))
        table = add_delete_file(table, deletes(*pairs), DataFileContent.POSITION_DELETES)
    low = rng.choice([0, 10, 21, 35])
    sql = f"SELECT id, amount FROM silver.orders WHERE id >= {low}"
    assert sorted_rows(lh.sql(sql)) == pyiceberg_rows(table, ("id", "amount"), f"id >= {low}")
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)


# -- a full read pairs rows with a mask of kept rows; a filtered read anti-joins ----------------


def test_a_full_read_joins_a_kept_rows_mask_by_position_and_a_filtered_read_anti_joins(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    pairs = [(file_of(files, 0), 1), (file_of(files, 20), 0), (file_of(files, 20), 3)]
    table = add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    full = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    full = replace(full, files=without_unused_deletes(table.io, full.files))
    assert sorted(f.path for f in keep_mask_files(full)) == sorted(
        [file_of(files, 0), file_of(files, 20)]
    )
    sql = parquet_sql(full, None, '"k"', [keep_mask_files(full)])
    assert sql.count("POSITIONAL JOIN") == 1 and "ANTI JOIN" not in sql
    # one ordered read per DuckDB thread, runs of files of about equal rows
    groups = keep_mask_groups(full, 2)
    assert [len(g) for g in groups] == [1, 1]
    assert [f for g in groups for f in g] == keep_mask_files(full)
    two = parquet_sql(full, None, '"k"', groups)
    assert two.count("POSITIONAL JOIN") == 2
    assert "WHERE k.keep_0" in two and "WHERE k.keep_1" in two
    filtered = query.plan(lh, "SELECT * FROM silver.orders WHERE id >= 1")
    assert keep_mask_files(filtered.tables["silver.orders"]) == []
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders WHERE id >= 1")) == pyiceberg_rows(
        table, row_filter="id >= 1"
    )


def test_masked_reads_in_several_runs_run_without_insertion_order_and_return_the_same_rows(
    lh: Lakehouse, five_files: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    # while DuckDB keeps insertion order it reads the runs one after the other (one core)
    monkeypatch.setattr("lakehouse.query.execution.os.cpu_count", lambda: 2)
    compacted = query.plan(lh, "SELECT * FROM silver.orders")
    files = file_ids(five_files)
    pairs = [(file_of(files, 0), 1), (file_of(files, 40), 2)]
    table = add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    full = query.plan(lh, "SELECT * FROM silver.orders")
    filtered = query.plan(lh, "SELECT * FROM silver.orders WHERE id >= 1")
    assert len(keep_mask_groups(full.tables["silver.orders"], 2)) == 2
    assert unordered(full)
    assert not unordered(compacted) and not unordered(filtered)  # one read, or an anti-join
    asked: list[bool] = []
    borrowed = sandbox.borrowed

    def spy(paths: list[str], *, ordered: bool = True):  # type: ignore[no-untyped-def]
        asked.append(ordered)
        return borrowed(paths, ordered=ordered)

    monkeypatch.setattr(sandbox, "borrowed", spy)
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)
    assert lh.sql("SELECT id FROM silver.orders ORDER BY id").column("id").to_pylist() == sorted(
        r["id"] for r in pyiceberg_rows(table)
    )
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders WHERE id >= 1")) == pyiceberg_rows(
        table, row_filter="id >= 1"
    )
    assert asked == [False, False, True]


def test_the_kept_rows_mask_marks_deleted_rows_file_by_file_and_is_kept(
    five_files: Table,
) -> None:
    files = file_ids(five_files)
    a, b = file_of(files, 0), file_of(files, 10)
    # positions outside a file (4 of a four-row file, or negative) delete nothing
    table = add_delete_file(
        five_files, deletes((a, 3), (b, 0), (b, 2), (a, 4), (b, -1)),
        DataFileContent.POSITION_DELETES,
    )  # fmt: skip
    plan = plan_table(table, "silver.orders", AlwaysTrue())
    cache, masks = DeleteFileCache(), KeepMaskCache()
    by_path = {f.path: f for f in without_unused_deletes(table.io, plan.files, cache)}
    mask = keep_mask_table(table.io, [[by_path[a], by_path[b]]], cache, masks)
    assert mask.column_names == [keep_column(0)]
    kept = [True, True, True, False, False, True, False, True]
    assert mask.column(keep_column(0)).to_pylist() == kept
    assert mask.column(keep_column(0)).num_chunks == 2 and len(masks) == 2
    assert masks.mask(table.io, by_path[a], cache) is masks.mask(table.io, by_path[a], cache)
    assert keep_mask_table(table.io, [], cache, masks).num_rows == 0
    # a column per run, the shorter padded with false (rows no file of its run holds)
    runs = keep_mask_table(table.io, [[by_path[b]], [by_path[a], by_path[b]]], cache, masks)
    assert runs.column(keep_column(0)).to_pylist() == kept[4:] + [False] * 4
    assert runs.column(keep_column(1)).to_pylist() == kept
    # the same runs again: the table made the first time; other runs: another table
    again = keep_mask_table(table.io, [[by_path[a], by_path[b]]], cache, masks)
    assert again is mask and runs is not mask
    bounded = KeepMaskCache(max_rows=5, max_table_bytes=0)
    first = keep_mask_table(table.io, [[by_path[a], by_path[b]]], cache, bounded)
    assert len(bounded) == 1
    # no room for tables: made anew each time
    assert keep_mask_table(table.io, [[by_path[a], by_path[b]]], cache, bounded) is not first
    bounded.clear()
    assert len(bounded) == 0


@pytest.mark.parametrize("byte_rows", [0, 1_000])
def test_masks_are_bytes_up_to_a_row_budget_then_bits_and_read_the_same(
    lh: Lakehouse, five_files: Table, byte_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.query import deletes as deletes_module

    monkeypatch.setattr(deletes_module, "MAX_BYTE_MASK_ROWS", byte_rows)
    files = file_ids(five_files)
    pairs = [(file_of(files, first), pos) for first in (0, 20, 30) for pos in (1, 3)]
    table = add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    plan = plan_table(table, "silver.orders", AlwaysTrue())
    used = without_unused_deletes(table.io, plan.files)
    runs = keep_mask_groups(replace(plan, files=used), 2)
    mask = keep_mask_table(table.io, runs, DeleteFileCache(), KeepMaskCache())
    assert mask.num_columns == 2
    assert mask.schema.field(keep_column(0)).type == (pa.bool8() if byte_rows else pa.bool_())
    assert sorted_rows(lh.sql("SELECT * FROM silver.orders")) == pyiceberg_rows(table)


def test_a_mask_slice_starting_inside_a_byte_unpacks_to_the_same_rows() -> None:
    from lakehouse.query.deletes import _bool8

    bits = pa.array([i % 3 != 0 for i in range(40)], pa.bool_())
    for start in (0, 3, 8, 13):
        part = bits.slice(start, 20)
        assert isinstance(part, pa.BooleanArray)
        assert _bool8(part).storage.to_pylist() == [int(v) for v in part.to_pylist()]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM silver.orders LIMIT 7",
        "SELECT id FROM silver.orders ORDER BY amount DESC LIMIT 3",
        "SELECT id, amount FROM silver.orders LIMIT 5 OFFSET 9",
        "SELECT a.id, b.amount FROM silver.orders a JOIN silver.orders b USING (id)",
        "SELECT count(*) AS n, sum(amount) AS s FROM silver.orders",
        # filters DuckDB evaluates but the planner does not push: above the positional join
        "SELECT id FROM silver.orders WHERE amount * 2 > 40",
        "SELECT id, region FROM silver.orders WHERE id % 3 = 1 OR region LIKE 'X%'",
    ],
)
def test_reads_through_the_mask_agree_with_the_anti_join(
    lh: Lakehouse, five_files: Table, sql: str
) -> None:
    files = file_ids(five_files)
    pairs = [(file_of(files, first), pos) for first in (0, 20, 40) for pos in (0, 2)]
    add_delete_file(five_files, deletes(*pairs), DataFileContent.POSITION_DELETES)
    plan = query.plan(lh, sql)
    # the same plan read with the anti-join: the mask is skipped when a predicate is pushed
    anti = {name: replace(scan, predicates=("true",)) for name, scan in plan.tables.items()}
    assert all(keep_mask_files(scan) for scan in plan.tables.values())
    assert not any(keep_mask_files(scan) for scan in anti.values())
    ordered = "ORDER BY" in sql
    with_mask = lh.sql(sql)
    with_anti = query.session(lh).run(replace(plan, tables=anti))
    if ordered:
        assert with_mask.to_pylist() == with_anti.to_pylist()
    else:
        assert len(with_mask) == len(with_anti)
    if "LIMIT" not in sql:
        assert sorted_rows(with_mask) == sorted_rows(with_anti)
    live = {r["id"] for r in pyiceberg_rows(five_files.catalog.load_table("silver.orders"))}
    if "id" in with_mask.column_names:
        assert set(with_mask.column("id").to_pylist()) <= live


@pytest.mark.parametrize("off_by", [1, -1])
def test_a_manifest_that_miscounts_a_files_rows_does_not_shift_the_mask(
    lh: Lakehouse, five_files: Table, off_by: int
) -> None:
    files = file_ids(five_files)
    first, second = file_of(files, 10), file_of(files, 30)
    table = add_delete_file(
        five_files, deletes((first, 1), (second, 2)), DataFileContent.POSITION_DELETES
    )
    plan = query.plan(lh, "SELECT * FROM silver.orders")
    scan = plan.tables["silver.orders"]
    # the masks are sized by each file's own footer, not by the manifest's record_count
    wrong = tuple(
        replace(f, record_count=f.record_count + off_by) if f.path == first else f
        for f in scan.files
    )
    used = without_unused_deletes(five_files.io, wrong)
    assert len(keep_mask_files(replace(scan, files=used))) == 2
    bad = replace(plan, tables={"silver.orders": replace(scan, files=wrong)})
    assert sorted_rows(query.session(lh).run(bad)) == pyiceberg_rows(table)


# -- the delete file cache and its join table ---------------------------------------------------


def test_delete_files_are_read_once_and_grouped_by_data_file(five_files: Table) -> None:
    files = file_ids(five_files)
    a, b = file_of(files, 0), file_of(files, 10)
    table = add_delete_file(
        five_files, deletes((b, 3), (a, 2), (b, 1), (a, 2)), DataFileContent.POSITION_DELETES
    )
    [delete_path] = {d.file_path for t in table.scan().plan_files() for d in t.delete_files}
    cache = DeleteFileCache()
    grouped = cache.positions(table.io, delete_path)
    assert {k: v.to_pylist() for k, v in grouped.items()} == {a: [2], b: [1, 3]}
    assert cache.positions(table.io, delete_path) is grouped
    assert len(cache) == 1 and cache.positions_held == 3


@pytest.mark.parametrize(
    "positions", [[0, 1, 3], [3, 1, 0], [1, 1, 3, 0, 3]], ids=["sorted", "reversed", "repeated"]
)
def test_one_data_files_positions_are_kept_sorted_and_distinct(
    five_files: Table, positions: list[int]
) -> None:
    a = file_of(file_ids(five_files), 0)
    table = add_delete_file(
        five_files, deletes(*[(a, p) for p in positions]), DataFileContent.POSITION_DELETES
    )
    [delete_path] = {d.file_path for t in table.scan().plan_files() for d in t.delete_files}
    assert DeleteFileCache().positions(table.io, delete_path)[a].to_pylist() == [0, 1, 3]


def test_the_delete_file_cache_is_bounded(five_files: Table) -> None:
    a = file_of(file_ids(five_files), 0)
    table = five_files
    for pos in range(3):
        table = add_delete_file(table, deletes((a, pos)), DataFileContent.POSITION_DELETES)
    paths = sorted({d.file_path for t in table.scan().plan_files() for d in t.delete_files})
    cache = DeleteFileCache(max_positions=2)
    for path in paths:
        cache.positions(table.io, path)
    assert len(cache) == 2 and cache.positions_held == 2
    cache.clear()
    assert len(cache) == 0 and cache.positions_held == 0


def test_join_table_numbers_files_as_duckdb_does(lh: Lakehouse, five_files: Table) -> None:
    files = file_ids(five_files)
    a, b = file_of(files, 0), file_of(files, 30)
    table = add_delete_file(
        five_files, deletes((b, 2), (a, 1), (b, 0)), DataFileContent.POSITION_DELETES
    )
    plan = plan_table(table, "silver.orders", AlwaysTrue())
    cache = DeleteFileCache()
    plan = replace(plan, files=without_unused_deletes(table.io, plan.files, cache))
    positional = position_delete_files(plan)
    assert {f.path for f in positional} == {a, b}
    joined = position_delete_table(
        table.io, [(f.path, f.position_deletes) for f in positional], cache
    )
    assert joined.schema.field(FILE_ID).type == pa.uint64()
    assert joined.schema.field(POSITION).type == pa.int64()
    index = {f.path: i for i, f in enumerate(positional)}
    assert sorted(
        zip(joined.column(FILE_ID).to_pylist(), joined.column(POSITION).to_pylist(), strict=True)
    ) == (sorted([(index[a], 1), (index[b], 0), (index[b], 2)]))
    empty = position_delete_table(table.io, [], DeleteFileCache())
    assert empty.num_rows == 0 and empty.schema == joined.schema


def relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views of ``con`` (registered Arrow tables are views)."""
    tables = con.sql("SELECT table_name FROM duckdb_tables()").fetchall()
    views = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return sorted(row[0] for row in tables + views)


def borrowed_by(plan: QueryPlan) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The connection a query of ``plan`` borrows."""
    return sandbox.borrowed(allowed_paths(plan), ordered=not unordered(plan))


def test_a_filtered_reads_view_and_delete_table_are_removed_after_the_query(
    lh: Lakehouse, five_files: Table
) -> None:
    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0)), DataFileContent.POSITION_DELETES)
    sql = "SELECT count(*) AS n FROM silver.orders WHERE id >= 0"  # the anti-join
    plan = query.plan(lh, sql)
    with borrowed_by(plan) as con:  # the connection the query borrows
        con.execute("CREATE TEMP TABLE marker (x INTEGER)")
    assert lh.sql(sql).column("n")[0].as_py() == 19
    with borrowed_by(plan) as con:
        assert relations(con) == ["marker"], "the query ran on this connection and left nothing"


def test_a_full_reads_view_and_mask_stay_for_the_next_query_of_the_same_files(
    lh: Lakehouse, five_files: Table
) -> None:
    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0)), DataFileContent.POSITION_DELETES)
    sql = "SELECT count(*) AS n FROM silver.orders"
    plan = query.plan(lh, sql)
    sandbox.close_cached()

    def made() -> dict[str, int]:
        """DuckDB's object id of each relation the query left (a new one when made again)."""
        with borrowed_by(plan) as con:
            rows = con.sql("SELECT view_name, view_oid FROM duckdb_views() WHERE NOT internal")
            return dict(rows.fetchall())

    assert lh.sql(sql).column("n")[0].as_py() == 19
    first = made()
    assert sorted(first) == ["__lakehouse_keep_silver.orders", "orders"]
    for _ in range(2):
        assert lh.sql(sql).column("n")[0].as_py() == 19
    assert made() == first, "used as they were"
    KEEP_MASKS.clear()  # an equal mask made anew is registered anew, with its view
    assert lh.sql(sql).column("n")[0].as_py() == 19
    again = made()
    assert sorted(again) == sorted(first) and set(again.values()).isdisjoint(first.values())
    add_delete_file(lh.table("silver.orders"), deletes((a, 1)), DataFileContent.POSITION_DELETES)
    assert lh.sql(sql).column("n")[0].as_py() == 18, "a new version reads its own files"
    sandbox.close_cached()


def test_a_view_with_a_mask_too_large_to_keep_is_removed_after_the_query(
    lh: Lakehouse, five_files: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.query import execution

    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0)), DataFileContent.POSITION_DELETES)
    monkeypatch.setattr(execution, "MAX_KEPT_MASK_BYTES", 0)
    sql = "SELECT count(*) AS n FROM silver.orders"
    sandbox.close_cached()
    assert lh.sql(sql).column("n")[0].as_py() == 19
    with borrowed_by(query.plan(lh, sql)) as con:
        assert relations(con) == []
    sandbox.close_cached()


def test_a_kept_view_replaced_by_one_that_cannot_stay_goes_with_its_mask(
    lh: Lakehouse, five_files: Table
) -> None:
    from lakehouse.query.execution import KeptViews, connect_duckdb, run_registered

    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0)), DataFileContent.POSITION_DELETES)
    full = query.plan(lh, "SELECT count(*) AS n FROM silver.orders")
    filtered = query.plan(lh, "SELECT count(*) AS n FROM silver.orders WHERE id >= 0")
    con = connect_duckdb(allowed_paths(full))
    kept = KeptViews()
    assert run_registered(con, full, kept).column("n")[0].as_py() == 19
    assert relations(con) == ["__lakehouse_keep_silver.orders", "orders"]
    assert run_registered(con, filtered, kept).column("n")[0].as_py() == 19  # the anti-join
    assert relations(con) == []
    assert run_registered(con, full, kept).column("n")[0].as_py() == 19
    assert relations(con) == ["__lakehouse_keep_silver.orders", "orders"]
    con.close()


def test_a_callers_connection_keeps_one_delete_table_per_view(
    lh: Lakehouse, five_files: Table
) -> None:
    from lakehouse.query.execution import allowed_paths, connect_duckdb

    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0), (a, 1)), DataFileContent.POSITION_DELETES)
    plan = query.plan(lh, "SELECT * FROM silver.orders")
    con = connect_duckdb(allowed_paths(plan))
    session = query.session(lh, connection=con)
    for _ in range(3):  # a full read: the kept-rows mask; a filtered one: the anti-join
        assert len(session.execute("SELECT id FROM silver.orders")) == 18
        assert len(session.execute("SELECT id FROM silver.orders WHERE id >= 3")) == 17
    views = [row[0] for row in con.sql("SELECT view_name FROM duckdb_views()").fetchall()]
    assert len([v for v in views if v.startswith("__lakehouse_deletes_")]) == 1
    assert len([v for v in views if v.startswith("__lakehouse_keep_")]) == 1
    con.close()


# -- manifests read once ---------------------------------------------------------------------------


def test_planning_through_the_manifest_cache_matches_pyiceberg(
    lh: Lakehouse, five_files: Table
) -> None:
    files = file_ids(five_files)
    table = add_delete_file(
        five_files, deletes((file_of(files, 20), 0)), DataFileContent.POSITION_DELETES
    )
    for row_filter in (AlwaysTrue(), GreaterThanOrEqual("id", 20)):
        ours = plan_table(table, "silver.orders", row_filter)
        theirs = table.scan(row_filter=row_filter).plan_files()
        assert sorted((f.path, f.position_deletes) for f in ours.files) == sorted(
            (t.file.file_path, tuple(sorted(d.file_path for d in t.delete_files))) for t in theirs
        )


def test_manifest_entries_are_read_once_and_bounded(five_files: Table) -> None:
    snapshot = five_files.current_snapshot()
    assert snapshot is not None
    cache = ManifestEntryCache(max_entries=3)
    listed = cache.manifests(five_files.io, snapshot.manifest_list)
    assert cache.manifests(five_files.io, snapshot.manifest_list) is listed
    assert len(listed) == 5
    first = cache.entries(five_files.io, listed[0])
    assert cache.entries(five_files.io, listed[0]) is first
    for manifest in listed:
        cache.entries(five_files.io, manifest)
    assert len(cache) == 3  # one entry per manifest, three kept
    cache.clear()
    assert len(cache) == 0


def test_a_table_version_is_planned_once_per_filter(
    lh: Lakehouse, five_files: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.query import planning

    planning.SCAN_PLANS.clear()
    first = plan_table(five_files, "silver.orders", AlwaysTrue())
    assert len(first.files) == 5

    def refused(*args: object) -> None:
        raise AssertionError("planned again")

    monkeypatch.setattr(planning, "_plan_files", refused)
    again = plan_table(five_files, "silver.orders", AlwaysTrue(), ["id"])
    assert again.files == first.files and again.columns == ("id",)
    with pytest.raises(AssertionError, match="planned again"):  # another filter
        plan_table(five_files, "silver.orders", GreaterThanOrEqual("id", 3))
    a = file_of(file_ids(five_files), 0)
    add_delete_file(five_files, deletes((a, 0)), DataFileContent.POSITION_DELETES)
    with pytest.raises(AssertionError, match="planned again"):  # another version
        plan_table(lh.table("silver.orders"), "silver.orders", AlwaysTrue())


def test_planned_files_are_bounded_by_their_count() -> None:
    from lakehouse.query.planning import ScanFile, ScanPlanCache

    cache = ScanPlanCache(max_files=3)
    files = tuple(ScanFile(f"f{i}", 1, (), ()) for i in range(2))
    cache.put(("m1", "true"), (files, None))
    cache.put(("m2", "true"), ((), None))  # no file: counted as one
    assert cache.get(("m1", "true")) == (files, None)
    cache.put(("m3", "true"), (files, None))
    assert cache.get(("m2", "true")) is None and cache.get(("m1", "true")) is None
    assert cache.get(("m3", "true")) == (files, None)


def test_files_are_cut_into_runs_of_about_equal_rows_one_per_read() -> None:
    from pyiceberg.expressions import AlwaysTrue as TrueFilter

    from lakehouse.query.planning import ScanFile, TableScanPlan

    def scan(*counts: int) -> TableScanPlan:
        files = tuple(ScanFile(f"f{i}", n, ("d",)) for i, n in enumerate(counts))
        return TableScanPlan("s.t", 1, TrueFilter(), None, files, "parquet")

    def runs(plan: TableScanPlan, reads: int) -> list[list[str]]:
        return [[f.path for f in g] for g in keep_mask_groups(plan, reads)]

    assert runs(scan(10, 10, 10, 10), 2) == [["f0", "f1"], ["f2", "f3"]]
    assert runs(scan(100, 1, 1, 1), 2) == [["f0"], ["f1", "f2", "f3"]]
    assert runs(scan(5, 5), 8) == [["f0"], ["f1"]]
    assert runs(scan(5, 5, 5), 1) == [["f0", "f1", "f2"]]
    assert runs(scan(0, 0), 2) == [["f0", "f1"]]
    assert runs(scan(), 2) == []


def test_manifest_entries_read_with_the_schema_resolved_once_are_pyicebergs(
    lh: Lakehouse, five_files: Table
) -> None:
    from lakehouse.tables import delete_rows
    from lakehouse.tables.manifests import read_entries

    # data manifests, a delete manifest, and a rewrite leaving DELETED entries behind
    delete_rows(five_files, pa.table({"id": pa.array([1, 22], pa.int64())}), ["id"])
    table = lh.catalog("main").load_table("silver.orders")
    table.delete("id >= 40")  # copy-on-write: removes a data file
    table = lh.catalog("main").load_table("silver.orders")
    snapshot = table.current_snapshot()
    assert snapshot is not None

    def described(entries: list[ManifestEntry]) -> list[tuple[object, ...]]:
        return [
            (e.status, e.snapshot_id, e.sequence_number, e.file_sequence_number,
             e.data_file.content, e.data_file.file_path, e.data_file.record_count,
             e.data_file.lower_bounds, e.data_file.upper_bounds)
            for e in entries
        ]  # fmt: skip

    manifests = snapshot.manifests(table.io)
    assert len(manifests) > 2
    for _ in range(2):  # the second pass reuses the resolved readers
        for manifest in manifests:
            for discard in (True, False):
                theirs = manifest.fetch_manifest_entry(table.io, discard_deleted=discard)
                ours = read_entries(table.io, manifest, discard_deleted=discard)
                assert described(ours) == described(theirs)
