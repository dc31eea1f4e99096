"""``lakehouse backup create | list | verify``: consistent, verified, incremental backups.

A backup is taken at one catalog state. Every reference is resolved to a commit hash
once, at the start; the catalog is exported at those hashes (every reference, every
commit reachable from them, every tree node: :mod:`lakehouse.ops.export`); and every
file those commits reach — table metadata, manifest lists, manifests, data and delete
files, statistics, previous metadata files (:func:`lakehouse.catalog.files.reachable_files`)
— is copied, plus the landed files of the ``raw`` bucket. Iceberg files are immutable
and every reachable one was written before the commit that references it, so commits
landing while the backup runs cannot break it: they are simply not part of it.

Layout of a backup destination (a local folder or an ``s3://bucket/prefix``)::

    objects/<sha256[:2]>/<sha256>     every object, stored once by content (shared by backups)
    backups/<backup-id>/catalog.jsonl.gz   the catalog export
    backups/<backup-id>/catalog.pg_dump    pg_dump of the catalog tables (PostgreSQL only)
    backups/<backup-id>/manifest.json      written LAST: what the backup holds
    tmp/<backup-id>/…                      objects being copied (removed at the end)

``manifest.json`` records every object (original location, bucket and key, kind, size,
sha256), the catalog export's size and sha256, the references and hashes, and a checksum
of itself; a backup without it is incomplete and is never restored. Objects are copied
first, the export and the manifest last, so a complete backup never references a
missing object. Incremental: an object already in the destination with the same
checksum is not copied again; files a previous backup recorded with the same location,
size and modification time are not copied again (Iceberg and landed files are never
rewritten; ``full_hash=True`` re-reads everything).

**Reuse is confirmed, damage heals.** Objects are shared by every backup that holds the
same content, so a damaged object would damage every later backup that trusts its name.
An object already in the store is reused only once it is *confirmed* (once per run):

* with ``full_hash=True``, always by its full sha256 (the store object is re-read);
* otherwise by its size and a *sampled hash*: an object of at most
  :data:`SAMPLE_WHOLE_BYTES` (64 KiB) is re-read whole and its sha256 compared with its
  name; a larger one has :data:`SAMPLE_BLOCKS` blocks of :data:`SAMPLE_BLOCK_BYTES`
  (16 KiB) — the first, the last and two at random offsets, new ones on every run —
  compared byte for byte with the same ranges of the source file (whose size and
  modification time match the previous backup's record, or which was just copied). So
  every run reads at most 64 KiB of each reused object; a truncated, missing or zeroed
  object is always caught, a flipped byte in a large object when a sample covers it (and
  always by ``full_hash=True`` or ``backup verify``).

An object that fails the confirmation is replaced by the source's bytes when they hash
to the object's name (the source still has the good bytes), counted as *healed*; the
new backup then verifies. :func:`verify_backup` with ``repair=True`` does the same for
existing backups: every object that fails its checksum (or is missing) is copied again
from the file it was backed up from, if that file still has exactly those bytes — at
its recorded location, or at the same bucket and key of the current warehouse — and is
reported as not repairable otherwise. Verify reports, for every damaged object, the
other backups that share it.

Missing files: a file the pinned history references that is missing or damaged fails
the backup (:class:`SourceIncompleteError`, naming it) unless ``allow_missing`` — except
files of older history that the garbage collector deleted on purpose (they are in its
verified deferred-delete lists): those commits cannot be read in the lakehouse either,
so they are recorded in the manifest and the backup goes on.

Which ``raw`` files: every file of a landed batch that has its ``_manifest.json`` (and of
a quarantined batch that has its ``reason.json``), and any file outside the batch
layout. A batch folder without its manifest is being landed (or was interrupted and
never loaded) and is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from lakehouse import observability
from lakehouse.catalog.files import TableWalker, reachable_files
from lakehouse.catalog.model import Reference
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import StorageError
from lakehouse.maintenance.gc import collected_files
from lakehouse.ops.errors import (
    BackupCorruptError,
    BackupError,
    BackupFormatError,
    BackupNotFoundError,
    SourceIncompleteError,
)
from lakehouse.ops.export import EXPORT_FORMAT_VERSION, read_header, write_export
from lakehouse.storage.objects import Location, Storage, canonical, default_workers, describe
from lakehouse.storage.records import RecordKind, save_record
from lakehouse.storage.zones import Warehouse

if TYPE_CHECKING:
    from pyiceberg.io import FileIO

    from lakehouse.config import Settings
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

BACKUP_FORMAT = "lakehouse-backup"
#: Version of the backup layout and manifest written by this Lakehouse (and the newest it reads).
BACKUP_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
EXPORT_NAME = "catalog.jsonl.gz"
PG_DUMP_NAME = "catalog.pg_dump"
STARTED_NAME = "started.json"
BACKUPS_DIR = "backups"
OBJECTS_DIR = "objects"
TMP_DIR = "tmp"
#: Kind of the raw bucket's landed files in manifests.
RAW_KIND = "raw"
#: Tables of the catalog database that ``pg_dump`` saves.
CATALOG_TABLES = ("lh_meta", "lh_refs", "lh_commits", "lh_nodes")

# The raw bucket's batch layout (lakehouse.ingest.landing): landed and quarantined batches.
_LANDED_BATCH = re.compile(r"^(?P<folder>(?!_rejected/)[^/]+/\d{4}/\d{2}/\d{2}/[^/]+)/")
_REJECTED_BATCH = re.compile(r"^(?P<folder>_rejected/[^/]+/[^/]+)/")
_LANDED_MARKER = "_manifest.json"
_REJECTED_MARKER = "reason.json"
_BACKUP_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")

#: Objects up to this size are confirmed by their full sha256 even without ``full_hash``.
SAMPLE_WHOLE_BYTES = 64 * 1024
#: Size of one sampled block of a larger object.
SAMPLE_BLOCK_BYTES = 16 * 1024
#: Sampled blocks per larger object: the first, the last and the rest at random offsets.
SAMPLE_BLOCKS = 4

#: ``progress(phase, done, total)``; ``total`` 0 when unknown.
ProgressFn = Callable[[str, int, int], None]


# -- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupObject:
    """One object of a backup: where it was, what it is, and its content's checksum."""

    uri: str
    kind: str
    size: int
    sha256: str
    bucket: str | None = None
    key: str | None = None
    mtime_ns: int | None = None
    required: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "uri": self.uri,
            "bucket": self.bucket,
            "key": self.key,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "mtime_ns": self.mtime_ns,
            "required": self.required,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> BackupObject:
        """Parse :meth:`to_json` output."""
        sha = str(data["sha256"])
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValueError(f"invalid sha256 {sha!r}")
        return BackupObject(
            uri=str(data["uri"]),
            kind=str(data["kind"]),
            size=int(data["size"]),
            sha256=sha,
            bucket=data.get("bucket"),
            key=data.get("key"),
            mtime_ns=data.get("mtime_ns"),
            required=bool(data.get("required", True)),
        )


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds (``manifest.json``), checksummed."""

    backup_id: str
    created_at: datetime
    completed_at: datetime
    lakehouse_version: str
    source: dict[str, Any]
    references: list[dict[str, str]]
    history_cutoff: datetime | None
    catalog_export: dict[str, Any]
    artifacts: list[dict[str, Any]]
    objects: list[BackupObject]
    missing: list[dict[str, Any]]
    stats: dict[str, Any]

    @property
    def default_branch(self) -> str:
        """Default branch of the backed-up catalog."""
        return str(self.source.get("default_branch") or "main")

    @property
    def warehouse(self) -> dict[str, str]:
        """Bucket name → URI of the backed-up lakehouse."""
        return dict(self.source.get("warehouse") or {})

    def pinned_references(self) -> list[Reference]:
        """The references, at the hashes the backup was taken at."""
        return [Reference.of(r["type"], r["name"], r["hash"]) for r in self.references]

    def to_json(self) -> dict[str, Any]:
        """JSON form, with the checksum of everything else."""
        body: dict[str, Any] = {
            "format": BACKUP_FORMAT,
            "format_version": BACKUP_FORMAT_VERSION,
            "backup_id": self.backup_id,
            "created_at": self.created_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "lakehouse_version": self.lakehouse_version,
            "source": self.source,
            "references": self.references,
            "history_cutoff": self.history_cutoff.isoformat() if self.history_cutoff else None,
            "catalog_export": self.catalog_export,
            "artifacts": self.artifacts,
            "stats": self.stats,
            "missing": self.missing,
            "objects": [o.to_json() for o in self.objects],
        }
        body["checksum"] = _checksum(body)
        return body

    def dumps(self) -> bytes:
        """The manifest file's bytes."""
        return (json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n").encode("utf-8")

    @staticmethod
    def loads(data: bytes, name: str = MANIFEST_NAME) -> BackupManifest:
        """Parse and verify a manifest: format first (a newer one may differ), then checksum."""
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise BackupCorruptError(f"{name} is not valid JSON ({exc})", [name]) from exc
        if not isinstance(body, dict) or body.get("format") != BACKUP_FORMAT:
            raise BackupFormatError(f"{name} is not a Lakehouse backup manifest")
        version = body.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise BackupFormatError(f"{name} has an invalid format_version {version!r}")
        if version > BACKUP_FORMAT_VERSION:
            raise BackupFormatError(
                f"backup format_version {version} is newer than this Lakehouse reads "
                f"({BACKUP_FORMAT_VERSION}); upgrade Lakehouse to use this backup"
            )
        stored = body.pop("checksum", None)
        if stored != _checksum(body):
            raise BackupCorruptError(
                f"{name} fails its checksum: the manifest was changed or damaged", [name]
            )
        try:
            cutoff = body.get("history_cutoff")
            return BackupManifest(
                backup_id=str(body["backup_id"]),
                created_at=datetime.fromisoformat(body["created_at"]),
                completed_at=datetime.fromisoformat(body["completed_at"]),
                lakehouse_version=str(body.get("lakehouse_version", "")),
                source=dict(body["source"]),
                references=[dict(r) for r in body["references"]],
                history_cutoff=datetime.fromisoformat(cutoff) if cutoff else None,
                catalog_export=dict(body["catalog_export"]),
                artifacts=[dict(a) for a in body.get("artifacts", [])],
                objects=[BackupObject.from_json(o) for o in body["objects"]],
                missing=[dict(m) for m in body.get("missing", [])],
                stats=dict(body.get("stats", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupCorruptError(f"{name} is malformed ({describe(exc)})", [name]) from exc


def _checksum(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the destination --------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupInfo:
    """One backup of a destination, as ``backup list`` shows it."""

    backup_id: str
    location: str
    complete: bool
    created_at: datetime | None = None
    references: int = 0
    objects: int = 0
    bytes: int = 0
    copied_bytes: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "backup_id": self.backup_id,
            "location": self.location,
            "status": "complete" if self.complete else (self.error or "incomplete"),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "references": self.references,
            "objects": self.objects,
            "bytes": self.bytes,
            "copied_bytes": self.copied_bytes,
        }


class BackupRepository:
    """A backup destination: shared content-addressed objects plus one folder per backup."""

    def __init__(self, storage: Storage, root: Location) -> None:
        self.storage = storage
        self.root = root

    @classmethod
    def open(cls, storage: Storage, uri: str, *, create: bool = False) -> BackupRepository:
        """The destination at ``uri``; with ``create`` it is made (and must be writable)."""
        root = storage.locate(uri)
        if create:
            storage.make_dirs(root.child(BACKUPS_DIR))
            storage.make_dirs(root.child(OBJECTS_DIR))
        elif not storage.exists(root):
            raise BackupNotFoundError(f"no backup destination at {root.uri}")
        return cls(storage, root)

    def object_location(self, sha256: str) -> Location:
        """Where the object with this content lives."""
        return self.root.child(OBJECTS_DIR, sha256[:2], sha256)

    def folder(self, backup_id: str) -> Location:
        """The folder of one backup."""
        return self.root.child(BACKUPS_DIR, backup_id)

    def tmp(self, backup_id: str) -> Location:
        """Scratch folder of a running backup."""
        return self.root.child(TMP_DIR, backup_id)

    def backup_ids(self) -> list[str]:
        """Ids of every backup folder (complete or not), oldest first."""
        folder = self.root.child(BACKUPS_DIR)
        selector = pafs.FileSelector(folder.path, recursive=False, allow_not_found=True)
        try:
            infos = folder.fs.get_file_info(selector)
        except OSError as exc:
            raise BackupError(f"cannot list {folder.uri}: {describe(exc)}") from exc
        names = {i.base_name for i in infos if i.type == pafs.FileType.Directory}
        return sorted(n for n in names if _BACKUP_ID.match(n))

    def load_manifest(self, backup_id: str) -> BackupManifest:
        """The verified manifest of a complete backup."""
        loc = self.folder(backup_id).child(MANIFEST_NAME)
        if self.storage.size_of(loc) is None:
            raise BackupNotFoundError(
                f"backup {backup_id} at {self.folder(backup_id).uri} is incomplete "
                "(it has no manifest.json): it was interrupted or is still running"
            )
        manifest = BackupManifest.loads(self.storage.read_bytes(loc), f"{loc.uri}")
        if manifest.backup_id != backup_id:
            raise BackupCorruptError(
                f"{loc.uri} describes backup {manifest.backup_id}, not {backup_id}", [loc.uri]
            )
        return manifest

    def list(self) -> list[BackupInfo]:
        """Every backup, oldest first, complete or not."""
        out: list[BackupInfo] = []
        for backup_id in self.backup_ids():
            location = self.folder(backup_id).uri
            try:
                m = self.load_manifest(backup_id)
            except BackupNotFoundError:
                out.append(BackupInfo(backup_id, location, False))
                continue
            except BackupError as exc:
                out.append(BackupInfo(backup_id, location, False, error=f"unreadable: {exc}"))
                continue
            out.append(
                BackupInfo(
                    backup_id,
                    location,
                    True,
                    created_at=m.created_at,
                    references=len(m.references),
                    objects=len(m.objects),
                    bytes=sum(o.size for o in m.objects),
                    copied_bytes=int(m.stats.get("copied_bytes", 0)),
                )
            )
        return out

    def latest_complete(self) -> str | None:
        """Id of the newest backup that has a manifest."""
        for backup_id in reversed(self.backup_ids()):
            if self.storage.size_of(self.folder(backup_id).child(MANIFEST_NAME)) is not None:
                return backup_id
        return None

    def existing_objects(self) -> dict[str, int]:
        """sha256 → size of every object already stored."""
        out: dict[str, int] = {}
        for f in self.storage.list_files(self.root.child(OBJECTS_DIR)):
            name = f.uri.rsplit("/", 1)[-1]
            if re.fullmatch(r"[0-9a-f]{64}", name):
                out[name] = f.size
        return out


def open_backup(
    storage: Storage, uri: str, backup_id: str | None = None
) -> tuple[BackupRepository, str]:
    """The repository and id of a backup named by ``uri``.

    ``uri`` is a backup's folder (``DEST/backups/<id>``) or a destination (``DEST``), in
    which case ``backup_id`` picks the backup (default: the newest complete one).
    """
    loc = storage.locate(uri)
    if backup_id is None and storage.size_of(loc.child(MANIFEST_NAME)) is not None:
        parent = loc.parent
        if parent.name != BACKUPS_DIR:
            raise BackupNotFoundError(
                f"{loc.uri} holds a manifest.json but is not inside a backup destination"
            )
        return BackupRepository(storage, parent.parent), loc.name
    if backup_id is None and storage.exists(loc.child(STARTED_NAME)):
        raise BackupNotFoundError(
            f"backup at {loc.uri} is incomplete (it has no manifest.json): "
            "it was interrupted or is still running"
        )
    if not storage.exists(loc.child(BACKUPS_DIR)):
        raise BackupNotFoundError(f"no backup at {loc.uri}")
    repo = BackupRepository(storage, loc)
    if backup_id is None:
        backup_id = repo.latest_complete()
        if backup_id is None:
            raise BackupNotFoundError(f"no complete backup at {loc.uri}")
    elif not _BACKUP_ID.match(backup_id) or not storage.exists(repo.folder(backup_id)):
        raise BackupNotFoundError(f"no backup {backup_id!r} at {loc.uri}")
    return repo, backup_id


def new_backup_id(at: datetime) -> str:
    """A unique, time-ordered backup id: ``20260115T101500123456Z-1a2b3c4d`` (microseconds)."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


# -- create ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """An object to back up: where it is now and what the manifest will say."""

    src: Location
    uri: str
    kind: str
    size: int
    mtime_ns: int | None
    bucket: str | None
    key: str | None
    required: bool


@dataclass
class _Plan:
    problems: list[dict[str, Any]] = field(default_factory=list)
    skipped_raw: int = 0
    skipped_optional: int = 0


@dataclass(frozen=True)
class BackupResult:
    """What ``backup create`` did."""

    backup_id: str
    location: str
    references: int
    commits: int
    objects: int
    bytes: int
    copied_objects: int
    copied_bytes: int
    reused_objects: int
    #: Damaged objects already in the store that were replaced with good bytes.
    healed_objects: int
    raw_objects: int
    skipped_raw: int
    #: Referenced files missing or damaged in the lakehouse (only with ``allow_missing``).
    missing: int
    #: Files of older history the garbage collector deleted (expected; not in the backup).
    collected: int
    artifacts: list[dict[str, Any]]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "backup_id": self.backup_id,
            "location": self.location,
            "references": self.references,
            "commits": self.commits,
            "objects": self.objects,
            "bytes": self.bytes,
            "copied_objects": self.copied_objects,
            "copied_bytes": self.copied_bytes,
            "reused_objects": self.reused_objects,
            "healed_objects": self.healed_objects,
            "raw_objects": self.raw_objects,
            "skipped_raw_files": self.skipped_raw,
            "missing": self.missing,
            "collected_by_gc": self.collected,
            "artifacts": self.artifacts,
            "seconds": round(self.seconds, 3),
        }


def create_backup(
    lakehouse: Lakehouse,
    dest: str,
    *,
    cutoff: datetime | None = None,
    allow_missing: bool = False,
    full_hash: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> BackupResult:
    """Back ``lakehouse`` up into ``dest`` (see the module docstring).

    ``cutoff`` limits which history's files are copied (commits after it, plus the one
    current at it); the export always holds the full commit graph of every reference.
    A referenced file that is missing or damaged in the lakehouse fails the backup
    (:class:`SourceIncompleteError`, nothing written) unless ``allow_missing``, which
    records it in the manifest instead.
    """
    from lakehouse import __version__
    from lakehouse.config import redact_url

    started = time.perf_counter()
    settings = lakehouse.settings
    store = lakehouse.store
    storage = Storage(settings.s3.fileio_properties())
    created = datetime.now(UTC)
    backup_id = new_backup_id(created)
    refs = store.list_references()  # the consistent point: every reference, pinned once
    workers = workers or default_workers()

    with tempfile.TemporaryDirectory(prefix="lakehouse-backup-") as scratch:
        export_path = Path(scratch) / EXPORT_NAME
        _report(progress, "exporting the catalog", 0, 0)
        export = write_export(store, refs, export_path, created_at=created)

        repo = BackupRepository.open(storage, dest, create=True)
        folder = repo.folder(backup_id)
        storage.write_bytes(
            folder.child(STARTED_NAME),
            json.dumps({"backup_id": backup_id, "started_at": created.isoformat()}).encode(),
        )
        try:
            # the walk of the metadata (CPU) and the copies (I/O) overlap: each file is
            # handed to the copy threads as soon as the walk finds it
            _report(progress, "copying files", 0, 0)
            plan = _Plan()
            items = _plan_items(lakehouse, storage, refs, cutoff, plan)
            objects, copied, copied_bytes, healed = _store_objects(
                repo, storage, backup_id, items, full_hash, workers, progress
            )
            if plan.problems:
                _classify_problems(lakehouse, storage, refs, plan.problems)
            damaged = [p for p in plan.problems if not p["collected"]]
            if damaged and not allow_missing:
                first = damaged[0]
                raise SourceIncompleteError(
                    f"{len(damaged)} file(s) the catalog references are missing or "
                    f"damaged in the lakehouse, e.g. table {first['table']} on "
                    f"{first['ref']}: {first['uri']} ({first['problem']}); run "
                    "`lakehouse catalog check`, or back up the rest with --allow-missing",
                    [p["uri"] for p in damaged],
                )
            _report(progress, "writing the catalog export", 0, 0)
            size, sha = storage.copy_hashed(
                storage.locate(str(export_path)), folder.child(EXPORT_NAME)
            )
            if sha != export.sha256 or size != export.size:
                raise BackupError(f"the catalog export changed while it was copied to {folder.uri}")
            artifacts = _artifacts(settings, storage, folder, Path(scratch))
            manifest = BackupManifest(
                backup_id=backup_id,
                created_at=created,
                completed_at=datetime.now(UTC),
                lakehouse_version=__version__,
                source={
                    "catalog": redact_url(settings.catalog_uri),
                    "catalog_type": _catalog_type(settings.catalog_uri),
                    "default_branch": store.default_branch,
                    "warehouse": {b: canonical(u) for b, u in lakehouse.warehouse.buckets.items()},
                },
                references=[{"name": r.name, "type": r.type.value, "hash": r.hash} for r in refs],
                history_cutoff=cutoff,
                catalog_export={
                    "path": EXPORT_NAME,
                    "format_version": EXPORT_FORMAT_VERSION,
                    "size": export.size,
                    "sha256": export.sha256,
                    "records": export.records,
                    "counts": export.counts,
                },
                artifacts=artifacts,
                objects=objects,
                missing=plan.problems,
                stats={
                    "objects": len(objects),
                    "bytes": sum(o.size for o in objects),
                    "copied_objects": copied,
                    "copied_bytes": copied_bytes,
                    "reused_objects": len(objects) - copied,
                    "healed_objects": healed,
                    "raw_objects": sum(1 for o in objects if o.kind == RAW_KIND),
                    "skipped_raw_files": plan.skipped_raw,
                    "skipped_optional_files": plan.skipped_optional,
                    "collected_by_gc": sum(1 for p in plan.problems if p["collected"]),
                },
            )
            storage.write_bytes(folder.child(MANIFEST_NAME), manifest.dumps())  # LAST
            storage.delete_file(folder.child(STARTED_NAME))
        except BaseException:
            _discard_incomplete(storage, folder)
            raise
        finally:
            try:
                storage.delete_dir(repo.tmp(backup_id))
            except Exception as exc:  # scratch only; never hide the real outcome
                # one line (the CLI prints warnings): the traceback only at debug level
                logger.warning("could not remove %s: %s", repo.tmp(backup_id).uri, describe(exc))
                logger.debug("removing %s failed", repo.tmp(backup_id).uri, exc_info=True)

    result = BackupResult(
        backup_id=backup_id,
        location=folder.uri,
        references=len(refs),
        commits=export.counts.get("commit", 0),
        objects=len(objects),
        bytes=sum(o.size for o in objects),
        copied_objects=copied,
        copied_bytes=copied_bytes,
        reused_objects=len(objects) - copied,
        healed_objects=healed,
        raw_objects=sum(1 for o in objects if o.kind == RAW_KIND),
        skipped_raw=plan.skipped_raw,
        missing=len(damaged),
        collected=len(plan.problems) - len(damaged),
        artifacts=artifacts,
        seconds=time.perf_counter() - started,
    )
    _record(settings, "backup", result.to_json(), created)
    observability.record_backup(
        repo.root.uri, size=result.bytes, copied=copied_bytes, seconds=result.seconds
    )
    return result


def _report(progress: ProgressFn | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _discard_incomplete(storage: Storage, folder: Location) -> None:
    """Remove a failed backup's folder (its objects stay: they are shared and immutable)."""
    try:
        storage.delete_dir(folder)
    except Exception as exc:
        # one line (the CLI prints warnings): the traceback only at debug level. The folder
        # has no manifest.json, so it is listed as incomplete and never restored.
        logger.warning(
            "could not remove the incomplete backup %s (it stays listed as incomplete): %s",
            folder.uri,
            describe(exc),
        )
        logger.debug("removing %s failed", folder.uri, exc_info=True)


def _catalog_type(uri: str) -> str:
    if uri.startswith("postgresql"):
        return "postgresql"
    if uri.startswith("sqlite") or "://" not in uri:
        return "sqlite"
    return uri.split(":", 1)[0]


def table_io(settings: Settings) -> FileIO:
    """The PyIceberg FileIO that reads the lakehouse's table files."""
    from pyiceberg.io import load_file_io

    return load_file_io(settings.fileio_properties(), settings.warehouse_location)


def _plan_items(
    lakehouse: Lakehouse,
    storage: Storage,
    refs: Sequence[Reference],
    cutoff: datetime | None,
    plan: _Plan,
) -> Iterator[_Item]:
    """Every object to copy, as found: landed raw files, then the files the pinned history
    reaches (walked while earlier ones are being copied). Problems go to ``plan``."""
    walker = TableWalker(table_io(lakehouse.settings))
    # Listed after the references were pinned: every file a pinned commit references was
    # written before that commit, so it is listed (unless it is missing).
    roots = {b: storage.locate(u) for b, u in lakehouse.warehouse.buckets.items()}
    inventory: dict[str, tuple[str, str, int, int | None, str]] = {}
    for name, root in roots.items():
        for listed in storage.list_files(root):
            rel = listed.uri[len(root.uri) :].lstrip("/")
            inventory[listed.uri] = (name, rel, listed.size, listed.mtime_ns, listed.path)

    def bucket_of(uri: str) -> tuple[str, str] | None:
        for name, root in roots.items():
            if uri.startswith(root.uri.rstrip("/") + "/"):
                return name, uri[len(root.uri) :].lstrip("/")
        return None

    raw_root = roots["raw"]
    raw_files = [(uri, v) for uri, v in inventory.items() if v[0] == "raw"]
    complete_batches = {
        key.rsplit("/", 1)[0]
        for _, (_, key, _, _, _) in raw_files
        if key.endswith("/" + _LANDED_MARKER) or key.endswith("/" + _REJECTED_MARKER)
    }
    planned: set[str] = set()
    for uri, (_, rel, raw_size, raw_mtime, path) in sorted(raw_files):
        batch = _LANDED_BATCH.match(rel) or _REJECTED_BATCH.match(rel)
        if batch is not None and batch.group("folder") not in complete_batches:
            plan.skipped_raw += 1  # a batch still being landed (or never finished)
            continue
        planned.add(uri)
        yield _Item(
            Location(raw_root.fs, path, uri), uri, RAW_KIND, raw_size, raw_mtime, "raw", rel, True
        )

    for f in reachable_files(lakehouse.store, walker, refs, cutoff=cutoff, previous_metadata=True):
        uri = canonical(f.path)
        if uri in planned:
            continue
        found = inventory.get(uri)
        bucket: str | None = None
        key: str | None = None
        mtime: int | None = None
        if found is not None:
            bucket, key, size, mtime, path = found
            src: Location | None = Location(roots[bucket].fs, path, uri)
            actual: int | None = size
        else:
            place = bucket_of(uri)
            if place is not None:
                bucket, key = place
            src = None
            actual = None
            if place is None:  # outside the warehouse's buckets: look it up directly
                loc = storage.locate(f.path)
                info = storage.info(loc)
                if info.type == pafs.FileType.File:
                    src, actual, mtime = loc, int(info.size), info.mtime_ns
        problem: str | None = None
        if actual is None:
            problem = "missing"
        elif f.size is not None and actual != f.size:
            problem = f"size {actual}, expected {f.size}"
        elif f.error is not None:
            problem = f"unreadable: {f.error}"
        if problem is not None:
            if f.required or f.error is not None:
                plan.problems.append(
                    {
                        "uri": uri,
                        "kind": f.kind.value,
                        "table": str(f.table),
                        "ref": f.ref,
                        "commit": f.commit,
                        "problem": problem,
                    }
                )
            else:
                plan.skipped_optional += 1
            if actual is None or src is None:
                continue
        assert src is not None and actual is not None
        planned.add(uri)
        yield _Item(src, uri, f.kind.value, actual, mtime, bucket, key, f.required)


def _classify_problems(
    lakehouse: Lakehouse,
    storage: Storage,
    refs: Sequence[Reference],
    problems: list[dict[str, Any]],
) -> None:
    """Mark each problem ``current`` (a pinned reference's state needs the file) or
    ``history``, and ``collected`` when garbage collection deliberately deleted it.

    A garbage collection with a retention shorter than "all history" deletes the files
    of older commits; those commits stay in the catalog (and in the export) but cannot
    be read, in the lakehouse as after a restore. Such files are listed in the
    collector's verified deferred-delete lists (``<iceberg-metadata>/_gc/*.jsonl``).
    """
    walker = TableWalker(table_io(lakehouse.settings))
    current: set[str] = set()
    for ref in refs:
        for entry in lakehouse.store.entries("@" + ref.hash, with_content=True):
            if entry.content is None:
                continue
            for f in walker.content_files(entry.key, entry.content, ref.name):
                if f.required:
                    current.add(canonical(f.path))
    collected = _collected_by_gc(lakehouse, storage)
    for p in problems:
        p["scope"] = "current" if p["uri"] in current else "history"
        p["collected"] = (
            p["scope"] == "history" and p["problem"] == "missing" and p["uri"] in collected
        )


def _collected_by_gc(lakehouse: Lakehouse, storage: Storage) -> set[str]:
    """Every file the garbage collector's verified deferred-delete lists name."""
    return set(collected_files(storage, lakehouse.warehouse))


def _previous_index(repo: BackupRepository) -> dict[str, BackupObject]:
    """Objects of the newest complete backup, by original location (for incremental runs)."""
    latest = repo.latest_complete()
    if latest is None:
        return {}
    try:
        return {o.uri: o for o in repo.load_manifest(latest).objects}
    except BackupError:
        logger.warning("ignoring the unreadable manifest of backup %s", latest)
        return {}


def _store_objects(
    repo: BackupRepository,
    storage: Storage,
    backup_id: str,
    items: Iterable[_Item],
    full_hash: bool,
    workers: int,
    progress: ProgressFn | None,
) -> tuple[list[BackupObject], int, int, int]:
    """Copy every item (as it comes) into the content-addressed store.

    Returns the objects (sorted by location), how many were copied, their bytes, and how
    many damaged store objects were replaced (healed).
    """
    index = {} if full_hash else _previous_index(repo)
    existing = repo.existing_objects()
    lock = threading.Lock()
    tmp_root = repo.tmp(backup_id)
    done = [0]
    copied = [0, 0]
    #: sha256 → whether the store's object was confirmed good in this run
    confirmed: dict[str, bool] = {}
    healed: set[str] = set()

    def advance(n: int) -> None:
        with lock:
            done[0] += n
            value = done[0]
        _report(progress, "copying files", value, 0)

    def confirm(sha: str, size: int, source: Location) -> bool:
        """Is the store's object ``sha`` good? Once per run (see the module docstring)."""
        with lock:
            known = confirmed.get(sha)
        if known is not None:
            return known
        good = _confirm_object(storage, repo.object_location(sha), sha, size, source, full_hash)
        with lock:
            confirmed[sha] = good
        return good

    def one(item: _Item) -> BackupObject:
        known = index.get(item.uri)
        if (
            known is not None
            and item.mtime_ns is not None
            and known.mtime_ns == item.mtime_ns
            and known.size == item.size
            and existing.get(known.sha256) == item.size
            and confirm(known.sha256, item.size, item.src)
        ):
            advance(item.size)
            return _object(item, known.sha256)
        tmp = tmp_root.child(uuid.uuid4().hex)
        size, sha = storage.copy_hashed(item.src, tmp, on_bytes=advance)
        if size != item.size:
            storage.delete_file(tmp)
            raise BackupError(
                f"{item.uri} changed while it was being backed up ({item.size} → {size} bytes); "
                "files the catalog references must never be rewritten"
            )
        with lock:
            present = existing.get(sha) == size
        if present and confirm(sha, size, tmp):
            storage.delete_file(tmp)
            return _object(item, sha)
        target = repo.object_location(sha)
        storage.make_dirs(target.parent)
        storage.move(tmp, target)  # the copy's bytes hash to ``sha``: good by construction
        with lock:
            if present:
                logger.warning("backup: replaced the damaged object %s from %s", sha, item.uri)
                healed.add(sha)
            existing[sha] = size
            confirmed[sha] = True
            copied[0] += 1
            copied[1] += size
        return _object(item, sha)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(one, item) for item in items]
        try:
            objects = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    objects.sort(key=lambda o: o.uri)
    return objects, copied[0], copied[1], len(healed)


def _confirm_object(
    storage: Storage, obj: Location, sha: str, size: int, source: Location, full: bool
) -> bool:
    """Is the store object ``obj`` (named ``sha``) good? Size, then a full or sampled hash.

    ``full`` or small objects: the sha256 of the whole object. Otherwise
    :data:`SAMPLE_BLOCKS` blocks (first, last, random) compared with the same ranges of
    ``source``, a file with the same content by its size and modification time or hash.
    """
    try:
        if storage.size_of(obj) != size:
            return False
        if full or size <= SAMPLE_WHOLE_BYTES:
            return storage.hash_file(obj)[1] == sha
        block = SAMPLE_BLOCK_BYTES
        offsets = {0, size - block}
        while len(offsets) < SAMPLE_BLOCKS:
            offsets.add(secrets.randbelow(size - block + 1))
        with (
            obj.fs.open_input_file(obj.path) as stored,
            source.fs.open_input_file(source.path) as original,
        ):
            for offset in sorted(offsets):
                if stored.read_at(block, offset) != original.read_at(block, offset):
                    return False
        return True
    except (OSError, StorageError):
        return False


def _object(item: _Item, sha256: str) -> BackupObject:
    return BackupObject(
        uri=item.uri,
        kind=item.kind,
        size=item.size,
        sha256=sha256,
        bucket=item.bucket,
        key=item.key,
        mtime_ns=item.mtime_ns,
        required=item.required,
    )


def _artifacts(
    settings: Settings, storage: Storage, folder: Location, scratch: Path
) -> list[dict[str, Any]]:
    """Extra artifacts: ``pg_dump`` of the catalog tables when the catalog is PostgreSQL."""
    if _catalog_type(settings.catalog_uri) != "postgresql":
        return []
    exe = shutil.which("pg_dump")
    if exe is None:
        return [{"kind": "pg_dump", "skipped": "pg_dump is not installed"}]
    from sqlalchemy.engine import make_url

    url = make_url(settings.catalog_uri)
    out = scratch / PG_DUMP_NAME
    cmd = [exe, "--format=custom", "--no-owner", "--no-privileges", "--file", str(out)]
    if url.host:
        cmd += ["--host", url.host]
    if url.port:
        cmd += ["--port", str(url.port)]
    if url.username:
        cmd += ["--username", url.username]
    for table in CATALOG_TABLES:
        cmd += ["--table", table]
    cmd += ["--dbname", url.database or "postgres"]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line
    try:
        run = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=3600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [{"kind": "pg_dump", "skipped": f"pg_dump failed: {describe(exc)}"}]
    if run.returncode != 0:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {run.returncode}"
        logger.warning("pg_dump failed: %s", reason)
        return [{"kind": "pg_dump", "skipped": f"pg_dump failed: {reason}"}]
    size, sha = storage.copy_hashed(storage.locate(str(out)), folder.child(PG_DUMP_NAME))
    return [
        {
            "kind": "pg_dump",
            "path": PG_DUMP_NAME,
            "size": size,
            "sha256": sha,
            "restore": "pg_restore --clean --if-exists --no-owner -d <database> catalog.pg_dump",
        }
    ]


# -- list and verify ---------------------------------------------------------------------------


def list_backups(dest: str, settings: Settings | None = None) -> list[BackupInfo]:
    """Every backup at ``dest``, oldest first (incomplete ones included)."""
    storage = Storage(settings.s3.fileio_properties() if settings else None)
    return BackupRepository.open(storage, dest).list()


@dataclass(frozen=True)
class VerifyProblem:
    """Something in a backup that does not verify.

    For a damaged store object, ``sha256`` names it and ``shared_with`` lists the other
    complete backups that hold the same object (they are damaged too).
    """

    object: str
    message: str
    sha256: str | None = None
    shared_with: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"object": self.object, "message": self.message}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
            out["shared_with"] = list(self.shared_with)
        return out


@dataclass(frozen=True)
class RepairedObject:
    """A damaged store object ``backup verify --repair`` replaced with the source's bytes."""

    sha256: str
    uris: tuple[str, ...]
    source: str
    shared_with: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "sha256": self.sha256,
            "objects": list(self.uris),
            "source": self.source,
            "shared_with": list(self.shared_with),
        }


@dataclass(frozen=True)
class VerifyResult:
    """What ``backup verify`` found."""

    backup_id: str
    location: str
    objects: int
    bytes: int
    references: int
    files_reached: int
    problems: list[VerifyProblem]
    seconds: float
    #: Damaged objects replaced from the lakehouse (``repair=True``).
    repaired: list[RepairedObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (after repairs, if any)."""
        return not self.problems

    def summary(self) -> str:
        """One line for people."""
        healed = (
            f"; repaired {len(self.repaired)} damaged object(s) from the lakehouse"
            if self.repaired
            else ""
        )
        if self.ok:
            return (
                f"backup {self.backup_id} verified: {self.objects} object(s), {self.bytes} "
                f"bytes, {self.references} reference(s), {self.files_reached} referenced "
                f"file(s){healed}"
            )
        first = self.problems[0]
        shared = {b for p in self.problems for b in p.shared_with}
        also = (
            f"; the damaged object(s) are shared with {len(shared)} other backup(s): "
            f"{', '.join(sorted(shared))}"
            if shared
            else ""
        )
        return (
            f"backup {self.backup_id} does not verify: {len(self.problems)} problem(s), "
            f"e.g. {first.object}: {first.message}{also}{healed}"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "backup_id": self.backup_id,
            "location": self.location,
            "ok": self.ok,
            "objects": self.objects,
            "bytes": self.bytes,
            "references": self.references,
            "files_reached": self.files_reached,
            "problems": [p.to_json() for p in self.problems],
            "repaired": [r.to_json() for r in self.repaired],
            "seconds": round(self.seconds, 3),
        }


def verify_objects(
    repo: BackupRepository,
    objects: Iterable[BackupObject],
    *,
    quick: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[VerifyProblem]:
    """Re-check the size and (unless ``quick``) sha256 of every object."""
    storage = repo.storage
    objects = list(objects)
    todo = list({o.sha256: o for o in objects}.values())
    total = sum(o.size for o in todo)
    lock = threading.Lock()
    done = [0]

    def advance(n: int) -> None:
        with lock:
            done[0] += n
            value = done[0]
        _report(progress, "verifying objects", value, total)

    def one(obj: BackupObject) -> VerifyProblem | None:
        loc = repo.object_location(obj.sha256)
        size = storage.size_of(loc)
        if size is None:
            return VerifyProblem(obj.uri, f"object {loc.uri} is missing from the backup")
        if size != obj.size:
            return VerifyProblem(
                obj.uri, f"object {loc.uri} has {size} bytes, the manifest says {obj.size}"
            )
        if quick:
            return None
        _, sha = storage.hash_file(loc, on_bytes=advance)
        if sha != obj.sha256:
            return VerifyProblem(obj.uri, f"object {loc.uri} fails its sha256 check")
        return None

    with ThreadPoolExecutor(workers or default_workers()) as pool:
        results = list(pool.map(one, todo))
    by_sha = {o.sha256: p for o, p in zip(todo, results, strict=True) if p is not None}
    # report every original location whose content is bad
    return [
        VerifyProblem(o.uri, by_sha[o.sha256].message, o.sha256)
        for o in objects
        if o.sha256 in by_sha
    ]


def backups_sharing(
    repo: BackupRepository, shas: Iterable[str], *, exclude: str | None = None
) -> dict[str, list[str]]:
    """sha256 → ids of the complete backups (other than ``exclude``) that hold that object."""
    wanted = set(shas)
    out: dict[str, list[str]] = {sha: [] for sha in wanted}
    if not wanted:
        return out
    for backup_id in repo.backup_ids():
        if backup_id == exclude:
            continue
        try:
            manifest = repo.load_manifest(backup_id)
        except BackupError:
            continue  # incomplete or unreadable: `backup list` says so
        for sha in wanted & {o.sha256 for o in manifest.objects}:
            out[sha].append(backup_id)
    return out


def repair_objects(
    repo: BackupRepository,
    objects: Sequence[BackupObject],
    *,
    warehouse: Mapping[str, str] | None = None,
) -> tuple[list[BackupObject], dict[str, str]]:
    """Replace damaged store objects with the bytes of the files they were backed up from.

    ``objects`` are damaged objects (by sha256). A source is used only when its bytes hash
    to the object's name: the file at the object's recorded location, else the same
    bucket and key under ``warehouse`` (bucket → URI of the current lakehouse). Returns
    the objects repaired (one per sha256) and, for the others, why not (by sha256).
    """
    storage = repo.storage
    repaired: list[BackupObject] = []
    why_not: dict[str, str] = {}
    scratch = repo.root.child(TMP_DIR, f"repair-{uuid.uuid4().hex[:12]}")
    try:
        for obj in {o.sha256: o for o in objects}.values():
            candidates = [obj.uri]
            if warehouse and obj.bucket in warehouse and obj.key:
                moved = canonical(warehouse[str(obj.bucket)].rstrip("/") + "/" + obj.key)
                if moved != obj.uri:
                    candidates.append(moved)
            reasons: list[str] = []
            for uri in candidates:
                try:
                    src = storage.locate(uri)
                    size = storage.size_of(src)
                except Exception as exc:  # an unusable location: try the next one
                    reasons.append(f"{uri}: {describe(exc)}")
                    continue
                if size is None:
                    reasons.append(f"{uri} is missing")
                    continue
                if size != obj.size:
                    reasons.append(f"{uri} has {size} bytes, not {obj.size}")
                    continue
                tmp = scratch.child(uuid.uuid4().hex)
                _, sha = storage.copy_hashed(src, tmp)
                if sha != obj.sha256:
                    storage.delete_file(tmp)
                    reasons.append(f"{uri} has other content")
                    continue
                target = repo.object_location(obj.sha256)
                storage.make_dirs(target.parent)
                storage.move(tmp, target)
                repaired.append(replace(obj, uri=uri))
                break
            else:
                why_not[obj.sha256] = (
                    "not repaired: no good copy in the lakehouse (" + "; ".join(reasons) + ")"
                )
    finally:
        try:
            storage.delete_dir(scratch)
        except Exception:  # scratch only
            logger.warning("could not remove %s", scratch.uri, exc_info=True)
    return repaired, why_not


def fetch_export(
    repo: BackupRepository, manifest: BackupManifest, target: Path
) -> list[VerifyProblem]:
    """Copy the catalog export to the local file ``target`` and check size, sha256, header."""
    info = manifest.catalog_export
    loc = repo.folder(manifest.backup_id).child(str(info.get("path", EXPORT_NAME)))
    if repo.storage.size_of(loc) is None:
        return [VerifyProblem(loc.uri, "the catalog export is missing from the backup")]
    size, sha = repo.storage.copy_hashed(loc, repo.storage.locate(str(target)))
    if size != info.get("size") or sha != info.get("sha256"):
        return [VerifyProblem(loc.uri, "the catalog export fails its sha256 check")]
    read_header(target, name=loc.uri)  # raises for a wrong or newer format_version
    return []


def backup_file_io(repo: BackupRepository, objects: Mapping[str, BackupObject]) -> FileIO:
    """A read-only PyIceberg FileIO over a backup's objects, addressed by original location."""
    from pyiceberg.io import FileIO, InputFile, OutputFile
    from pyiceberg.io.pyarrow import PyArrowFile

    class _IO(FileIO):
        def new_input(self, location: str) -> InputFile:
            obj = objects.get(canonical(location))
            if obj is None:
                raise FileNotFoundError(f"{location} is not in the backup")
            loc = repo.object_location(obj.sha256)
            return PyArrowFile(location=location, path=loc.path, fs=loc.fs)

        def new_output(self, location: str) -> OutputFile:
            raise PermissionError(f"backups are read-only: {location}")

        def delete(self, location: str | InputFile | OutputFile) -> None:
            raise PermissionError("backups are read-only")

    return _IO({})


def verify_backup(
    backup: str,
    *,
    backup_id: str | None = None,
    settings: Settings | None = None,
    quick: bool = False,
    repair: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> VerifyResult:
    """Verify a backup: manifest checksum, every object's checksum, the catalog export
    (checksum, format, every commit and node hash), and that every file the exported
    history reaches is in the backup — walked through the backup's own copies.

    Each damaged object's problem names the other backups that share it. With
    ``repair``, damaged objects are first replaced from the lakehouse where it still has
    the good bytes (:func:`repair_objects`, against the warehouse of ``settings``); the
    rest of the verification then sees the repaired store.
    """
    from lakehouse.catalog.sql_store import SqlStore
    from lakehouse.ops.export import read_records

    started = time.perf_counter()
    storage = Storage(settings.s3.fileio_properties() if settings else None)
    repo, backup_id = open_backup(storage, backup, backup_id)
    manifest = repo.load_manifest(backup_id)
    problems = verify_objects(
        repo, manifest.objects, quick=quick, workers=workers, progress=progress
    )
    repaired: list[RepairedObject] = []
    damaged = {p.sha256 for p in problems if p.sha256 is not None}
    sharing = backups_sharing(repo, damaged, exclude=backup_id)
    if repair and damaged:
        _report(progress, "repairing objects", 0, 0)
        warehouse = None
        if settings is not None:
            warehouse = dict(Warehouse.from_uri(settings.warehouse_location).buckets)
        fixed, why_not = repair_objects(
            repo, [o for o in manifest.objects if o.sha256 in damaged], warehouse=warehouse
        )
        for obj in fixed:
            uris = tuple(p.object for p in problems if p.sha256 == obj.sha256)
            repaired.append(
                RepairedObject(obj.sha256, uris, obj.uri, tuple(sharing.get(obj.sha256, ())))
            )
        done = {r.sha256 for r in repaired}
        problems = [
            replace(p, message=f"{p.message}; {why_not[p.sha256]}") if p.sha256 in why_not else p
            for p in problems
            if p.sha256 not in done
        ]
    problems = [
        replace(p, shared_with=tuple(sharing.get(p.sha256, ()))) if p.sha256 else p
        for p in problems
    ]
    bad = {p.object for p in problems}
    for artifact in manifest.artifacts:
        if "path" not in artifact:
            continue
        loc = repo.folder(backup_id).child(str(artifact["path"]))
        if storage.size_of(loc) is None:
            problems.append(VerifyProblem(loc.uri, "artifact is missing from the backup"))
        elif not quick and storage.hash_file(loc)[1] != artifact.get("sha256"):
            problems.append(VerifyProblem(loc.uri, "artifact fails its sha256 check"))

    reached = 0
    with tempfile.TemporaryDirectory(prefix="lakehouse-verify-") as scratch:
        export_path = Path(scratch) / EXPORT_NAME
        export_problems = fetch_export(repo, manifest, export_path)
        problems += export_problems
        if not export_problems:
            _report(progress, "verifying the catalog export", 0, 0)
            store = SqlStore(
                f"sqlite:///{Path(scratch) / 'verify.db'}", default_branch=manifest.default_branch
            )
            try:
                try:
                    store.import_rows(read_records(export_path))
                except (BackupError, ValueError) as exc:
                    problems.append(VerifyProblem(EXPORT_NAME, describe(exc)))
                else:
                    refs = store.list_references()
                    pinned = sorted((r.name, r.type.value, r.hash) for r in refs)
                    expected = sorted(
                        (r["name"], r["type"], r["hash"]) for r in manifest.references
                    )
                    if pinned != expected:
                        problems.append(
                            VerifyProblem(
                                EXPORT_NAME, "the export's references differ from the manifest's"
                            )
                        )
                    reached, walk_problems = _verify_reachable(
                        repo, manifest, store, refs, bad, progress
                    )
                    problems += walk_problems
            finally:
                store.close()
    result = VerifyResult(
        backup_id=backup_id,
        location=repo.folder(backup_id).uri,
        objects=len(manifest.objects),
        bytes=sum(o.size for o in manifest.objects),
        references=len(manifest.references),
        files_reached=reached,
        problems=problems,
        seconds=time.perf_counter() - started,
        repaired=repaired,
    )
    if settings is not None:  # the console's operations page: the last verification
        _record(settings, "backup-verify", result.to_json(), manifest.created_at)
    observability.record_backup_verify(
        repo.root.uri, ok=result.ok, created_at=manifest.created_at, seconds=result.seconds
    )
    return result


def _record(
    settings: Settings, kind: RecordKind, data: dict[str, Any], created: datetime | None
) -> None:
    now = datetime.now(UTC)
    record_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    extra = {"recorded_at": now.isoformat()}
    if created is not None:
        extra["backup_created_at"] = created.isoformat()
    save_record(
        Warehouse.from_uri(settings.warehouse_location),
        settings.fileio_properties(),
        kind,
        record_id,
        {**data, **extra},
    )


def _verify_reachable(
    repo: BackupRepository,
    manifest: BackupManifest,
    store: VersionStore,
    refs: Sequence[Reference],
    bad: set[str],
    progress: ProgressFn | None,
) -> tuple[int, list[VerifyProblem]]:
    """Walk the exported history through the backup's copies; every needed file must be there."""
    _report(progress, "walking the backed-up tables", 0, 0)
    objects = {o.uri: o for o in manifest.objects}
    known_missing = {str(m.get("uri")) for m in manifest.missing}
    walker = TableWalker(backup_file_io(repo, objects))
    problems: list[VerifyProblem] = []
    reached = 0
    for f in reachable_files(store, walker, refs, cutoff=manifest.history_cutoff):
        uri = canonical(f.path)
        reached += 1
        if uri in bad:
            continue  # already reported by the checksum pass
        obj = objects.get(uri)
        where = f"table {f.table} on {f.ref}"
        if obj is None:
            if f.required and uri not in known_missing:
                problems.append(
                    VerifyProblem(uri, f"{f.kind.value} file of {where} is not in the backup")
                )
            continue
        if f.size is not None and obj.size != f.size:
            problems.append(
                VerifyProblem(
                    uri,
                    f"{f.kind.value} file of {where}: {obj.size} bytes, its table records {f.size}",
                )
            )
        elif f.error is not None:
            problems.append(VerifyProblem(uri, f"{f.kind.value} file of {where}: {f.error}"))
    return reached, problems


__all__ = [
    "BACKUP_FORMAT",
    "BACKUP_FORMAT_VERSION",
    "EXPORT_NAME",
    "MANIFEST_NAME",
    "BackupInfo",
    "BackupManifest",
    "BackupObject",
    "BackupRepository",
    "BackupResult",
    "ProgressFn",
    "RepairedObject",
    "VerifyProblem",
    "VerifyResult",
    "backup_file_io",
    "backups_sharing",
    "create_backup",
    "fetch_export",
    "list_backups",
    "new_backup_id",
    "open_backup",
    "repair_objects",
    "table_io",
    "verify_backup",
    "verify_objects",
]
