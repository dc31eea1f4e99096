"""``lakehouse backup restore``: a backup back into an empty lakehouse, all or nothing.

Steps, in this order; any failure undoes everything done so far:

1. Read the manifest (format first: a newer ``format_version`` is refused, then its
   checksum). Check the target: its warehouse must have the backup's bucket locations
   (see "Locations" below), and its catalog and buckets must be empty — unless
   ``erase``, which replaces a local lakehouse (never an S3 one: empty those buckets with
   your S3 tooling first).
2. Fetch the catalog export, check its sha256 and format, and import it into a staging
   SQLite catalog: every commit and node hash is re-computed, every parent, tree and
   reference target must be present.
3. Copy every object from the backup into staging folders next to each local bucket
   (straight into S3 buckets), hashing each written file and comparing it with the
   manifest's sha256. Meanwhile the integrity check walks every table of every reference
   (metadata → manifest lists → manifests) through the backup's copies — byte for byte
   the files being restored, as their checksums prove.
4. Move the staged buckets into place, finish the integrity check
   (:func:`lakehouse.ops.check.check_walked`: every needed file exists at its restored
   location with the right size), and only then put the catalog in place: a rename of
   the staged SQLite file, or one transaction loading it into PostgreSQL.

Locations: Iceberg metadata holds absolute file locations, and commit hashes cover the
metadata locations, so relocating tables would change every hash. A restore therefore
puts every file back at its original location: the target's buckets must be the
backup's (same local folders, or S3 buckets of the same names — the endpoint may
differ, which is the disaster-recovery case of a new region or cluster). Restoring
into different locations is refused with an error naming both.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import NO_ANCESTOR
from lakehouse.errors import ConfigError
from lakehouse.ops.backup import (
    EXPORT_NAME,
    BackupManifest,
    BackupObject,
    BackupRepository,
    ProgressFn,
    backup_file_io,
    fetch_export,
    open_backup,
)
from lakehouse.ops.errors import (
    BackupCorruptError,
    BackupError,
    IntegrityError,
    TargetNotEmptyError,
)
from lakehouse.storage.objects import Location, Storage, canonical, default_workers
from lakehouse.storage.zones import Warehouse

if TYPE_CHECKING:
    from lakehouse.catalog.sql_store import SqlStore
    from lakehouse.config import Settings
    from lakehouse.ops.check import CheckReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreResult:
    """What ``backup restore`` did."""

    backup_id: str
    catalog: str
    warehouse: dict[str, str]
    references: int
    commits: int
    objects: int
    bytes: int
    erased: bool
    check: CheckReport
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "backup_id": self.backup_id,
            "catalog": self.catalog,
            "warehouse": self.warehouse,
            "references": self.references,
            "commits": self.commits,
            "objects": self.objects,
            "bytes": self.bytes,
            "erased": self.erased,
            "check": {
                "ok": self.check.ok,
                "tables_checked": len(self.check.tables),
                "files_checked": self.check.files_checked,
            },
            "seconds": round(self.seconds, 3),
        }


class _Undo:
    """Steps to undo, run in reverse order when the restore fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], None]]] = []
        self.finally_steps: list[Callable[[], None]] = []

    def push(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def run(self) -> None:
        for what, step in reversed(self.steps):
            try:
                step()
            except Exception:  # keep undoing the rest; report what could not be undone
                logger.error("restore rollback: could not %s", what, exc_info=True)
        self.steps.clear()


def restore_backup(
    backup: str,
    settings: Settings,
    *,
    backup_id: str | None = None,
    erase: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    """Restore ``backup`` into the lakehouse ``settings`` describe (see the module doc)."""
    from lakehouse.catalog import sqlite_path
    from lakehouse.catalog.sql_store import SqlStore
    from lakehouse.config import redact_url
    from lakehouse.ops.check import check_walked, walk_catalog
    from lakehouse.ops.export import read_records

    started = time.perf_counter()
    storage = Storage(settings.s3.fileio_properties())
    repo, backup_id = open_backup(storage, backup, backup_id)
    manifest = repo.load_manifest(backup_id)
    warehouse = Warehouse.from_uri(settings.warehouse_location)
    _check_locations(manifest, warehouse)

    catalog_uri = settings.catalog_uri
    db_path = sqlite_path(catalog_uri)
    is_postgres = catalog_uri.startswith("postgresql")
    if db_path is None and not is_postgres:
        raise ConfigError(
            f"cannot restore into catalog {redact_url(catalog_uri)}: restore needs a SQLite "
            "file or a PostgreSQL database (for a Nessie server use Nessie's own import)"
        )
    roots = {b: storage.locate(u) for b, u in warehouse.buckets.items()}
    _check_target_empty(storage, roots, settings, db_path, erase)

    token = uuid.uuid4().hex[:8]
    undo = _Undo()
    cleanup: list[Callable[[], None]] = []
    workers = workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="lakehouse-restore-") as scratch:
        try:
            # 2. the catalog, staged and verified
            _progress(progress, "verifying the catalog export", 0, 0)
            export_path = Path(scratch) / EXPORT_NAME
            problems = fetch_export(repo, manifest, export_path)
            if problems:
                raise BackupCorruptError(
                    f"{problems[0].object}: {problems[0].message}", [problems[0].object]
                )
            if db_path is not None:
                _make_dirs(db_path.parent, undo)
                staged_db = db_path.parent / f".{db_path.name}.restore-{token}"
            else:
                staged_db = Path(scratch) / "staged-catalog.db"
            undo.push("remove the staged catalog", lambda: _remove_db(staged_db))
            staged = SqlStore(f"sqlite:///{staged_db}", default_branch=settings.default_branch)
            try:
                counts = staged.import_rows(read_records(export_path, name=EXPORT_NAME))
            except ValueError as exc:  # InvalidInputError: a hash or a record does not verify
                staged.close()
                raise BackupCorruptError(
                    f"the catalog export of backup {backup_id} does not verify: {exc}",
                    [EXPORT_NAME],
                ) from exc
            except BaseException:
                staged.close()
                raise

            try:
                # 3. the objects, staged and verified. Meanwhile the integrity check walks
                # every table's metadata through the backup's copies: the same bytes as the
                # restored files, whose sha256 is compared with the manifest's as they are
                # written. Only the look-ups (existence, size) wait for the files in place.
                io = backup_file_io(repo, {o.uri: o for o in manifest.objects})
                with ThreadPoolExecutor(1) as side:
                    walking = side.submit(walk_catalog, staged, io)
                    try:
                        staging = _stage_objects(
                            repo, storage, manifest, roots, token, undo, workers, progress
                        )
                    finally:
                        walk = walking.result()
                # 4. files into place, check, then the catalog into place
                _move_into_place(storage, roots, staging, token, erase, undo, cleanup)
                _progress(progress, "checking the restored lakehouse", 0, 0)
                report = check_walked(walk, storage, workers=workers)
                _require_sound(report, manifest)
                if is_postgres:
                    _load_postgres(staged, catalog_uri, settings.default_branch, erase)
            finally:
                staged.close()
            if db_path is not None:
                _sqlite_into_place(staged_db, db_path, token, undo, cleanup)
        except BaseException:
            undo.run()
            raise
    for step in cleanup:
        try:
            step()
        except Exception:
            logger.warning("restore: could not remove replaced files", exc_info=True)
    return RestoreResult(
        backup_id=backup_id,
        catalog=redact_url(catalog_uri),
        warehouse={b: r.uri for b, r in roots.items()},
        references=counts.get("reference", 0),
        commits=counts.get("commit", 0),
        objects=len(manifest.objects),
        bytes=sum(o.size for o in manifest.objects),
        erased=erase,
        check=report,
        seconds=time.perf_counter() - started,
    )


def _require_sound(report: CheckReport, manifest: BackupManifest) -> None:
    """Fail unless every problem the check found was already recorded at backup time
    (``backup create --allow-missing`` backs up a damaged lakehouse as it is)."""
    known = {canonical(str(m.get("uri"))) for m in manifest.missing}
    for table in report.tables:
        for problem in table.problems:
            if canonical(problem.path) not in known:
                raise IntegrityError(
                    f"the restored lakehouse does not check out: table {table.table} on "
                    f"{table.ref}: {problem.describe()}"
                )


def _progress(progress: ProgressFn | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _check_locations(manifest: BackupManifest, warehouse: Warehouse) -> None:
    """The target's buckets must be where the backed-up tables' metadata says files are."""
    source = manifest.warehouse
    for bucket, uri in sorted(warehouse.buckets.items()):
        want = source.get(bucket)
        if want is None:
            continue
        if canonical(uri) != canonical(want):
            raise BackupError(
                f"the backup's bucket {bucket} was {want}, the target's is {canonical(uri)}: "
                "Iceberg metadata holds absolute file locations, so a restore puts every file "
                "back where it was; restore into a lakehouse whose warehouse has the same "
                "locations (relocation is not supported)"
            )


def _check_target_empty(
    storage: Storage,
    roots: dict[str, Location],
    settings: Settings,
    db_path: Path | None,
    erase: bool,
) -> None:
    """Refuse a target that holds a catalog or files (unless ``erase`` on a local one)."""
    from lakehouse.catalog.sql_store import SqlStore
    from lakehouse.config import redact_url

    full = [name for name, root in roots.items() if not storage.is_empty(root)]
    refs: list[str] = []
    if db_path is not None:
        if db_path.exists() and db_path.stat().st_size > 0:
            store = SqlStore(f"sqlite:///{db_path}", default_branch=settings.default_branch)
            try:
                refs = _non_empty_refs(store)
            finally:
                store.close()
    else:
        store = SqlStore(settings.catalog_uri, default_branch=settings.default_branch)
        try:
            refs = _non_empty_refs(store)
        finally:
            store.close()
    if not full and not refs:
        return
    what = []
    if refs:
        what.append(
            f"catalog {redact_url(settings.catalog_uri)} has reference(s) {', '.join(refs[:5])}"
        )
    if full:
        what.append(f"bucket(s) {', '.join(full)} hold files ({roots[full[0]].uri} …)")
    if not erase:
        raise TargetNotEmptyError(
            f"the restore target is not empty: {'; '.join(what)}; restore into an empty "
            "lakehouse, or pass --erase to replace this one"
        )
    remote = [name for name in full if not roots[name].is_local]
    if remote:
        raise TargetNotEmptyError(
            f"--erase only replaces local warehouses; bucket(s) {', '.join(remote)} are not "
            "local: empty them with your S3 tooling, then restore"
        )


def _non_empty_refs(store: SqlStore) -> list[str]:
    return [
        r.name
        for r in store.list_references()
        if not (r.name == store.default_branch and r.hash == NO_ANCESTOR)
    ]


def _stage_root(root: Location, token: str) -> Location:
    return root.parent.child(f".{root.name}.restore-{token}")


def _stage_objects(
    repo: BackupRepository,
    storage: Storage,
    manifest: BackupManifest,
    roots: dict[str, Location],
    token: str,
    undo: _Undo,
    workers: int,
    progress: ProgressFn | None,
) -> dict[str, Location]:
    """Copy every object to its staging (local buckets) or final (S3, outside) location.

    Returns bucket → staging folder of local buckets.
    """
    staging: dict[str, Location] = {}
    for name, root in roots.items():
        if root.is_local:
            _make_dirs(Path(root.parent.path), undo)
            staging[name] = _stage_root(root, token)
            stage = staging[name]
            undo.push(f"remove {stage.uri}", partial(storage.delete_dir, stage))
    written: list[Location] = []
    lock = threading.Lock()
    undo.push("remove restored objects", lambda: _delete_all(storage, written, lock))
    total = sum(o.size for o in manifest.objects)
    done = [0]

    def advance(n: int) -> None:
        with lock:
            done[0] += n
            value = done[0]
        _progress(progress, "restoring files", value, total)

    def target_of(obj: BackupObject) -> Location:
        if obj.bucket is not None and obj.key and obj.bucket in roots:
            base = staging.get(obj.bucket, roots[obj.bucket])
            return base.child(obj.key)
        return storage.locate(obj.uri)

    def one(obj: BackupObject) -> None:
        src = repo.object_location(obj.sha256)
        dst = target_of(obj)
        outside = obj.bucket is None or obj.bucket not in roots
        if outside and storage.size_of(dst) is not None:
            size, sha = storage.hash_file(dst)
            if sha == obj.sha256:
                advance(obj.size)
                return  # a file outside the buckets, already there with this content
            raise TargetNotEmptyError(
                f"{obj.uri} exists outside the warehouse's buckets with other content; "
                "move it away, then restore"
            )
        if storage.size_of(src) is None:
            raise BackupCorruptError(
                f"object {src.uri} ({obj.uri}) is missing from the backup", [obj.uri]
            )
        try:
            size, sha = storage.copy_hashed(src, dst, on_bytes=advance)
        finally:
            if not dst.is_local or outside:
                with lock:
                    written.append(dst)
        if sha != obj.sha256 or size != obj.size:
            raise BackupCorruptError(
                f"object {src.uri} ({obj.uri}) fails its sha256 check: the backup is damaged",
                [obj.uri],
            )

    if workers > 1 and len(manifest.objects) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(one, manifest.objects):
                pass
    else:
        for obj in manifest.objects:
            one(obj)
    return staging


def _delete_all(storage: Storage, locs: list[Location], lock: threading.Lock) -> None:
    with lock:
        todo = list(locs)
    for loc in todo:
        storage.delete_file(loc)


def _move_into_place(
    storage: Storage,
    roots: dict[str, Location],
    staging: dict[str, Location],
    token: str,
    erase: bool,
    undo: _Undo,
    cleanup: list[Callable[[], None]],
) -> None:
    """Rename each staged local bucket into place (an existing one is moved aside)."""
    for name, stage in staging.items():
        final = Path(roots[name].path)
        staged = Path(stage.path)
        _make_dirs(final.parent, undo)
        if not staged.exists():
            staged.mkdir(parents=True)
        if final.exists():
            if any(final.iterdir()) and not erase:  # someone wrote meanwhile
                raise TargetNotEmptyError(f"{roots[name].uri} was written to during the restore")
            aside = final.parent / f".{final.name}.replaced-{token}"
            os.replace(final, aside)
            undo.push(f"put {final} back", partial(os.replace, aside, final))
            cleanup.append(partial(_rmtree, aside))
        os.replace(staged, final)
        undo.push(f"move {final} back to staging", partial(os.replace, final, staged))


def _make_dirs(path: Path, undo: _Undo) -> None:
    """Create ``path`` and missing parents; the undo removes those it created (if empty)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):  # undone in reverse: the deepest first
        undo.push(f"remove {created}", partial(_rmdir_if_empty, created))


def _rmdir_if_empty(path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=False)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            p.unlink()


def _sqlite_into_place(
    staged: Path, db_path: Path, token: str, undo: _Undo, cleanup: list[Callable[[], None]]
) -> None:
    """Make the staged SQLite file self-contained (no WAL) and rename it into place."""
    conn = sqlite3.connect(staged)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # checkpoints and removes the WAL
    finally:
        conn.close()
    if db_path.exists():
        aside = db_path.parent / f".{db_path.name}.replaced-{token}"
        for suffix in ("-wal", "-shm", "-journal", ""):
            p = Path(f"{db_path}{suffix}")
            if p.exists():
                os.replace(p, Path(f"{aside}{suffix}"))
        undo.push(f"put {db_path} back", lambda: _put_back(aside, db_path))
        cleanup.append(lambda: _remove_db(aside))
    os.replace(staged, db_path)
    undo.push(f"remove the restored {db_path}", lambda: _remove_db(db_path))


def _put_back(aside: Path, db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(f"{aside}{suffix}")
        if p.exists():
            os.replace(p, Path(f"{db_path}{suffix}"))


def _load_postgres(staged: SqlStore, uri: str, default_branch: str, erase: bool) -> None:
    """Load the staged catalog into PostgreSQL in one transaction."""
    from lakehouse.catalog.sql_store import SqlStore

    target = SqlStore(uri, default_branch=default_branch)
    try:
        target.import_rows(staged.export_rows(), erase=erase)
    except ValueError as exc:
        raise BackupError(f"cannot load the catalog into PostgreSQL: {exc}") from exc
    finally:
        target.close()


__all__ = ["RestoreResult", "restore_backup"]
