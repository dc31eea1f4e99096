"""Compaction: rewrite small data files (applying their delete files) into target-sized ones.

For one table on one branch, :func:`compact_table`

1. **plans** (:func:`plan_compaction`): groups the live data files of the current snapshot
   by partition; a partition is rewritten when it holds at least ``min_small_files``
   small files (smaller than ``small_file_ratio x target_file_size``), or when its small
   files are at least ``min_small_share`` of its files, or when any of its files has
   position deletes. Tables with equality deletes are skipped (PyIceberg cannot read
   them; compact those with Spark's ``rewrite_data_files``);
2. **rewrites** each group: reads the rows through PyIceberg's own reader (which applies
   position deletes and projects old files onto the current schema) and writes files of
   about ``target_file_size`` with PyIceberg's writer (partitioned by the current spec);
   for a table upserts write by one key column (``lakehouse.upsert.key``), unpartitioned,
   it writes the key index of each new file from the rows at hand
   (:mod:`lakehouse.tables.keyindex`), so the next large upsert does not decode them;
3. **commits** one Iceberg ``replace`` snapshot
   (:class:`~lakehouse.maintenance._producers.ReplaceFiles`) that removes the old data
   files, the position delete files that only applied to them, and adds the new files.
   A position delete file that also deletes from data files it keeps (one shared by many
   data files, written by a large row-level write or by Spark) is replaced by a rewrite
   holding only the kept files' positions, as Iceberg's ``rewrite_position_delete_files``
   does, so no delete file carries positions of files that are gone.
   That is one catalog commit on the branch. If another writer committed to the table in
   between, the replace is rebuilt on the new head — new appends are kept — provided every
   file it removes is still live there and no delete file appeared; otherwise it fails
   cleanly with :class:`~lakehouse.maintenance.errors.ConcurrentChangeError` and nothing
   is committed. Rows are identical before and after: the same rows, in files of
   another size.

Then, when the snapshot lists more than ``max_manifests`` manifests,
:func:`rewrite_manifests` merges them (another ``replace`` snapshot, files unchanged).

Nothing here deletes a file. Files written by an attempt that did not commit are left
for the garbage collector (its grace period protects files still being written).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent
from pyiceberg.table import TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.typedef import Record

from lakehouse import observability
from lakehouse.control import ensure_not_paused
from lakehouse.maintenance._common import (
    ProgressEvent,
    ProgressListener,
    listener,
    select_tables,
)
from lakehouse.maintenance._producers import ReplaceFiles, RewriteManifests
from lakehouse.maintenance.errors import ConcurrentChangeError
from lakehouse.maintenance.policies import CompactionPolicy, Policies
from lakehouse.tables.deletes import DELETE_FILES
from lakehouse.tables.keyindex import Layout, enabled, index_written
from lakehouse.tables.manifests import read_entries
from lakehouse.tables.rowdelta import delete_compression, write_position_delete_file
from lakehouse.tables.upsert import declared_keys

if TYPE_CHECKING:
    from pyiceberg.table import FileScanTask, Table
    from pyiceberg.table.metadata import TableMetadata

    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: Snapshot summary key marking snapshots written by maintenance.
MAINTENANCE_SUMMARY = "lakehouse.maintenance"
#: A rewrite group reads at most this many times the target size (bounded memory).
GROUP_FACTOR = 8


@dataclass(frozen=True)
class CompactionGroup:
    """Files of one partition rewritten together."""

    spec_id: int
    partition: Record
    tasks: tuple[FileScanTask, ...]

    @property
    def bytes(self) -> int:
        """On-disk size of the group's data files."""
        return sum(t.file.file_size_in_bytes for t in self.tasks)


@dataclass(frozen=True)
class CompactionPlan:
    """What :func:`compact_table` would rewrite; ``reason`` says why nothing, when empty."""

    groups: tuple[CompactionGroup, ...] = ()
    #: Position delete files that only apply to rewritten data files (removed with them).
    delete_files: tuple[DataFile, ...] = ()
    #: Path of every live delete file of the planned snapshot.
    live_delete_files: frozenset[str] = frozenset()
    #: Position delete files that apply to rewritten and kept data files: rewritten with
    #: the kept files' positions only (Iceberg's ``rewrite_position_delete_files``).
    trimmed_delete_files: tuple[DataFile, ...] = ()
    #: Path of every live data file of the planned snapshot.
    live_data_files: frozenset[str] = frozenset()
    data_files: int = 0
    snapshot_id: int | None = None
    reason: str | None = None

    @property
    def input_files(self) -> list[DataFile]:
        """Data files to rewrite."""
        return [t.file for g in self.groups for t in g.tasks]


def _live_delete_files(table: Table) -> tuple[list[DataFile], bool]:
    """Live delete files of the current snapshot, and whether any is an equality delete."""
    snapshot = table.current_snapshot()
    out: list[DataFile] = []
    equality = False
    if snapshot is None:
        return out, equality
    for manifest in snapshot.manifests(table.io):
        if manifest.content is not ManifestContent.DELETES:
            continue
        for entry in read_entries(table.io, manifest):
            out.append(entry.data_file)
            equality = equality or entry.data_file.content is DataFileContent.EQUALITY_DELETES
    return out, equality


def _deleted_share(task: FileScanTask) -> float:
    """Share of the data file's rows its delete files remove (an upper bound when a delete
    file also covers other files)."""
    rows = max(task.file.record_count, 1)
    return min(1.0, sum(d.record_count for d in task.delete_files) / rows)


def plan_compaction(table: Table, policy: CompactionPolicy) -> CompactionPlan:
    """Which data files of ``table`` (current snapshot) ``policy`` rewrites."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return CompactionPlan(reason="no snapshot")
    if table.format_version > 2:
        return CompactionPlan(
            snapshot_id=snapshot.snapshot_id,
            reason=f"format version {table.format_version} is not supported yet",
        )
    deletes, equality = _live_delete_files(table)
    if equality:
        return CompactionPlan(
            snapshot_id=snapshot.snapshot_id,
            reason="equality delete files (compact this table with Spark rewrite_data_files)",
        )
    tasks = list(table.scan().plan_files())
    by_partition: dict[tuple[int, Record], list[FileScanTask]] = defaultdict(list)
    for task in tasks:
        by_partition[(task.file.spec_id, task.file.partition)].append(task)
    small_size = policy.small_file_size
    cap = max(policy.target_file_size * GROUP_FACTOR, 1)
    groups: list[CompactionGroup] = []
    for (spec_id, partition), part_tasks in sorted(
        by_partition.items(), key=lambda kv: (kv[0][0], repr(kv[0][1]))
    ):
        small = [t for t in part_tasks if t.file.file_size_in_bytes < small_size]
        with_deletes = [
            t for t in part_tasks if t.delete_files and _deleted_share(t) >= policy.delete_ratio
        ]
        share = len(small) / len(part_tasks)
        triggered = (
            bool(with_deletes)
            or len(small) >= policy.min_small_files
            or (
                policy.min_small_share is not None
                and len(small) >= 2
                and share >= policy.min_small_share
            )
        )
        if not triggered:
            continue
        chosen = {t.file.file_path: t for t in (*small, *with_deletes)}
        if len(chosen) < 2 and not with_deletes:
            continue
        # bounded groups, smallest files first so they end up together
        batch: list[FileScanTask] = []
        size = 0
        for task in sorted(chosen.values(), key=lambda t: t.file.file_size_in_bytes):
            if batch and size + task.file.file_size_in_bytes > cap:
                groups.append(CompactionGroup(spec_id, partition, tuple(batch)))
                batch, size = [], 0
            batch.append(task)
            size += task.file.file_size_in_bytes
        if batch and (len(batch) > 1 or any(t.delete_files for t in batch)):
            groups.append(CompactionGroup(spec_id, partition, tuple(batch)))
    if not groups:
        return CompactionPlan(
            data_files=len(tasks),
            snapshot_id=snapshot.snapshot_id,
            live_delete_files=frozenset(d.file_path for d in deletes),
            reason="no partition needs compaction",
        )
    rewritten = {t.file.file_path for g in groups for t in g.tasks}
    applies_to: dict[str, set[str]] = defaultdict(set)
    for task in tasks:
        for delete in task.delete_files:
            applies_to[delete.file_path].add(task.file.file_path)
    removable = tuple(
        d
        for d in deletes
        if d.content is DataFileContent.POSITION_DELETES
        and applies_to.get(d.file_path)
        and applies_to[d.file_path] <= rewritten
    )
    trimmed = tuple(
        d
        for d in deletes
        if d.content is DataFileContent.POSITION_DELETES
        and applies_to.get(d.file_path, set()) & rewritten
        and not applies_to[d.file_path] <= rewritten
    )
    return CompactionPlan(
        groups=tuple(groups),
        delete_files=removable,
        live_delete_files=frozenset(d.file_path for d in deletes),
        trimmed_delete_files=trimmed,
        live_data_files=frozenset(t.file.file_path for t in tasks),
        data_files=len(tasks),
        snapshot_id=snapshot.snapshot_id,
    )


@dataclass(frozen=True)
class TableCompaction:
    """What compaction did (or would do, on a dry run) to one table."""

    table: str
    data_files_before: int = 0
    files_rewritten: int = 0
    delete_files_removed: int = 0
    #: Delete files rewritten without the positions of rewritten data files (at most, on
    #: a dry run: one that names none of them is left as it is).
    delete_files_trimmed: int = 0
    files_written: int = 0
    bytes_rewritten: int = 0
    bytes_written: int = 0
    rows: int = 0
    manifests_before: int = 0
    manifests_after: int = 0
    #: Commit attempts the replace needed (more than 1: concurrent writers).
    attempts: int = 0
    seconds: float = 0.0
    #: Why no data file was rewritten (``None``: some were); manifests may still have been.
    skipped: str | None = None
    #: Why compaction failed (nothing was committed for this table).
    error: str | None = None

    @property
    def compacted(self) -> bool:
        """True if data files or manifests were rewritten (or would be, on a dry run)."""
        return self.files_rewritten > 0 or self.manifests_after != self.manifests_before

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "table": self.table,
            "data_files_before": self.data_files_before,
            "files_rewritten": self.files_rewritten,
            "delete_files_removed": self.delete_files_removed,
            "delete_files_trimmed": self.delete_files_trimmed,
            "files_written": self.files_written,
            "bytes_rewritten": self.bytes_rewritten,
            "bytes_written": self.bytes_written,
            "rows": self.rows,
            "manifests_before": self.manifests_before,
            "manifests_after": self.manifests_after,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "error": self.error,
        }


@dataclass(frozen=True)
class CompactResult:
    """Outcome of :func:`compact` on one branch."""

    ref: str
    dry_run: bool
    tables: tuple[TableCompaction, ...] = field(default_factory=tuple)

    @property
    def files_rewritten(self) -> int:
        """Data files rewritten over all tables."""
        return sum(t.files_rewritten for t in self.tables)

    @property
    def files_written(self) -> int:
        """Data files written over all tables."""
        return sum(t.files_written for t in self.tables)

    @property
    def errors(self) -> list[TableCompaction]:
        """Tables whose compaction failed."""
        return [t for t in self.tables if t.error]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "operation": "compact",
            "ref": self.ref,
            "dry_run": self.dry_run,
            "files_rewritten": self.files_rewritten,
            "files_written": self.files_written,
            "tables": [t.to_json() for t in self.tables],
        }


def _rewrite_group(
    table: Table, group: CompactionGroup, target_size: int
) -> tuple[list[DataFile], int]:
    """Read the group's rows (deletes applied) and write them as target-sized files."""
    metadata = table.metadata
    rows = ArrowScan(metadata, table.io, metadata.schema(), AlwaysTrue()).to_table(group.tasks)
    if rows.num_rows == 0:
        return [], 0
    # PyIceberg bin-packs by in-memory Arrow bytes; scale the target by how much the
    # input files expanded in memory so that the files come out near target on disk.
    expansion = max(rows.nbytes / max(group.bytes, 1), 1.0)
    in_memory = max(int(target_size * expansion), 1)
    sized = metadata.model_copy(
        update={
            "properties": {
                **metadata.properties,
                TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(in_memory),
            }
        }
    )
    write_uuid = uuid.uuid4()
    layout = _key_layout(metadata)
    if layout is None or not metadata.spec().is_unpartitioned():
        return list(_dataframe_to_data_files(sized, rows, table.io, write_uuid=write_uuid)), (
            rows.num_rows
        )
    # a keyed table: one file per slice of rows, so that each file's rows are known and
    # its key index is written from them (PyIceberg's bin packing may interleave them)
    parts = max(1, math.ceil(rows.nbytes / in_memory))
    step = math.ceil(rows.num_rows / parts)
    files: list[DataFile] = []
    counter = itertools.count()
    for start in range(0, rows.num_rows, step):
        part = rows.slice(start, step)
        written = list(
            _dataframe_to_data_files(sized, part, table.io, write_uuid=write_uuid, counter=counter)
        )
        index_written(table.io, metadata, layout, part, written)
        files.extend(written)
    return files, rows.num_rows


def _key_layout(metadata: TableMetadata) -> Layout | None:
    """The key index layout of a table upserts write by one key column, if it has one."""
    if not enabled(metadata):
        return None
    try:
        keys = declared_keys(metadata.properties)
        if keys is None or len(keys) != 1:
            return None
        return Layout.of(metadata.schema(), keys[0])
    except ValueError:  # not a JSON list, or the key column is gone from the schema
        return None


def _count_manifests(table: Table) -> int:
    snapshot = table.current_snapshot()
    return len(snapshot.manifests(table.io)) if snapshot is not None else 0


def _trim_delete_files(
    table: Table, plan: CompactionPlan, codec: str
) -> list[tuple[DataFile, DataFile | None]]:
    """Each of ``plan``'s trimmed delete files that names a rewritten data file, with its
    rewrite: the positions of the live data files the compaction keeps (``None``: none).

    A delete file that does not name a rewritten data file (one scoped to a partition
    whose rewritten files it deletes nothing from) is left as it is.
    """
    rewritten = {f.file_path for f in plan.input_files}
    kept_files = plan.live_data_files - rewritten
    provider = load_location_provider(table.metadata.location, table.metadata.properties)
    commit = uuid.uuid4()
    out: list[tuple[DataFile, DataFile | None]] = []
    for index, delete_file in enumerate(plan.trimmed_delete_files):
        positions = DELETE_FILES.positions(table.io, delete_file.file_path)
        if rewritten.isdisjoint(positions):
            continue
        kept = {p: a for p, a in positions.items() if p in kept_files and len(a) > 0}
        name = f"{commit}-{index:05d}-deletes.parquet"
        out.append(
            (
                delete_file,
                write_position_delete_file(
                    table.io,
                    provider,
                    table.metadata,
                    delete_file,
                    kept,
                    name,
                    compression=codec,
                )
                if kept
                else None,
            )
        )
    return out


def _commit_replace(
    table: Table,
    plan: CompactionPlan,
    added: Sequence[DataFile],
    attempts: int,
    trimmed: Sequence[tuple[DataFile, DataFile | None]] = (),
) -> tuple[Table, int]:
    """Commit the replace, rebuilding it on a new head after a lost race; (table, attempts).

    ``trimmed`` are delete files to remove, each with its rewrite to add (if any).
    """
    last: Exception | None = None
    for attempt in range(1, max(1, attempts) + 1):
        txn = table.transaction()
        producer = ReplaceFiles(
            txn,
            table.io,
            branch=MAIN_BRANCH,
            planned_delete_files=plan.live_delete_files,
            snapshot_properties={MAINTENANCE_SUMMARY: "compaction"},
        )
        for data_file in plan.input_files:
            producer.remove_data_file(data_file)
        for delete_file in plan.delete_files:
            producer.remove_delete_file(delete_file)
        for delete_file, rewrite in trimmed:
            producer.remove_delete_file(delete_file)
            if rewrite is not None:
                producer.add_delete_file(rewrite)
        for data_file in added:
            producer.add_data_file(data_file)
        try:
            producer.commit()
            return txn.commit_transaction(), attempt
        except ValidationException as exc:
            raise ConcurrentChangeError(
                f"compaction of table '{'.'.join(table.name())}' was not committed: the table "
                f"changed concurrently in a conflicting way ({exc})",
                table=".".join(table.name()),
            ) from exc
        except CommitFailedException as exc:
            last = exc
            logger.info("compaction of %s lost a race (attempt %d): %s", table.name(), attempt, exc)
            table = table.refresh()
    raise ConcurrentChangeError(
        f"compaction of table '{'.'.join(table.name())}' gave up after {attempts} attempts "
        f"because of concurrent commits ({last}); nothing was committed",
        table=".".join(table.name()),
    )


def rewrite_manifests(
    table: Table, policy: CompactionPolicy, *, dry_run: bool = False, attempts: int = 5
) -> tuple[Table, int, int]:
    """Merge the current snapshot's manifests if it has more than ``max_manifests``.

    Returns the (possibly new) table and the manifest count before and after (on a dry
    run, "after" is an estimate: one manifest per content and partition spec).
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return table, 0, 0
    manifests = snapshot.manifests(table.io)
    before = len(manifests)
    if not policy.rewrite_manifests or before <= policy.max_manifests:
        return table, before, before
    if dry_run:
        groups = {(m.content, m.partition_spec_id) for m in manifests}
        return table, before, len(groups)
    last: Exception | None = None
    for _ in range(max(1, attempts)):
        txn = table.transaction()
        RewriteManifests(
            txn,
            table.io,
            branch=MAIN_BRANCH,
            target_size=int(policy.target_manifest_size),
            snapshot_properties={MAINTENANCE_SUMMARY: "rewrite-manifests"},
        ).commit()
        try:
            table = txn.commit_transaction()
            return table, before, _count_manifests(table)
        except CommitFailedException as exc:
            last = exc
            table = table.refresh()
    raise ConcurrentChangeError(
        f"manifest rewrite of table '{'.'.join(table.name())}' gave up after {attempts} "
        f"attempts because of concurrent commits ({last})",
        table=".".join(table.name()),
    )


def compact_table(
    table: Table,
    policy: CompactionPolicy,
    *,
    dry_run: bool = False,
    attempts: int = 5,
    on_progress: ProgressListener | None = None,
) -> TableCompaction:
    """Compact one table (a PyIceberg table loaded from a branch); see the module docstring.

    Raises :class:`~lakehouse.maintenance.errors.ConcurrentChangeError` when a concurrent
    change conflicts with the rewrite (nothing committed).
    """
    started = time.perf_counter()
    name = ".".join(table.name())
    report = listener(on_progress)
    plan = plan_compaction(table, policy)
    manifests_before = _count_manifests(table)
    result = TableCompaction(
        table=name, data_files_before=plan.data_files, manifests_before=manifests_before
    )
    if plan.groups:
        inputs = plan.input_files
        result = TableCompaction(
            table=name,
            data_files_before=plan.data_files,
            files_rewritten=len(inputs),
            delete_files_removed=len(plan.delete_files),
            delete_files_trimmed=len(plan.trimmed_delete_files),
            bytes_rewritten=sum(f.file_size_in_bytes for f in inputs),
            manifests_before=manifests_before,
            manifests_after=manifests_before,
        )
        if not dry_run:
            # a bad delete-file codec is refused before any file is written
            codec = delete_compression(table.metadata.properties)
            added: list[DataFile] = []
            rows = 0
            for i, group in enumerate(plan.groups):
                report(ProgressEvent("compact", name, i, len(plan.groups)))
                files, n = _rewrite_group(table, group, int(policy.target_file_size))
                added.extend(files)
                rows += n
            report(ProgressEvent("compact", name, len(plan.groups), len(plan.groups)))
            trimmed = _trim_delete_files(table, plan, codec)
            table, tries = _commit_replace(table, plan, added, attempts, trimmed)
            result = dataclasses.replace(
                result,
                delete_files_removed=len(plan.delete_files)
                + sum(1 for _, new in trimmed if new is None),
                delete_files_trimmed=sum(1 for _, new in trimmed if new is not None),
                files_written=len(added),
                bytes_written=sum(f.file_size_in_bytes for f in added),
                rows=rows,
                attempts=tries,
                manifests_after=_count_manifests(table),
            )
    table, _, m_after = rewrite_manifests(table, policy, dry_run=dry_run, attempts=attempts)
    skipped = plan.reason if not plan.groups else None
    return dataclasses.replace(
        result,
        manifests_before=manifests_before,
        manifests_after=m_after,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def compact(
    lh: Lakehouse,
    ref: str | None = None,
    *,
    tables: Sequence[str] | None = None,
    policies: Policies | None = None,
    dry_run: bool = False,
    attempts: int = 5,
    on_progress: ProgressListener | None = None,
) -> CompactResult:
    """Compact the tables on branch ``ref`` (default: the default branch), one commit each.

    ``tables`` selects tables (names, namespaces or fnmatch patterns; default all); each
    uses its :class:`~lakehouse.maintenance.policies.CompactionPolicy` from ``policies``
    (default: the lakehouse home's ``maintenance.yaml``). A table that fails (conflicting
    concurrent change, unreadable file) is reported with its error; the others go on.
    """

    if not dry_run:
        ensure_not_paused(lh, "compaction")
    from lakehouse.maintenance.policies import load_policies

    policies = policies or load_policies(home=lh.settings.home)
    branch = lh.store.writable_branch(ref or lh.default_branch).name
    catalog = lh.catalog(branch)
    report = listener(on_progress)
    names = select_tables(lh, branch, tables)
    results: list[TableCompaction] = []
    for i, name in enumerate(names):
        report(ProgressEvent("tables", name, i, len(names)))
        policy = policies.for_table(name).compaction
        if not policy.enabled:
            results.append(TableCompaction(name, skipped="compaction disabled by policy"))
            continue
        try:
            table = catalog.load_table(name)
            results.append(
                compact_table(
                    table, policy, dry_run=dry_run, attempts=attempts, on_progress=on_progress
                )
            )
        except Exception as exc:  # reported per table; the run goes on
            logger.warning("compaction of %s on %s failed: %s", name, branch, exc)
            results.append(TableCompaction(name, error=" ".join(str(exc).split())))
    report(ProgressEvent("tables", branch, len(names), len(names)))
    result = CompactResult(branch, dry_run, tuple(results))
    if not dry_run:
        observability.record_compaction(branch, result.files_rewritten, len(result.errors))
    return result


__all__ = [
    "MAINTENANCE_SUMMARY",
    "CompactResult",
    "CompactionGroup",
    "CompactionPlan",
    "TableCompaction",
    "compact",
    "compact_table",
    "plan_compaction",
    "rewrite_manifests",
]
