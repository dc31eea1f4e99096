"""Every file an Iceberg table references, and every file the versioned catalog can reach.

Shared by the integrity check and backups (:mod:`lakehouse.ops`) and by the garbage
collector (:mod:`lakehouse.maintenance`): one walker, one definition of "reachable".

Two layers:

* :class:`TableWalker` reads one table version through PyIceberg's own readers
  (:class:`~pyiceberg.io.FileIO`, :meth:`Snapshot.manifests`,
  :meth:`ManifestFile.fetch_manifest_entry` with ``discard_deleted=False``):
  metadata JSON → every snapshot → manifest list → manifests → data and delete files,
  plus statistics files, files named by table properties (:data:`FILE_PROPERTIES`:
  the ingest-state checkpoint of :mod:`lakehouse.ingest.bronze`) and, when asked, the
  previous metadata files of the metadata log. Every parsed file is cached by path
  (Iceberg files are immutable), so tables that share manifests across branches are
  read once.
* :func:`catalog_points` lists the commits to consider — every commit of every live
  reference (first parents and, by default, merge parents), newer than an optional
  cutoff plus the one that was current at the cutoff — and :func:`reachable_files`
  yields every file reachable from them, each path once, walking each metadata
  location once. :class:`RetainedHistory` (:func:`limited_history_contents`) does the
  same with a limit per reference — the newest N commits and/or a cutoff time, as the
  garbage collector's retention policies need.

Results are :class:`TableFile` values. A file the walker could not read (missing,
unreadable, not Iceberg) is yielded with :attr:`TableFile.error` set and is not walked
further: a garbage collector must treat such a walk as incomplete and delete nothing.
A file that is referenced but not needed to read its table (a ``DELETED`` manifest
entry, a previous metadata file) has :attr:`TableFile.required` false.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFileContent, ManifestEntryStatus, ManifestFile
from pyiceberg.serializers import FromInputFile
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.view.metadata import ViewMetadata

from lakehouse.catalog.model import (
    Content,
    ContentKey,
    IcebergTable,
    IcebergView,
    Put,
    Reference,
)
from lakehouse.catalog.store import VersionStore

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class FileKind(StrEnum):
    """What a file is to Iceberg."""

    TABLE_METADATA = "table-metadata"
    PREVIOUS_METADATA = "previous-metadata"
    VIEW_METADATA = "view-metadata"
    MANIFEST_LIST = "manifest-list"
    MANIFEST = "manifest"
    DATA = "data"
    POSITION_DELETES = "position-deletes"
    EQUALITY_DELETES = "equality-deletes"
    STATISTICS = "statistics"
    PARTITION_STATISTICS = "partition-statistics"
    #: Lakehouse's ingest-state checkpoint, named by a table property.
    INGEST_CHECKPOINT = "ingest-checkpoint"


#: Kinds that are metadata (live in the ``iceberg-metadata`` bucket of our warehouses).
METADATA_KINDS = frozenset(
    {
        FileKind.TABLE_METADATA,
        FileKind.PREVIOUS_METADATA,
        FileKind.VIEW_METADATA,
        FileKind.MANIFEST_LIST,
        FileKind.MANIFEST,
        FileKind.STATISTICS,
        FileKind.PARTITION_STATISTICS,
        FileKind.INGEST_CHECKPOINT,
    }
)

#: Table property naming the table's ingest-state checkpoint file
#: (written by snapshot expiry, read by ingestion: :mod:`lakehouse.ingest.bronze`).
INGEST_CHECKPOINT_PROPERTY = "lakehouse.ingest.checkpoint"
#: Table properties whose value is the location of a file the table version references.
FILE_PROPERTIES: Mapping[str, FileKind] = {
    INGEST_CHECKPOINT_PROPERTY: FileKind.INGEST_CHECKPOINT,
}


def property_files(metadata: TableMetadata) -> list[tuple[str, FileKind]]:
    """Files ``metadata`` names in its properties (:data:`FILE_PROPERTIES`), with their kind.

    Lakehouse keeps some table state in files outside Iceberg's own structure (the
    ingest-state checkpoint); every walker must see them, or the garbage collector would
    delete them, backups would not copy them and the check would not verify them.
    """
    out: list[tuple[str, FileKind]] = []
    for name, kind in FILE_PROPERTIES.items():
        location = metadata.properties.get(name)
        if location:
            out.append((location, kind))
    return out


_CONTENT_KIND = {
    DataFileContent.DATA: FileKind.DATA,
    DataFileContent.POSITION_DELETES: FileKind.POSITION_DELETES,
    DataFileContent.EQUALITY_DELETES: FileKind.EQUALITY_DELETES,
}


@dataclass(frozen=True)
class TableFile:
    """One file referenced by a table (or view) version.

    ``size`` is what the referencing file records (manifest entries for data and delete
    files, the manifest list for manifests, the metadata for statistics files) and
    ``None`` where Iceberg records none (metadata JSON, manifest lists). ``ref`` names the
    reference the walk started from (``@hash`` for a detached commit); ``commit`` is the
    catalog commit and ``metadata_location`` the table metadata file it went through.
    """

    path: str
    kind: FileKind
    size: int | None
    table: ContentKey
    ref: str
    metadata_location: str
    commit: str | None = None
    snapshot_id: int | None = None
    #: False for files a reader of the table does not need (DELETED entries, old metadata).
    required: bool = True
    #: Why the file could not be read to walk further (``None``: read, or not walked).
    error: str | None = None


@dataclass(frozen=True)
class ManifestEntryFile:
    """A data or delete file as one manifest lists it."""

    path: str
    kind: FileKind
    size: int
    #: The entry's status is DELETED: the file left the table in this manifest's snapshot.
    deleted: bool


@dataclass(frozen=True)
class CatalogPoint:
    """A commit of the catalog whose contents must stay readable."""

    ref: str
    hash: str
    commit_time: datetime | None = None


class WalkError(Exception):
    """Internal: an Iceberg file could not be read (wraps the reader's error)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        self.cause = cause
        text = " ".join(str(cause).split()) or type(cause).__name__
        super().__init__(f"cannot read {path}: {text}")


class _LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


class TableWalker:
    """Reads Iceberg metadata through ``io`` and lists the files each version references.

    Parsed metadata files, manifest lists and manifests are cached by path (at most
    ``cache_size`` of each); Iceberg never rewrites a file, so the cache needs no
    invalidation. Not thread-safe.
    """

    def __init__(self, io: FileIO, *, cache_size: int = 20_000) -> None:
        self.io = io
        self._metadata: _LRU[str, TableMetadata] = _LRU(min(cache_size, 2_000))
        self._manifests: _LRU[str, tuple[ManifestFile, ...]] = _LRU(cache_size)
        self._entries: _LRU[str, tuple[ManifestEntryFile, ...]] = _LRU(cache_size)

    # -- readers (raise WalkError) -------------------------------------------------------

    def table_metadata(self, location: str) -> TableMetadata:
        """The parsed table metadata file at ``location``."""
        cached = self._metadata.get(location)
        if cached is not None:
            return cached
        try:
            metadata = FromInputFile.table_metadata(self.io.new_input(location))
        except Exception as exc:  # OSError, JSON and validation errors alike
            raise WalkError(location, exc) from exc
        self._metadata.put(location, metadata)
        return metadata

    def view_metadata(self, location: str) -> ViewMetadata:
        """The parsed view metadata file at ``location``."""
        try:
            with self.io.new_input(location).open() as stream:
                return ViewMetadata.model_validate_json(stream.read())
        except Exception as exc:
            raise WalkError(location, exc) from exc

    def manifests(self, snapshot: Snapshot) -> tuple[ManifestFile, ...]:
        """The manifests listed by ``snapshot``'s manifest list."""
        path = snapshot.manifest_list
        cached = self._manifests.get(path)
        if cached is not None:
            return cached
        try:
            manifests = tuple(snapshot.manifests(self.io))
        except Exception as exc:
            raise WalkError(path, exc) from exc
        self._manifests.put(path, manifests)
        return manifests

    def entries(self, manifest: ManifestFile) -> tuple[ManifestEntryFile, ...]:
        """Every data or delete file ``manifest`` lists, DELETED entries included."""
        path = manifest.manifest_path
        cached = self._entries.get(path)
        if cached is not None:
            return cached
        try:
            # imported here: ``lakehouse.tables`` brings pyarrow, which a catalog server
            # that never walks files should not load
            from lakehouse.tables.manifests import read_entries

            raw = read_entries(self.io, manifest, discard_deleted=False)
        except Exception as exc:
            raise WalkError(path, exc) from exc
        entries = tuple(
            ManifestEntryFile(
                path=entry.data_file.file_path,
                kind=_CONTENT_KIND.get(entry.data_file.content, FileKind.DATA),
                size=int(entry.data_file.file_size_in_bytes),
                deleted=entry.status == ManifestEntryStatus.DELETED,
            )
            for entry in raw
        )
        self._entries.put(path, entries)
        return entries

    # -- walks -----------------------------------------------------------------------------

    def table_files(
        self,
        table: ContentKey,
        ref: str,
        metadata_location: str,
        *,
        commit: str | None = None,
        previous_metadata: bool = False,
        seen: set[str] | None = None,
        listed: set[str] | None = None,
    ) -> Iterator[TableFile]:
        """Every file the table version at ``metadata_location`` references.

        The metadata file first, then files named by its properties (the ingest-state
        checkpoint), then (if ``previous_metadata``) the metadata log's files,
        statistics files, and per snapshot its manifest list, manifests and their data
        and delete files; each path once (manifests shared by snapshots are read once and
        attributed to the first snapshot listing them). With ``seen``, every path already
        in it is skipped — and not walked again, which is correct because Iceberg files
        are immutable — and every yielded path is added to it, so calls can share it.

        Previous metadata files are only listed, not walked, so they go into ``listed``
        instead of ``seen``: the same path is yielded again (required, and walked) when a
        later call reaches it as a table's current metadata file.
        """
        if seen is None:
            seen = set()
        if listed is None:
            listed = set()

        def new(path: str) -> bool:
            if path in seen:
                return False
            seen.add(path)
            return True

        def file(
            path: str,
            kind: FileKind,
            size: int | None,
            snapshot_id: int | None = None,
            *,
            required: bool = True,
            error: str | None = None,
        ) -> TableFile:
            return TableFile(
                path=path,
                kind=kind,
                size=size,
                table=table,
                ref=ref,
                metadata_location=metadata_location,
                commit=commit,
                snapshot_id=snapshot_id,
                required=required,
                error=error,
            )

        if not new(metadata_location):
            return
        try:
            metadata = self.table_metadata(metadata_location)
        except WalkError as exc:
            yield file(metadata_location, FileKind.TABLE_METADATA, None, error=str(exc))
            return
        yield file(metadata_location, FileKind.TABLE_METADATA, None)
        for path, kind in property_files(metadata):
            if new(path):
                yield file(path, kind, None)

        if previous_metadata:
            for log_entry in metadata.metadata_log:
                path = log_entry.metadata_file
                if path not in seen and path not in listed:
                    listed.add(path)
                    yield file(
                        path,
                        FileKind.PREVIOUS_METADATA,
                        None,
                        required=False,
                    )
        for stats in metadata.statistics:
            if new(stats.statistics_path):
                yield file(
                    stats.statistics_path,
                    FileKind.STATISTICS,
                    stats.file_size_in_bytes,
                    stats.snapshot_id,
                )
        for part_stats in metadata.partition_statistics:
            if new(part_stats.statistics_path):
                yield file(
                    part_stats.statistics_path,
                    FileKind.PARTITION_STATISTICS,
                    part_stats.file_size_in_bytes,
                    part_stats.snapshot_id,
                )

        for snapshot in metadata.snapshots:
            if not new(snapshot.manifest_list):
                continue
            sid = snapshot.snapshot_id
            try:
                manifests = self.manifests(snapshot)
            except WalkError as exc:
                yield file(
                    snapshot.manifest_list, FileKind.MANIFEST_LIST, None, sid, error=str(exc)
                )
                continue
            yield file(snapshot.manifest_list, FileKind.MANIFEST_LIST, None, sid)
            for manifest in manifests:
                if not new(manifest.manifest_path):
                    continue
                size = manifest.manifest_length
                try:
                    entries = self.entries(manifest)
                except WalkError as exc:
                    yield file(manifest.manifest_path, FileKind.MANIFEST, size, sid, error=str(exc))
                    continue
                yield file(manifest.manifest_path, FileKind.MANIFEST, size, sid)
                for entry in entries:
                    if new(entry.path):
                        yield file(
                            entry.path, entry.kind, entry.size, sid, required=not entry.deleted
                        )

    def view_files(
        self,
        view: ContentKey,
        ref: str,
        metadata_location: str,
        *,
        commit: str | None = None,
        seen: set[str] | None = None,
    ) -> Iterator[TableFile]:
        """The view metadata file (views reference no other file)."""
        if seen is not None:
            if metadata_location in seen:
                return
            seen.add(metadata_location)
        error: str | None = None
        try:
            self.view_metadata(metadata_location)
        except WalkError as exc:
            error = str(exc)
        yield TableFile(
            path=metadata_location,
            kind=FileKind.VIEW_METADATA,
            size=None,
            table=view,
            ref=ref,
            metadata_location=metadata_location,
            commit=commit,
            error=error,
        )

    def content_files(
        self,
        key: ContentKey,
        content: Content,
        ref: str,
        *,
        commit: str | None = None,
        previous_metadata: bool = False,
        seen: set[str] | None = None,
        listed: set[str] | None = None,
    ) -> Iterator[TableFile]:
        """Files of any content: a table, a view, or nothing for a namespace."""
        if isinstance(content, IcebergTable):
            yield from self.table_files(
                key,
                ref,
                content.metadata_location,
                commit=commit,
                previous_metadata=previous_metadata,
                seen=seen,
                listed=listed,
            )
        elif isinstance(content, IcebergView):
            yield from self.view_files(
                key, ref, content.metadata_location, commit=commit, seen=seen
            )


def snapshot_ancestry(metadata: TableMetadata, snapshot_id: int | None = None) -> list[Snapshot]:
    """``snapshot_id`` (default: the current snapshot) and its ancestors, newest first."""
    out: list[Snapshot] = []
    current = metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot_id is None:
        current = metadata.current_snapshot()
    visited: set[int] = set()
    while current is not None and current.snapshot_id not in visited:
        visited.add(current.snapshot_id)
        out.append(current)
        parent = current.parent_snapshot_id
        current = metadata.snapshot_by_id(parent) if parent is not None else None
    return out


def catalog_points(
    store: VersionStore,
    references: Sequence[Reference] | None = None,
    *,
    cutoff: datetime | None = None,
    follow_merge_parents: bool = True,
) -> Iterator[CatalogPoint]:
    """Every commit whose contents must stay readable, each once.

    For each reference (default: every branch and tag, read now — pass a pinned list for
    a consistent walk) its history is followed along first parents and, with
    ``follow_merge_parents``, merge parents too. With ``cutoff``, a chain stops at the
    first commit made at or before ``cutoff``, which is included: it is the state the
    reference had at the cutoff. The root commit (the empty catalog) is never yielded.
    """
    refs = list(references) if references is not None else store.list_references()
    seen: set[str] = set()
    for reference in refs:
        pending = [reference.hash]
        while pending:
            start = pending.pop()
            for entry in store.iter_log("@" + start):
                meta = entry.meta
                h = meta.hash
                if h is None or h in seen:
                    break  # its history (same cutoff rule) was walked from here already
                seen.add(h)
                yield CatalogPoint(reference.name, h, meta.commit_time)
                if (
                    cutoff is not None
                    and meta.commit_time is not None
                    and meta.commit_time <= cutoff
                ):
                    break
                if follow_merge_parents:
                    pending.extend(p for p in meta.parent_hashes[1:] if p not in seen)


def point_contents(
    store: VersionStore,
    points: Iterable[CatalogPoint],
    *,
    on_content: Callable[[CatalogPoint, ContentKey, Content], None] | None = None,
) -> Iterator[tuple[CatalogPoint, ContentKey, Content]]:
    """Every table and view visible at any of ``points``.

    Reads the full contents of each point. (Cheap enough for catalogs of thousands of
    commits; contents are de-duplicated by the caller.)
    """
    for point in points:
        for entry in store.entries("@" + point.hash, with_content=True):
            content = entry.content
            if isinstance(content, IcebergTable | IcebergView):
                if on_content is not None:
                    on_content(point, entry.key, content)
                yield point, entry.key, content


def history_contents(
    store: VersionStore,
    references: Sequence[Reference] | None = None,
    *,
    cutoff: datetime | None = None,
    follow_merge_parents: bool = True,
) -> Iterator[tuple[CatalogPoint, ContentKey, Content]]:
    """Every table and view content visible at any commit :func:`catalog_points` yields.

    Uses the operations recorded on each commit: the contents visible at a commit are
    those at the end of its chain (the commit current at the cutoff; nothing at the
    root) plus every content a commit of the chain put. So the cost grows with the
    number of changes, not with commits times tables. Each (key, metadata location) once.
    """
    refs = list(references) if references is not None else store.list_references()
    seen_commits: set[str] = set()
    seen: set[tuple[ContentKey, str]] = set()

    def fresh(key: ContentKey, content: Content) -> bool:
        if not isinstance(content, IcebergTable | IcebergView):
            return False
        marker = (key, content.metadata_location)
        if marker in seen:
            return False
        seen.add(marker)
        return True

    for reference in refs:
        pending = [reference.hash]
        while pending:
            start = pending.pop()
            for entry in store.iter_log("@" + start, fetch_operations=True):
                meta = entry.meta
                h = meta.hash
                if h is None or h in seen_commits:
                    break
                seen_commits.add(h)
                point = CatalogPoint(reference.name, h, meta.commit_time)
                for op in entry.operations or ():
                    if isinstance(op, Put) and fresh(op.key, op.content):
                        yield point, op.key, op.content
                if (
                    cutoff is not None
                    and meta.commit_time is not None
                    and meta.commit_time <= cutoff
                ):
                    # the state at the cutoff: everything visible at this commit
                    for e in store.entries("@" + h, with_content=True):
                        if e.content is not None and fresh(e.key, e.content):
                            yield point, e.key, e.content
                    break
                if follow_merge_parents:
                    pending.extend(p for p in meta.parent_hashes[1:] if p not in seen_commits)


def reachable_files(
    store: VersionStore,
    walker: TableWalker,
    references: Sequence[Reference] | None = None,
    *,
    cutoff: datetime | None = None,
    previous_metadata: bool = False,
    follow_merge_parents: bool = True,
) -> Iterator[TableFile]:
    """Every file reachable from the history of ``references`` (default: all, read now).

    Each metadata location is walked once and each path yielded once, attributed to the
    first reference and commit it was reached from — except that a file first listed as a
    previous metadata file (optional) is yielded again if a commit points at it (then
    required). Files whose :attr:`TableFile.error` is set could not be read; anything
    they reference is unknown.
    """
    seen: set[str] = set()
    listed: set[str] = set()
    for point, key, content in history_contents(
        store, references, cutoff=cutoff, follow_merge_parents=follow_merge_parents
    ):
        yield from walker.content_files(
            key,
            content,
            point.ref,
            commit=point.hash,
            previous_metadata=previous_metadata,
            seen=seen,
            listed=listed,
        )


# -- history with a limit per reference (garbage collection) ------------------------------


@dataclass(frozen=True)
class HistoryLimit:
    """How much of one reference's history stays readable (nessie-gc's cutoff policies).

    The newest ``commits`` commits along first parents and every commit made after
    ``cutoff`` (the union when both are set), including the commit current at the limit;
    with neither, all history. Merge parents are followed while their commits are newer
    than ``cutoff`` (not for a count-only limit: a merge commit's operations already carry
    what it brought in).
    """

    commits: int | None = None
    cutoff: datetime | None = None


class RetainedHistory:
    """Walks references' histories within their limits, remembering what it walked.

    Each (key, metadata location) is yielded once over all calls of :meth:`contents`, and
    a commit reached again is walked past only if the new limit reaches further than an
    earlier walk from it did — so marking many references that share history, or marking
    a reference again after it moved, costs only what is new.
    """

    def __init__(self, store: VersionStore, limits: Callable[[Reference], HistoryLimit]) -> None:
        self.store = store
        self.limits = limits
        self._seen: set[tuple[ContentKey, str]] = set()
        self._visits: dict[str, list[tuple[float, float]]] = {}
        self._read_ops: set[str] = set()
        self._read_full: set[str] = set()

    def _fresh(self, key: ContentKey, content: Content | None) -> bool:
        if not isinstance(content, IcebergTable | IcebergView):
            return False
        marker = (key, content.metadata_location)
        if marker in self._seen:
            return False
        self._seen.add(marker)
        return True

    def _full(self, point: CatalogPoint) -> Iterator[tuple[CatalogPoint, ContentKey, Content]]:
        if point.hash in self._read_full:
            return
        self._read_full.add(point.hash)
        for e in self.store.entries("@" + point.hash, with_content=True):
            if e.content is not None and self._fresh(e.key, e.content):
                yield point, e.key, e.content

    def contents(self, reference: Reference) -> Iterator[tuple[CatalogPoint, ContentKey, Content]]:
        """Contents visible at any commit of ``reference`` within its limit, not yet yielded."""
        limit = self.limits(reference)
        keep_all = limit.commits is None and limit.cutoff is None
        budget = math.inf if keep_all else float(limit.commits or 0)
        cut = -math.inf if keep_all else (limit.cutoff.timestamp() if limit.cutoff else math.inf)
        pending: list[tuple[str, float, float]] = [(reference.hash, budget, cut)]
        while pending:
            start, count, cutoff = pending.pop()
            for entry in self.store.iter_log("@" + start, fetch_operations=True):
                h = entry.meta.hash
                if h is None:
                    break
                prior = self._visits.setdefault(h, [])
                if any(c >= count and t <= cutoff for c, t in prior):
                    break  # an earlier walk went at least as far from here
                prior.append((count, cutoff))
                point = CatalogPoint(reference.name, h, entry.meta.commit_time)
                if h not in self._read_ops:
                    self._read_ops.add(h)
                    if entry.operations is None:  # the store did not say: read everything
                        yield from self._full(point)
                    else:
                        for op in entry.operations:
                            if isinstance(op, Put) and self._fresh(op.key, op.content):
                                yield point, op.key, op.content
                count -= 1
                when = entry.meta.commit_time
                t = when.timestamp() if when is not None else math.inf
                if count <= 0 and t <= cutoff:
                    yield from self._full(point)  # the state at the limit
                    break
                if cutoff != math.inf:
                    pending.extend((p, 0.0, cutoff) for p in entry.meta.parent_hashes[1:])


def limited_history_contents(
    store: VersionStore,
    limits: Callable[[Reference], HistoryLimit],
    references: Sequence[Reference] | None = None,
) -> Iterator[tuple[CatalogPoint, ContentKey, Content]]:
    """Every table and view content visible at any commit within each reference's limit.

    Like :func:`history_contents`, but each reference has its own
    limit (see :class:`RetainedHistory`). Each (key, metadata location) is yielded once.
    """
    history = RetainedHistory(store, limits)
    for reference in references if references is not None else store.list_references():
        yield from history.contents(reference)


__all__ = [
    "FILE_PROPERTIES",
    "INGEST_CHECKPOINT_PROPERTY",
    "METADATA_KINDS",
    "CatalogPoint",
    "FileKind",
    "HistoryLimit",
    "ManifestEntryFile",
    "RetainedHistory",
    "TableFile",
    "TableWalker",
    "WalkError",
    "catalog_points",
    "history_contents",
    "limited_history_contents",
    "point_contents",
    "property_files",
    "reachable_files",
    "snapshot_ancestry",
]
