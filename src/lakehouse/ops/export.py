"""The catalog export file: a versioned, self-describing dump of the versioned catalog.

A gzip-compressed JSON-lines file::

    {"format": "lakehouse-catalog-export", "format_version": 2, "store": "sql", ...}   header
    {"kind": "meta", ...} {"kind": "repository_config", ...} {"kind": "reference", ...}
    {"kind": "commit", ...} {"kind": "node", ...}
    {"kind": "end", "records": N}                                                      footer

The records are those of :meth:`~lakehouse.catalog.store.VersionStore.export_rows`
(every reference of a pinned list, every commit reachable from them along all parents,
every node of their trees); importing re-computes every commit and node hash. The
footer makes a truncated file detectable on its own, before anything is imported;
backups additionally record the file's sha256.

Format versions: 1 has no ``repository_config`` records; 2 (catalog schema 2) adds them
(Nessie's repository config objects, e.g. the garbage collector's defaults). This
Lakehouse reads both; an older one refuses a version 2 file before importing anything.
Each reference's reflog is not exported (see ``SqlStore.export_rows``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.catalog.model import Reference
from lakehouse.catalog.store import VersionStore
from lakehouse.ops.errors import BackupCorruptError, BackupFormatError

EXPORT_FORMAT = "lakehouse-catalog-export"
#: Version of the export file format written by this Lakehouse (and the newest it reads).
EXPORT_FORMAT_VERSION = 2


@dataclass(frozen=True)
class ExportInfo:
    """What was written: the file's size and sha256, and how many records of each kind."""

    size: int
    sha256: str
    records: int
    counts: dict[str, int]


def write_export(
    store: VersionStore, references: Sequence[Reference], path: Path, *, created_at: datetime
) -> ExportInfo:
    """Export ``store`` at the pinned ``references`` into the local file ``path``."""
    from lakehouse.catalog.sql_store import SCHEMA_VERSION

    counts: dict[str, int] = {}
    records = 0
    header = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "store": "sql",
        "schema_version": SCHEMA_VERSION,
        "default_branch": store.default_branch,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "references": len(references),
    }
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        out.write(_line(header))
        for row in store.export_rows(references):
            out.write(_line(row))
            kind = str(row.get("kind"))
            counts[kind] = counts.get(kind, 0) + 1
            records += 1
        out.write(_line({"kind": "end", "records": records}))
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return ExportInfo(size=size, sha256=digest.hexdigest(), records=records, counts=counts)


def read_header(path: Path, *, name: str = "catalog export") -> dict[str, Any]:
    """The header of an export file, after checking its format and version."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            first = stream.readline()
        header = json.loads(first)
    except (OSError, EOFError, ValueError) as exc:
        raise BackupCorruptError(f"{name} is not readable: {exc}", [name]) from exc
    _check_header(header, name)
    return dict(header)


def read_records(path: Path, *, name: str = "catalog export") -> Iterator[dict[str, Any]]:
    """Every record of an export file; raises at the end if the footer is missing or wrong.

    Meant to be fed straight into ``import_rows``, which runs in one transaction: an
    error raised here, at any point, rolls the whole import back.
    """
    records = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            header = json.loads(stream.readline())
            _check_header(header, name)
            for line in stream:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise BackupCorruptError(f"{name}: record {records + 1} is not an object")
                if record.get("kind") == "end":
                    if record.get("records") != records:
                        raise BackupCorruptError(
                            f"{name}: the footer counts {record.get('records')} records, "
                            f"the file holds {records}",
                            [name],
                        )
                    if stream.readline():
                        raise BackupCorruptError(f"{name}: data after the footer", [name])
                    return
                records += 1
                yield record
    except (OSError, EOFError, ValueError) as exc:
        if isinstance(exc, BackupFormatError):
            raise
        raise BackupCorruptError(f"{name} is truncated or damaged: {exc}", [name]) from exc
    raise BackupCorruptError(f"{name} is truncated: it has no footer", [name])


def _check_header(header: Any, name: str) -> None:
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise BackupFormatError(f"{name} is not a Lakehouse catalog export")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BackupFormatError(f"{name} has an invalid format_version {version!r}")
    if version > EXPORT_FORMAT_VERSION:
        raise BackupFormatError(
            f"{name} has format_version {version}, newer than this Lakehouse reads "
            f"({EXPORT_FORMAT_VERSION}); upgrade Lakehouse to restore it"
        )
    if header.get("store") != "sql":
        raise BackupFormatError(f"{name} was written by an unknown store {header.get('store')!r}")


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "ExportInfo",
    "read_header",
    "read_records",
    "write_export",
]
