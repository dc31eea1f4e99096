"""Records of batch work — pipeline runs, maintenance, backups — kept in the warehouse.

A command that runs and ends (``lakehouse run``, ``maintenance run``, ``backup create``)
leaves one small JSON file behind, so that the console and ``lakehouse runs`` can show
what happened after the terminal that ran it is gone::

    <iceberg-metadata>/_records/<kind>/<id>.json

    {"format_version": 1, "kind": "pipeline-run", "id": "20260101T120000Z-3f9a1c",
     "recorded_at": "2026-01-01T12:01:02+00:00", "data": {...}}

``data`` is the command's own ``--output json`` result. Ids sort by time (they start with
a UTC timestamp), so the newest record is the last name. Records live in the warehouse,
not the catalog, so they are shared by every process that shares the warehouse (the CLI,
Airflow, the server); the garbage collector never deletes them (they are not table files).
A record that cannot be read is skipped with a warning, never an error for the reader.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from lakehouse.errors import InvalidInputError, StorageError
from lakehouse.storage.objects import Location, Storage
from lakehouse.storage.zones import METADATA_BUCKET, Warehouse

logger = logging.getLogger(__name__)

#: Folder under the metadata bucket holding records; excluded from garbage collection.
RECORDS_FOLDER = "_records"
FORMAT_VERSION = 1
RecordKind = Literal["pipeline-run", "maintenance", "backup", "backup-verify"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Records:
    """The records of one warehouse."""

    def __init__(self, warehouse: Warehouse, properties: Mapping[str, str] | None = None) -> None:
        self._storage = Storage(properties)
        self._root = self._storage.locate(warehouse.bucket_uri(METADATA_BUCKET)).child(
            RECORDS_FOLDER
        )

    def _location(self, kind: RecordKind, record_id: str) -> Location:
        if not _ID.match(record_id):
            raise InvalidInputError(f"invalid record id {record_id!r}")
        return self._root.child(kind, f"{record_id}.json")

    def write(self, kind: RecordKind, record_id: str, data: Mapping[str, Any]) -> str:
        """Store ``data`` as record ``record_id`` of ``kind``; returns its URI."""
        loc = self._location(kind, record_id)
        body = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "id": record_id,
            "recorded_at": datetime.now(UTC).isoformat(),
            "data": dict(data),
        }
        self._storage.write_bytes(loc, json.dumps(body, default=str).encode("utf-8"))
        return loc.uri

    def read(self, kind: RecordKind, record_id: str) -> dict[str, Any] | None:
        """The ``data`` of one record, ``None`` when there is none (or it is unreadable)."""
        loc = self._location(kind, record_id)
        if not self._storage.exists(loc):
            return None
        return self._load(loc)

    def ids(self, kind: RecordKind) -> list[str]:
        """Ids of every record of ``kind``, newest first."""
        folder = self._root.child(kind)
        names = [
            f.uri.rsplit("/", 1)[-1].removesuffix(".json")
            for f in self._storage.list_files(folder)
            if f.uri.endswith(".json")
        ]
        return sorted(names, reverse=True)

    def latest(self, kind: RecordKind, limit: int = 50) -> list[dict[str, Any]]:
        """The ``data`` of the newest ``limit`` readable records of ``kind``, newest first."""
        out: list[dict[str, Any]] = []
        for record_id in self.ids(kind):
            if len(out) >= limit:
                break
            data = self._load(self._location(kind, record_id))
            if data is not None:
                out.append(data)
        return out

    def _load(self, loc: Location) -> dict[str, Any] | None:
        try:
            body = json.loads(self._storage.read_bytes(loc))
        except (StorageError, ValueError) as exc:
            logger.warning("skipping unreadable record %s: %s", loc.uri, exc)
            return None
        if not isinstance(body, dict) or body.get("format_version") != FORMAT_VERSION:
            logger.warning("skipping record %s: unknown format", loc.uri)
            return None
        data = body.get("data")
        return data if isinstance(data, dict) else None


def save_record(
    warehouse: Warehouse,
    properties: Mapping[str, str],
    kind: RecordKind,
    record_id: str,
    data: Mapping[str, Any],
) -> str | None:
    """Write a record; a failure is logged, never raised (the work itself is done)."""
    try:
        return Records(warehouse, properties).write(kind, record_id, data)
    except Exception as exc:  # a record is a courtesy: never fail the command over it
        logger.warning("could not write the %s record %s: %s", kind, record_id, exc)
        return None


__all__ = ["FORMAT_VERSION", "RECORDS_FOLDER", "RecordKind", "Records", "save_record"]
