"""Rows added and deleted in a table between two snapshots, from snapshot summaries.

Iceberg writes per snapshot ``added-records``, ``deleted-records`` and (merge-on-read)
``added-position-deletes``. :func:`row_changes` walks both snapshots' ancestry back to
their newest shared snapshot and sums those counts, so no data file is read:

* on the ``to`` side since the shared snapshot: its additions are additions, its
  deletions deletions;
* on the ``from`` side since the shared snapshot: undone when going from ``from`` to
  ``to``, so its additions count as deletions and its deletions as additions.

The counts are the summaries': a copy-on-write delete or update that rewrites a data
file counts the file's surviving rows as deleted and added again (``to_rows -
from_rows`` is always the net change). ``lakehouse diff --rows --sample N`` compares
the rows themselves.

Without a shared snapshot (a table created on both sides, or replaced) the totals are
compared: everything in ``from`` deleted, everything in ``to`` added.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.snapshots import Snapshot


@dataclass(frozen=True)
class RowChanges:
    """Rows added and deleted in one table from one snapshot to another."""

    table: str
    added: int
    deleted: int
    from_snapshot: int | None
    to_snapshot: int | None
    from_rows: int
    to_rows: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "table": self.table,
            "rows_added": self.added,
            "rows_deleted": self.deleted,
            "from_snapshot": self.from_snapshot,
            "to_snapshot": self.to_snapshot,
            "from_rows": self.from_rows,
            "to_rows": self.to_rows,
        }


def _summary(snapshot: Snapshot) -> Mapping[str, str]:
    return snapshot.summary.additional_properties if snapshot.summary else {}


def _count(summary: Mapping[str, str], *names: str) -> int:
    return sum(int(summary.get(name, 0) or 0) for name in names)


def _ancestry(metadata: TableMetadata | None, snapshot_id: int | None) -> Iterator[Snapshot]:
    if metadata is None or snapshot_id is None or snapshot_id < 0:
        return
    by_id = {s.snapshot_id: s for s in metadata.snapshots}
    current = by_id.get(snapshot_id)
    while current is not None:
        yield current
        parent = current.parent_snapshot_id
        current = by_id.get(parent) if parent is not None else None


def _total(metadata: TableMetadata | None, snapshot_id: int | None) -> int:
    for snapshot in _ancestry(metadata, snapshot_id):
        return _count(_summary(snapshot), "total-records") - _count(
            _summary(snapshot), "total-position-deletes"
        )
    return 0


def row_changes(
    table: str,
    from_metadata: TableMetadata | None,
    from_snapshot: int | None,
    to_metadata: TableMetadata | None,
    to_snapshot: int | None,
) -> RowChanges:
    """Rows added/deleted in ``table`` from ``from_snapshot`` to ``to_snapshot``.

    A side whose metadata is ``None`` has no table (created or dropped between them).
    """
    from_chain = list(_ancestry(from_metadata, from_snapshot))
    to_chain = list(_ancestry(to_metadata, to_snapshot))
    from_ids = {s.snapshot_id for s in from_chain}
    shared = next((s.snapshot_id for s in to_chain if s.snapshot_id in from_ids), None)
    from_rows = _total(from_metadata, from_snapshot)
    to_rows = _total(to_metadata, to_snapshot)
    if shared is None:
        added, deleted = to_rows, from_rows
    else:
        added = deleted = 0
        deletes = ("deleted-records", "added-position-deletes")
        for snapshot in to_chain:
            if snapshot.snapshot_id == shared:
                break
            added += _count(_summary(snapshot), "added-records")
            deleted += _count(_summary(snapshot), *deletes)
        for snapshot in from_chain:
            if snapshot.snapshot_id == shared:
                break
            deleted += _count(_summary(snapshot), "added-records")
            added += _count(_summary(snapshot), *deletes)
    return RowChanges(
        table,
        added,
        deleted,
        from_snapshot if from_metadata is not None else None,
        to_snapshot if to_metadata is not None else None,
        from_rows,
        to_rows,
    )


__all__ = ["RowChanges", "row_changes"]
