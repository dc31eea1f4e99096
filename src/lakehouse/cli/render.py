"""Turning library objects into JSON-able dicts and into text for people.

Every command builds one JSON-able value and prints it either as JSON or as text, so
both outputs always carry the same information. Imported by command functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table as RichTable
from rich.text import Text

from lakehouse.catalog.model import (
    Content,
    DiffEntry,
    Entry,
    IcebergTable,
    IcebergView,
    LogEntry,
    MergeResult,
    Reference,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot
    from rich.console import Console

SHORT = 12


def short(hash_: str | None) -> str:
    """An abbreviated commit hash."""
    return (hash_ or "")[:SHORT]


# -- references ---------------------------------------------------------------------------


def references_json(refs: Sequence[Reference]) -> list[dict[str, Any]]:
    """References as Nessie JSON."""
    return [r.to_json() for r in refs]


def print_references(console: Console, refs: Sequence[Reference], default: str) -> None:
    """A table of references, the default branch marked with ``*``."""
    if not refs:
        console.print("(none)")
        return
    table = RichTable(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("", width=1)
    table.add_column("NAME")
    table.add_column("TYPE")
    table.add_column("HASH")
    for ref in refs:
        mark = "*" if ref.name == default and ref.type.value == "BRANCH" else ""
        table.add_row(mark, ref.name, ref.type.value.lower(), short(ref.hash))
    console.print(table)


# -- log and diff -------------------------------------------------------------------------


def log_json(entries: Sequence[LogEntry]) -> list[dict[str, Any]]:
    """Commits as Nessie JSON (commit meta)."""
    return [e.meta.to_json() for e in entries]


def print_log(console: Console, entries: Sequence[LogEntry]) -> None:
    """One line per commit: hash, time, author, message."""
    for entry in entries:
        meta = entry.meta
        when = (
            meta.commit_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            if (meta.commit_time)
            else "-"
        )
        line = Text()
        line.append(short(meta.hash), style="yellow")
        line.append(f"  {when}  ")
        line.append(meta.author or "-", style="cyan")
        line.append("  " + (meta.message.splitlines()[0] if meta.message else ""))
        if len(meta.parent_hashes) > 1:
            line.append("  (merge)", style="dim")
        console.print(line)


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


def _describe_content(content: Content) -> str:
    if isinstance(content, IcebergTable):
        return f"table snapshot {content.snapshot_id}"
    if isinstance(content, IcebergView):
        return f"view version {content.version_id}"
    return "namespace"


def print_diff(console: Console, entries: Sequence[DiffEntry]) -> None:
    """``+`` added, ``-`` removed, ``~`` changed keys."""
    if not entries:
        console.print("no differences")
        return
    for e in entries:
        if e.from_content is None and e.to_content is not None:
            console.print(Text(f"+ {e.key}  ({_describe_content(e.to_content)})", style="green"))
        elif e.to_content is None and e.from_content is not None:
            console.print(Text(f"- {e.key}  ({_describe_content(e.from_content)})", style="red"))
        elif e.from_content is not None and e.to_content is not None:
            console.print(
                Text(
                    f"~ {e.key}  ({_describe_content(e.from_content)} -> "
                    f"{_describe_content(e.to_content)})",
                    style="yellow",
                )
            )


# -- merge --------------------------------------------------------------------------------


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
            }
            for d in result.details
        ],
    }


def print_merge(console: Console, data: dict[str, Any]) -> None:
    """What a merge did, or would do."""
    keys = data["keys"]
    conflicts = [k for k in keys if k["conflict"]]
    source, target = data["source"], data["target"]
    if conflicts:
        console.print(f"Merging {source} into {target} conflicts on {len(conflicts)} key(s):")
    elif data["dry_run"]:
        console.print(f"Dry run: merging {source} into {target} would change {len(keys)} key(s)")
    elif data["applied"]:
        console.print(
            f"Merged {source} into {target}: {len(keys)} key(s), "
            f"{target} is now at {short(data['target_hash_after'])}"
        )
    else:
        console.print(f"Nothing to merge: {target} already has every change of {source}")
    for key in keys:
        conflict = key["conflict"]
        if conflict:
            console.print(Text(f"  ! {key['key']}: {conflict['message']}", style="red"))
        else:
            console.print(
                f"  {key['key']}"
                + ("" if key["behavior"] == "NORMAL" else f"  ({key['behavior'].lower()})")
            )


# -- tables -------------------------------------------------------------------------------


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


def print_entries(console: Console, entries: Sequence[Entry]) -> None:
    """A table of keys and their types."""
    if not entries:
        console.print("(no tables)")
        return
    table = RichTable(box=None, pad_edge=False, header_style="bold")
    table.add_column("NAME")
    table.add_column("TYPE")
    for e in entries:
        kind = "table" if e.type.value == "ICEBERG_TABLE" else "view"
        table.add_row(str(e.key), kind)
    console.print(table)


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


def print_table(console: Console, data: dict[str, Any]) -> None:
    """``table show`` as text."""
    console.print(Text(f"{data['name']}  (on {data['ref']})", style="bold"))
    console.print(f"metadata: {data['metadata_location']}")
    console.print(f"location: {data['location']}")
    console.print(f"format:   v{data['format_version']}  uuid {data['table_uuid']}")

    schema = RichTable(
        title=f"schema {data['schema']['schema_id']}",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for name in ("ID", "NAME", "TYPE", "REQUIRED", "DOC"):
        schema.add_column(name)
    for f in data["schema"]["fields"]:
        schema.add_row(
            str(f["id"]), f["name"], f["type"], "yes" if f["required"] else "no", f["doc"] or ""
        )
    console.print()
    console.print(schema)

    spec = data["partition_spec"]
    parts = ", ".join(f"{f['transform']}({f['source']})" for f in spec["fields"])
    console.print()
    console.print(f"partition spec {spec['spec_id']}: {parts or 'unpartitioned'}")
    order = data["sort_order"]
    sorts = ", ".join(f"{f['transform']}({f['source']}) {f['direction']}" for f in order["fields"])
    console.print(f"sort order {order['order_id']}: {sorts or 'unsorted'}")

    snap = data["current_snapshot"]
    if snap is None:
        console.print("current snapshot: none (empty table)")
    else:
        summary = snap["summary"]
        console.print(
            f"current snapshot: {snap['snapshot_id']}  {snap['timestamp']}  {snap['operation']}"
            f"  total-records={summary.get('total-records', '?')}"
            f"  total-data-files={summary.get('total-data-files', '?')}"
        )

    if data["properties"]:
        props = RichTable(
            title="properties", title_justify="left", box=None, pad_edge=False, show_header=False
        )
        props.add_column()
        props.add_column()
        for key, value in sorted(data["properties"].items()):
            props.add_row(key, value)
        console.print()
        console.print(props)


def history_json(table: Table) -> list[dict[str, Any]]:
    """Every snapshot in the table's metadata on this reference, newest first."""
    current = table.current_snapshot()
    current_id = current.snapshot_id if current else None
    snapshots = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    return [snapshot_json(s, current_id) for s in reversed(snapshots)]


def print_history(console: Console, snapshots: Sequence[dict[str, Any]]) -> None:
    """One row per snapshot, the current one marked with ``*``."""
    if not snapshots:
        console.print("(no snapshots)")
        return
    table = RichTable(box=None, pad_edge=False, header_style="bold")
    for name in ("", "SNAPSHOT", "PARENT", "TIME", "OPERATION", "ADDED", "TOTAL RECORDS"):
        table.add_column(name)
    for s in snapshots:
        table.add_row(
            "*" if s["current"] else "",
            str(s["snapshot_id"]),
            str(s["parent_snapshot_id"] or "-"),
            s["timestamp"],
            s["operation"] or "-",
            s["summary"].get("added-records", "0"),
            s["summary"].get("total-records", "?"),
        )
    console.print(table)
