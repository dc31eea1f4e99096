"""Three-way merge of one Iceberg table: ancestor, target and source metadata in, one result out.

A catalog merge where both sides changed one table conflicts at the key level. When the
changes commute, :func:`merge_tables` builds the merged table instead: the target's
current snapshot plus one new snapshot holding the source's net changes since the
ancestor, built with :class:`~lakehouse.tables.rowdelta.RowDelta`.

What is merged today, and why the rest is a conflict (never a silent pick):

* **files** — the source's net change is the difference of its live files and the
  ancestor's, found by reading only the manifests either side does not share (cost grows
  with the change). When the source only *added data files*, they are added again on top
  of the target (whatever the target did: appends, deletes, overwrites, compaction), as
  ADDED entries of the new snapshot, whose sequence number is higher than any of the
  target's, so no delete file of the target applies to them. A source that removed files
  or wrote delete files is a conflict ("content merges of the source's deletes and
  rewrites are not supported yet") — safe, but narrower than the issue asks;
* **schema, partition spec, sort order, format version** — must be unchanged on the source
  (the target may have changed them; the source's files keep the ancestor's spec id, and
  Iceberg reads them by field id);
* **properties** — merged key by key; a key both sides set to different values conflicts,
  except ingestion's guard ``lakehouse.ingest.last-batch-id`` (both sides ingested): the
  target's value stays when the two sides' bookkeeping is disjoint — no file loaded on
  both sides, no cursor or Kafka partition advanced on both
  (:func:`lakehouse.tables.bookkeeping.overlap`) — else a conflict that names the overlap;
* **bookkeeping** — the merged snapshot carries the ``lakehouse.ingest.*`` summaries of the
  source snapshots it merged (:data:`CARRIED_PROPERTY`, read with :func:`summaries`), so
  exactly-once ingestion keeps knowing what the source loaded;
* **snapshot refs other than ``main``, statistics and partition statistics files of the
  source** are dropped (they name snapshots that do not exist on the target), and the
  result says so in :attr:`TableMerge.dropped`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakehouse.tables.bookkeeping import LAST_BATCH_PROPERTY, SUMMARY_PREFIX, claims, overlap
from lakehouse.tables.rowdelta import RowDelta, manifest_entries

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile, ManifestFile
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.snapshots import Snapshot

#: Snapshot summary properties of a merged snapshot.
MERGE_PROPERTY = "lakehouse.merge"
MERGE_SOURCE_PROPERTY = "lakehouse.merge.source-snapshot-id"
#: Summary key of a merged snapshot: the bookkeeping summaries of the source snapshots it
#: stands for (JSON list, newest first; see :func:`summaries`).
CARRIED_PROPERTY = "lakehouse.merge.carried"
#: Summary keys that readers find by walking a table's ancestry (exactly-once ingestion
#: state, :mod:`lakehouse.tables.bookkeeping`): a merged snapshot carries them from the source.
CARRIED_PREFIXES = (SUMMARY_PREFIX,)


def summaries(snapshot: Snapshot) -> list[Mapping[str, str]]:
    """The summary properties ``snapshot`` stands for, newest first.

    Its own, then — for a snapshot a content merge wrote — those of the source snapshots
    it merged (:data:`CARRIED_PROPERTY`), so a reader walking an ancestry for state
    (ingested files, cursors, offsets) sees what the source branch recorded.
    """
    if snapshot.summary is None:
        return []
    own: Mapping[str, str] = snapshot.summary.additional_properties
    carried = own.get(CARRIED_PROPERTY)
    return [own, *json.loads(carried)] if carried else [own]


def _carried(side: TableMetadata, base: Snapshot | None) -> list[Mapping[str, str]]:
    """Bookkeeping of one side's snapshots since ``base``, newest first (flattened)."""
    from pyiceberg.table.snapshots import ancestors_of

    carried: list[Mapping[str, str]] = []
    for snapshot in ancestors_of(side.current_snapshot(), side):
        if base is not None and snapshot.snapshot_id == base.snapshot_id:
            break
        for props in summaries(snapshot):
            kept = {k: v for k, v in props.items() if k.startswith(CARRIED_PREFIXES)}
            if kept:
                carried.append(kept)
    return carried


@dataclass(frozen=True)
class TableMerge:
    """The outcome of merging one table: new metadata, or a conflict and why."""

    #: The merged metadata (``None`` on a conflict).
    metadata: TableMetadata | None
    #: Why the merge cannot be proved safe (``None`` when merged).
    conflict: str | None
    #: What was merged, for people ("appends on the source, added on top of the target").
    description: str
    #: What of the source was dropped on purpose (refs, statistics files).
    dropped: tuple[str, ...] = ()

    @property
    def merged(self) -> bool:
        """True when the table merged by content."""
        return self.conflict is None


def _conflict(reason: str) -> TableMerge:
    return TableMerge(None, reason, "conflict: " + reason)


def _manifests(snapshot: Snapshot | None, io: FileIO) -> list[ManifestFile]:
    return list(snapshot.manifests(io)) if snapshot is not None else []


def _live(io: FileIO, manifests: list[ManifestFile]) -> dict[str, DataFile]:
    return {e.data_file.file_path: e.data_file for m in manifests for e in manifest_entries(io, m)}


def _property_updates(
    ancestor: Mapping[str, str], target: Mapping[str, str], source: Mapping[str, str]
) -> tuple[dict[str, str], set[str], list[str]]:
    """Properties the source changed that the target must take, removals, and clashes."""
    sets: dict[str, str] = {}
    removals: set[str] = set()
    clashes: list[str] = []
    for key in sorted(set(ancestor) | set(source)):
        before, after, now = ancestor.get(key), source.get(key), target.get(key)
        if after in (before, now):
            continue
        if now != before:
            clashes.append(key)
        elif after is None:
            removals.add(key)
        else:
            sets[key] = after
    return sets, removals, clashes


def merge_tables(
    ancestor: TableMetadata, target: TableMetadata, source: TableMetadata, io: FileIO
) -> TableMerge:
    """Merge the source's changes since ``ancestor`` into ``target`` (see the module doc).

    Pure apart from writing the new snapshot's manifest and manifest list with ``io``;
    the caller writes the metadata file and commits it.
    """
    from pyiceberg.catalog.noop import NoopCatalog
    from pyiceberg.manifest import DataFileContent
    from pyiceberg.table import Table
    from pyiceberg.table.update import (
        RemovePropertiesUpdate,
        SetPropertiesUpdate,
        update_table_metadata,
    )

    if len({ancestor.table_uuid, target.table_uuid, source.table_uuid}) != 1:
        return _conflict("the two sides hold different tables (table uuids differ)")
    if source.format_version != ancestor.format_version:
        return _conflict("the source upgraded the format version")
    if source.schema() != ancestor.schema():
        return _conflict("the source changed the schema (not merged by content yet)")
    if source.spec() != ancestor.spec():
        return _conflict("the source changed the partition spec (not merged by content yet)")
    if source.sort_order_by_id(source.default_sort_order_id) != ancestor.sort_order_by_id(
        ancestor.default_sort_order_id
    ):
        return _conflict("the source changed the sort order (not merged by content yet)")
    sets, removals, clashes = _property_updates(
        ancestor.properties, target.properties, source.properties
    )
    base = ancestor.current_snapshot()
    if LAST_BATCH_PROPERTY in clashes:
        # both sides ingested: a guard, not data; the target's value stays when the two
        # sides loaded different files, cursors and Kafka partitions
        clashes.remove(LAST_BATCH_PROPERTY)
        sets.pop(LAST_BATCH_PROPERTY, None)
        both = overlap(claims(_carried(source, base)), claims(_carried(target, base)))
        if both is not None:
            return _conflict("both sides ingested into the table: " + both)
    if clashes:
        return _conflict("both sides changed table properties " + ", ".join(clashes))

    head = source.current_snapshot()
    base_manifests = _manifests(base, io)
    head_manifests = _manifests(head, io)
    base_paths = {m.manifest_path for m in base_manifests}
    head_paths = {m.manifest_path for m in head_manifests}
    gone = _live(io, [m for m in base_manifests if m.manifest_path not in head_paths])
    new = _live(io, [m for m in head_manifests if m.manifest_path not in base_paths])
    added = [f for path, f in sorted(new.items()) if path not in gone]
    removed = sorted(path for path in gone if path not in new)
    if removed:
        return _conflict(
            f"the source removed or rewrote {len(removed)} file(s) (first: {removed[0]}); "
            "content merges of the source's deletes and rewrites are not supported yet"
        )
    deletes = [f for f in added if f.content != DataFileContent.DATA]
    if deletes:
        return _conflict(
            f"the source wrote delete files (first: {deletes[0].file_path}); content "
            "merges of the source's row deletes are not supported yet"
        )
    # a file the source added can be on the target only if the target added it too: read
    # just the target's manifests the ancestor does not have
    target_new = (
        _live(
            io,
            [
                m
                for m in _manifests(target.current_snapshot(), io)
                if m.manifest_path not in base_paths
            ],
        )
        if added
        else {}
    )
    to_add = [f for f in added if f.file_path not in target_new]

    dropped = tuple(
        [f"table ref {name}" for name in sorted(set(source.refs) - set(target.refs) - {"main"})]
        + [f"statistics of source snapshot {s.snapshot_id}" for s in source.statistics]
        + [
            f"partition statistics of source snapshot {s.snapshot_id}"
            for s in source.partition_statistics
        ]
        if head is not None and (base is None or head.snapshot_id != base.snapshot_id)
        else []
    )
    updates: list[object] = []
    if sets:
        updates.append(SetPropertiesUpdate(updates=sets))
    if removals:
        updates.append(RemovePropertiesUpdate(removals=sorted(removals)))
    metadata = update_table_metadata(target, tuple(updates)) if updates else target  # type: ignore[arg-type]
    if to_add:
        state = _carried(source, base)
        carried = {CARRIED_PROPERTY: json.dumps(state, separators=(",", ":"))} if state else {}
        table = Table(("merge",), metadata, "", io, NoopCatalog("merge"))
        tx = table.transaction()
        delta = RowDelta(
            tx,
            snapshot_properties={
                MERGE_PROPERTY: "content",
                MERGE_SOURCE_PROPERTY: str(head.snapshot_id if head is not None else -1),
                **carried,
            },
            metadata=metadata,
        )
        delta.add_data_files(to_add)
        delta.stage()
        metadata = update_table_metadata(metadata, tx._updates)
    what = (
        f"appends on the source ({len(to_add)} data file(s)) added on top of the target"
        if to_add
        else "nothing of the source's files to add"
    )
    if sets or removals:
        what += "; properties merged key by key"
    return TableMerge(metadata, None, "merged by content (" + what + ")", dropped)


__all__ = [
    "CARRIED_PREFIXES",
    "CARRIED_PROPERTY",
    "MERGE_PROPERTY",
    "MERGE_SOURCE_PROPERTY",
    "TableMerge",
    "merge_tables",
    "summaries",
]
