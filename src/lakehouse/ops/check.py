"""``lakehouse catalog check``: does every file the catalog references exist, whole?

For every reference (default: every branch and tag) and every table and view on it,
the check walks the table's current metadata file → every snapshot's manifest list →
manifests → data and delete files (:class:`~lakehouse.catalog.files.TableWalker`) and
confirms each file exists with the size its referencing file records (metadata JSON and
manifest lists record none: existence only). Files a reader does not need (``DELETED``
manifest entries) are not required. Each distinct file is read or looked up once, however
many references share it.

The result is a per-table report: which files are missing, have another size or cannot
be read, which snapshots they break, and whether the current snapshot is readable.
``history=True`` also walks every metadata version the history of each reference
reaches (what a backup copies). A file of that history which is missing because the
garbage collector deleted it *by policy* — it is named by one of the collector's
verified deferred-delete lists, ``<iceberg-metadata>/_gc/<run-id>.jsonl``, which every
run writes before it deletes anything (:func:`lakehouse.maintenance.gc.collected_files`)
— is reported as **expired**, not as a problem: those older commits were given up on
purpose (retention ``gc.references``) and cannot be read in the lakehouse any more. Only
a history file that is missing without such a record, has another size or cannot be read
is damage. Files the current state of a reference needs are never "expired": the
collector never deletes them, so a missing one is damage whatever a list says.

``repair=True`` never deletes anything. For a table on a *branch* whose current
snapshot is broken, it finds the newest ancestor snapshot whose files are all present
and makes it current through the table's own API (PyIceberg
``manage_snapshots().set_current_snapshot``, committed by
:class:`~lakehouse.catalog.iceberg.RefCatalog`): a new metadata file and a new catalog
commit whose message says what was rolled back and why. Files stay where they are;
snapshots stay in the metadata (time travel to them still fails, and the check keeps
reporting them until snapshot expiry drops them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from lakehouse.catalog.files import (
    FileKind,
    TableWalker,
    WalkError,
    property_files,
    reachable_files,
    snapshot_ancestry,
)
from lakehouse.catalog.model import (
    CommitMeta,
    IcebergTable,
    IcebergView,
    Reference,
    ReferenceType,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.maintenance.gc import collected_files
from lakehouse.storage.objects import Location, Storage, canonical, default_workers, describe

if TYPE_CHECKING:
    from pyiceberg.io import FileIO

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.session import Lakehouse
    from lakehouse.storage.zones import Warehouse

logger = logging.getLogger(__name__)

MISSING = "missing"
SIZE_MISMATCH = "size-mismatch"
UNREADABLE = "unreadable"

#: Commit properties of a repair commit.
REPAIR_PROPERTY = "lakehouse.repair"


@dataclass(frozen=True)
class FileProblem:
    """A referenced file that is missing, has another size, or cannot be read."""

    path: str
    kind: str
    problem: str
    expected_size: int | None = None
    actual_size: int | None = None
    #: Snapshots whose reads need the file (empty for the metadata file itself).
    snapshots: tuple[int, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        """One line for people."""
        if self.problem == SIZE_MISMATCH:
            what = f"has {self.actual_size} bytes, expected {self.expected_size}"
        elif self.problem == MISSING:
            what = "is missing"
        else:
            what = f"cannot be read ({self.detail})"
        return f"{self.kind} file {self.path} {what}"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "kind": self.kind,
            "problem": self.problem,
            "expected_size": self.expected_size,
            "actual_size": self.actual_size,
            "snapshots": list(self.snapshots),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RepairOutcome:
    """What ``--repair`` did (or why it could not) for one table on one branch."""

    repaired: bool
    message: str
    from_snapshot: int | None = None
    to_snapshot: int | None = None
    commit: str | None = None
    metadata_location: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "repaired": self.repaired,
            "message": self.message,
            "from_snapshot": self.from_snapshot,
            "to_snapshot": self.to_snapshot,
            "commit": self.commit,
            "metadata_location": self.metadata_location,
        }


@dataclass
class TableReport:
    """The check of one table (or view) on one reference."""

    ref: str
    ref_type: str
    commit: str
    table: str
    kind: str
    metadata_location: str
    snapshots: int = 0
    current_snapshot_id: int | None = None
    files: int = 0
    bytes: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    #: Snapshots of the metadata that cannot be read completely.
    broken_snapshots: list[int] = field(default_factory=list)
    #: Whether the table as it is on the reference can be read.
    current_readable: bool = True
    repair: RepairOutcome | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ref": self.ref,
            "ref_type": self.ref_type,
            "commit": self.commit,
            "table": self.table,
            "kind": self.kind,
            "metadata_location": self.metadata_location,
            "ok": self.ok,
            "current_readable": self.current_readable,
            "snapshots": self.snapshots,
            "current_snapshot_id": self.current_snapshot_id,
            "files": self.files,
            "bytes": self.bytes,
            "broken_snapshots": self.broken_snapshots,
            "problems": [p.to_json() for p in self.problems],
            "repair": self.repair.to_json() if self.repair else None,
        }


@dataclass(frozen=True)
class HistoryProblem:
    """A file missing from an older metadata version that a reference's history reaches.

    ``expired_by`` names the garbage-collection run that deleted it by policy (then it is
    expected, not damage).
    """

    ref: str
    commit: str | None
    table: str
    problem: FileProblem
    expired_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "ref": self.ref,
            "commit": self.commit,
            "table": self.table,
            **self.problem.to_json(),
        }
        if self.expired_by is not None:
            out["expired_by"] = self.expired_by
        return out


@dataclass
class CheckReport:
    """The check of every table on every reference asked for."""

    references: list[str]
    tables: list[TableReport]
    files_checked: int
    seconds: float
    history: list[HistoryProblem] = field(default_factory=list)
    history_checked: bool = False
    #: Files of older history the garbage collector deleted by policy (not problems).
    expired: list[HistoryProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no table on any reference (nor, if checked, its history) has a problem."""
        return all(t.ok for t in self.tables) and not self.history

    @property
    def problem_count(self) -> int:
        """Number of problems in all tables (a file shared by references counts per table)."""
        return sum(len(t.problems) for t in self.tables) + len(self.history)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ok": self.ok,
            "references": self.references,
            "tables_checked": len(self.tables),
            "files_checked": self.files_checked,
            "problems": self.problem_count,
            "seconds": round(self.seconds, 3),
            "tables": [t.to_json() for t in self.tables],
            "history_checked": self.history_checked,
            "history": [h.to_json() for h in self.history],
            "expired": len(self.expired),
            "expired_files": [h.to_json() for h in self.expired],
        }

    def summary(self) -> str:
        """One line for people (and for error messages)."""
        bad = [t for t in self.tables if not t.ok]
        expired = (
            f"; {len(self.expired)} file(s) of older history expired (deleted by garbage "
            "collection by policy)"
            if self.expired
            else ""
        )
        if self.ok:
            return (
                f"catalog check passed: {len(self.tables)} table(s) on "
                f"{len(self.references)} reference(s), {self.files_checked} file(s){expired}"
            )
        first = bad[0] if bad else None
        example = ""
        if first is not None and first.problems:
            example = f"; e.g. table {first.table} on {first.ref}: {first.problems[0].describe()}"
        elif self.history:
            h = self.history[0]
            example = f"; e.g. table {h.table} in the history of {h.ref}: {h.problem.describe()}"
        return (
            f"catalog check failed: {self.problem_count} problem(s) in {len(bad)} table(s)"
            f"{' and the history' if self.history else ''}{example}"
        )


@dataclass
class _Need:
    """A file some table version needs, and what it should look like."""

    kind: str
    expected_size: int | None
    snapshots: set[int] = field(default_factory=set)
    error: str | None = None


class _Stats:
    """File sizes by canonical URI, looked up once each, in batches."""

    def __init__(self, storage: Storage, workers: int) -> None:
        self.storage = storage
        self.workers = workers
        self.sizes: dict[str, int | None] = {}

    def lookup(self, uris: Iterable[str]) -> None:
        todo = [u for u in dict.fromkeys(uris) if u not in self.sizes]
        if not todo:
            return
        by_fs: dict[int, list[Location]] = {}
        for uri in todo:
            loc = self.storage.locate(uri)
            by_fs.setdefault(id(loc.fs), []).append(loc)
        for locs in by_fs.values():
            batches = [locs[i : i + 256] for i in range(0, len(locs), 256)]
            if locs[0].is_local or len(batches) == 1:
                results = [self.storage.stat_many(b) for b in batches]
            else:
                with ThreadPoolExecutor(self.workers) as pool:
                    results = list(pool.map(self.storage.stat_many, batches))
            for batch, infos in zip(batches, results, strict=True):
                for loc, info in zip(batch, infos, strict=True):
                    self.sizes[loc.uri] = (
                        int(info.size) if info.type == pafs.FileType.File else None
                    )


@dataclass
class CatalogWalk:
    """The first half of a check: what every table version on every reference needs.

    Made by :func:`walk_catalog` (reads metadata, manifest lists and manifests), finished
    by :func:`check_walked` (looks every needed file up). A restore walks the backup's
    copies while it copies them, then looks the restored files up.
    """

    points: list[tuple[str, str, str, Reference | None]]
    tables: list[tuple[TableReport, dict[str, _Need]]]
    needs_by_location: dict[str, dict[str, _Need]]
    walker: TableWalker
    started: float


def walk_catalog(
    store: VersionStore,
    io: FileIO,
    references: Sequence[str] | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> CatalogWalk:
    """Resolve ``references`` once (default: every branch and tag) and walk their tables."""
    started = time.perf_counter()
    walker = TableWalker(io)
    points: list[tuple[str, str, str, Reference | None]] = []
    if references:
        for spec in dict.fromkeys(references):
            resolved = store.resolve(spec)
            if resolved.reference is None:
                ref_type = "DETACHED"
            elif resolved.reference.type is ReferenceType.BRANCH and not resolved.is_head_of_branch:
                ref_type = "COMMIT"  # an older commit of a branch: read-only
            else:
                ref_type = resolved.reference.type.value
            points.append((str(resolved), ref_type, resolved.hash, resolved.reference))
    else:
        for ref in store.list_references():
            points.append((ref.name, ref.type.value, ref.hash, ref))

    needs_by_location: dict[str, dict[str, _Need]] = {}
    tables: list[tuple[TableReport, dict[str, _Need]]] = []
    for name, ref_type, h, _ in points:
        if progress is not None:
            progress(f"walking {name}")
        for entry in store.entries("@" + h, with_content=True):
            content = entry.content
            if isinstance(content, IcebergTable):
                kind = "table"
            elif isinstance(content, IcebergView):
                kind = "view"
            else:
                continue
            location = content.metadata_location
            report = TableReport(name, ref_type, h, str(entry.key), kind, location)
            needs = needs_by_location.get(location)
            if needs is None:
                needs = (
                    _table_needs(walker, location)
                    if kind == "table"
                    else _view_needs(walker, location)
                )
                needs_by_location[location] = needs
            tables.append((report, needs))
    return CatalogWalk(points, tables, needs_by_location, walker, started)


def check_walked(
    walk: CatalogWalk,
    storage: Storage,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Look every file ``walk`` found up once (size and existence) and report per table."""
    stats = _Stats(storage, workers or default_workers())
    all_uris = {canonical(p) for needs in walk.needs_by_location.values() for p in needs}
    if progress is not None:
        progress(f"looking up {len(all_uris)} file(s)")
    stats.lookup(all_uris)
    for report, needs in walk.tables:
        _fill_report(report, needs, stats, walk.walker)
    return CheckReport(
        references=[name for name, _, _, _ in walk.points],
        tables=[t for t, _ in walk.tables],
        files_checked=len(stats.sizes),
        seconds=time.perf_counter() - walk.started,
    )


def check_catalog(
    store: VersionStore,
    io: FileIO,
    storage: Storage,
    references: Sequence[str] | None = None,
    *,
    history: bool = False,
    cutoff: datetime | None = None,
    collected: Mapping[str, str] | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check every table and view on ``references`` (default: every branch and tag).

    ``references`` are reference specs (``main``, ``v1``, ``dev@hash``); each is resolved
    once, at the start. ``history`` also checks the metadata versions every commit of
    each reference's history reaches (``cutoff`` limits how far back); a missing history
    file in ``collected`` (canonical URI → garbage-collection run id,
    :func:`~lakehouse.maintenance.gc.collected_files`) is reported as expired.
    """
    walk = walk_catalog(store, io, references, progress=progress)
    report = check_walked(walk, storage, workers=workers, progress=progress)
    if not history:
        return report
    stats = _Stats(storage, workers or default_workers())
    if progress is not None:
        progress("walking the history of every reference")
    refs = [r for _, _, _, r in walk.points if r is not None]
    files = [
        f
        for f in reachable_files(store, walk.walker, refs, cutoff=cutoff)
        if f.required or f.error is not None
    ]
    stats.lookup(canonical(f.path) for f in files)
    collected = collected or {}
    for f in files:
        uri = canonical(f.path)
        actual = stats.sizes.get(uri)
        problem: FileProblem | None = None
        if actual is None:
            problem = FileProblem(f.path, f.kind.value, MISSING, f.size)
        elif f.size is not None and actual != f.size:
            problem = FileProblem(f.path, f.kind.value, SIZE_MISMATCH, f.size, actual)
        elif f.error is not None:
            problem = FileProblem(f.path, f.kind.value, UNREADABLE, f.size, actual, (), f.error)
        if problem is None:
            continue
        run = collected.get(uri) if problem.problem == MISSING else None
        found = HistoryProblem(f.ref, f.commit, str(f.table), problem, run)
        (report.expired if run is not None else report.history).append(found)
    report.history_checked = True
    heads = {canonical(p) for needs in walk.needs_by_location.values() for p in needs}
    report.files_checked = len(heads | set(stats.sizes))
    report.seconds = time.perf_counter() - walk.started
    return report


def _table_needs(walker: TableWalker, location: str) -> dict[str, _Need]:
    """Every file the table version at ``location`` needs, with expected sizes."""
    needs: dict[str, _Need] = {location: _Need(FileKind.TABLE_METADATA.value, None)}
    try:
        metadata = walker.table_metadata(location)
    except WalkError as exc:
        needs[location].error = describe(exc.cause)
        return needs
    for stats in metadata.statistics:
        needs.setdefault(
            stats.statistics_path, _Need(FileKind.STATISTICS.value, stats.file_size_in_bytes)
        )
    for part in metadata.partition_statistics:
        needs.setdefault(
            part.statistics_path,
            _Need(FileKind.PARTITION_STATISTICS.value, part.file_size_in_bytes),
        )
    for path, kind in property_files(metadata):
        needs.setdefault(path, _Need(kind.value, None))
    for snapshot in metadata.snapshots:
        sid = snapshot.snapshot_id
        ml = needs.setdefault(snapshot.manifest_list, _Need(FileKind.MANIFEST_LIST.value, None))
        ml.snapshots.add(sid)
        try:
            manifests = walker.manifests(snapshot)
        except WalkError as exc:
            ml.error = describe(exc.cause)
            continue
        for manifest in manifests:
            m = needs.setdefault(
                manifest.manifest_path, _Need(FileKind.MANIFEST.value, manifest.manifest_length)
            )
            m.snapshots.add(sid)
            try:
                entries = walker.entries(manifest)
            except WalkError as exc:
                m.error = describe(exc.cause)
                continue
            for entry in entries:
                if entry.deleted:
                    continue
                e = needs.setdefault(entry.path, _Need(entry.kind.value, entry.size))
                e.snapshots.add(sid)
    return needs


def _view_needs(walker: TableWalker, location: str) -> dict[str, _Need]:
    need = _Need(FileKind.VIEW_METADATA.value, None)
    try:
        walker.view_metadata(location)
    except WalkError as exc:
        need.error = describe(exc.cause)
    return {location: need}


def _fill_report(
    report: TableReport, needs: Mapping[str, _Need], stats: _Stats, walker: TableWalker
) -> None:
    broken: set[int] = set()
    metadata_ok = True
    for path, need in needs.items():
        actual = stats.sizes.get(canonical(path))
        problem: FileProblem | None = None
        snapshots = tuple(sorted(need.snapshots))
        if actual is None:
            problem = FileProblem(path, need.kind, MISSING, need.expected_size, None, snapshots)
        elif need.expected_size is not None and actual != need.expected_size:
            problem = FileProblem(
                path, need.kind, SIZE_MISMATCH, need.expected_size, actual, snapshots
            )
        elif need.error is not None:
            problem = FileProblem(
                path, need.kind, UNREADABLE, need.expected_size, actual, snapshots, need.error
            )
        else:
            report.files += 1
            report.bytes += actual
        if problem is not None:
            report.problems.append(problem)
            broken.update(problem.snapshots)
            if need.kind in (FileKind.TABLE_METADATA.value, FileKind.VIEW_METADATA.value):
                metadata_ok = False
    report.problems.sort(key=lambda p: (p.kind != FileKind.TABLE_METADATA.value, p.path))
    report.broken_snapshots = sorted(broken)
    if report.kind == "table" and metadata_ok:
        metadata = walker.table_metadata(report.metadata_location)
        report.snapshots = len(metadata.snapshots)
        report.current_snapshot_id = metadata.current_snapshot_id
        report.current_readable = metadata.current_snapshot_id not in broken
    else:
        report.current_readable = metadata_ok


# -- repair ------------------------------------------------------------------------------------


def repair_tables(lakehouse: Lakehouse, report: CheckReport) -> list[RepairOutcome]:
    """Re-point every table whose current snapshot is broken on a branch (see the module doc).

    Fills :attr:`TableReport.repair` of each broken table and returns the outcomes.
    """
    from pyiceberg.io import load_file_io

    io = load_file_io(lakehouse.settings.fileio_properties(), lakehouse.settings.warehouse_location)
    walker = TableWalker(io)
    outcomes: list[RepairOutcome] = []
    for table in report.tables:
        if table.ok or table.kind != "table":
            continue
        outcome = _repair_one(lakehouse, table, walker)
        table.repair = outcome
        outcomes.append(outcome)
    return outcomes


def _repair_one(lakehouse: Lakehouse, table: TableReport, walker: TableWalker) -> RepairOutcome:
    if table.ref_type != ReferenceType.BRANCH.value:
        return RepairOutcome(
            False,
            f"not repaired: '{table.ref}' is a {table.ref_type.lower()}, which is read-only; "
            "repair the branch it was taken from and move the tag",
        )
    if table.current_readable:
        return RepairOutcome(
            False,
            "nothing to repair in the current state: only older snapshots miss files "
            "(time travel to them fails until snapshot expiry drops them)",
        )
    try:
        metadata = walker.table_metadata(table.metadata_location)
    except WalkError:
        return RepairOutcome(
            False,
            "not repaired: the table's metadata file is missing or unreadable; restore it "
            "from a backup (`lakehouse backup restore`)",
        )
    current = metadata.current_snapshot_id
    broken = set(table.broken_snapshots)
    candidate: int | None = None
    for snapshot in snapshot_ancestry(metadata)[1:]:
        if snapshot.snapshot_id not in broken:
            candidate = snapshot.snapshot_id
            break
    if candidate is None:
        return RepairOutcome(
            False,
            "not repaired: no earlier snapshot of this table has all its files; restore the "
            "missing files from a backup",
            from_snapshot=current,
        )
    missing = [p for p in table.problems if current in p.snapshots]
    example = missing[0].path if missing else "?"
    message = (
        f"Repair table {table.table} on {table.ref}: roll back from snapshot {current} to "
        f"snapshot {candidate}, the newest with all its files present "
        f"({len(missing)} file(s) of snapshot {current} missing or damaged, e.g. {example})"
    )
    extra = {
        REPAIR_PROPERTY: "rollback",
        f"{REPAIR_PROPERTY}.table": table.table,
        f"{REPAIR_PROPERTY}.from-snapshot": str(current),
        f"{REPAIR_PROPERTY}.to-snapshot": str(candidate),
        f"{REPAIR_PROPERTY}.missing-files": str(len(missing)),
    }
    try:
        live = _repair_catalog(lakehouse, table.ref, message, extra).load_table(table.table)
        if live.metadata_location != table.metadata_location:
            return RepairOutcome(
                False,
                "not repaired: the table changed on the branch since the check; check again",
                from_snapshot=current,
            )
        live.manage_snapshots().set_current_snapshot(snapshot_id=candidate).commit()
    except Exception as exc:  # report per table; the others are still repaired
        logger.debug("repair of %s on %s failed", table.table, table.ref, exc_info=True)
        return RepairOutcome(
            False, f"not repaired: {describe(exc)}", from_snapshot=current, to_snapshot=candidate
        )
    commit = _find_repair_commit(lakehouse.store, table.ref, table.table, str(candidate))
    after = lakehouse.table(table.table, f"@{commit}" if commit else table.ref)
    return RepairOutcome(
        True,
        message,
        from_snapshot=current,
        to_snapshot=candidate,
        commit=commit,
        metadata_location=after.metadata_location,
    )


def _repair_catalog(
    lakehouse: Lakehouse, ref: str, message: str, properties: Mapping[str, str]
) -> RefCatalog:
    """A RefCatalog whose commits carry the repair's message and properties."""
    from lakehouse.catalog import CATALOG_NAME
    from lakehouse.catalog.iceberg import AUTHOR, RefCatalog

    class _RepairCatalog(RefCatalog):
        def _meta(self, msg: str, props: Mapping[str, str]) -> CommitMeta:
            return super()._meta(message, {**props, **properties})

    catalog_props = lakehouse.settings.fileio_properties()
    if lakehouse.settings.author:
        catalog_props[AUTHOR] = lakehouse.settings.author
    return _RepairCatalog(CATALOG_NAME, lakehouse.store, ref, lakehouse.warehouse, **catalog_props)


def _find_repair_commit(store: VersionStore, branch: str, table: str, to: str) -> str | None:
    for n, entry in enumerate(store.iter_log(branch)):
        props = entry.meta.properties
        if (
            props.get(f"{REPAIR_PROPERTY}.table") == table
            and props.get(f"{REPAIR_PROPERTY}.to-snapshot") == to
        ):
            return entry.meta.hash
        if n >= 50:
            break
    return None


# -- the Lakehouse-level entry point -----------------------------------------------------------


def check(
    lakehouse: Lakehouse,
    references: Sequence[str] | None = None,
    *,
    repair: bool = False,
    history: bool = False,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check (and with ``repair``, repair) the tables of ``lakehouse``; see the module doc."""
    from pyiceberg.io import load_file_io

    io = load_file_io(lakehouse.settings.fileio_properties(), lakehouse.settings.warehouse_location)
    storage = Storage(lakehouse.settings.s3.fileio_properties())
    report = check_catalog(
        lakehouse.store,
        io,
        storage,
        references,
        history=history,
        collected=collected_files(storage, lakehouse.warehouse) if history else None,
        workers=workers,
        progress=progress,
    )
    if repair and not report.ok:
        repair_tables(lakehouse, report)
    return report


def warehouse_io(warehouse: Warehouse, properties: Mapping[str, str]) -> FileIO:
    """A PyIceberg FileIO for the tables of ``warehouse``."""
    from pyiceberg.io import load_file_io

    return load_file_io(dict(properties), warehouse.bucket_uri("iceberg-metadata"))


__all__ = [
    "MISSING",
    "REPAIR_PROPERTY",
    "SIZE_MISMATCH",
    "UNREADABLE",
    "CatalogWalk",
    "CheckReport",
    "FileProblem",
    "HistoryProblem",
    "RepairOutcome",
    "TableReport",
    "check",
    "check_catalog",
    "check_walked",
    "repair_tables",
    "walk_catalog",
    "warehouse_io",
]
