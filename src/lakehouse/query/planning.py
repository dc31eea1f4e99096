"""Iceberg scan planning: which files of a table a query reads, and how DuckDB reads them.

:func:`plan_table` uses PyIceberg's planner (manifest and partition pruning with the
partition spec's inclusive projection of the filter, then per-file metrics pruning) for
the data files and positional delete files, and applies Iceberg's rules for equality
delete files itself (PyIceberg's planner refuses them): an equality delete applies to a
data file whose data sequence number is lower, in the same partition, or everywhere when
the delete was written with an unpartitioned spec.

Each planned table gets a reader:

* ``parquet`` — DuckDB reads the planned data files with ``read_parquet``, columns mapped
  by Iceberg field id (so renamed, added and promoted columns read right), positional
  deletes anti-joined on (file, row position) and equality deletes on their columns;
* ``arrow`` — PyIceberg reads the table (``scan(...).to_arrow()``) and DuckDB scans the
  Arrow table: for files DuckDB cannot open (object stores), nested columns, name-mapped
  or default-valued columns;
* ``empty`` — no file to read.

Manifests are immutable: the entries read from one are kept per process
(:class:`ManifestEntryCache`, bounded by the number of entries), so planning a query again
reads only the manifest list — a table written by many small commits (one manifest each)
no longer pays one manifest read per commit in every query.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from lakehouse.query.errors import QueryError
from lakehouse.tables.files import SizedCache
from lakehouse.tables.manifests import read_manifest_list

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile, ManifestEntry, ManifestFile
    from pyiceberg.table import ManifestGroupPlanner, Table
    from pyiceberg.table.snapshots import Snapshot

Reader = Literal["parquet", "arrow", "empty"]

#: Columns DuckDB adds to read positional deletes; a table using the name reads through Arrow.
ROW_NUMBER_COLUMN = "file_row_number"
#: DuckDB's virtual column numbering the files of a read (to match position deletes).
FILE_INDEX_COLUMN = "file_index"


@dataclass(frozen=True)
class EqualityDelete:
    """An equality delete file and the field ids its rows match on."""

    path: str
    field_ids: tuple[int, ...]


@dataclass(frozen=True)
class ScanFile:
    """One data file to read, with the delete files that apply to it."""

    path: str
    record_count: int
    position_deletes: tuple[str, ...] = ()
    equality_deletes: tuple[EqualityDelete, ...] = ()

    @property
    def has_deletes(self) -> bool:
        """True when any delete file applies to this data file."""
        return bool(self.position_deletes or self.equality_deletes)


@dataclass(frozen=True)
class TableScanPlan:
    """How one table of a query is read: the planned files and the reader."""

    #: The table as the catalog names it (``namespace.table``).
    name: str
    #: The snapshot read (``None``: the table has no snapshot yet).
    snapshot_id: int | None
    #: The filter used for pruning (and, with the ``arrow`` reader, for reading).
    row_filter: BooleanExpression
    #: Columns read by the ``arrow`` reader (``None``: all).
    columns: tuple[str, ...] | None
    #: Data files left after pruning, with their deletes.
    files: tuple[ScanFile, ...]
    reader: Reader
    #: Why the ``arrow`` reader was chosen.
    reason: str | None = None
    #: SQL text of the pushed predicates.
    predicates: tuple[str, ...] = ()
    table: Table | None = field(default=None, repr=False, compare=False)

    @property
    def data_files(self) -> list[str]:
        """Paths of the planned data files."""
        return [f.path for f in self.files]

    @property
    def delete_files(self) -> list[str]:
        """Paths of the delete files that apply to the planned data files."""
        seen: dict[str, None] = {}
        for f in self.files:
            for path in f.position_deletes:
                seen.setdefault(path)
            for eq in f.equality_deletes:
                seen.setdefault(eq.path)
        return list(seen)

    def to_json(self) -> dict[str, object]:
        """JSON form (for ``EXPLAIN``-like output and logs)."""
        return {
            "table": self.name,
            "snapshot_id": self.snapshot_id,
            "reader": self.reader,
            "reason": self.reason,
            "filter": str(self.row_filter),
            "predicates": list(self.predicates),
            "columns": list(self.columns) if self.columns is not None else None,
            "data_files": self.data_files,
            "delete_files": self.delete_files,
        }


def is_local(path: str) -> bool:
    """True for ``file:`` URIs and plain paths (files DuckDB opens without extensions)."""
    return urlparse(path).scheme in ("", "file")


def plan_table(
    table: Table,
    name: str,
    row_filter: BooleanExpression,
    columns: Sequence[str] | None = None,
    predicates: Sequence[str] = (),
) -> TableScanPlan:
    """Plan the read of ``table`` (current snapshot) for ``row_filter`` and ``columns``.

    The files are planned once per table version and filter (:data:`SCAN_PLANS`).
    """
    snapshot = table.current_snapshot()
    selected = tuple(columns) if columns is not None else None
    if snapshot is None:
        return TableScanPlan(
            name, None, row_filter, selected, (), "empty", None, tuple(predicates), table
        )
    location = table.metadata_location
    key = (location, repr(row_filter))
    held = SCAN_PLANS.get(key) if location else None
    if held is None:
        held = _plan_files(table, snapshot, row_filter, name)
        if location:
            SCAN_PLANS.put(key, held)
    files, reason = held
    return TableScanPlan(
        name=name,
        snapshot_id=snapshot.snapshot_id,
        row_filter=row_filter,
        columns=selected,
        files=files,
        reader="empty" if not files else "arrow" if reason else "parquet",
        reason=reason,
        predicates=tuple(predicates),
        table=table,
    )


#: Planned data files a :class:`ScanPlanCache` keeps by default (all plans together).
DEFAULT_MAX_PLANNED_FILES = 100_000


class ScanPlanCache(SizedCache[tuple[str, str], tuple[tuple[ScanFile, ...], str | None]]):
    """Planned files and reader reason by (table metadata file, row filter), per process.

    A table's metadata file is immutable and names one version of the table, and planning
    depends only on it and the filter: a query of the same table version again (a
    dashboard refreshing) skips matching each data file with its delete files (0.8 ms
    for 10 files and a shared delete file). Bounded by the number of planned files
    (least recently used plans dropped), thread-safe.
    """

    def __init__(self, max_files: int = DEFAULT_MAX_PLANNED_FILES) -> None:
        super().__init__(max_files, lambda held: max(1, len(held[0])))


#: The process-wide cache :func:`plan_table` uses.
SCAN_PLANS = ScanPlanCache()


def _plan_files(
    table: Table, snapshot: Snapshot, row_filter: BooleanExpression, name: str
) -> tuple[tuple[ScanFile, ...], str | None]:
    """The files of ``snapshot`` ``row_filter`` may read, and why the arrow reader if so."""
    from pyiceberg.manifest import DataFileContent

    equality: list[ManifestEntry] = []
    data_sequence: dict[str, int] = {}

    def keep(entry: ManifestEntry) -> bool:
        content = entry.data_file.content
        if content == DataFileContent.EQUALITY_DELETES:
            equality.append(entry)
            return False
        if content == DataFileContent.DATA:
            data_sequence[entry.data_file.file_path] = entry.sequence_number or 0
        return True

    planner = _planner(table, row_filter)
    manifests = MANIFEST_ENTRIES.manifests(table.io, snapshot.manifest_list)
    tasks = list(planner.plan_files(manifests, manifest_entry_filter=keep))
    files = tuple(
        ScanFile(
            path=task.file.file_path,
            record_count=task.file.record_count,
            position_deletes=tuple(sorted(d.file_path for d in task.delete_files)),
            equality_deletes=_equality_deletes(
                table, task.file, data_sequence.get(task.file.file_path, 0), equality
            ),
        )
        for task in tasks
    )
    if not files:
        return files, None
    reason = _arrow_reason(table, files)
    if reason is not None and any(f.equality_deletes for f in files):
        raise QueryError(
            f"table '{name}' has equality delete files and {reason}: it cannot be read yet"
        )
    return files, reason


#: Manifest entries a :class:`ManifestEntryCache` keeps by default.
DEFAULT_MAX_ENTRIES = 50_000

#: Manifest lists (one per snapshot read) a :class:`ManifestEntryCache` keeps by default.
DEFAULT_MAX_LISTS = 256

_ManifestKey = tuple[str, int, int, int, int | None]


class ManifestEntryCache:
    """Manifest lists and live manifest entries, read once per process (both immutable).

    Lists are keyed by path (at most ``max_lists``, least recently used dropped); entries
    by the manifest's path, length and the values its entries inherit from the manifest
    list (sequence numbers, snapshot id), least recently used manifests dropped beyond
    ``max_entries`` entries. Thread-safe.
    """

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_lists: int = DEFAULT_MAX_LISTS
    ) -> None:
        self.max_entries = max_entries
        self.max_lists = max_lists
        self._lists: OrderedDict[str, tuple[ManifestFile, ...]] = OrderedDict()
        self._manifests: OrderedDict[_ManifestKey, list[ManifestEntry]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._manifests)

    def clear(self) -> None:
        """Forget every manifest."""
        with self._lock:
            self._lists.clear()
            self._manifests.clear()
            self._held = 0

    def manifests(self, io: FileIO, manifest_list: str) -> tuple[ManifestFile, ...]:
        """The manifests listed by the manifest list file ``manifest_list`` (a snapshot's)."""
        with self._lock:
            hit = self._lists.get(manifest_list)
            if hit is not None:
                self._lists.move_to_end(manifest_list)
                return hit
        listed = read_manifest_list(io, manifest_list)
        with self._lock:
            self._lists[manifest_list] = listed
            while len(self._lists) > self.max_lists:
                self._lists.popitem(last=False)
        return listed

    def entries(self, io: FileIO, manifest: ManifestFile) -> list[ManifestEntry]:
        """The live (not deleted) entries of ``manifest``; do not modify them."""
        key = (
            manifest.manifest_path,
            manifest.manifest_length,
            manifest.sequence_number,
            manifest.min_sequence_number,
            manifest.added_snapshot_id,
        )
        with self._lock:
            hit = self._manifests.get(key)
            if hit is not None:
                self._manifests.move_to_end(key)
                return hit
        from lakehouse.tables.manifests import read_entries

        entries = read_entries(io, manifest)
        with self._lock:
            if key not in self._manifests and len(entries) <= self.max_entries:
                self._manifests[key] = entries
                self._held += len(entries)
                while self._held > self.max_entries:
                    _, dropped = self._manifests.popitem(last=False)
                    self._held -= len(dropped)
        return entries


#: The process-wide cache :func:`plan_table` reads manifests through.
MANIFEST_ENTRIES = ManifestEntryCache()


def _planner(table: Table, row_filter: BooleanExpression) -> ManifestGroupPlanner:
    return _planner_class()(table.metadata, table.io, row_filter, case_sensitive=True)


@functools.cache
def _planner_class() -> type[ManifestGroupPlanner]:
    """PyIceberg's planner reading manifests through :data:`MANIFEST_ENTRIES`.

    Made on first use: PyIceberg's table module is imported only when a table is planned.
    """
    from pyiceberg.manifest import ManifestContent
    from pyiceberg.table import ManifestGroupPlanner
    from pyiceberg.typedef import KeyDefaultDict

    class CachedManifestPlanner(ManifestGroupPlanner):
        def plan_manifest_entries(
            self, manifests: Iterable[ManifestFile]
        ) -> Iterator[list[ManifestEntry]]:
            # the same pruning as PyIceberg's (partition summaries, then per entry the
            # partition and metrics evaluators; delete manifests older than every data
            # manifest skipped), the entries from the cache, in the calling thread
            by_spec: dict[int, Callable[[ManifestFile], bool]] = KeyDefaultDict(
                self._build_manifest_evaluator
            )
            kept = [m for m in manifests if by_spec[m.partition_spec_id](m)]
            data_sequences = [
                m.min_sequence_number or 0 for m in kept if m.content == ManifestContent.DATA
            ]
            oldest = min(data_sequences, default=0)
            partitions: dict[int, Callable[[DataFile], bool]] = KeyDefaultDict(
                self._build_partition_evaluator
            )
            metrics = self._build_metrics_evaluator()
            for manifest in kept:
                if not self._check_sequence_number(oldest, manifest):
                    continue
                in_partition = partitions[manifest.partition_spec_id]
                yield [
                    entry
                    for entry in MANIFEST_ENTRIES.entries(self.io, manifest)
                    if in_partition(entry.data_file) and metrics(entry.data_file)
                ]

    return CachedManifestPlanner


def _equality_deletes(
    table: Table, data_file: DataFile, sequence: int, entries: Sequence[ManifestEntry]
) -> tuple[EqualityDelete, ...]:
    """The equality deletes of ``entries`` that apply to ``data_file`` (Iceberg's rules)."""
    if not entries:
        return ()
    specs = table.metadata.specs()
    out: list[EqualityDelete] = []
    for entry in entries:
        delete = entry.data_file
        if (entry.sequence_number or 0) <= sequence:
            continue
        spec = specs.get(delete.spec_id)
        is_global = spec is None or spec.is_unpartitioned()
        same_partition = delete.spec_id == data_file.spec_id and _same_partition(
            delete.partition, data_file.partition
        )
        if is_global or same_partition:
            out.append(EqualityDelete(delete.file_path, tuple(delete.equality_ids or ())))
    return tuple(sorted(out, key=lambda d: d.path))


def _same_partition(left: object, right: object) -> bool:
    return bool(left == right)


def _arrow_reader_columns(table: Table) -> str | None:
    """Why DuckDB's ``read_parquet`` cannot map this table's columns, else ``None``."""
    from pyiceberg.table import TableProperties

    from lakehouse.query.analysis import duckdb_type

    schema = table.schema()
    if table.properties.get(TableProperties.DEFAULT_NAME_MAPPING):
        return "its files are read through a name mapping"
    for f in schema.fields:
        if duckdb_type(f.field_type) is None:
            return f"column '{f.name}' has type {f.field_type}"
        if f.initial_default is not None:
            return f"column '{f.name}' has a default value"
        if f.name.lower() in (ROW_NUMBER_COLUMN, FILE_INDEX_COLUMN):
            return f"it has a column named '{f.name}'"
    return None


def choose_reader(table: Table, files: Sequence[ScanFile]) -> tuple[Reader, str | None]:
    """The reader :func:`plan_table` would choose for ``files`` of ``table``, and why ``arrow``.

    For plans over files chosen elsewhere (an incremental append scan's): ``empty`` when
    there is no file, ``arrow`` (with the reason) when DuckDB cannot read them itself.
    """
    if not files:
        return "empty", None
    reason = _arrow_reason(table, files)
    return ("arrow" if reason else "parquet"), reason


def _arrow_reason(table: Table, files: Sequence[ScanFile]) -> str | None:
    remote = next((f.path for f in files if not is_local(f.path)), None)
    if remote is not None:
        return f"its files are not local ({urlparse(remote).scheme}://)"
    for f in files:
        for path in (*f.position_deletes, *(e.path for e in f.equality_deletes)):
            if not is_local(path):
                return f"its delete files are not local ({urlparse(path).scheme}://)"
    return _arrow_reader_columns(table)


__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_LISTS",
    "DEFAULT_MAX_PLANNED_FILES",
    "MANIFEST_ENTRIES",
    "SCAN_PLANS",
    "EqualityDelete",
    "ManifestEntryCache",
    "Reader",
    "ScanFile",
    "ScanPlanCache",
    "TableScanPlan",
    "choose_reader",
    "is_local",
    "plan_table",
]
