"""Three-way merge of one Iceberg table: ancestor, target and source metadata in, one result out.

A catalog merge where both sides changed one table conflicts at the key level. When the
changes commute, :func:`merge_tables` builds the merged table instead: the target's
current snapshot plus one new snapshot replaying the source's net change since the
ancestor, built with :class:`~lakehouse.tables.rowdelta.RowDelta`.

What is merged, and why the rest is a conflict (never a silent pick; each reason names
the file):

* **files** — each side's net change (files added, files removed) is found by reading
  only the manifests that side's snapshot does not share with the ancestor (cost grows
  with the change). A file is *live on the target* when the ancestor had it and the
  target did not remove it. The merged snapshot

  - adds the source's new **data files** (appends, the output of rewrites), except those
    the target added too;
  - adds the source's new **position delete files** when every data file they name is
    live on the target (or was added or removed by the source itself); a position
    delete names its file and row, so re-adding it with the merged snapshot's higher
    sequence number deletes exactly the same rows. Otherwise: ``the source deleted rows
    from data file … which the target rewrote or removed``;
  - removes the **data files the source removed** (copy-on-write deletes, overwrites,
    compaction) when each is live on the target and the target wrote no delete file
    naming it (``both sides removed or rewrote data file …``, ``the source rewrote or
    removed data file …, which the target deleted rows from``) and no equality delete
    (the rewritten rows would escape it);
  - removes the **delete files the source removed** when their deletes are kept (the
    source removed the data file too, or folded the positions into a delete file it
    added); one the target removed as well is already gone. A delete file left naming a
    removed data file is kept: it deletes nothing;
  - **equality deletes** of the source (added or removed, or applying to a data file the
    source added) are a conflict: they apply by sequence number, which the merge changes.

  Both sides deleting rows of one data file with position deletes merge (both delete
  files apply: position deletes commute). When the schema has identifier fields, the
  key columns of the data files both sides added are read, and a key written on both
  sides is a conflict (it would be in the table twice); without them that is not
  detected (see ``docs/architecture.md``);
* **schema, partition spec, sort order** — a change on one side is applied when the data
  files the other side wrote since the ancestor read under it (added optional columns,
  widened types, renames, drops; :mod:`lakehouse.tables.evolution`); the same change on
  both sides is one change; different changes conflict. Data files keep the spec id they
  were written with. The **format version** must be unchanged on the source;
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

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.tables.bookkeeping import LAST_BATCH_PROPERTY, SUMMARY_PREFIX, claims, overlap
from lakehouse.tables.evolution import merge_evolution
from lakehouse.tables.files import read_columns
from lakehouse.tables.manifests import read_manifest_list
from lakehouse.tables.metadata import StagedTransaction, apply_updates
from lakehouse.tables.rowdelta import (
    RowDelta,
    has_live_files,
    manifest_entries,
    read_position_deletes,
    referenced_data_files,
)
from lakehouse.tables.upsert import KEY_PROPERTY, declared_keys

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile, DataFileContent, ManifestEntry, ManifestFile
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.snapshots import Snapshot

#: Snapshot summary properties of a merged snapshot.
MERGE_PROPERTY = "lakehouse.merge"
MERGE_SOURCE_PROPERTY = "lakehouse.merge.source-snapshot-id"
#: The source snapshot's manifest list: what the source held, for readers that recorded
#: the source snapshot (an incremental model built on the merged branch) to tell its rows
#: from the target's (:func:`source_data_files`).
MERGE_SOURCE_MANIFEST_LIST_PROPERTY = "lakehouse.merge.source-manifest-list"
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
    by_id = {s.snapshot_id: s for s in side.snapshots}  # a walk of n parents in O(n)
    carried: list[Mapping[str, str]] = []
    snapshot = side.current_snapshot()
    while snapshot is not None:
        if base is not None and snapshot.snapshot_id == base.snapshot_id:
            break
        for props in summaries(snapshot):
            kept = {k: v for k, v in props.items() if k.startswith(CARRIED_PREFIXES)}
            if kept:
                carried.append(kept)
        parent = snapshot.parent_snapshot_id
        snapshot = by_id.get(parent) if parent is not None else None
    return carried


def source_data_files(
    metadata: TableMetadata, io: FileIO, source_snapshot_id: int
) -> frozenset[str] | None:
    """The data files live in ``source_snapshot_id`` of a branch merged by content into this one.

    Found through the merged snapshot in the current snapshot's ancestry that names it
    (:data:`MERGE_SOURCE_PROPERTY`) and its recorded manifest list. ``None`` when no such
    merge is in the ancestry, the source held delete files, or its manifests are gone
    (garbage-collected).
    """
    from pyiceberg.manifest import DataFileContent, ManifestContent
    from pyiceberg.table.snapshots import ancestors_of

    wanted = str(source_snapshot_id)
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        listed = props.get(MERGE_SOURCE_MANIFEST_LIST_PROPERTY)
        if props.get(MERGE_SOURCE_PROPERTY) != wanted or not listed:
            continue
        try:
            manifests = read_manifest_list(io, listed)
            if any(m.content == ManifestContent.DELETES for m in manifests if has_live_files(m)):
                return None  # decided by the manifest list: no manifest is read
            entries = [e for m in manifests for e in manifest_entries(io, m)]
        except (OSError, ValueError):
            return None
        return frozenset(
            e.data_file.file_path for e in entries if e.data_file.content == DataFileContent.DATA
        )
    return None


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


def _live(io: FileIO, manifests: list[ManifestFile]) -> dict[str, ManifestEntry]:
    return {e.data_file.file_path: e for m in manifests for e in manifest_entries(io, m)}


@dataclass(frozen=True)
class _Diff:
    """One side's net change since the ancestor: files it added and files it removed."""

    added: dict[str, ManifestEntry]
    removed: dict[str, ManifestEntry]


def _diff(io: FileIO, base: list[ManifestFile], head: list[ManifestFile]) -> _Diff:
    """Read only the manifests the two snapshots do not share (cost follows the change)."""
    base_paths = {m.manifest_path for m in base}
    head_paths = {m.manifest_path for m in head}
    gone = _live(io, [m for m in base if m.manifest_path not in head_paths])
    new = _live(io, [m for m in head if m.manifest_path not in base_paths])
    return _Diff(
        {p: e for p, e in sorted(new.items()) if p not in gone},
        {p: e for p, e in sorted(gone.items()) if p not in new},
    )


def _kind(entry: ManifestEntry) -> DataFileContent:
    return entry.data_file.content


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
    ancestor: TableMetadata,
    target: TableMetadata,
    source: TableMetadata,
    io: FileIO,
    *,
    write: bool = True,
) -> TableMerge:
    """Merge the source's changes since ``ancestor`` into ``target`` (see the module doc).

    Pure apart from writing the new snapshot's manifest and manifest list with ``io``;
    the caller writes the metadata file and commits it. With ``write=False`` (a dry run)
    nothing is written: the outcome and its description are the same, and the returned
    metadata lacks the merged snapshot.
    """
    from pyiceberg.catalog.noop import NoopCatalog
    from pyiceberg.table import Table
    from pyiceberg.table.update import (
        RemovePropertiesUpdate,
        SetPropertiesUpdate,
    )

    if len({ancestor.table_uuid, target.table_uuid, source.table_uuid}) != 1:
        return _conflict("the two sides hold different tables (table uuids differ)")
    if source.format_version != ancestor.format_version:
        return _conflict("the source upgraded the format version")
    evolution = merge_evolution(ancestor, target, source)
    if isinstance(evolution, str):
        return _conflict(evolution)
    sets, removals, clashes = _property_updates(
        ancestor.properties, target.properties, source.properties
    )
    base = ancestor.current_snapshot()
    source_state = _carried(source, base)  # the source's bookkeeping since the ancestor
    if LAST_BATCH_PROPERTY in clashes:
        # both sides ingested: a guard, not data; the target's value stays when the two
        # sides loaded different files, cursors and Kafka partitions
        clashes.remove(LAST_BATCH_PROPERTY)
        sets.pop(LAST_BATCH_PROPERTY, None)
        both = overlap(claims(source_state), claims(_carried(target, base)))
        if both is not None:
            return _conflict("both sides ingested into the table: " + both)
    if clashes:
        return _conflict("both sides changed table properties " + ", ".join(clashes))

    head = source.current_snapshot()
    base_manifests = _manifests(base, io)
    head_manifests = _manifests(head, io)
    src = _diff(io, base_manifests, head_manifests)
    tgt = (
        _diff(io, base_manifests, _manifests(target.current_snapshot(), io))
        if src.added or src.removed
        else _Diff({}, {})
    )
    plan = _plan(src, tgt, head_manifests, source, target, io)
    if isinstance(plan, str):
        return _conflict(plan)

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
    updates: list[object] = list(evolution.updates)
    if sets:
        updates.append(SetPropertiesUpdate(updates=sets))
    if removals:
        updates.append(RemovePropertiesUpdate(removals=sorted(removals)))
    metadata = apply_updates(target, updates) if updates else target  # type: ignore[arg-type]
    if write and not plan.is_empty:
        carried = (
            {CARRIED_PROPERTY: json.dumps(source_state, separators=(",", ":"))}
            if source_state
            else {}
        )
        table = Table(("merge",), metadata, "", io, NoopCatalog("merge"))
        tx = StagedTransaction(table)  # no deep copy of the target's history per read
        delta = RowDelta(
            tx,
            snapshot_properties={
                MERGE_PROPERTY: "content",
                MERGE_SOURCE_PROPERTY: str(head.snapshot_id if head is not None else -1),
                **(
                    {MERGE_SOURCE_MANIFEST_LIST_PROPERTY: head.manifest_list}
                    if head is not None
                    else {}
                ),
                **carried,
            },
            metadata=metadata,
        )
        delta.add_data_files(plan.add_data)
        delta.add_delete_files(plan.add_deletes)
        delta.remove_files([*plan.remove_data, *plan.remove_deletes])
        delta.stage()
        metadata = apply_updates(metadata, tx._updates)
    what = plan.describe()
    if evolution.changes:
        what += "; " + ", ".join(evolution.changes) + " applied"
    if sets or removals:
        what += "; properties merged key by key"
    return TableMerge(metadata, None, "merged by content (" + what + ")", dropped)


@dataclass(frozen=True)
class _Plan:
    """The files the merged snapshot adds and removes on top of the target."""

    add_data: list[DataFile]
    add_deletes: list[DataFile]
    remove_data: list[DataFile]
    remove_deletes: list[DataFile]

    @property
    def is_empty(self) -> bool:
        return not (self.add_data or self.add_deletes or self.remove_data or self.remove_deletes)

    def describe(self) -> str:
        """The reason kinds, for people: appends, deletes, rewrite."""
        kinds: list[str] = []
        if self.add_data and not self.remove_data:
            kinds.append(f"appends on the source ({len(self.add_data)} data file(s))")
        if self.add_deletes or self.remove_deletes:
            kinds.append(
                f"deletes on the source ({len(self.add_deletes)} position delete file(s) "
                f"added, {len(self.remove_deletes)} removed)"
            )
        if self.remove_data:
            kinds.append(
                f"rewrite on the source ({len(self.remove_data)} data file(s) removed, "
                f"{len(self.add_data)} added)"
            )
        if not kinds:
            return "nothing of the source's files to add"
        return "; ".join(kinds) + " applied on top of the target"


def _plan(
    src: _Diff,
    tgt: _Diff,
    head_manifests: list[ManifestFile],
    source: TableMetadata,
    target: TableMetadata,
    io: FileIO,
) -> _Plan | str:
    """What the merged snapshot must do, or why it cannot be proved safe (a conflict)."""
    from pyiceberg.manifest import DataFileContent, ManifestContent

    data, positions, equality = (
        DataFileContent.DATA,
        DataFileContent.POSITION_DELETES,
        DataFileContent.EQUALITY_DELETES,
    )
    added = [e for p, e in src.added.items() if p not in tgt.added]
    add_data = [e for e in added if _kind(e) == data]
    add_deletes = [e for e in added if _kind(e) == positions]
    removed = list(src.removed.values())
    remove_data = [e for e in removed if _kind(e) == data]
    for e in src.added.values():
        if _kind(e) == equality:
            return (
                f"the source wrote equality delete file {e.data_file.file_path}; re-adding it "
                "with a new sequence number changes the rows it applies to"
            )
    # equality deletes of the source that applied to a data file the source added (its
    # data sequence number is lower) would no longer apply once that file is re-added
    if add_data:
        first_new = min(e.sequence_number or 0 for e in add_data)
        for manifest in head_manifests:
            if manifest.content != ManifestContent.DELETES:
                continue
            for e in manifest_entries(io, manifest):
                if _kind(e) == equality and (e.sequence_number or 0) > first_new:
                    return (
                        f"equality delete file {e.data_file.file_path} applies to data files "
                        "the source added; re-adding them would escape it"
                    )

    # 1. the source's position deletes must only name data files the target still has
    referenced = {
        e.data_file.file_path: referenced_data_files(io, e.data_file) for e in add_deletes
    }
    for path, names in referenced.items():
        for name in sorted(names):
            # a delete of a file the source removed as well names nothing live: the
            # removal is judged below
            if name in tgt.removed and name not in src.removed:
                return (
                    f"the source deleted rows from data file {name} (delete file {path}), "
                    "which the target rewrote or removed"
                )

    # 2. a data file the source removed must be live on the target and untouched by the
    # target's deletes since the ancestor
    if remove_data:
        target_deleted: dict[str, str] = {}
        for e in tgt.added.values():
            if _kind(e) == equality:
                return (
                    f"the target wrote equality delete file {e.data_file.file_path}; the "
                    f"source's rewrite of data file {remove_data[0].data_file.file_path} "
                    "would escape it"
                )
            if _kind(e) == positions:
                for name in referenced_data_files(io, e.data_file):
                    target_deleted.setdefault(name, e.data_file.file_path)
        for e in remove_data:
            path = e.data_file.file_path
            if path in tgt.removed:
                return f"both sides removed or rewrote data file {path}"
            if path in target_deleted:
                return (
                    f"the source rewrote or removed data file {path}, which the target "
                    f"deleted rows from (delete file {target_deleted[path]})"
                )

    # delete files the source removed: dropped when the target still has them and their
    # deletes are kept (the source removed the data file too, or folded them into a new
    # delete file of its own); a delete file the target removed as well is already gone
    removed_data = {e.data_file.file_path for e in remove_data}
    remove_deletes: list[DataFile] = []
    for e in removed:
        if _kind(e) == data or e.data_file.file_path in tgt.removed:
            continue
        path = e.data_file.file_path
        if _kind(e) == equality:
            return f"the source removed equality delete file {path}"
        for name in sorted(referenced_data_files(io, e.data_file)):
            if name in removed_data or name in tgt.removed:
                continue  # not live after the merge: its deletes no longer matter
            kept = read_position_deletes(io, [e.data_file], name)
            folded = [d.data_file for d in add_deletes if name in referenced[d.data_file.file_path]]
            now = read_position_deletes(io, folded, name) if folded else pa.array([], pa.int64())
            if not pc.all(pc.is_in(kept, value_set=now)).as_py():
                return (
                    f"the source removed delete file {path} without keeping its deletes of "
                    f"data file {name}"
                )
        remove_deletes.append(e.data_file)

    # 3. the same key added on both sides would be in the merged table twice
    clash = _key_clash(source, target, add_data, tgt, io)
    if clash is not None:
        return clash
    return _Plan(
        [e.data_file for e in add_data],
        [e.data_file for e in add_deletes],
        [e.data_file for e in remove_data],
        remove_deletes,
    )


def _key_columns(source: TableMetadata, target: TableMetadata) -> list[str] | str:
    """The table's key columns (none: not keyed), or why the two sides disagree on it."""
    schema = source.schema()
    ids = list(schema.identifier_field_ids)
    if ids:
        names = [schema.find_column_name(i) for i in ids]
        if any(n is None for n in names) or target.schema().identifier_field_ids != ids:
            return "the two sides key the table differently (identifier fields differ)"
        return [str(n) for n in names]
    declared = source.properties.get(KEY_PROPERTY)
    if declared is None:
        return []
    if target.properties.get(KEY_PROPERTY, declared) != declared:
        return f"the two sides upserted on different keys ({KEY_PROPERTY})"
    try:
        columns = declared_keys(source.properties) or []
    except ValueError as exc:
        return str(exc)
    missing = [c for c in columns if c not in {f.name for f in schema.fields}]
    if missing:
        return f"the key column(s) {', '.join(missing)} of {KEY_PROPERTY} are not in the table"
    return columns


def _key_clash(
    source: TableMetadata,
    target: TableMetadata,
    add_data: list[ManifestEntry],
    tgt: _Diff,
    io: FileIO,
) -> str | None:
    """A key that both sides wrote rows for, if any.

    The key is the schema's identifier fields, else the columns upserts recorded in
    :data:`~lakehouse.tables.upsert.KEY_PROPERTY`. Only the key columns of the data files
    each side added since the ancestor are read. Rows a side added and then deleted again
    still count (a false conflict, never a missed one).
    """
    from pyiceberg.manifest import DataFileContent

    schema = source.schema()
    target_data = [e for e in tgt.added.values() if _kind(e) == DataFileContent.DATA]
    if not add_data or not target_data:
        return None
    columns = _key_columns(source, target)
    if isinstance(columns, str):
        return columns
    if not columns:
        return None

    def keys(entries: list[ManifestEntry]) -> pa.Table:
        tables = [read_columns(io, e.data_file, schema, columns) for e in entries]
        return pa.concat_tables(tables).select(columns).group_by(columns).aggregate([])

    both = keys(add_data).join(keys(target_data), columns, join_type="inner")
    if both.num_rows == 0:
        return None
    first = both.slice(0, 1).to_pylist()[0]
    shown = ", ".join(f"{k}={first[k]!r}" for k in columns)
    return (
        f"both sides wrote rows with key {shown} ({both.num_rows} key(s) in all); merged, the "
        "key would be in the table twice"
    )


__all__ = [
    "CARRIED_PREFIXES",
    "CARRIED_PROPERTY",
    "MERGE_PROPERTY",
    "MERGE_SOURCE_MANIFEST_LIST_PROPERTY",
    "MERGE_SOURCE_PROPERTY",
    "TableMerge",
    "merge_tables",
    "source_data_files",
    "summaries",
]
