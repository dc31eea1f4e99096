"""Reading columns and positions of data files: which positions are still live,
and which values the footer's statistics already tell apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table
from pyiceberg.types import LongType

from lakehouse.client import Lakehouse
from lakehouse.tables import files
from lakehouse.tables.files import (
    POS,
    SizedCache,
    drop_positions,
    forget_keys,
    keys_to_decode,
    live_mask,
    may_equal,
    read_keys,
)


@pytest.mark.parametrize(
    ("positions", "deleted", "live"),
    [
        # one run of positions (a whole file, or consecutive row groups)
        ([10, 11, 12, 13, 14], [11, 14, 99, 0], [10, 12, 13]),
        # row groups with a gap between them
        ([0, 1, 2, 7, 8, 9], [2, 3, 7, 100], [0, 1, 8, 9]),
        # positions in no particular order, deletes unsorted
        ([9, 3, 5, 1], [5, 1, 4], [9, 3]),
        ([4, 5], [], [4, 5]),
        # a few positions with gaps among more deletes (each position is looked up)
        ([3, 8, 20], [1, 2, 3, 4, 5, 6, 7, 9, 20, 30], [8]),
        # positions with gaps, deletes of several files' lists: unsorted
        ([3, 8, 20, 21], [21, 3, 40, 0], [8, 20]),
    ],
)
def test_live_positions_are_those_not_deleted(
    positions: list[int], deleted: list[int], live: list[int]
) -> None:
    table = pa.table({"k": pa.array(positions), POS: pa.array(positions, pa.int64())})
    gone = pa.array(deleted, pa.int64())

    mask = live_mask(table.column(POS), gone)

    assert np.asarray(positions)[mask].tolist() == live
    assert drop_positions(table, gone).column("k").to_pylist() == live


def test_a_value_outside_its_row_groups_bounds_cannot_equal_the_files_value(
    lh: Lakehouse, new_table: Callable[..., Table]
) -> None:
    # two row groups: ids 0-9 (names v0..v9) and 10-19 (names v10..v19)
    table = new_table(ids=list(range(20)), properties={"write.parquet.row-group-limit": "10"})
    (task,) = table.scan().plan_files()
    assert pq.ParquetFile(task.file.file_path).metadata.num_row_groups == 2
    positions = pa.array([0, 1, 2, 3, 12, 13, 14], pa.int64())
    names = pa.array(["v0", "a", "zzz", None, "v10", "v3", "v5"])
    #                 same  below above  NULL  in    in 0-9's bounds, not 10-19's
    #                                          "v10" < "v13" < "v19", "v5" > "v19"

    got = may_equal(table.io, task.file, table.schema(), "name", positions, names)

    assert got.tolist() == [True, False, False, True, True, False, False]
    amounts = pa.array([0.0, 0.5, 9.0, -1.0, 6.0, 6.5, 100.0])
    got = may_equal(table.io, task.file, table.schema(), "amount", positions, amounts)
    assert got.tolist() == [True, True, False, False, True, True, False]


def test_statistics_judge_nothing_they_cannot_order(
    lh: Lakehouse, new_table: Callable[..., Table]
) -> None:
    table = new_table(ids=list(range(5)))
    with table.update_schema() as update:  # a column the file does not have
        update.add_column("extra", LongType())
    table = lh.catalog("main").load_table("s.t")
    (task,) = table.scan().plan_files()
    positions = pa.array([0, 1], pa.int64())

    got = may_equal(table.io, task.file, table.schema(), "extra", positions, pa.array([7, 8]))

    assert got.tolist() == [True, True]


def test_key_columns_read_once_are_answered_without_opening_the_file(
    lh: Lakehouse, new_table: Callable[..., Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = new_table(ids=list(range(40)), properties={"write.parquet.row-group-limit": "10"})
    (task,) = table.scan().plan_files()
    wanted = ("id", np.array([3, 25, 26], np.int64))  # in row groups 0 and 2 only
    forget_keys()
    assert keys_to_decode(table.io, task.file, table.schema(), "id", wanted) == 20

    first = read_keys(table.io, task.file, table.schema(), "id", wanted)

    assert keys_to_decode(table.io, task.file, table.schema(), "id", wanted) == 0
    # another key: only its row group is still to decode
    other = ("id", np.array([15], np.int64))
    assert keys_to_decode(table.io, task.file, table.schema(), "id", other) == 10
    assert first.column("id").to_pylist() == [*range(10), *range(20, 30)]
    assert first.column(POS).to_pylist() == [*range(10), *range(20, 30)]

    def no_reads(path: str) -> None:
        raise AssertionError(f"{path} opened again")

    with monkeypatch.context() as patched:
        patched.setattr(table.io, "new_input", no_reads)
        again = read_keys(table.io, task.file, table.schema(), "id", wanted)
    assert again.to_pylist() == first.to_pylist()
    # with a budget smaller than a row group nothing is kept; the answer stays the same
    forget_keys()
    monkeypatch.setattr(files._KEYS, "budget", 8)
    read_keys(table.io, task.file, table.schema(), "id", wanted)
    with monkeypatch.context() as patched:
        patched.setattr(table.io, "new_input", no_reads)
        with pytest.raises(AssertionError, match="opened again"):
            read_keys(table.io, task.file, table.schema(), "id", wanted)


def test_a_sized_cache_keeps_the_most_recently_used_values_within_its_budget() -> None:
    cache: SizedCache[str, bytes] = SizedCache(10, len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # now the most recently used
    cache.put("c", b"1234")  # 12 bytes: the least recently used goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1234", None, b"1234")
    cache.put("big", b"x" * 11)  # larger than the budget: not kept, nothing evicted
    assert cache.get("big") is None and cache.get("a") == b"1234"
    cache.put("a", b"other")  # values are immutable: the first one stays
    assert cache.get("a") == b"1234"
    cache.clear()
    assert cache.get("a") is None


def test_what_a_footer_tells_is_worked_out_once_per_footer(tmp_path: Path) -> None:
    def footer(name: str, field_id: int) -> pq.FileMetaData:
        field = pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": str(field_id).encode()})
        pq.write_table(pa.table([pa.array([1, 2, 3])], schema=pa.schema([field])), tmp_path / name)
        return pq.ParquetFile(tmp_path / name).metadata

    first, second = footer("a.parquet", 1), footer("b.parquet", 7)

    facts = files._file_fields(first)
    assert facts == ({1: "id"}, frozenset({"id"}))
    assert files._file_fields(first) is facts  # kept with the footer
    assert files._file_fields(second) == ({7: "id"}, frozenset({"id"}))  # each its own
    assert files._group_bounds(first, "id") == [(1, 3)]
