"""Turning library objects into JSON-able dicts and into text for people.

Every command builds one JSON-able value (with :mod:`lakehouse.views`, which the web
console uses too) and prints it either as JSON or as text, so both outputs always carry
the same information. Imported by command functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
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
    Reference,
)
from lakehouse.views import SHORT as SHORT
from lakehouse.views import content_json as content_json
from lakehouse.views import diff_json as diff_json
from lakehouse.views import entries_json as entries_json
from lakehouse.views import history_json as history_json
from lakehouse.views import log_json as log_json
from lakehouse.views import merge_json as merge_json
from lakehouse.views import references_json as references_json
from lakehouse.views import short as short
from lakehouse.views import snapshot_json as snapshot_json
from lakehouse.views import table_json as table_json

if TYPE_CHECKING:
    from rich.console import Console


# -- references ---------------------------------------------------------------------------


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
            behavior = "" if key["behavior"] == "NORMAL" else f"  ({key['behavior'].lower()})"
            resolution = f"  {key['resolution']}" if key.get("resolution") else ""
            console.print(f"  {key['key']}{behavior}{resolution}")


# -- tables -------------------------------------------------------------------------------


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
