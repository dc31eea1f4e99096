"""The table page's sample reads as few files as it needs and honours row-level deletes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.console.pages import sample_rows
from lakehouse.tables.upsert import DELETE_MODE, MERGE_ON_READ, delete_rows


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """bronze.events on main, written in three appends (three data files)."""
    with connect(create=True) as opened:
        main = opened.catalog("main")
        main.create_namespace("bronze")
        table = main.create_table(
            "bronze.events", schema=rows().schema, properties={DELETE_MODE: MERGE_ON_READ}
        )
        for batch in (rows(1, 2, 3), rows(4, 5, 6), rows(7, 8, 9)):
            table.append(batch)
        yield opened


def ids(lh: Lakehouse, limit: int) -> list[int]:
    table = lh.table("bronze.events", "main")
    return sorted(sample_rows(table, list(table.scan().plan_files()), limit)["id"].to_pylist())


def test_sample_stops_at_the_limit_across_files(lh: Lakehouse) -> None:
    got = ids(lh, 5)
    assert len(got) == 5
    assert set(got) <= set(range(1, 10))


def test_sample_of_fewer_rows_than_the_limit_is_every_row(lh: Lakehouse) -> None:
    assert ids(lh, 20) == list(range(1, 10))


def test_sample_leaves_out_deleted_rows_and_reads_clean_files_first(lh: Lakehouse) -> None:
    table = lh.table("bronze.events", "main")
    delete_rows(table, rows(1, 2), ["id"])
    table = lh.table("bronze.events", "main")
    tasks = list(table.scan().plan_files())
    assert any(task.delete_files for task in tasks)  # the delete is a delete file
    assert ids(lh, 20) == [3, 4, 5, 6, 7, 8, 9]
    first = sample_rows(table, tasks, 3)["id"].to_pylist()
    assert not {1, 2, 3} & set(first)  # three rows fit in a file without deletes


def test_sample_of_no_files_is_empty_with_the_schema(lh: Lakehouse) -> None:
    table = lh.table("bronze.events", "main")
    assert sample_rows(table, [], 20).num_rows == 0
    assert sample_rows(table, [], 20).column_names == ["id"]
