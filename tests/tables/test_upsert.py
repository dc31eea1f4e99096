"""Upserts and deletes by key: one row-delta snapshot, merge-on-read or copy-on-write."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from pyiceberg.manifest import DataFileContent
from pyiceberg.table import Table

from lakehouse.client import Lakehouse
from lakehouse.maintenance.compact import compact_table
from lakehouse.maintenance.policies import CompactionPolicy
from lakehouse.tables import (
    COPY_ON_WRITE,
    RowLevelWriteError,
    UpsertKeyError,
    delete_rows,
    upsert,
)
from lakehouse.tables.files import forget_keys
from lakehouse.tables.rowdelta import referenced_data_file
from lakehouse.tables.upsert import KEY_PROPERTY, SMALL_FILE_ROWS, declared_keys, lookup
from tests.tables.conftest import content, keys, make_rows

NewTable = Callable[..., Table]
#: Tables whose small files an upsert never rewrites: every change is a delete file.
NO_FOLDING = {SMALL_FILE_ROWS: "0"}


def live_files(table: Table) -> tuple[list[str], list[str]]:
    """(data files, position delete files) of the table's current snapshot."""
    data, deletes = [], []
    snapshot = table.current_snapshot()
    assert snapshot is not None
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.data_file.content == DataFileContent.DATA:
                data.append(entry.data_file.file_path)
            else:
                deletes.append(entry.data_file.file_path)
    return data, deletes


def test_upsert_inserts_new_keys_updates_changed_ones_and_leaves_identical_rows(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)))
    before = content(table)
    rows = pa.concat_tables(
        [make_rows([1], tag="changed"), make_rows([2]), make_rows([50], tag="new")]
    )

    result = upsert(table, rows, ["id"])

    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (1, 1, 1, 0)
    table = lh.catalog("main").load_table("s.t")
    expected = {**before, 1: ("changed1", 0.5), 50: ("new50", 25.0)}
    assert content(table) == expected
    # the same rows through the lakehouse's own SQL path (DuckDB applies the deletes)
    got = lh.sql("SELECT id, name, amount FROM s.t ORDER BY id").to_pylist()
    assert {r["id"]: (r["name"], r["amount"]) for r in got} == expected


def test_a_key_the_table_holds_twice_counts_once_and_is_left_once(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)), properties=NO_FOLDING)
    table.append(make_rows([3, 4], tag="again"))  # keys 3 and 4 now twice, in two versions
    table = lh.catalog("main").load_table("s.t")

    # 3 changes, 4 is identical to one of its two versions, 50 is new
    rows = pa.concat_tables([make_rows([3], tag="x"), make_rows([4]), make_rows([50])])
    result = upsert(table, rows, ["id"])

    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    got = content(lh.catalog("main").load_table("s.t"))  # asserts that no key is left twice
    assert got[3] == ("x3", 1.5) and got[4] == ("v4", 2.0) and got[50] == ("v50", 25.0)
    assert len(got) == 11


def test_an_upsert_is_one_overwrite_snapshot_with_a_position_delete_file(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)), properties=NO_FOLDING)
    parent = table.current_snapshot()
    assert parent is not None

    upsert(table, make_rows([3], tag="x"), ["id"], properties={"lakehouse.run": "r1"})

    table = lh.catalog("main").load_table("s.t")
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.parent_snapshot_id == parent.snapshot_id
    summary = snapshot.summary
    assert summary.operation.value == "overwrite"
    assert summary["added-data-files"] == "1"
    assert summary["added-records"] == "1"
    assert summary["added-position-delete-files"] == "1"
    assert summary["added-delete-files"] == "1"
    assert summary["added-position-deletes"] == "1"
    assert summary["total-position-deletes"] == "1"
    assert summary["total-records"] == "11"  # Iceberg counts data rows; deletes apart
    assert summary["lakehouse.run"] == "r1"
    data, deletes = live_files(table)
    assert len(data) == 2 and len(deletes) == 1


def test_small_upserts_rewrite_the_small_files_they_would_otherwise_pile_up(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(1000)), properties={SMALL_FILE_ROWS: "50"})
    catalog = lh.catalog("main")
    for i in range(8):
        # one update of the big file's row 3 and five new keys far outside its bounds
        upsert(table, make_rows([3, *range(5000 + i * 5, 5005 + i * 5)], tag=f"u{i}"), ["id"])
        table = catalog.load_table("s.t")

    data, deletes = live_files(table)
    # the 1000-row file takes delete files; the upserts' own rows share one small file
    # that each upsert rewrites, until it holds more than 50 rows
    assert len(data) == 2
    assert len(deletes) == 1
    expected = {i: (f"v{i}", i / 2) for i in range(1000)}
    expected |= {3: ("u73", 1.5)}
    expected |= {k: (f"u{(k - 5000) // 5}{k}", k / 2) for k in range(5000, 5040)}
    assert content(table) == expected


def test_a_table_can_turn_small_file_rewrites_off_or_refuse_a_bad_setting(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)), properties=NO_FOLDING)
    upsert(table, make_rows([3], tag="x"), ["id"])
    table = lh.catalog("main").load_table("s.t")
    assert len(live_files(table)[0]) == 2

    bad = new_table(name="bad", ids=list(range(10)), properties={SMALL_FILE_ROWS: "many"})
    with pytest.raises(RowLevelWriteError, match="small-file-rows='many' is not a number"):
        upsert(bad, make_rows([3], tag="x"), ["id"])


def test_repeated_upserts_keep_one_delete_file_per_data_file(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(100)), properties=NO_FOLDING)
    catalog = lh.catalog("main")
    for i in range(5):
        upsert(table, make_rows([i * 7], tag=f"u{i}"), ["id"])
        table = catalog.load_table("s.t")

    data, deletes = live_files(table)
    assert len(data) == 6  # the original file and one per upsert
    assert len(deletes) == 1, "the delete file of the original data file was folded each time"
    assert table.scan().to_arrow().num_rows == 100
    assert content(table)[28] == ("u428", 14.0)


def test_delete_rows_writes_a_delete_snapshot(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(10)))

    result = delete_rows(table, keys([2, 3, 99]), ["id"])

    assert result.deleted == 2
    table = lh.catalog("main").load_table("s.t")
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation.value == "delete"
    assert sorted(content(table)) == [0, 1, 4, 5, 6, 7, 8, 9]


def test_nothing_changed_commits_nothing(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(10)))
    head = table.current_snapshot()

    result = upsert(table, make_rows([1, 2, 3]), ["id"], delete_keys=keys([42]))

    assert result.snapshot_id is None and result.unchanged == 3
    after = lh.catalog("main").load_table("s.t").current_snapshot()
    assert head is not None and after is not None
    assert after.snapshot_id == head.snapshot_id


def test_a_few_equal_rows_in_a_write_that_inserts_are_rewritten_not_proved(
    lh: Lakehouse, new_table: NewTable, decoded_columns: list[list[str]]
) -> None:
    # one row as it is, in a 640-row file (fewer than 1/64 of it), and one new key: the
    # write changes the table anyway, and proving the row unchanged would decode the
    # file's value columns, where rewriting it costs one row
    table = new_table(ids=list(range(640)), properties=NO_FOLDING)
    before = content(table)
    rows = pa.concat_tables([make_rows([7]), make_rows([5000], tag="new")])
    decoded_columns.clear()  # only what this upsert reads
    result = upsert(table, rows, ["id"])

    assert decoded_columns == []
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    table = lh.catalog("main").load_table("s.t")
    assert content(table) == {**before, 5000: ("new5000", 2500.0)}
    # alone, the same row is proved unchanged: a write that changes nothing commits nothing
    alone = upsert(table, make_rows([7]), ["id"])
    assert (alone.updated, alone.unchanged, alone.snapshot_id) == (0, 1, None)
    assert decoded_columns == [["name"], ["amount"]]  # both columns compared


def test_few_key_upserts_decode_a_row_groups_keys_once_per_process(
    lh: Lakehouse, new_table: NewTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = new_table(
        ids=list(range(40)), properties={**NO_FOLDING, "write.parquet.row-group-limit": "10"}
    )
    forget_keys()
    upsert(table, make_rows([12], tag="a"), ["id"])  # decodes row group 1's keys
    opened: list[str] = []
    io = lh.catalog("main").load_table("s.t").io
    new_input = type(io).new_input

    def spy(self: object, location: str) -> object:
        opened.append(location)
        return new_input(self, location)  # type: ignore[arg-type]

    monkeypatch.setattr(type(io), "new_input", spy)

    result = upsert(lh.catalog("main").load_table("s.t"), make_rows([17], tag="b"), ["id"])

    # the key's row group was decoded by the first upsert: the data file is not read again
    assert result.updated == 1 and not [p for p in opened if p.endswith(".parquet")]
    assert content(lh.catalog("main").load_table("s.t"))[17] == ("b17", 8.5)


def test_a_key_both_upserted_and_deleted_is_upserted(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=[1, 2])

    upsert(table, make_rows([1], tag="kept"), ["id"], delete_keys=keys([1, 2]))

    assert content(lh.catalog("main").load_table("s.t")) == {1: ("kept1", 0.5)}


def test_composite_keys(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(6)))
    # (id, name) as the key: a new name is a new row, the same pair an update
    rows = pa.Table.from_pylist(
        [{"id": 1, "name": "v1", "amount": 99.0}, {"id": 1, "name": "other", "amount": 1.0}],
        schema=table.schema().as_arrow(),
    )

    result = upsert(table, rows, ["id", "name"])

    assert (result.inserted, result.updated) == (1, 1)
    got = lh.catalog("main").load_table("s.t").scan().to_arrow().to_pylist()
    assert sorted((r["id"], r["name"], r["amount"]) for r in got if r["id"] == 1) == [
        (1, "other", 1.0),
        (1, "v1", 99.0),
    ]


def test_new_columns_are_added_to_the_table(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=[1, 2])
    rows = make_rows([2], tag="w").append_column("extra", pa.array(["e"]))

    upsert(table, rows, ["id"])

    got = lh.sql("SELECT id, name, extra FROM s.t ORDER BY id").to_pylist()
    assert got == [
        {"id": 1, "name": "v1", "extra": None},
        {"id": 2, "name": "w2", "extra": "e"},
    ]


def test_copy_on_write_tables_rewrite_the_affected_files(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(20)), properties={"write.merge.mode": COPY_ON_WRITE})

    result = upsert(table, make_rows([5], tag="cow"), ["id"], delete_keys=keys([6]))

    assert result.mode == COPY_ON_WRITE
    table = lh.catalog("main").load_table("s.t")
    data, deletes = live_files(table)
    assert deletes == [] and len(data) == 1  # the rewritten file holds old and new rows
    assert len(content(table)) == 19 and content(table)[5] == ("cow5", 2.5)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (make_rows([1, 1]), "not unique in the new rows: id=1 appears 2 times"),
        (make_rows([5, 3, 3, 5, 5]), "not unique in the new rows: id=3 appears 2 times"),
        (
            make_rows([1, 1]).set_column(0, "id", pa.array(["a", "a"])),
            "not unique in the new rows: id='a' appears 2 times",
        ),
        (
            pa.table({"id": pa.array([None, 2], pa.int64()), "name": ["a", "b"]}),
            "NULL key column 'id'",
        ),
        (pa.table({"name": ["a"]}), "key column(s) id not in the new rows"),
    ],
)
def test_bad_keys_are_refused_and_change_nothing(
    lh: Lakehouse, new_table: NewTable, rows: pa.Table, message: str
) -> None:
    table = new_table(ids=[1, 2])
    head = table.current_snapshot()

    with pytest.raises(UpsertKeyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        upsert(table, rows, ["id"])

    after = lh.catalog("main").load_table("s.t").current_snapshot()
    assert head is not None and after is not None and after.snapshot_id == head.snapshot_id


def test_a_stale_writer_recomputes_on_the_new_head_and_loses_nothing(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)))
    stale = lh.catalog("main").load_table("s.t")
    upsert(table, make_rows([1], tag="first"), ["id"])

    result = upsert(
        stale,
        make_rows([1, 2], tag="second"),
        ["id"],
        reload=lambda: lh.catalog("main").load_table("s.t"),
    )

    assert result.attempts == 2
    rows = content(lh.catalog("main").load_table("s.t"))
    assert rows[1] == ("second1", 0.5) and rows[2] == ("second2", 1.0) and len(rows) == 10


def test_a_concurrent_compaction_of_the_file_is_not_a_lost_delete(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(40)), batches=4)
    stale = lh.catalog("main").load_table("s.t")
    compacted = compact_table(
        table, CompactionPolicy(min_small_files=2, target_file_size=1024 * 1024)
    )
    assert compacted.files_rewritten == 4, compacted

    upsert(
        stale,
        make_rows([3], tag="late"),
        ["id"],
        delete_keys=keys([4]),
        reload=lambda: lh.catalog("main").load_table("s.t"),
    )

    rows = content(lh.catalog("main").load_table("s.t"))
    assert rows[3] == ("late3", 1.5) and 4 not in rows and len(rows) == 39


def test_compaction_folds_the_delete_files_away(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(20)))
    delete_rows(table, keys(list(range(5))), ["id"])
    table = lh.catalog("main").load_table("s.t")
    assert live_files(table)[1]

    compact_table(table, CompactionPolicy(delete_ratio=0.1))

    table = lh.catalog("main").load_table("s.t")
    assert live_files(table)[1] == []
    assert sorted(content(table)) == list(range(5, 20))


def test_delete_files_name_the_one_data_file_they_apply_to(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(10)))
    delete_rows(table, keys([1]), ["id"])
    table = lh.catalog("main").load_table("s.t")
    task = next(iter(table.scan().plan_files()))

    (delete,) = task.delete_files
    assert referenced_data_file(delete) == task.file.file_path


def test_format_v1_tables_are_written_copy_on_write(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=[1, 2, 3], properties={"format-version": "1"})

    result = upsert(table, make_rows([2], tag="v1-"), ["id"])

    assert result.mode == COPY_ON_WRITE
    assert content(lh.catalog("main").load_table("s.t"))[2] == ("v1-2", 1.0)


def test_an_unknown_write_mode_is_refused(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=[1], properties={"write.merge.mode": "sometimes"})

    with pytest.raises(RowLevelWriteError, match="'sometimes' is not a write mode"):
        upsert(table, make_rows([1], tag="x"), ["id"])


def test_lookup_returns_the_current_rows_of_some_keys(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(30)), batches=3)
    upsert(table, make_rows([4], tag="new"), ["id"], delete_keys=keys([5]))
    table = lh.catalog("main").load_table("s.t")

    found = lookup(table, keys([4, 5, 6, 99]), ["id"], ["id", "name"])

    assert sorted(found.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 4, "name": "new4"},
        {"id": 6, "name": "v6"},
    ]
    with pytest.raises(RowLevelWriteError, match="no column"):
        lookup(table, keys([1]), ["id"], ["nope"])


def test_inserts_of_a_stale_upsert_are_not_rebased_onto_a_concurrent_insert_of_the_key(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(5)))
    stale = lh.catalog("main").load_table("s.t")
    table.append(make_rows([100], tag="appended"))

    result = upsert(
        stale,
        make_rows([100], tag="upserted"),
        ["id"],
        reload=lambda: lh.catalog("main").load_table("s.t"),
    )

    assert result.attempts == 2 and (result.inserted, result.updated) == (0, 1)
    assert content(lh.catalog("main").load_table("s.t"))[100] == ("upserted100", 50.0)


def test_many_keys_replace_every_old_version_of_a_key_even_twice_in_one_file(
    lh: Lakehouse, new_table: NewTable
) -> None:
    # more keys than IN prunes with: each file's key column is searched, sorted or not
    table = new_table(ids=list(range(300)), properties=NO_FOLDING)
    table.append(make_rows([8, 8, 150], tag="dup"))  # one key twice in one file
    table = lh.catalog("main").load_table("s.t")
    assert table.scan().to_arrow().num_rows == 303

    result = upsert(
        table,
        make_rows([*range(0, 200, 2), 1000], tag="u"),
        ["id"],
        delete_keys=keys(list(range(201, 280, 2))),
    )

    table = lh.catalog("main").load_table("s.t")
    got = content(table)  # asserts that no key is left twice
    assert result.deleted == 40
    assert got[8] == ("u8", 4.0) and got[150] == ("u150", 75.0) and got[7] == ("v7", 3.5)
    assert got[1000] == ("u1000", 500.0)
    assert 201 not in got and 279 not in got and 281 in got
    assert len(got) == 300 - 40 + 1


def test_many_keys_tell_every_changed_row_from_an_unchanged_one(
    lh: Lakehouse, new_table: NewTable
) -> None:
    # more keys than IN prunes with, in files of several row groups: values are compared
    # column by column, each row group's statistics first
    table = new_table(
        ids=list(range(400)),
        properties={**NO_FOLDING, "write.parquet.row-group-limit": "50"},
        batches=2,
    )
    before = content(table)
    schema = table.schema().as_arrow()
    same = [{"id": i, "name": f"v{i}", "amount": i / 2} for i in range(0, 100)]
    new_name_in_bounds = [{"id": i, "name": f"v{i + 1}", "amount": i / 2} for i in range(100, 130)]
    new_name_out_of_bounds = [{"id": i, "name": "zz", "amount": i / 2} for i in range(130, 160)]
    new_amount_only = [{"id": i, "name": f"v{i}", "amount": i / 2 + 0.25} for i in range(160, 190)]
    name_to_null = [{"id": i, "name": None, "amount": i / 2} for i in range(190, 200)]
    inserted = [{"id": i, "name": f"n{i}", "amount": 1.0} for i in range(1000, 1020)]
    rows = pa.Table.from_pylist(
        [*same, *new_name_in_bounds, *new_name_out_of_bounds, *new_amount_only, *name_to_null,
         *inserted],
        schema=schema,
    )  # fmt: skip

    result = upsert(table, rows, ["id"])

    assert (result.inserted, result.updated, result.unchanged) == (20, 100, 100)
    expected = {**before, **{r["id"]: (r["name"], r["amount"]) for r in rows.to_pylist()}}
    assert content(lh.catalog("main").load_table("s.t")) == expected
    # the same rows again change nothing
    again = upsert(lh.catalog("main").load_table("s.t"), rows, ["id"])
    assert (again.unchanged, again.snapshot_id) == (220, None)


def test_narrower_integer_keys_find_the_rows_of_wider_key_columns(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(200)), properties=NO_FOLDING)
    rows = make_rows(list(range(0, 200, 2)), tag="u").cast(
        pa.schema([("id", pa.int32()), ("name", pa.string()), ("amount", pa.float64())])
    )

    result = upsert(table, rows, ["id"])

    assert (result.inserted, result.updated) == (0, 100)
    got = content(lh.catalog("main").load_table("s.t"))
    assert len(got) == 200 and got[4] == ("u4", 2.0) and got[5] == ("v5", 2.5)


def test_the_declared_key_is_read_from_the_table_property_or_refused() -> None:
    assert declared_keys({}) is None
    assert declared_keys({KEY_PROPERTY: '["id", "day"]'}) == ["id", "day"]
    for bad in ("id", '"id"', "{}"):
        with pytest.raises(ValueError, match="is not a JSON list"):
            declared_keys({KEY_PROPERTY: bad})
