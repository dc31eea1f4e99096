"""Operations state shared by every writer: the disaster-recovery pause flag, Kafka offsets.

Ingestion, pipeline runs and maintenance read this state before they write, and the
disaster-recovery runbook (:mod:`lakehouse.ops.dr`) sets it; it lives here, below all of
them, so that each imports it downward.

**The pause flag lives in the versioned catalog itself**, so every process that can
reach the catalog sees it, whatever the store (SQLite, PostgreSQL, a Nessie server) and
wherever the process runs (CLI, Airflow worker, Spark driver): it is the content
``lakehouse_dr`` (a namespace whose properties say ``paused``, ``reason``, ``by``,
``since``) on the reserved branch :data:`OPS_BRANCH`. :func:`ensure_not_paused` is called
at the start of ingestion, pipeline runs and maintenance, before any write.

Kafka ingestion records, in every snapshot it commits, the next offset to read per topic
and partition (snapshot summary property :data:`SUMMARY_KAFKA_OFFSETS`, JSON
``{"<topic>": {"<partition>": <next offset>}}``); :func:`parse_kafka_offsets` reads it
(both defined in :mod:`lakehouse.tables.bookkeeping` with the other bookkeeping keys).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import ContentKey, Namespace
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import PausedError, ReferenceNotFoundError
from lakehouse.tables.bookkeeping import SUMMARY_KAFKA_OFFSETS as SUMMARY_KAFKA_OFFSETS
from lakehouse.tables.bookkeeping import parse_kafka_offsets as parse_kafka_offsets

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: The reserved branch holding operations state (created from the empty root commit).
OPS_BRANCH = "lakehouse-ops"
#: The content key of the pause flag on :data:`OPS_BRANCH`.
PAUSE_KEY = ContentKey.of("lakehouse_dr")


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


__all__ = [
    "OPS_BRANCH",
    "PAUSE_KEY",
    "SUMMARY_KAFKA_OFFSETS",
    "PauseState",
    "ensure_not_paused",
    "parse_kafka_offsets",
    "pause_state",
]
