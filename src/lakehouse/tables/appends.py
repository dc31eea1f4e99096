"""Appends whose manifest is written before the table's commit lock.

Writers of one table queue on its commit lock (see :mod:`lakehouse.catalog.iceberg`), so
whatever an append does while it holds the lock, every other writer of the table waits
for. PyIceberg's append producers write the new data manifest when the snapshot is built,
which for a table's commit lock means while it is held. An append knows everything that
manifest holds before it takes the lock: its data files and a snapshot id of its own
choosing (random, as PyIceberg's). :func:`prepare_append` writes the manifest and counts
the summary of the added files then; :meth:`PreparedAppend.stage` builds the snapshot on
the branch head found under the lock:

* the new manifest first, then the head's live manifests, merged as PyIceberg's merge
  append merges them (``commit.manifest-merge.enabled``, ``commit.manifest.min-count-to-
  merge``, ``commit.manifest.target-size-bytes``; PyIceberg's own merge manager);
* the summary: the added files' counts on top of the head's totals;
* a manifest list with the head as parent and the next sequence number, kept in the
  process's cache of manifest lists (:func:`~lakehouse.tables.rowdelta.snapshot_manifests`)
  so that this writer's next append does not read it back.

The snapshot is the one PyIceberg's fast or merge append would make of the same files on
the same head. Only format-v2 tables on a named branch are prepared; the caller appends
the PyIceberg way otherwise. Files of an append that did not land are deleted
(:meth:`PreparedAppend.discard`), as PyIceberg deletes its own.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from lakehouse.tables.manifests import (
    ManifestWriter,
    added_entry,
    avro_compression,
    read_entries,
)
from lakehouse.tables.metadata import branch_head
from lakehouse.tables.rowdelta import has_live_files, snapshot_manifests, stage_snapshot

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile, ManifestEntry, ManifestFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.table import Transaction
    from pyiceberg.table.locations import LocationProvider
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update.snapshot import _ManifestMergeManager

logger = logging.getLogger(__name__)


@dataclass
class PreparedAppend:
    """Data files with their manifest, written for a snapshot that is not built yet."""

    io: FileIO
    #: the metadata the files and the manifest were written for
    metadata: TableMetadata
    snapshot_id: int
    commit_uuid: uuid.UUID
    manifest: ManifestFile
    #: the snapshot summary of the added files (``added-data-files``, ``added-records`` …)
    added_summary: Mapping[str, str]
    #: every metadata file written for this append so far, to delete if it does not land
    written: list[str] = field(default_factory=list)
    #: numbers of the append's manifests (its first, ``-m0``, is ``manifest``)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def _taken(self, metadata: TableMetadata) -> bool:
        """Whether a snapshot of ``metadata`` has this append's snapshot id.

        The id was new to the metadata it was picked for, so only a snapshot committed
        since can have it; a format-v2 table appends those to its list, with higher
        sequence numbers, so the list is read from its end, not whole (at 1,000 snapshots
        a whole read cost 0.4 ms).
        """
        since: int | None = getattr(self.metadata, "last_sequence_number", None)  # v2 and on
        for snapshot in reversed(metadata.snapshots):
            if snapshot.snapshot_id == self.snapshot_id:
                return True
            seq = snapshot.sequence_number
            if since is not None and seq is not None and seq <= since:
                return False
        return False

    def stage(
        self,
        transaction: Transaction,
        branch: str,
        snapshot_properties: Mapping[str, str],
    ) -> bool:
        """Build the snapshot on the head of ``branch`` and stage it on ``transaction``.

        ``transaction`` is on the table as it is now, with nothing staged; its layout must
        be the one the files were written for. Returns False, staging nothing, when the
        table already has a snapshot of this id (the caller appends anew).
        """
        from pyiceberg.manifest import ManifestContent
        from pyiceberg.table import TableProperties
        from pyiceberg.table.snapshots import Operation, Summary, update_snapshot_summaries
        from pyiceberg.table.update.snapshot import _ManifestMergeManager
        from pyiceberg.utils.properties import property_as_bool, property_as_int

        metadata = transaction.table_metadata
        if self._taken(metadata):
            return False
        head = branch_head(metadata, branch)
        listed = snapshot_manifests(self.io, head) if head is not None else ()
        existing = [m for m in listed if has_live_files(m)]
        properties = metadata.properties
        merger = _ManifestMergeManager(
            target_size_bytes=cast(
                "int",
                property_as_int(
                    properties,
                    TableProperties.MANIFEST_TARGET_SIZE_BYTES,
                    TableProperties.MANIFEST_TARGET_SIZE_BYTES_DEFAULT,
                ),
            ),
            min_count_to_merge=cast(
                "int",
                property_as_int(
                    properties,
                    TableProperties.MANIFEST_MIN_MERGE_COUNT,
                    TableProperties.MANIFEST_MIN_MERGE_COUNT_DEFAULT,
                ),
            ),
            merge_enabled=property_as_bool(
                properties,
                TableProperties.MANIFEST_MERGE_ENABLED,
                TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT,
            ),
            snapshot_producer=cast("Any", _MergeTarget(self, metadata)),
        )
        data = [m for m in (self.manifest, *existing) if m.content == ManifestContent.DATA]
        deletes = [m for m in existing if m.content == ManifestContent.DELETES]
        if _merges(merger, data):
            data = merger.merge_manifests(data)
        manifests = data + deletes
        summary = update_snapshot_summaries(
            Summary(Operation.APPEND, **self.added_summary, **snapshot_properties),
            previous_summary=head.summary if head is not None else None,
        )
        list_path = _provider(metadata).new_metadata_location(
            f"snap-{self.snapshot_id}-0-{self.commit_uuid}.avro"
        )
        self.written.append(list_path)
        stage_snapshot(
            transaction,
            metadata,
            branch=branch,
            snapshot_id=self.snapshot_id,
            manifests=manifests,
            summary=summary,
            list_path=list_path,
        )
        return True

    def discard(self) -> None:
        """Delete the metadata files written for this append (it did not land)."""
        for path in self.written:
            _delete(self.io, path)
        self.written.clear()

    def new_manifest_path(self) -> str:
        """A path for one more manifest of this append."""
        path = _provider(self.metadata).new_metadata_location(
            f"{self.commit_uuid}-m{next(self._numbers)}.avro"
        )
        self.written.append(path)
        return path


def prepare_append(
    metadata: TableMetadata, io: FileIO, files: Sequence[DataFile]
) -> PreparedAppend | None:
    """Write the data manifest of an append of ``files`` to the table of ``metadata``.

    None when the append is not prepared (no files, or not a format-v2 table).
    """
    from pyiceberg.table import TableProperties
    from pyiceberg.table.snapshots import SnapshotSummaryCollector
    from pyiceberg.utils.properties import property_as_int

    if not files or metadata.format_version != 2:
        return None
    snapshot_id = metadata.new_snapshot_id()
    commit_uuid = uuid.uuid4()
    spec = metadata.spec()
    schema = metadata.schema()
    path = _provider(metadata).new_metadata_location(f"{commit_uuid}-m0.avro")
    try:
        with ManifestWriter(
            spec, schema, io.new_output(path), snapshot_id, avro_compression(metadata)
        ) as writer:
            for data_file in files:
                writer.add_entry(added_entry(data_file, snapshot_id))
    except BaseException:
        _delete(io, path)
        raise
    collector = SnapshotSummaryCollector(
        partition_summary_limit=cast(
            "int",
            property_as_int(
                metadata.properties,
                TableProperties.WRITE_PARTITION_SUMMARY_LIMIT,
                TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT,
            ),
        )
    )
    for data_file in files:
        collector.add_file(data_file, partition_spec=spec, schema=schema)
    return PreparedAppend(
        io=io,
        metadata=metadata,
        snapshot_id=snapshot_id,
        commit_uuid=commit_uuid,
        manifest=writer.to_manifest_file(),
        added_summary=collector.build(),
        written=[path],
    )


class _MergeTarget:
    """What PyIceberg's manifest merge manager asks of the snapshot being built."""

    def __init__(self, prepared: PreparedAppend, metadata: TableMetadata) -> None:
        self._prepared = prepared
        self._metadata = metadata

    @property
    def snapshot_id(self) -> int:
        return self._prepared.snapshot_id

    def spec(self, spec_id: int) -> PartitionSpec:
        return self._metadata.specs()[spec_id]

    def new_manifest_writer(self, spec: PartitionSpec) -> ManifestWriter:
        prepared = self._prepared
        return ManifestWriter(
            spec,
            self._metadata.schema(),
            prepared.io.new_output(prepared.new_manifest_path()),
            prepared.snapshot_id,
            avro_compression(self._metadata),
        )

    def fetch_manifest_entry(
        self, manifest: ManifestFile, discard_deleted: bool = True
    ) -> list[ManifestEntry]:
        return read_entries(self._prepared.io, manifest, discard_deleted=discard_deleted)


def _merges(merger: _ManifestMergeManager[Any], data: Sequence[ManifestFile]) -> bool:
    """False when PyIceberg's merge manager would return ``data`` as it is: merging is off,
    or the manifests fit in one bin (one partition spec, sizes adding up to at most the
    target) and that bin, holding the new manifest, has fewer than the minimum count. The manager
    itself is then not run (it packs on a thread pool, a thread handoff per append)."""
    if not merger._merge_enabled:
        return False
    one_bin = (
        len({m.partition_spec_id for m in data}) <= 1
        and sum(m.manifest_length for m in data) <= merger._target_size_bytes
    )
    return not one_bin or len(data) >= merger._min_count_to_merge


def _delete(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except Exception:  # a leftover file is garbage for the collector, not an error
        logger.warning("could not delete %s of an append that did not land", path)


def _provider(metadata: TableMetadata) -> LocationProvider:
    from pyiceberg.table.locations import load_location_provider

    return load_location_provider(metadata.location, metadata.properties)


__all__ = ["PreparedAppend", "prepare_append"]
