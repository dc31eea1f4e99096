"""Catalog merges where both sides changed one table: merged by content when they commute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.errors import MergeConflictError


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    with connect(create=True) as opened:
        catalog = opened.catalog("main")
        catalog.create_namespace("bronze")
        table = catalog.create_table("bronze.orders", schema=rows(1).schema)
        table.append(rows(1, 2))
        opened.create_branch("run")
        yield opened


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def ids(lh: Lakehouse, ref: str) -> list[int]:
    return sorted(lh.table("bronze.orders", ref).scan().to_arrow().column("id").to_pylist())


def test_appends_on_both_sides_merge_as_one_merge_commit(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))  # ingestion on main
    lh.table("bronze.orders", "run").append(rows(4))  # the run on its branch
    dry = lh.merge("run", dry_run=True)
    assert dry.was_successful and not dry.was_applied and ids(lh, "main") == [1, 2, 3]
    result = lh.merge("run")
    assert result.was_applied
    assert ids(lh, "main") == [1, 2, 3, 4]
    assert len(lh.log("main", limit=1)[0].meta.parent_hashes) == 2
    again = lh.merge("run")  # the source is now an ancestor: nothing is re-applied
    assert not again.was_applied and ids(lh, "main") == [1, 2, 3, 4]


def test_without_content_merge_both_sides_changed_is_a_conflict(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    lh.table("bronze.orders", "run").append(rows(4))
    with pytest.raises(MergeConflictError):
        lh.merge("run", content_merge=False)
    assert ids(lh, "main") == [1, 2, 3]


def test_deletes_on_the_source_conflict_with_the_reason_and_change_nothing(
    lh: Lakehouse,
) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    lh.table("bronze.orders", "run").delete("id = 1")
    before = lh.resolve("main").hash
    with pytest.raises(MergeConflictError) as info:
        lh.merge("run")
    assert "the source removed or rewrote" in str(info.value)
    assert lh.resolve("main").hash == before
