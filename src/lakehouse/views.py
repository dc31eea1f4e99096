"""JSON views of library objects: one shape for ``--output json`` and the console.

Every ``lakehouse`` command that prints JSON, and every page of the web console
(:mod:`lakehouse.console`) with its JSON twin, builds its data with these functions, so
the command line and the browser always show the same information. Plain functions over
library objects; no rendering, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import (
    Content,
    DiffEntry,
    Entry,
    LogEntry,
    MergeResult,
    Reference,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

#: Length of an abbreviated commit hash.
SHORT = 12


def short(hash_: str | None) -> str:
    """An abbreviated commit hash."""
    return (hash_ or "")[:SHORT]


def references_json(refs: Sequence[Reference]) -> list[dict[str, Any]]:
    """References as Nessie JSON."""
    return [r.to_json() for r in refs]


def log_json(entries: Sequence[LogEntry]) -> list[dict[str, Any]]:
    """Commits as Nessie JSON (commit meta)."""
    return [e.meta.to_json() for e in entries]


def content_json(content: Content | None) -> dict[str, Any] | None:
    """A content object as Nessie JSON (``None`` stays ``None``)."""
    return content.to_json() if content is not None else None


def diff_json(entries: Sequence[DiffEntry]) -> list[dict[str, Any]]:
    """Diff entries: key, and content on each side."""
    return [
        {
            "key": str(e.key),
            "elements": list(e.key.elements),
            "from": content_json(e.from_content),
            "to": content_json(e.to_content),
        }
        for e in entries
    ]


def merge_json(result: MergeResult, *, source: str, dry_run: bool) -> dict[str, Any]:
    """A merge result (also of a dry run) as JSON."""
    return {
        "source": source,
        "target": result.target_branch,
        "dry_run": dry_run,
        "applied": result.was_applied,
        "successful": result.was_successful,
        "source_hash": result.source_hash,
        "common_ancestor": result.common_ancestor,
        "target_hash_before": result.effective_target_hash,
        "target_hash_after": result.resultant_target_hash,
        "keys": [
            {
                "key": str(d.key),
                "behavior": d.merge_behavior.value,
                "conflict": d.conflict.to_json() if d.conflict else None,
                "resolution": d.resolution,
            }
            for d in result.details
        ],
    }


def entries_json(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """Listed keys: name, namespace, type and content id."""
    return [
        {
            "name": str(e.key),
            "namespace": ".".join(e.key.elements[:-1]),
            "type": e.type.value,
            "content_id": e.content_id,
        }
        for e in entries
    ]


def _iso_ms(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def snapshot_json(snapshot: Snapshot, current_id: int | None = None) -> dict[str, Any]:
    """An Iceberg snapshot: ids, time, operation, summary, manifest list."""
    summary = snapshot.summary
    return {
        "snapshot_id": snapshot.snapshot_id,
        "parent_snapshot_id": snapshot.parent_snapshot_id,
        "sequence_number": snapshot.sequence_number,
        "timestamp": _iso_ms(snapshot.timestamp_ms),
        "operation": summary.operation.value if summary is not None else None,
        "summary": dict(summary.additional_properties) if summary is not None else {},
        "schema_id": snapshot.schema_id,
        "manifest_list": snapshot.manifest_list,
        "current": snapshot.snapshot_id == current_id,
    }


def table_json(table: Table, ref: str) -> dict[str, Any]:
    """What ``table show`` prints: schema, partition spec, sort order, snapshot, properties."""
    metadata = table.metadata
    schema = table.schema()
    spec = table.spec()
    order = table.sort_order()
    current = table.current_snapshot()

    def column(field_id: int) -> str:
        try:
            return schema.find_column_name(field_id) or str(field_id)
        except ValueError:
            return str(field_id)

    return {
        "name": ".".join(table.name()),
        "ref": ref,
        "metadata_location": table.metadata_location,
        "location": metadata.location,
        "format_version": metadata.format_version,
        "table_uuid": str(metadata.table_uuid),
        "schema": {
            "schema_id": schema.schema_id,
            "fields": [
                {
                    "id": f.field_id,
                    "name": f.name,
                    "type": str(f.field_type),
                    "required": f.required,
                    "doc": f.doc,
                }
                for f in schema.fields
            ],
        },
        "partition_spec": {
            "spec_id": spec.spec_id,
            "fields": [
                {
                    "name": f.name,
                    "source": column(f.source_id),
                    "transform": str(f.transform),
                    "field_id": f.field_id,
                }
                for f in spec.fields
            ],
        },
        "sort_order": {
            "order_id": order.order_id,
            "fields": [
                {
                    "source": column(f.source_id),
                    "transform": str(f.transform),
                    "direction": f.direction.value,
                    "null_order": f.null_order.value,
                }
                for f in order.fields
            ],
        },
        "current_snapshot": snapshot_json(current, current.snapshot_id) if current else None,
        "properties": dict(metadata.properties),
    }


def history_json(table: Table) -> list[dict[str, Any]]:
    """Every snapshot in the table's metadata on this reference, newest first."""
    current = table.current_snapshot()
    current_id = current.snapshot_id if current else None
    snapshots = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    return [snapshot_json(s, current_id) for s in reversed(snapshots)]


__all__ = [
    "SHORT",
    "content_json",
    "diff_json",
    "entries_json",
    "history_json",
    "log_json",
    "merge_json",
    "references_json",
    "short",
    "snapshot_json",
    "table_json",
]
