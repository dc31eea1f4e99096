"""Garbage collection across every reference: the only thing in Lakehouse that deletes files.

Branches share files (DESIGN §3): a file one branch stopped using may be read by another
branch, a tag or an older commit, so no single table or branch can tell what is garbage.
:func:`collect_garbage` is a mark-and-sweep over the whole catalog, like nessie-gc:

1. **Mark.** Every reference (branch and tag) is pinned to its hash. For each, its history
   is followed as far as its retention (``gc.references`` of the policies: keep N commits
   and/or a duration, like nessie-gc's cutoff policies; default: all history) and every
   table and view content visible at any kept commit is collected
   (:class:`lakehouse.catalog.files.RetainedHistory`: the state at the oldest kept
   commit plus every content the kept commits put). Every file those contents reach —
   the metadata file of every kept commit, manifest lists, manifests, data and delete
   files, statistics — is marked through the shared walker
   (:class:`lakehouse.catalog.files.TableWalker`). If any of those files cannot be read,
   what is live is unknown and GC refuses to go on
   (:class:`~lakehouse.maintenance.errors.IncompleteWalkError`): nothing is deleted.
2. **List** every file under the warehouse buckets ``bronze``, ``silver``, ``gold`` and
   ``iceberg-metadata`` (never ``raw``; never paths matching ``gc.exclude``, by default the
   collector's own ``_gc/`` folder). Unmarked files older than ``gc.grace_period`` are
   candidates; younger ones (files of commits still being written) and files without a
   modification time are kept. A data file's key index (:mod:`lakehouse.tables.keyindex`)
   is live exactly when its data file is.
3. **Re-check.** References are read again; any that moved are marked too (files they
   reach leave the candidates). Then the candidates are written, before anything is
   deleted, to the deferred-delete list ``<iceberg-metadata>/_gc/<run-id>.jsonl``
   (self-describing: format version, references and hashes, one line per file, a final
   line with the count and a checksum).
4. **Sweep.** Candidates are deleted top-down — table metadata files, then manifest lists,
   then manifests, then data files — so that a sweep stopped at any point never leaves a
   surviving file pointing at a deleted one. ``<run-id>.done.json`` is written at the end.

Interrupted (killed) runs are idempotent: a later run marks afresh, so files of the old
list that became live are kept, files already deleted are simply gone, and the rest are
deleted by the new run, which then closes the old list with its own ``.done.json``.

``dry_run`` stops after the re-check and reports counts, bytes and sample paths.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec

from lakehouse import observability
from lakehouse.catalog.files import HistoryLimit, RetainedHistory, TableFile, TableWalker
from lakehouse.catalog.model import Reference
from lakehouse.control import ensure_not_paused
from lakehouse.errors import PausedError
from lakehouse.maintenance._common import (
    ProgressEvent,
    ProgressListener,
    listener,
    sample,
    utcnow,
)
from lakehouse.maintenance.errors import GCRefusedError, IncompleteWalkError
from lakehouse.maintenance.policies import GCPolicy, Policies
from lakehouse.storage.records import RECORDS_FOLDER
from lakehouse.storage.zones import METADATA_BUCKET, ZONES
from lakehouse.tables.keyindex import indexed_file

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse
    from lakehouse.storage.objects import ListedFile, Storage
    from lakehouse.storage.zones import Warehouse

logger = logging.getLogger(__name__)

#: Version of the deferred-delete list format.
FORMAT_VERSION = 1
#: Folder (inside the ``iceberg-metadata`` bucket) of the deferred-delete lists.
GC_FOLDER = "_gc"
#: Folders of the metadata bucket that are never table files: never swept.
KEPT_FOLDERS = (GC_FOLDER + "/", RECORDS_FOLDER + "/")
#: Buckets the sweep lists (never ``raw``).
SWEPT_BUCKETS: tuple[str, ...] = (*(z for z in ZONES if z != "raw"), METADATA_BUCKET)
#: How many times references that moved during a run are marked again before giving up.
_MAX_RECHECKS = 5


P = ParamSpec("P")

# -- results ---------------------------------------------------------------------------------


@dataclass
class FileCount:
    """A number of files and their bytes."""

    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        """Count one file of ``size`` bytes."""
        self.files += 1
        self.bytes += size

    def to_json(self) -> dict[str, int]:
        """JSON form."""
        return {"files": self.files, "bytes": self.bytes}


@dataclass
class GCResult:
    """What a garbage collection found and did (or would do, on a dry run)."""

    run_id: str
    dry_run: bool
    started: datetime
    grace_period_seconds: float
    #: Reference name → (hash marked, retention described).
    references: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Distinct files reachable from the kept history (anywhere).
    marked: int = 0
    #: Files under the swept buckets: reachable ones, unreachable but young, excluded.
    live: FileCount = field(default_factory=FileCount)
    young: FileCount = field(default_factory=FileCount)
    excluded: FileCount = field(default_factory=FileCount)
    #: Unreachable and older than the grace period: deleted (or to delete, on a dry run).
    candidates: FileCount = field(default_factory=FileCount)
    deleted: FileCount = field(default_factory=FileCount)
    #: Candidates that could not be deleted: path → reason.
    failed: dict[str, str] = field(default_factory=dict)
    #: Reachable files inside the swept buckets that were not found there.
    missing: int = 0
    samples: list[str] = field(default_factory=list)
    #: URI of the deferred-delete list (not written on a dry run).
    plan: str | None = None
    #: Interrupted earlier runs this run finished.
    resumed: list[str] = field(default_factory=list)
    mark_seconds: float = 0.0
    sweep_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "operation": "gc",
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "started": self.started.isoformat(),
            "grace_period_seconds": self.grace_period_seconds,
            "references": {
                name: {"hash": h, "retention": r} for name, (h, r) in self.references.items()
            },
            "marked": self.marked,
            "live": self.live.to_json(),
            "young": self.young.to_json(),
            "excluded": self.excluded.to_json(),
            "candidates": self.candidates.to_json(),
            "deleted": self.deleted.to_json(),
            "failed": len(self.failed),
            "failures": dict(list(self.failed.items())[:20]),
            "missing": self.missing,
            "samples": self.samples,
            "plan": self.plan,
            "resumed": self.resumed,
            "mark_seconds": round(self.mark_seconds, 3),
            "sweep_seconds": round(self.sweep_seconds, 3),
        }


# -- mark ----------------------------------------------------------------------------------


class Marker:
    """Marks every file reachable from the kept history of references (incrementally).

    Call :meth:`mark` with pinned references; call it again with references that moved:
    only what is new is walked. :attr:`marked` holds canonical URIs.
    """

    def __init__(
        self, lh: Lakehouse, policy: GCPolicy, now: datetime, on_progress: ProgressListener
    ) -> None:
        from lakehouse.storage.objects import Storage

        self._lh = lh
        self._policy = policy
        self._now = now
        self._report = on_progress
        self.storage: Storage = Storage(lh.settings.fileio_properties())
        self.walker = TableWalker(self.storage.io)
        self._seen: set[str] = set()
        self._history = RetainedHistory(lh.store, self.limit)
        self.marked: set[str] = set()
        self.errors: list[tuple[str, str]] = []
        #: Reachable paths an earlier garbage collection deleted (outside its retention).
        self.collected_earlier: set[str] = set()

    def limit(self, reference: Reference) -> HistoryLimit:
        """The history limit of ``reference`` from the policy."""
        retention = self._policy.retention_for(reference.name, reference.type)
        cutoff = self._now - retention.max_age if retention.max_age is not None else None
        return HistoryLimit(retention.keep_commits, cutoff)

    def mark(self, references: Sequence[Reference]) -> None:
        """Mark everything reachable from the kept history of ``references``."""
        from lakehouse.storage.objects import canonical

        for i, reference in enumerate(references):
            self._report(ProgressEvent("mark", reference.name, i, len(references)))
            for point, key, content in self._history.contents(reference):
                for tf in self.walker.content_files(
                    key, content, point.ref, commit=point.hash, seen=self._seen
                ):
                    self._add(tf, canonical)
        self._report(ProgressEvent("mark", "", len(references), len(references)))

    def _add(self, tf: TableFile, canonical: Callable[[str], str]) -> None:
        try:
            self.marked.add(canonical(tf.path))
        except Exception as exc:  # a path we cannot even spell: what it names is unknown
            self.errors.append((tf.path, f"unusable path {tf.path!r} ({exc})"))
            return
        if tf.error is not None:
            self.errors.append((tf.path, tf.error))


# -- the deferred-delete list --------------------------------------------------------------


def _new_run_id(now: datetime) -> str:
    return f"gc-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _delete_rank(uri: str) -> int:
    """Sweep order: table metadata, manifest lists, manifests, then everything else."""
    name = uri.rsplit("/", 1)[-1]
    if name.endswith(".metadata.json") or name.endswith(".metadata.json.gz"):
        return 0
    if name.startswith("snap-") and name.endswith(".avro"):
        return 1
    if name.endswith(".avro"):
        return 2
    return 3


def _plan_lines(run_id: str, now: datetime, result: GCResult, files: Sequence[ListedFile]) -> bytes:
    header = {
        "type": "header",
        "format_version": FORMAT_VERSION,
        "run_id": run_id,
        "created": now.isoformat(),
        "grace_period_seconds": result.grace_period_seconds,
        "references": {n: h for n, (h, _) in result.references.items()},
        "count": len(files),
        "bytes": sum(f.size for f in files),
    }
    lines = [json.dumps(header, sort_keys=True)]
    lines += [
        json.dumps({"path": f.uri, "size": f.size, "mtime_ns": f.mtime_ns}, sort_keys=True)
        for f in files
    ]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    lines.append(json.dumps({"type": "end", "count": len(files), "sha256": digest}))
    return ("\n".join(lines) + "\n").encode()


def read_plan(data: bytes) -> tuple[dict[str, Any], list[str]]:
    """Header and paths of a deferred-delete list; :class:`ValueError` if it does not verify."""
    lines = data.decode().splitlines()
    if len(lines) < 2:
        raise ValueError("truncated deferred-delete list")
    header = json.loads(lines[0])
    end = json.loads(lines[-1])
    if header.get("format_version") != FORMAT_VERSION or end.get("type") != "end":
        raise ValueError("not a deferred-delete list of a known format version")
    digest = hashlib.sha256("\n".join(lines[:-1]).encode()).hexdigest()
    if end.get("sha256") != digest or end.get("count") != len(lines) - 2:
        raise ValueError("checksum mismatch")
    return header, [json.loads(line)["path"] for line in lines[1:-1]]


# -- collect ---------------------------------------------------------------------------------


def _metered(collect: Callable[P, GCResult]) -> Callable[P, GCResult]:
    """Record every collection that runs for real: what it deleted, or that it failed."""

    @functools.wraps(collect)
    def metered(*args: P.args, **kwargs: P.kwargs) -> GCResult:
        try:
            result = collect(*args, **kwargs)
        except PausedError:  # paused for disaster recovery: not a failure
            raise
        except Exception:
            if not kwargs.get("dry_run"):
                observability.record_gc_failure()
            raise
        if not result.dry_run:
            deleted, failed = result.deleted, len(result.failed)
            observability.record_gc(
                deleted_files=deleted.files, deleted_bytes=deleted.bytes, delete_failures=failed
            )
        return result

    return metered


@_metered
def collect_garbage(
    lh: Lakehouse,
    *,
    policies: Policies | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    run_id: str | None = None,
    workers: int | None = None,
    on_progress: ProgressListener | None = None,
) -> GCResult:
    """Mark and sweep the whole warehouse (see the module docstring).

    ``now`` is the time retention cutoffs (``max_age``) are measured from (default: the
    current time); the grace period always counts back from the earlier of ``now`` and
    the real clock, so a ``now`` in the future cannot shorten it.

    Raises :class:`~lakehouse.maintenance.errors.IncompleteWalkError` when files reachable
    from a live reference cannot be read, and
    :class:`~lakehouse.maintenance.errors.GCRefusedError` when GC is disabled by policy or
    what it found does not add up (nothing is deleted in either case).
    """

    if not dry_run:
        ensure_not_paused(lh, "garbage collection")
    from lakehouse.storage.objects import canonical

    policies = policies or _load(lh)
    policy = policies.gc
    if not policy.enabled:
        raise GCRefusedError("garbage collection is disabled by the policies (gc.enabled: false)")
    started = now or utcnow()
    report = listener(on_progress)
    result = GCResult(
        run_id=run_id or _new_run_id(started),
        dry_run=dry_run,
        started=started,
        grace_period_seconds=policy.grace_period.total_seconds(),
    )

    # 1. mark, from pinned references
    t0 = time.perf_counter()
    marker = Marker(lh, policy, started, report)
    pinned = {r.name: r for r in lh.store.list_references()}
    marker.mark(list(pinned.values()))
    _check_walk(marker, lh)
    result.mark_seconds = time.perf_counter() - t0

    # 2. list the buckets
    t1 = time.perf_counter()
    storage = marker.storage
    raw_root = canonical(lh.warehouse.bucket_uri("raw")).rstrip("/") + "/"
    roots = {b: canonical(lh.warehouse.bucket_uri(b)).rstrip("/") for b in SWEPT_BUCKETS}
    # the grace period counts from the real clock, whatever ``now`` says
    grace_cutoff_ns = int((min(started, utcnow()) - policy.grace_period).timestamp() * 1e9)
    listed: list[tuple[ListedFile, str]] = []
    for i, bucket in enumerate(SWEPT_BUCKETS):
        report(ProgressEvent("list", bucket, i, len(SWEPT_BUCKETS)))
        for f in storage.list_files(storage.locate(lh.warehouse.bucket_uri(bucket))):
            if f.uri.startswith(raw_root):
                continue
            listed.append((f, f.uri[len(roots[bucket]) :].lstrip("/")))
    report(ProgressEvent("list", "", len(SWEPT_BUCKETS), len(SWEPT_BUCKETS)))

    # 3. re-check references that moved meanwhile, then classify
    for _ in range(_MAX_RECHECKS):
        now_refs = {r.name: r for r in lh.store.list_references()}
        moved = [r for n, r in now_refs.items() if n not in pinned or pinned[n].hash != r.hash]
        if not moved:
            break
        logger.info("gc: %d reference(s) moved during the run; marking them too", len(moved))
        marker.mark(moved)
        pinned.update({r.name: r for r in moved})
        _check_walk(marker, lh)
    else:
        raise GCRefusedError(
            f"references kept moving during garbage collection ({_MAX_RECHECKS} re-checks); "
            "nothing was deleted, run it again when the catalog is quieter"
        )
    for name, reference in sorted(pinned.items()):
        retention = policy.retention_for(name, reference.type)
        result.references[name] = (reference.hash, retention.describe())
    result.marked = len(marker.marked)

    candidates: list[ListedFile] = []
    found_live: set[str] = set()
    for f, relative in listed:
        if policy.excluded(relative) or relative.startswith(KEPT_FOLDERS):
            result.excluded.add(f.size)
        elif f.uri in marker.marked:
            result.live.add(f.size)
            found_live.add(f.uri)
        elif indexed_file(f.uri) in marker.marked:  # a live data file's key index
            result.live.add(f.size)
        elif f.mtime_ns is None or f.mtime_ns > grace_cutoff_ns:
            result.young.add(f.size)
        else:
            result.candidates.add(f.size)
            candidates.append(f)
    inside = [
        u
        for u in marker.marked - marker.collected_earlier
        if any(u.startswith(root + "/") for root in roots.values())
    ]
    result.missing = len(inside) - len(found_live)
    if inside and not found_live and candidates:
        raise GCRefusedError(
            f"none of the {len(inside)} reachable files inside the warehouse was found by "
            "listing its buckets; refusing to delete anything (check the warehouse setting)"
        )
    candidates.sort(key=lambda f: (_delete_rank(f.uri), f.uri))
    result.samples = sample((f.uri for f in candidates), policy.sample_size)

    interrupted = _interrupted_runs(storage, lh)
    if dry_run:
        result.resumed = [run for run, _ in interrupted]
        result.sweep_seconds = time.perf_counter() - t1
        return result

    # 4. write the deferred-delete list, then delete top-down (nothing to record: no list)
    folder = storage.locate(lh.warehouse.bucket_uri(METADATA_BUCKET)).child(GC_FOLDER)
    if candidates:
        plan_loc = folder.child(f"{result.run_id}.jsonl")
        storage.write_bytes(plan_loc, _plan_lines(result.run_id, started, result, candidates))
        result.plan = plan_loc.uri
        _sweep(storage, candidates, result, report, workers)
    result.sweep_seconds = time.perf_counter() - t1
    summary = {
        "run_id": result.run_id,
        "finished": utcnow().isoformat(),
        "deleted": result.deleted.to_json(),
        "failed": len(result.failed),
    }
    for run, loc in interrupted:
        storage.write_bytes(
            loc, json.dumps({**summary, "run_id": run, "finished_by": result.run_id}).encode()
        )
        result.resumed.append(run)
    if result.plan is not None:
        storage.write_bytes(
            folder.child(f"{result.run_id}.done.json"), json.dumps(summary).encode()
        )
    return result


def _sweep(
    storage: Storage,
    candidates: Sequence[ListedFile],
    result: GCResult,
    report: ProgressListener,
    workers: int | None,
) -> None:
    """Delete ``candidates`` rank by rank (all of one rank before the next)."""
    from lakehouse.errors import StorageError

    total = len(candidates)
    done = 0
    report(ProgressEvent("sweep", "", 0, total))
    by_rank: dict[int, list[ListedFile]] = {}
    for f in candidates:
        by_rank.setdefault(_delete_rank(f.uri), []).append(f)

    def delete(f: ListedFile) -> tuple[ListedFile, str | None]:
        try:
            storage.delete_file(storage.locate(f.uri), missing_ok=True)
            return f, None
        except StorageError as exc:
            return f, str(exc)

    local = bool(candidates) and storage.locate(candidates[0].uri).is_local
    threads = max(1, workers if workers is not None else (1 if local else 16))

    def record(f: ListedFile, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is None:
            result.deleted.add(f.size)
        else:
            result.failed[f.uri] = error
        report(ProgressEvent("sweep", f.uri, done, total))

    for rank in sorted(by_rank):
        files = by_rank[rank]
        if threads == 1:
            for f in files:
                record(*delete(f))
            continue
        # bounded batches: never more than a few deletes in flight ahead of the report
        with ThreadPoolExecutor(max_workers=threads) as pool:
            step = threads * 4
            for start in range(0, len(files), step):
                for f, error in pool.map(delete, files[start : start + step]):
                    record(f, error)


def _interrupted_runs(storage: Storage, lh: Lakehouse) -> list[tuple[str, Any]]:
    """Earlier runs whose deferred-delete list has no ``.done.json``: (run id, done location)."""
    folder = storage.locate(lh.warehouse.bucket_uri(METADATA_BUCKET)).child(GC_FOLDER)
    names = {f.uri.rsplit("/", 1)[-1] for f in storage.list_files(folder)}
    out = []
    for name in sorted(names):
        if name.endswith(".jsonl"):
            run = name.removesuffix(".jsonl")
            if f"{run}.done.json" not in names:
                out.append((run, folder.child(f"{run}.done.json")))
    return out


def _check_walk(marker: Marker, lh: Lakehouse) -> None:
    """Refuse unless every file reachable from the kept history could be read.

    A missing file that an earlier garbage collection deleted (it is in one of the
    deferred-delete lists under ``_gc/``) is expected: it belonged to a commit outside
    an earlier, shorter retention. Anything else unreadable is an error.
    """
    if not marker.errors:
        return
    from lakehouse.storage.objects import canonical

    storage = marker.storage
    collected = _previously_collected(storage, lh)
    real: list[tuple[str, str]] = []
    for path, reason in marker.errors:
        try:
            gone = canonical(path) in collected and not storage.exists(storage.locate(path))
        except Exception:
            gone = False
        if gone:
            marker.collected_earlier.add(canonical(path))
        else:
            real.append((path, reason))
    marker.errors = []
    if real:
        raise IncompleteWalkError(real)


def _previously_collected(storage: Storage, lh: Lakehouse) -> set[str]:
    """Every path listed by a verified deferred-delete list of an earlier run."""
    return set(collected_files(storage, lh.warehouse))


def collected_files(storage: Storage, warehouse: Warehouse) -> dict[str, str]:
    """Every file the garbage collector deleted (or began deleting) by policy → its run id.

    Read from the verified deferred-delete lists ``<iceberg-metadata>/_gc/<run-id>.jsonl``,
    each written before its run deleted anything; a list that does not verify is ignored
    (logged). Paths are canonical URIs. The integrity check and backups use this to tell
    history that was collected on purpose from files that went missing.
    """
    from lakehouse.storage.objects import canonical

    folder = storage.locate(warehouse.bucket_uri(METADATA_BUCKET)).child(GC_FOLDER)
    out: dict[str, str] = {}
    for f in storage.list_files(folder):
        if not f.uri.endswith(".jsonl"):
            continue
        try:
            header, paths = read_plan(storage.read_bytes(storage.locate(f.uri)))
        except (ValueError, KeyError) as exc:
            logger.warning("gc: ignoring unreadable deferred-delete list %s: %s", f.uri, exc)
            continue
        run = str(header.get("run_id") or f.uri.rsplit("/", 1)[-1].removesuffix(".jsonl"))
        for path in paths:
            out.setdefault(canonical(path), run)
    return out


def _load(lh: Lakehouse) -> Policies:
    from lakehouse.maintenance.policies import load_policies

    return load_policies(home=lh.settings.home)


def describe_limits(policy: GCPolicy, references: Mapping[str, Reference]) -> dict[str, str]:
    """Reference name → its retention, described (for reports)."""
    return {
        name: policy.retention_for(name, ref.type).describe()
        for name, ref in sorted(references.items())
    }


__all__ = [
    "FORMAT_VERSION",
    "GC_FOLDER",
    "SWEPT_BUCKETS",
    "FileCount",
    "GCResult",
    "Marker",
    "collect_garbage",
    "collected_files",
    "describe_limits",
    "read_plan",
]
