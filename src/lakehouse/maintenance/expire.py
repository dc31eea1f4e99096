"""Snapshot expiry: drop old snapshots from table metadata, one catalog commit per branch.

Expiry only rewrites metadata. Each table whose snapshots expire gets a new metadata
version without them: PyIceberg's ``RemoveSnapshotsUpdate`` — the update behind
``table.maintenance.expire_snapshots()``, which in PyIceberg 0.12 deletes no file either —
applied through :meth:`~lakehouse.catalog.iceberg.RefCatalog.commit_tables` so that all
tables of the branch change in ONE catalog commit. (``expire_snapshots()`` itself is not
used: it commits each table on its own and without requirements, so a concurrent writer
that moved a ref onto an expiring snapshot would be overridden.)

No file is deleted — not the expired snapshots' manifests, not their data files: other
branches, tags and older commits of this branch may still read them. Only the garbage
collector (:mod:`lakehouse.maintenance.gc`) deletes files, once nothing within its
retention reaches them.

Which snapshots expire (:func:`plan_expiry`, Iceberg's ``history.expire.*`` semantics):
every snapshot older than ``max_age`` except

* the head of every Iceberg ref of the table (branches and tags inside its metadata);
* the newest ``keep_last`` ancestors of every Iceberg branch;
* only with ``keep_ingest_history`` *and* ``ingest_checkpoints: false`` (the behaviour
  before checkpoints), the whole ancestry of each branch head down to its oldest
  snapshot carrying ``lakehouse.ingest.*`` summary keys.

**Ingestion state.** Ingestion rebuilds its exactly-once state (files loaded, cursors,
Kafka offsets) from the current snapshot's ancestry and the table's ingest-state
checkpoint (:func:`lakehouse.ingest.bronze.ingest_state`). Removing a snapshot of that
ancestry cuts the parent link: everything from the first expired ancestor down becomes
unreachable. So with ``keep_ingest_history`` and ``ingest_checkpoints`` (the defaults),
when that cut-off part carries ``lakehouse.ingest.*`` keys, expiry first folds its state
together with the previous checkpoint's into a new checkpoint file written next to the
table's metadata files (:func:`lakehouse.ingest.bronze.write_checkpoint`), then commits
``RemoveSnapshotsUpdate`` and the table property
:data:`~lakehouse.ingest.bronze.CHECKPOINT_PROPERTY` naming the new file in the same
catalog commit. The old checkpoint is never deleted (another branch's or an older
commit's metadata may name it); a checkpoint written by an attempt whose commit failed
is an orphan the garbage collector deletes. Ingestion snapshots then expire like any
other. With ``keep_ingest_history: false`` no state is kept at all: ingestion would load
expired batches' files again.

**Incremental-model state.** An incremental model records the source snapshots it read
in the summary of its writes (:mod:`lakehouse.catalog.incremental`) and finds them in
its table's current ancestry, like ingestion. When the cut-off part carries the newest
such record, expiry folds it into the table property
:data:`~lakehouse.catalog.incremental.STATE_PROPERTY` in the same catalog commit (it is
small: one snapshot id per source), whatever the ingestion policy; the model then keeps
reading only new rows.

Concurrency: the commit carries the table's UUID and the snapshot id of every Iceberg ref
as requirements; if another writer changed a table in between, the commit fails without
effect and expiry is planned again from the new state (bounded attempts).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    AssertTableUUID,
    RemoveSnapshotsUpdate,
    SetPropertiesUpdate,
    TableRequirement,
    TableUpdate,
)

from lakehouse import observability
from lakehouse.catalog import incremental
from lakehouse.catalog.files import snapshot_ancestry
from lakehouse.catalog.iceberg import TableChange
from lakehouse.control import ensure_not_paused
from lakehouse.ingest import bronze
from lakehouse.ingest.errors import IngestError
from lakehouse.maintenance._common import (
    ProgressEvent,
    ProgressListener,
    listener,
    select_tables,
    utcnow,
)
from lakehouse.maintenance.errors import ConcurrentChangeError
from lakehouse.maintenance.policies import Policies, SnapshotPolicy

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: Prefix of the snapshot summary keys ingestion writes (see :mod:`lakehouse.ingest.bronze`).
INGEST_SUMMARY_PREFIX = bronze.SUMMARY_PREFIX


#: :attr:`TableExpiry.checkpoint` of a dry run that would write a checkpoint.
DRY_RUN_CHECKPOINT = "(dry run)"


@dataclass(frozen=True)
class SnapshotPlan:
    """Which snapshots of one table expire, and why the others stay."""

    expire: tuple[int, ...]
    #: Snapshots kept although older than ``max_age`` because ingestion reads them
    #: (only with ``ingest_checkpoints: false``).
    kept_for_ingest: int = 0
    #: Snapshots of the current ancestry that expiry cuts off (the first expired
    #: ancestor and everything older), newest first: their ingestion state must be
    #: checkpointed.
    cut_off: tuple[int, ...] = ()
    #: True when a new ingest-state checkpoint must be written (some cut-off snapshot
    #: carries ``lakehouse.ingest.*`` keys and the policy keeps ingestion state).
    checkpoint: bool = False
    #: True when some cut-off snapshot records an incremental model's state.
    incremental_state: bool = False


def _is_ingest(snapshot_summary: Any) -> bool:
    if snapshot_summary is None:
        return False
    return any(k.startswith(INGEST_SUMMARY_PREFIX) for k in snapshot_summary.additional_properties)


def plan_expiry(metadata: TableMetadata, policy: SnapshotPolicy, now: datetime) -> SnapshotPlan:
    """The snapshots of ``metadata`` that ``policy`` expires at time ``now``."""
    cutoff_ms = int((now - policy.max_age).timestamp() * 1000)
    protected: set[int] = set()
    ingest: set[int] = set()
    for ref in metadata.refs.values():
        protected.add(ref.snapshot_id)
        if ref.snapshot_ref_type != SnapshotRefType.BRANCH:
            continue
        ancestry = snapshot_ancestry(metadata, ref.snapshot_id)
        protected.update(s.snapshot_id for s in ancestry[: policy.keep_last])
        if policy.keep_ingest_history and not policy.ingest_checkpoints:
            oldest = max((i for i, s in enumerate(ancestry) if _is_ingest(s.summary)), default=None)
            if oldest is not None:
                ingest.update(s.snapshot_id for s in ancestry[: oldest + 1])
    expire: list[int] = []
    kept_for_ingest = 0
    for snapshot in metadata.snapshots:
        if snapshot.timestamp_ms >= cutoff_ms or snapshot.snapshot_id in protected:
            continue
        if snapshot.snapshot_id in ingest:
            kept_for_ingest += 1
            continue
        expire.append(snapshot.snapshot_id)
    expired = set(expire)
    ancestry = snapshot_ancestry(metadata)
    first = next((i for i, s in enumerate(ancestry) if s.snapshot_id in expired), None)
    cut_off = tuple(s.snapshot_id for s in ancestry[first:]) if first is not None else ()
    checkpoint = (
        policy.keep_ingest_history
        and policy.ingest_checkpoints
        and first is not None
        and any(bronze.has_ingest_keys(s) for s in ancestry[first:])
    )
    folds = first is not None and any(incremental.has_state(s) for s in ancestry[first:])
    return SnapshotPlan(tuple(sorted(expire)), kept_for_ingest, cut_off, checkpoint, folds)


@dataclass(frozen=True)
class TableExpiry:
    """What expiry did (or would do, on a dry run) to one table."""

    table: str
    #: Snapshots in the table's metadata before expiry.
    snapshots: int
    expired: tuple[int, ...] = ()
    kept_for_ingest: int = 0
    #: The ingest-state checkpoint written for the expired ingestion snapshots (on a dry
    #: run: ``"(dry run)"`` when one would be written).
    checkpoint: str | None = None
    #: Why the table was skipped (unreadable metadata …); ``None`` when it was not.
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "table": self.table,
            "snapshots": self.snapshots,
            "expired": len(self.expired),
            "expired_snapshot_ids": list(self.expired),
            "kept_for_ingest": self.kept_for_ingest,
            "checkpoint": self.checkpoint,
            "error": self.error,
        }


@dataclass(frozen=True)
class ExpireResult:
    """Outcome of :func:`expire_snapshots` on one branch."""

    ref: str
    dry_run: bool
    tables: tuple[TableExpiry, ...] = field(default_factory=tuple)
    #: True when a catalog commit was made.
    committed: bool = False

    @property
    def expired(self) -> int:
        """Snapshots expired (or that would be, on a dry run) over all tables."""
        return sum(len(t.expired) for t in self.tables)

    @property
    def errors(self) -> list[TableExpiry]:
        """Tables that were skipped because of an error."""
        return [t for t in self.tables if t.error]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "operation": "expire",
            "ref": self.ref,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "expired": self.expired,
            "tables": [t.to_json() for t in self.tables],
        }


def _requirements(metadata: TableMetadata) -> tuple[TableRequirement, ...]:
    reqs: list[TableRequirement] = [AssertTableUUID(uuid=metadata.table_uuid)]
    for name, ref in sorted(metadata.refs.items()):
        reqs.append(AssertRefSnapshotId(ref=name, snapshot_id=ref.snapshot_id))
    return tuple(reqs)


def _write_checkpoint(table: Table, plan: SnapshotPlan) -> str:
    """Fold the cut-off snapshots' ingestion state onto the table's checkpoint; a new file."""
    metadata = table.metadata
    by_id = {s.snapshot_id: s for s in metadata.snapshots}
    folded = bronze.state_of_snapshots(by_id[i] for i in plan.cut_off)
    previous = table.properties.get(bronze.CHECKPOINT_PROPERTY) or None
    uuid = str(metadata.table_uuid)
    if previous is not None:
        folded = folded.over(bronze.read_checkpoint(table.io, previous, table_uuid=uuid))
    location = bronze.checkpoint_location(table.metadata_location)
    bronze.write_checkpoint(
        table.io,
        location,
        folded,
        table_uuid=uuid,
        previous=previous,
        through_snapshot_id=plan.cut_off[0] if plan.cut_off else None,
    )
    logger.info(
        "expire: checkpointed the ingestion state of %d snapshot(s) of %s to %s",
        len(plan.cut_off),
        ".".join(table.name()),
        location,
    )
    return location


def _fold_incremental_state(table: Table, plan: SnapshotPlan) -> str | None:
    """The new incremental-state property of ``table`` (``None``: keep the current one)."""
    by_id = {s.snapshot_id: s for s in table.metadata.snapshots}
    previous = table.properties.get(incremental.STATE_PROPERTY)
    return incremental.fold_state((by_id[i] for i in plan.cut_off), previous)


def expire_snapshots(
    lh: Lakehouse,
    ref: str | None = None,
    *,
    tables: Sequence[str] | None = None,
    policies: Policies | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: ProgressListener | None = None,
    attempts: int = 5,
) -> ExpireResult:
    """Expire old snapshots of the tables on branch ``ref`` (default: the default branch).

    ``tables`` selects tables (names, namespaces or fnmatch patterns; default all). Each
    table's :class:`~lakehouse.maintenance.policies.SnapshotPolicy` comes from
    ``policies`` (default: :func:`~lakehouse.maintenance.policies.load_policies` of the
    lakehouse home). All tables change in one catalog commit; ``dry_run`` commits
    nothing. Raises :class:`~lakehouse.maintenance.errors.ConcurrentChangeError` if other
    writers kept changing the tables for ``attempts`` tries, and
    :class:`~lakehouse.errors.ReadOnlyReferenceError` for a tag or hash.
    """

    if not dry_run:
        ensure_not_paused(lh, "snapshot expiry")
    from lakehouse.maintenance.policies import load_policies

    policies = policies or load_policies(home=lh.settings.home)
    branch = lh.store.writable_branch(ref or lh.default_branch).name
    catalog = lh.catalog(branch)
    report = listener(on_progress)
    when = now or utcnow()
    last_error: Exception | None = None
    for attempt in range(max(1, attempts)):
        names = select_tables(lh, branch, tables)
        results: list[TableExpiry] = []
        changes: list[TableChange] = []
        for i, name in enumerate(names):
            report(ProgressEvent("expire", name, i, len(names)))
            try:
                table: Table = catalog.load_table(name)
            except Exception as exc:  # unreadable metadata: skip the table, report it
                logger.warning("expire: cannot load table %s on %s: %s", name, branch, exc)
                results.append(TableExpiry(name, 0, error=" ".join(str(exc).split())))
                continue
            metadata = table.metadata
            plan = plan_expiry(metadata, policies.for_table(name).snapshots, when)
            checkpoint: str | None = None
            updates: list[TableUpdate] = [RemoveSnapshotsUpdate(snapshot_ids=list(plan.expire))]
            if plan.checkpoint:
                if dry_run:
                    checkpoint = DRY_RUN_CHECKPOINT
                else:  # written before the commit; an orphan (GC's) if the commit fails
                    try:
                        checkpoint = _write_checkpoint(table, plan)
                    except (IngestError, OSError) as exc:  # expiring would lose ingest state
                        why = " ".join(str(exc).split())
                        logger.warning("expire: skipping %s on %s: %s", name, branch, why)
                        results.append(TableExpiry(name, len(metadata.snapshots), error=why))
                        continue
                    updates.append(
                        SetPropertiesUpdate(updates={bronze.CHECKPOINT_PROPERTY: checkpoint})
                    )
            if plan.incremental_state:
                folded = _fold_incremental_state(table, plan)
                if folded is not None:
                    updates.append(
                        SetPropertiesUpdate(updates={incremental.STATE_PROPERTY: folded})
                    )
            results.append(
                TableExpiry(
                    name, len(metadata.snapshots), plan.expire, plan.kept_for_ingest, checkpoint
                )
            )
            if plan.expire:
                changes.append(
                    TableChange(
                        name, _requirements(metadata), tuple(updates), table.metadata_location
                    )
                )
        report(ProgressEvent("expire", branch, len(names), len(names)))
        if dry_run or not changes:
            if not dry_run:  # tables that failed still count
                observability.record_expiry(branch, 0, sum(1 for t in results if t.error))
            return ExpireResult(branch, dry_run, tuple(results), committed=False)
        try:
            catalog.commit_tables(changes)
        except CommitFailedException as exc:
            last_error = exc
            logger.info("expire on %s: tables changed concurrently (attempt %d)", branch, attempt)
            continue
        done = ExpireResult(branch, dry_run, tuple(results), committed=True)
        observability.record_expiry(branch, done.expired, len(done.errors))
        return done
    raise ConcurrentChangeError(
        f"snapshot expiry on '{branch}' gave up after {attempts} attempts: tables kept "
        f"changing concurrently ({last_error}); nothing was committed, run it again",
        ref=branch,
    )


__all__ = [
    "DRY_RUN_CHECKPOINT",
    "INGEST_SUMMARY_PREFIX",
    "ExpireResult",
    "SnapshotPlan",
    "TableExpiry",
    "expire_snapshots",
    "plan_expiry",
]
