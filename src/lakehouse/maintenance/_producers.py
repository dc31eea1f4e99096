"""Iceberg snapshot producers PyIceberg 0.12 lacks: file replacement and manifest rewriting.

Both subclass PyIceberg's ``_SnapshotProducer`` so that they commit through a normal
:class:`~pyiceberg.table.Transaction` (requirements, the catalog's commit loop, PyIceberg's
retry on a concurrent commit, clean-up of the manifests of a failed attempt) and both
produce snapshots with operation ``replace`` — "data and delete files were added and
removed without changing table data" in the Iceberg spec:

* :class:`ReplaceFiles` removes data files (and delete files that only applied to them)
  and adds the files rewritten from them (compaction). Every attempt recomputes its
  manifests against the branch head it commits on and raises
  :class:`~pyiceberg.exceptions.ValidationException` when a file to remove is no longer
  live there, or when a delete file appeared that was not there when the rewrite was
  planned: the rewritten rows would then differ from the table's.
* :class:`RewriteManifests` rewrites the live entries of the head's manifests into fewer
  manifests of a target size; the table's files do not change.

PyIceberg has no writer for delete manifests, so :class:`DeleteManifestWriterV2` adds one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pyiceberg.exceptions import ValidationException
from pyiceberg.io import FileIO
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV2,
)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Transaction
from pyiceberg.table.snapshots import (
    Operation,
    Snapshot,
    SnapshotSummaryCollector,
    Summary,
    update_snapshot_summaries,
)
from pyiceberg.table.update.snapshot import _SnapshotProducer
from pyiceberg.typedef import EMPTY_DICT

from lakehouse.tables.manifests import added_entry, read_entries

#: Summary keys a manifest rewrite records (as Iceberg's Java ``RewriteManifests`` does).
MANIFESTS_CREATED = "manifests-created"
MANIFESTS_REPLACED = "manifests-replaced"
MANIFESTS_KEPT = "manifests-kept"
ENTRIES_PROCESSED = "entries-processed"


class DeleteManifestWriterV2(ManifestWriterV2):
    """A v2 manifest writer for delete files (PyIceberg 0.12 only writes data manifests)."""

    def content(self) -> ManifestContent:
        """Delete manifests hold position and equality delete files."""
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def _entry(status: ManifestEntryStatus, entry: ManifestEntry, snapshot_id: int) -> ManifestEntry:
    return ManifestEntry.from_args(
        status=status,
        snapshot_id=snapshot_id if status is ManifestEntryStatus.DELETED else entry.snapshot_id,
        sequence_number=entry.sequence_number,
        file_sequence_number=entry.file_sequence_number,
        data_file=entry.data_file,
    )


class _Producer(_SnapshotProducer[Any]):
    """Shared helpers: manifest writers by content, the parent snapshot."""

    def _parent(self) -> Snapshot | None:
        if self._parent_snapshot_id is None:
            return None
        return self._transaction.table_metadata.snapshot_by_id(self._parent_snapshot_id)

    def _writer(self, content: ManifestContent, spec: PartitionSpec) -> ManifestWriter:
        if content is ManifestContent.DATA:
            return self.new_manifest_writer(spec)
        metadata = self._transaction.table_metadata
        if metadata.format_version != 2:
            raise ValidationException(
                f"cannot write a delete manifest for a v{metadata.format_version} table"
            )
        return DeleteManifestWriterV2(
            spec=spec,
            schema=self.schema(),
            output_file=self.new_manifest_output(),
            snapshot_id=self._snapshot_id,
            avro_compression=self._compression,
        )

    def _write(
        self, content: ManifestContent, spec_id: int, entries: Iterable[ManifestEntry]
    ) -> ManifestFile:
        with self._writer(content, self.spec(spec_id)) as writer:
            for entry in entries:
                writer.add_entry(entry)
        return writer.to_manifest_file()

    def _validate_concurrency(self) -> None:
        """Nothing here: every attempt validates against its own parent in ``_manifests``."""

    def _deleted_entries(self) -> list[ManifestEntry]:  # unused: _manifests is overridden
        return []

    def _existing_manifests(self) -> list[ManifestFile]:  # unused: _manifests is overridden
        return []


class ReplaceFiles(_Producer):
    """A ``replace`` snapshot: remove files, add their rewrite (compaction), and replace
    position delete files by their rewrite without the positions of removed data files.

    ``planned_delete_files`` are the paths of every live delete file when the rewrite was
    planned; a delete file live at commit time that is not among them fails the commit.
    """

    def __init__(
        self,
        transaction: Transaction,
        io: FileIO,
        *,
        branch: str,
        planned_delete_files: Iterable[str],
        snapshot_properties: dict[str, str] = EMPTY_DICT,
    ) -> None:
        super().__init__(
            Operation.REPLACE,
            transaction,
            io,
            branch=branch,
            snapshot_properties=snapshot_properties,
        )
        self._removed_delete_files: set[DataFile] = set()
        self._added_delete_files: list[DataFile] = []
        self._planned_delete_files = frozenset(planned_delete_files)

    def remove_data_file(self, data_file: DataFile) -> ReplaceFiles:
        """Remove ``data_file`` (it must be live at the parent)."""
        self._deleted_data_files.add(data_file)
        return self

    def remove_delete_file(self, delete_file: DataFile) -> ReplaceFiles:
        """Remove a delete file whose every data file is removed too."""
        self._removed_delete_files.add(delete_file)
        return self

    def add_data_file(self, data_file: DataFile) -> ReplaceFiles:
        """Add a rewritten data file."""
        self._added_data_files.append(data_file)
        return self

    def add_delete_file(self, delete_file: DataFile) -> ReplaceFiles:
        """Add a rewritten position delete file (a removed one without some positions)."""
        self._added_delete_files.append(delete_file)
        return self

    def _manifests(self) -> list[ManifestFile]:
        parent = self._parent()
        if parent is None:
            raise ValidationException("cannot replace files of a table without a snapshot")
        removed: set[DataFile] = self._deleted_data_files | self._removed_delete_files
        found: set[str] = set()
        kept: list[ManifestFile] = []
        deleted: dict[tuple[ManifestContent, int], list[ManifestEntry]] = defaultdict(list)
        for manifest in parent.manifests(self._io):
            entries = read_entries(self._io, manifest)
            if manifest.content is ManifestContent.DELETES:
                new = sorted(
                    e.data_file.file_path
                    for e in entries
                    if e.data_file.file_path not in self._planned_delete_files
                )
                if new:
                    raise ValidationException(
                        f"delete files were added concurrently ({', '.join(new[:3])}); "
                        "the rewritten rows would no longer match the table"
                    )
            hits = [e for e in entries if e.data_file in removed]
            if not hits:
                kept.append(manifest)
                continue
            found.update(e.data_file.file_path for e in hits)
            for e in hits:
                deleted[(manifest.content, manifest.partition_spec_id)].append(
                    _entry(ManifestEntryStatus.DELETED, e, self._snapshot_id)
                )
            rest = [
                _entry(ManifestEntryStatus.EXISTING, e, self._snapshot_id)
                for e in entries
                if e.data_file not in removed
            ]
            if rest:
                kept.append(self._write(manifest.content, manifest.partition_spec_id, rest))
        missing = sorted(f.file_path for f in removed if f.file_path not in found)
        if missing:
            raise ValidationException(
                f"{len(missing)} file(s) to replace are no longer in the table "
                f"(changed concurrently): {', '.join(missing[:3])}"
            )
        out: list[ManifestFile] = []
        if self._added_data_files:
            spec = self._transaction.table_metadata.spec()
            with self.new_manifest_writer(spec) as writer:
                for data_file in self._added_data_files:
                    writer.add_entry(added_entry(data_file, self._snapshot_id))
            out.append(writer.to_manifest_file())
        added_deletes: dict[int, list[ManifestEntry]] = defaultdict(list)
        for delete_file in self._added_delete_files:
            added_deletes[delete_file.spec_id].append(added_entry(delete_file, self._snapshot_id))
        for spec_id, entries_ in sorted(added_deletes.items()):
            out.append(self._write(ManifestContent.DELETES, spec_id, entries_))
        for (content, spec_id), entries_ in sorted(deleted.items(), key=lambda kv: kv[0]):
            out.append(self._write(content, spec_id, entries_))
        return out + kept

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        metadata = self._transaction.table_metadata
        schema = metadata.schema()
        specs = metadata.specs()
        collector = SnapshotSummaryCollector()
        for data_file in self._added_data_files:  # written with the default spec
            collector.add_file(data_file, schema, metadata.spec())
        for delete_file in self._added_delete_files:
            collector.add_file(delete_file, schema, specs[delete_file.spec_id])
        for data_file in (*self._deleted_data_files, *self._removed_delete_files):
            collector.remove_file(data_file, schema, specs[data_file.spec_id])
        parent = self._parent()
        # Iceberg computes the totals of a replace like those of an overwrite
        summary = update_snapshot_summaries(
            Summary(Operation.OVERWRITE, **collector.build(), **snapshot_properties),
            previous_summary=parent.summary if parent is not None else None,
        )
        return Summary(Operation.REPLACE, **summary.additional_properties)


class RewriteManifests(_Producer):
    """A ``replace`` snapshot with the head's live manifest entries in fewer manifests.

    Manifests are grouped by content and partition spec; a group is rewritten when it has
    more than one manifest, into manifests of about ``target_size`` bytes. Entries keep
    their status-independent identity (snapshot id, sequence numbers) as ``EXISTING``.
    """

    def __init__(
        self,
        transaction: Transaction,
        io: FileIO,
        *,
        branch: str,
        target_size: int,
        snapshot_properties: dict[str, str] = EMPTY_DICT,
    ) -> None:
        super().__init__(
            Operation.REPLACE,
            transaction,
            io,
            branch=branch,
            snapshot_properties=snapshot_properties,
        )
        self._target_size = max(1, target_size)
        self._counts: dict[str, int] = {}

    def _manifests(self) -> list[ManifestFile]:
        parent = self._parent()
        if parent is None:
            raise ValidationException("cannot rewrite the manifests of a table without a snapshot")
        groups: dict[tuple[ManifestContent, int], list[ManifestFile]] = defaultdict(list)
        for manifest in parent.manifests(self._io):
            groups[(manifest.content, manifest.partition_spec_id)].append(manifest)
        out: list[ManifestFile] = []
        created = replaced = kept = processed = 0
        for (content, spec_id), manifests in sorted(groups.items(), key=lambda kv: kv[0]):
            # manifests with only DELETED entries describe the parent's change: dropped
            live = [m for m in manifests if m.has_added_files() or m.has_existing_files()]
            replaced += len(manifests) - len(live)
            if len(live) <= 1:
                out.extend(live)
                kept += len(live)
                continue
            entries: list[ManifestEntry] = []
            total_bytes = 0
            for manifest in live:
                entries.extend(read_entries(self._io, manifest))
                total_bytes += manifest.manifest_length
            replaced += len(live)
            processed += len(entries)
            if not entries:
                continue
            per_entry = max(1, total_bytes // max(1, len(entries)))
            batch = max(1, self._target_size // per_entry)
            for start in range(0, len(entries), batch):
                chunk = [
                    _entry(ManifestEntryStatus.EXISTING, e, self._snapshot_id)
                    for e in entries[start : start + batch]
                ]
                out.append(self._write(content, spec_id, chunk))
                created += 1
        self._counts = {
            MANIFESTS_CREATED: created,
            MANIFESTS_REPLACED: replaced,
            MANIFESTS_KEPT: kept,
            ENTRIES_PROCESSED: processed,
        }
        return out

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        parent = self._parent()
        previous = parent.summary if parent is not None and parent.summary is not None else None
        totals = {
            k: v
            for k, v in (previous.additional_properties.items() if previous else ())
            if k.startswith("total-")
        }
        counts = {k: str(v) for k, v in self._counts.items()}
        return Summary(Operation.REPLACE, **totals, **counts, **snapshot_properties)


def manifests_to_rewrite(manifests: Iterable[ManifestFile]) -> int:
    """How many manifests of a snapshot a rewrite would merge (groups with more than one)."""
    groups: dict[tuple[ManifestContent, int], int] = defaultdict(int)
    for manifest in manifests:
        groups[(manifest.content, manifest.partition_spec_id)] += 1
    return sum(n for n in groups.values() if n > 1)


def is_delete(data_file: DataFile) -> bool:
    """True for position and equality delete files."""
    return data_file.content is not DataFileContent.DATA


__all__ = [
    "ENTRIES_PROCESSED",
    "MANIFESTS_CREATED",
    "MANIFESTS_KEPT",
    "MANIFESTS_REPLACED",
    "DeleteManifestWriterV2",
    "ReplaceFiles",
    "RewriteManifests",
    "is_delete",
    "manifests_to_rewrite",
]
