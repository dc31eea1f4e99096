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
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import (
    NO_ANCESTOR,
    CommitMeta,
    IcebergTable,
    Namespace,
    Put,
    ReferenceType,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.control import OPS_BRANCH as OPS_BRANCH
from lakehouse.control import PAUSE_KEY as PAUSE_KEY
from lakehouse.control import SUMMARY_KAFKA_OFFSETS as SUMMARY_KAFKA_OFFSETS
from lakehouse.control import PauseState as PauseState
from lakehouse.control import ensure_not_paused as ensure_not_paused
from lakehouse.control import parse_kafka_offsets as parse_kafka_offsets
from lakehouse.control import pause_state as pause_state
from lakehouse.errors import ReferenceAlreadyExistsError
from lakehouse.ingest.bronze import ingest_state

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)


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


def replay_points(lakehouse: Lakehouse, ref: str | None = None) -> list[ReplayPoint]:
    """Per table on ``ref`` (default: the default branch), the recorded ingestion positions.

    Reads each table's ingestion state (:func:`lakehouse.ingest.bronze.ingest_state`):
    its current snapshot's ancestry, newest first, then the ingest-state checkpoint that
    snapshot expiry left; for each Kafka topic partition the newest recorded offset wins.
    """
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
