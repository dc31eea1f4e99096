"""Candidate files of a row-level write, planned with manifest entries read once per process.

PyIceberg's planner decodes every manifest of the snapshot on every plan. Manifest files
are immutable, and a table that takes many small upserts keeps most of its manifests
from one snapshot to the next, so :func:`plan_tasks` plans with PyIceberg's own
evaluators (partition summaries, partition values, column metrics, sequence numbers,
the delete file index) over entries cached by manifest path
(:func:`~lakehouse.tables.rowdelta.manifest_entries`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from pyiceberg.table import FileScanTask, ManifestGroupPlanner
from pyiceberg.utils.concurrent import ExecutorFactory

from lakehouse.tables.rowdelta import has_cached_entries, manifest_entries, snapshot_manifests

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import ManifestEntry, ManifestFile
    from pyiceberg.table.metadata import TableMetadata


class _CachedPlanner(ManifestGroupPlanner):
    """PyIceberg's planner, reading manifest entries through the process cache."""

    def plan_manifest_entries(
        self, manifests: Iterable[ManifestFile]
    ) -> Iterator[list[ManifestEntry]]:
        from pyiceberg.table import _min_sequence_number
        from pyiceberg.typedef import KeyDefaultDict

        manifest_evaluators = KeyDefaultDict(self._build_manifest_evaluator)
        kept = [m for m in manifests if manifest_evaluators[m.partition_spec_id](m)]
        partition_evaluators = KeyDefaultDict(self._build_partition_evaluator)
        metrics = self._build_metrics_evaluator()
        min_sequence = _min_sequence_number(kept)
        io = self.io

        def read(manifest: ManifestFile) -> list[ManifestEntry]:
            partition = partition_evaluators[manifest.partition_spec_id]
            return [
                e
                for e in manifest_entries(io, manifest)
                if partition(e.data_file) and metrics(e.data_file)
            ]

        selected = [m for m in kept if self._check_sequence_number(min_sequence, m)]
        if all(has_cached_entries(m) for m in selected):
            # filtering cached entries takes less than handing them to a pool thread and
            # back (which, on a loaded machine, waits for a time slice per manifest)
            return iter([read(m) for m in selected])
        return ExecutorFactory.get_or_create().map(read, selected)


def plan_tasks(
    metadata: TableMetadata, io: FileIO, snapshot_id: int, row_filter: BooleanExpression
) -> list[FileScanTask]:
    """Data files of snapshot ``snapshot_id`` that ``row_filter`` may match, with deletes."""
    snapshot = metadata.snapshot_by_id(snapshot_id)
    if snapshot is None:
        return []
    planner = _CachedPlanner(metadata, io, row_filter, case_sensitive=True)
    return list(planner.plan_files(list(snapshot_manifests(io, snapshot))))


__all__ = ["plan_tasks"]
