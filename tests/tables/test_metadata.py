"""Table metadata helpers: the head of a branch found from the end of the snapshot list."""

from __future__ import annotations

from collections.abc import Callable

from pyiceberg.table import Table

from lakehouse.tables.metadata import branch_head
from tests.tables.conftest import make_rows


def test_the_head_of_a_branch_or_tag_is_the_snapshot_pyiceberg_finds(
    new_table: Callable[..., Table],
) -> None:
    table = new_table("t", ids=[1])
    first = table.current_snapshot()
    assert first is not None
    for i in range(2, 6):
        table.append(make_rows([i]))
    table.manage_snapshots().create_tag(first.snapshot_id, "v1").create_branch(
        first.snapshot_id, "old"
    ).commit()
    metadata = table.refresh().metadata

    for name in ("main", "v1", "old"):
        head = branch_head(metadata, name)
        assert head is not None and head is metadata.snapshot_by_name(name)
    assert branch_head(metadata, "main") is metadata.snapshots[-1]
    assert branch_head(metadata, "v1") is metadata.snapshots[0]
    assert branch_head(metadata, "missing") is None
