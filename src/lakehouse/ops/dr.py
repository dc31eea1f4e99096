"""The disaster-recovery runbook as functions: pause, resume, status, replay points.

**The pause flag lives in the versioned catalog itself**, so every process that can
reach the catalog sees it, whatever the store (SQLite, PostgreSQL, a Nessie server) and
wherever the process runs (CLI, Airflow worker, Spark driver): it is the content
``lakehouse_dr`` (a namespace whose properties say ``paused``, ``reason``, ``by``,
``since``) on the reserved branch :data:`OPS_BRANCH`. That branch is created from the
empty root commit, holds nothing else, and is never merged: it pins no table files.
Pausing and resuming are ordinary commits on it, so their history is the branch's log
(``lakehouse log --ref lakehouse-ops``), and a backup carries the flag along.

Entry points of ingestion, pipeline runs and maintenance call
:func:`ensure_not_paused` before they start; work already running finishes its
current commit (the check is at the start, never in the middle of a commit).

CDC replay after a restore: a Kafka ingestion records, in every snapshot it commits,
the next offset to read per topic and partition (snapshot summary property
:data:`SUMMARY_KAFKA_OFFSETS`, JSON ``{"<topic>": {"<partition>": <next offset>}}``).
:func:`replay_points` reads, per table, the newest offsets in the current snapshot's
ancestry and, for snapshots expiry removed, the table's ingest-state checkpoint (and the
batch ingestion cursor of :mod:`lakehouse.ingest`), which is where
consumers resume after a restore; tables without them are re-loaded by re-running their
batch ingestion, whose cursors and landed-file checksums make that idempotent.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import (
    NO_ANCESTOR,
    CommitMeta,
    ContentKey,
    IcebergTable,
    Namespace,
    Put,
    ReferenceType,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import ReferenceAlreadyExistsError, ReferenceNotFoundError
from lakehouse.ops.errors import PausedError

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse

logger = logging.getLogger(__name__)

#: The reserved branch holding operations state (created from the empty root commit).
OPS_BRANCH = "lakehouse-ops"
#: The content key of the pause flag on :data:`OPS_BRANCH`.
PAUSE_KEY = ContentKey.of("lakehouse_dr")
#: Snapshot summary property where Kafka ingestion records the next offsets to read.
SUMMARY_KAFKA_OFFSETS = "lakehouse.ingest.kafka.offsets"
#: Snapshot summary properties of batch ingestion (mirrors :mod:`lakehouse.ingest.bronze`).
SUMMARY_CURSOR = "lakehouse.ingest.cursor"
SUMMARY_SOURCE = "lakehouse.ingest.source"
SUMMARY_BATCH_ID = "lakehouse.ingest.batch-id"


@dataclass(frozen=True)
class PauseState:
    """Whether the lakehouse is paused, since when, by whom and why."""

    paused: bool
    reason: str | None = None
    by: str | None = None
    since: datetime | None = None
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "paused": self.paused,
            "reason": self.reason,
            "by": self.by,
            "since": self.since.isoformat() if self.since else None,
            "commit": self.commit,
        }

    def describe(self) -> str:
        """One line for people."""
        if not self.paused:
            return "not paused"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S}Z" if self.since else ""
        by = f" by {self.by}" if self.by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"paused for disaster recovery{since}{by}{why}"


def pause_state(store: VersionStore) -> PauseState:
    """The current pause flag (not paused when the ops branch does not exist)."""
    try:
        head = store.resolve(OPS_BRANCH).hash
        found = store.get_contents("@" + head, [PAUSE_KEY])
    except ReferenceNotFoundError:
        return PauseState(False)
    content = found.get(PAUSE_KEY)
    if not isinstance(content, Namespace):
        return PauseState(False, commit=head)
    props = content.properties
    since = props.get("since")
    return PauseState(
        paused=props.get("paused") == "true",
        reason=props.get("reason") or None,
        by=props.get("by") or None,
        since=datetime.fromisoformat(since) if since else None,
        commit=head,
    )


def _set_flag(store: VersionStore, paused: bool, reason: str | None, by: str | None) -> PauseState:
    with contextlib.suppress(ReferenceAlreadyExistsError):
        store.create_reference(OPS_BRANCH, ReferenceType.BRANCH, "@" + NO_ANCESTOR)
    head = store.resolve(OPS_BRANCH).hash
    current = store.get_contents("@" + head, [PAUSE_KEY]).get(PAUSE_KEY)
    now = datetime.now(UTC)
    props = {"paused": "true" if paused else "false", "since": now.isoformat()}
    if reason:
        props["reason"] = reason
    if by:
        props["by"] = by
    content = Namespace(PAUSE_KEY.elements, props, id=current.id if current is not None else None)
    verb = "pause" if paused else "resume"
    message = f"DR: {verb}" + (f" ({reason})" if reason else "")
    result = store.commit(
        OPS_BRANCH,
        [Put(PAUSE_KEY, content)],
        CommitMeta(message=message, author=by, properties={"lakehouse.dr": verb}),
        expected_hash=head,
    )
    return PauseState(paused, reason, by, now, result.hash)


def pause(
    lakehouse: Lakehouse, reason: str | None = None, *, update: bool = False
) -> tuple[PauseState, bool]:
    """Pause ingestion, pipelines and maintenance; returns the state and whether it changed.

    Pausing a paused lakehouse changes nothing unless ``update``, which records the new
    ``reason`` (a restore does this: the reason it carried from the backup is stale).
    """
    state = pause_state(lakehouse.store)
    if state.paused and not update:
        return state, False
    return _set_flag(lakehouse.store, True, reason, lakehouse.settings.author), True


def resume(lakehouse: Lakehouse, reason: str | None = None) -> tuple[PauseState, bool]:
    """Lift the pause; returns the state and whether it changed."""
    state = pause_state(lakehouse.store)
    if not state.paused:
        return state, False
    return _set_flag(lakehouse.store, False, reason, lakehouse.settings.author), True


def ensure_not_paused(lakehouse: Lakehouse, what: str = "this job") -> None:
    """Raise :class:`PausedError` when the lakehouse is paused for disaster recovery.

    Call it at the start of ingestion, pipeline runs and maintenance, before any write.
    """
    state = pause_state(lakehouse.store)
    if state.paused:
        raise PausedError(
            f"{what} cannot start: the lakehouse is {state.describe()}; "
            "run `lakehouse dr resume` when recovery is done"
        )


# -- replay points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPoint:
    """Where to resume feeding one table after a restore."""

    table: str
    ref: str
    snapshot_id: int | None
    committed_at: datetime | None
    #: topic → partition → next offset to read, merged over the snapshot ancestry.
    kafka_offsets: dict[str, dict[int, int]]
    #: Newest batch-ingestion cursor (JSON, as :mod:`lakehouse.ingest` records it).
    cursor: str | None
    source: str | None
    batch_id: str | None

    @property
    def action(self) -> str:
        """What to do for this table."""
        if self.kafka_offsets:
            parts = [
                f"{topic}[{p}]@{o}"
                for topic, parts_ in sorted(self.kafka_offsets.items())
                for p, o in sorted(parts_.items())
            ]
            return "replay Kafka from " + ", ".join(parts)
        if self.source:
            return f"re-run batch ingestion of source {self.source!r}"
        return "no ingestion recorded; re-run the pipeline that writes it"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "table": self.table,
            "ref": self.ref,
            "snapshot_id": self.snapshot_id,
            "committed_at": self.committed_at.isoformat() if self.committed_at else None,
            "kafka_offsets": {
                t: {str(p): o for p, o in parts.items()} for t, parts in self.kafka_offsets.items()
            },
            "cursor": self.cursor,
            "source": self.source,
            "batch_id": self.batch_id,
            "action": self.action,
        }


def parse_kafka_offsets(value: str | None) -> dict[str, dict[int, int]]:
    """Parse a :data:`SUMMARY_KAFKA_OFFSETS` value (empty for absent or malformed)."""
    if not value:
        return {}
    try:
        data = json.loads(value)
        return {
            str(topic): {int(p): int(o) for p, o in parts.items()} for topic, parts in data.items()
        }
    except (ValueError, AttributeError, TypeError):
        logger.warning("ignoring a malformed %s value: %r", SUMMARY_KAFKA_OFFSETS, value[:200])
        return {}


def replay_points(lakehouse: Lakehouse, ref: str | None = None) -> list[ReplayPoint]:
    """Per table on ``ref`` (default: the default branch), the recorded ingestion positions.

    Reads each table's ingestion state (:func:`lakehouse.ingest.bronze.ingest_state`):
    its current snapshot's ancestry, newest first, then the ingest-state checkpoint that
    snapshot expiry left; for each Kafka topic partition the newest recorded offset wins.
    """
    from lakehouse.ingest.bronze import ingest_state

    ref = ref or lakehouse.default_branch
    resolved = lakehouse.store.resolve(ref)
    points: list[ReplayPoint] = []
    catalog = lakehouse.catalog(f"@{resolved.hash}")
    for entry in lakehouse.store.entries("@" + resolved.hash, with_content=True):
        if not isinstance(entry.content, IcebergTable):
            continue
        table = catalog.load_table(str(entry.key))
        state = ingest_state(table)
        current = table.current_snapshot()
        points.append(
            ReplayPoint(
                table=str(entry.key),
                ref=ref,
                snapshot_id=current.snapshot_id if current else None,
                committed_at=(
                    datetime.fromtimestamp(current.timestamp_ms / 1000, tz=UTC) if current else None
                ),
                kafka_offsets={t: dict(parts) for t, parts in state.kafka_offsets.items()},
                cursor=state.latest_cursor,
                source=state.latest_source,
                batch_id=state.latest_batch,
            )
        )
    return points


__all__ = [
    "OPS_BRANCH",
    "PAUSE_KEY",
    "SUMMARY_KAFKA_OFFSETS",
    "PauseState",
    "ReplayPoint",
    "ensure_not_paused",
    "parse_kafka_offsets",
    "pause",
    "pause_state",
    "replay_points",
    "resume",
]
