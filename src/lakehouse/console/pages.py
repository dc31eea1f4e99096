"""The data of each console page: JSON-able dicts built with the library and its views.

Each function returns what the page shows and what its JSON twin (``?format=json``)
returns. They call the same library functions as the ``lakehouse`` command and shape
results with :mod:`lakehouse.views`, so a page and ``--output json`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.model import Branch, ContentKey
from lakehouse.catalog.refcounts import ReferenceCounter
from lakehouse.storage.records import Records
from lakehouse.views import diff_json, history_json, log_json, merge_json, table_json

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import FileScanTask, Table

    from lakehouse.client import Lakehouse

#: Commits of a merged branch the history page draws under its merge commit.
MERGED_COMMITS = 50
#: Rows the SQL box returns at most unless asked for fewer.
SQL_ROW_LIMIT = 1000


def references_page(lh: Lakehouse, visible: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Branches and tags with heads, ahead/behind the default branch, last commit.

    With ``visible``, only the references it accepts (by name) are listed.
    """
    counter = ReferenceCounter(lh.store)
    out: list[dict[str, Any]] = []
    for ref in lh.references():
        if visible is not None and not visible(ref.name):
            continue
        counts = counter(ref)
        head = lh.log("@" + ref.hash, limit=1)
        item = ref.to_json()
        item.update(
            {
                "ahead": counts.ahead,
                "behind": counts.behind,
                "commits": counts.total,
                "last_commit": head[0].meta.to_json() if head else None,
                "group": ref.name.rsplit("/", 1)[0] if "/" in ref.name else "",
            }
        )
        out.append(item)
    return {"default_branch": lh.default_branch, "references": out}


def history_page(lh: Lakehouse, ref: str | None, limit: int = 100) -> dict[str, Any]:
    """The commit log of ``ref`` (``lakehouse log -o json`` plus operations)."""
    entries = lh.log(ref, limit, operations=True)
    commits = log_json(entries)
    for commit, entry in zip(commits, entries, strict=True):
        commit["operations"] = [
            {"type": type(op).__name__.upper(), "key": str(op.key)} for op in entry.operations or ()
        ]
    on_line = {e.hash for e in entries}
    for commit in commits:
        parents = commit["parentCommitHashes"]
        commit["merged"] = _side_commits(lh, parents[1], on_line) if len(parents) > 1 else []
    return {"ref": ref or lh.default_ref, "commits": commits}


def _side_commits(
    lh: Lakehouse, head: str, stop: set[str], limit: int = MERGED_COMMITS
) -> list[dict[str, Any]]:
    """The commits a merge brought in: the merged head's first parents until ``stop``."""
    out: list[dict[str, Any]] = []
    for entry in lh.log("@" + head, limit=limit + 1):
        if entry.hash in stop or len(out) >= limit:
            break
        meta = entry.meta
        out.append({"hash": entry.hash, "message": meta.message.split("\n")[0]})
    return out


def commit_page(lh: Lakehouse, hash_: str) -> dict[str, Any]:
    """One commit: its meta, operations and rows added/deleted per table."""
    entry = lh.log("@" + hash_, limit=1, operations=True)[0]
    meta = entry.meta.to_json()
    parents = entry.meta.parent_hashes
    tables = (
        [c.to_json() for c in lh.diff_rows("@" + parents[0], "@" + entry.hash)] if parents else []
    )
    return {
        "commit": meta,
        "operations": [
            {"type": type(op).__name__.upper(), "key": str(op.key)} for op in entry.operations or ()
        ],
        "tables": tables,
    }


def compare_page(lh: Lakehouse, base: str, head: str) -> dict[str, Any]:
    """``lakehouse diff BASE HEAD --rows`` plus a dry-run merge of HEAD into BASE."""
    merge: dict[str, Any] | None = None
    try:
        target = lh.store.get_reference(base)
    except Exception:
        target = None
    if isinstance(target, Branch):
        result = lh.merge(head, base, dry_run=True, raise_on_conflict=False)
        merge = merge_json(result, source=head, dry_run=True)
    return {
        "base": base,
        "head": head,
        "diff": diff_json(lh.diff(base, head)),
        "rows": [c.to_json() for c in lh.diff_rows(base, head)],
        "merge": merge,
        "conflicts": [k["key"] for k in (merge or {}).get("keys", []) if k["conflict"]],
    }


def table_page(lh: Lakehouse, name: str, ref: str | None, sample: int = 20) -> dict[str, Any]:
    """``table show`` and ``table history`` plus data files and sample rows."""
    from lakehouse.query.output import json_rows

    at = ref or lh.default_ref
    table = lh.table(name, at)
    tasks = list(table.scan().plan_files()) if table.current_snapshot() is not None else []
    files = [
        {
            "path": task.file.file_path,
            "records": task.file.record_count,
            "bytes": task.file.file_size_in_bytes,
            "deletes": len(task.delete_files),
        }
        for task in tasks
    ]
    rows = sample_rows(table, tasks, sample) if tasks else None
    return {
        **table_json(table, at),
        "snapshots": history_json(table),
        "files": files,
        "sample": json_rows(rows) if rows is not None else [],
    }


def sample_rows(table: Table, tasks: Sequence[FileScanTask], limit: int) -> pa.Table:
    """Up to ``limit`` live rows of ``table`` read from as few of its planned files as needed.

    Files without delete files come first, and a file's delete files are read only when
    the file itself is: a sample costs a file or two, not the table's deletes (a full
    ``scan(limit=...)`` reads every delete file of the table before its first row).
    """
    import pyarrow as pa
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    schema = table.schema()
    parts: list[pa.Table] = []
    found = 0
    for task in sorted(tasks, key=lambda t: len(t.delete_files)):
        if found >= limit:
            break
        scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue(), limit=limit - found)
        part = scan.to_table([task])
        parts.append(part)
        found += part.num_rows
    if not parts:
        return schema.as_arrow().empty_table()
    return pa.concat_tables(parts).slice(0, limit)


def runs_page(lh: Lakehouse, limit: int = 50) -> dict[str, Any]:
    """The newest pipeline runs, as ``lakehouse run -o json`` reported each."""
    records = Records(lh.warehouse, lh.settings.fileio_properties())
    return {"runs": records.latest("pipeline-run", limit)}


def run_page(lh: Lakehouse, run_id: str) -> dict[str, Any] | None:
    """One run's report (``None`` when there is no record of it)."""
    return Records(lh.warehouse, lh.settings.fileio_properties()).read("pipeline-run", run_id)


def operations_page(lh: Lakehouse) -> dict[str, Any]:
    """Last maintenance, last backup and its verification (with ages), the DR pause state."""
    from lakehouse.ops.dr import pause_state

    records = Records(lh.warehouse, lh.settings.fileio_properties())
    now = datetime.now(UTC)

    def newest(kind: Any) -> dict[str, Any] | None:
        found = records.latest(kind, 1)
        if not found:
            return None
        item = found[0]
        stamp = item.get("backup_created_at") or item.get("recorded_at") or item.get("started")
        if isinstance(stamp, str):
            item["age_seconds"] = round((now - datetime.fromisoformat(stamp)).total_seconds())
        return item

    return {
        "maintenance": newest("maintenance"),
        "backup": newest("backup"),
        "backup_verified": newest("backup-verify"),
        "dr": pause_state(lh.store).to_json(),
    }


def sql_page(
    lh: Lakehouse,
    query: str,
    ref: str | None,
    limit: int = SQL_ROW_LIMIT,
    *,
    authorize: Callable[[Sequence[ContentKey]], None] | None = None,
) -> dict[str, Any]:
    """``lakehouse sql QUERY --ref REF -o json``, cut to ``limit`` rows.

    ``authorize`` is called with the keys of the tables the query reads once it is
    planned, before any data is read; it raises to refuse the query.
    """
    from lakehouse.query import session
    from lakehouse.query.output import json_rows

    querying = session(lh, ref)
    plan = querying.plan(query)
    if authorize is not None:
        authorize([ContentKey(tuple(name.split("."))) for name in plan.tables])
    result = querying.run(plan)
    return {
        "query": query,
        "ref": ref or lh.default_ref,
        "columns": result.column_names,
        "total_rows": result.num_rows,
        "rows": json_rows(result.slice(0, limit)),
        "truncated": result.num_rows > limit,
    }


__all__ = [
    "SQL_ROW_LIMIT",
    "commit_page",
    "compare_page",
    "history_page",
    "operations_page",
    "references_page",
    "run_page",
    "runs_page",
    "sample_rows",
    "sql_page",
    "table_page",
]
