"""Incremental-model state: which source snapshots a model's table was last built from.

An incremental model (``materialized: incremental`` in ``pipeline.yaml``) reads only the
rows its sources gained since its last successful write. What it consumed is recorded
in the Iceberg snapshot summary of that write, committed atomically with the data (like
the ingestion cursors of :mod:`lakehouse.ingest.bronze`)::

    lakehouse.incremental                    incremental | full | reset
    lakehouse.incremental.<namespace.table>  snapshot id of that source the write read

The state of a table is that of the newest snapshot of its current ancestry carrying
``lakehouse.incremental`` (a ``reset`` snapshot — written when a full refresh empties the
table — holds no source, so the next build reads everything). Snapshot expiry cuts that
ancestry; when the cut-off part carries the newest state, expiry folds it into the table
property :data:`STATE_PROPERTY` (JSON, in the same catalog commit), which is read when no
remaining snapshot has any (:func:`fold_state`, :mod:`lakehouse.maintenance.expire`).

This module only reads and writes that state; it lives here, below both the pipeline
runner that records it and the maintenance that folds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

#: Summary key marking a write of an incremental model (its value: :data:`ReadMode`).
SUMMARY_MARKER = "lakehouse.incremental"
#: Prefix of the per-source summary keys (``lakehouse.incremental.bronze.orders``).
SUMMARY_PREFIX = SUMMARY_MARKER + "."
#: Table property holding the state folded by snapshot expiry (JSON).
STATE_PROPERTY = "lakehouse.incremental.state"

#: How a write read its sources: only new rows of every source, everything of at least
#: one source, or nothing (a full refresh emptied the table).
ReadMode = Literal["incremental", "full", "reset"]


@dataclass(frozen=True)
class IncrementalState:
    """The sources a table was last built from, and where that was recorded."""

    #: Source table → snapshot id read (empty: build from everything).
    sources: Mapping[str, int] = field(default_factory=dict)
    #: The snapshot of the table recording it (``None``: none, or only the property).
    snapshot_id: int | None = None
    #: True when the state comes from :data:`STATE_PROPERTY` (snapshots expired).
    folded: bool = False

    def since(self, source: str) -> int | None:
        """The snapshot of ``source`` read last (case-insensitive name), ``None`` if none."""
        wanted = source.lower()
        for name, snapshot_id in self.sources.items():
            if name.lower() == wanted:
                return snapshot_id
        return None


def summary_properties(mode: ReadMode, sources: Mapping[str, int]) -> dict[str, str]:
    """The snapshot summary keys recording a write that read ``sources`` (see the module)."""
    props: dict[str, str] = {SUMMARY_MARKER: mode}
    props.update({SUMMARY_PREFIX + name: str(sid) for name, sid in sorted(sources.items())})
    return props


def _properties(snapshot: Snapshot) -> Mapping[str, str] | None:
    summary = snapshot.summary
    if summary is None:
        return None
    props: Mapping[str, str] = summary.additional_properties
    return props if SUMMARY_MARKER in props else None


def has_state(snapshot: Snapshot) -> bool:
    """True when ``snapshot`` records an incremental model's state."""
    return _properties(snapshot) is not None


def _sources(props: Mapping[str, str]) -> dict[str, int]:
    sources: dict[str, int] = {}
    for key, value in props.items():
        if key.startswith(SUMMARY_PREFIX):
            try:
                sources[key[len(SUMMARY_PREFIX) :]] = int(value)
            except ValueError:  # not ours: a state we cannot read is no state
                continue
    return sources


def state_of_snapshots(snapshots: Iterable[Snapshot]) -> IncrementalState | None:
    """The state of the first snapshot (newest first) recording one, else ``None``."""
    for snapshot in snapshots:
        props = _properties(snapshot)
        if props is not None:
            return IncrementalState(_sources(props), snapshot.snapshot_id)
    return None


def _from_property(text: str | None) -> IncrementalState | None:
    if not text:
        return None
    try:
        data: Any = json.loads(text)
        sources = {str(k): int(v) for k, v in dict(data["sources"]).items()}
        through = data.get("snapshot_id")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # unreadable: the next build reads everything
    return IncrementalState(sources, int(through) if through is not None else None, folded=True)


def incremental_state(table: Table) -> IncrementalState:
    """The state of ``table``: its current ancestry's newest record, else the folded one."""
    from pyiceberg.table.snapshots import ancestors_of

    found = state_of_snapshots(ancestors_of(table.current_snapshot(), table.metadata))
    if found is not None:
        return found
    return _from_property(table.properties.get(STATE_PROPERTY)) or IncrementalState()


def fold_state(cut_off: Iterable[Snapshot], previous: str | None) -> str | None:
    """The new :data:`STATE_PROPERTY` value when snapshots ``cut_off`` (newest first) expire.

    ``None`` when they record no state (the property, if any, stays as it is).
    """
    state = state_of_snapshots(cut_off)
    if state is None:
        return None
    value = json.dumps(
        {"snapshot_id": state.snapshot_id, "sources": dict(sorted(state.sources.items()))},
        sort_keys=True,
    )
    return None if value == previous else value


__all__ = [
    "STATE_PROPERTY",
    "SUMMARY_MARKER",
    "SUMMARY_PREFIX",
    "IncrementalState",
    "ReadMode",
    "fold_state",
    "has_state",
    "incremental_state",
    "state_of_snapshots",
    "summary_properties",
]
