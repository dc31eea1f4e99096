"""The ``raw`` zone: batches landed unchanged, with a manifest; rejected batches apart.

Layout inside the ``raw`` bucket::

    <source>/<yyyy>/<mm>/<dd>/<batch_id>/<file>...      the files, byte for byte
    <source>/<yyyy>/<mm>/<dd>/<batch_id>/_manifest.json  what was landed (written last)
    _rejected/<source>/<batch_id>/<file>...              a quarantined batch
    _rejected/<source>/<batch_id>/reason.json            why it was quarantined

Nothing here is ever rewritten: batch ids are unique and every write refuses an
existing file. A batch folder without ``_manifest.json`` was interrupted while landing
and never loaded. The manifest is a record for people and tools; whether a file was
loaded is decided only by the bronze table's snapshot history.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse.ingest._fs import FileRef, write_new
from lakehouse.ingest.errors import SourceChangedError
from lakehouse.ingest.sources.base import Cursor, SourceFile

#: Version of the manifest and reason formats.
FORMAT_VERSION = 1
MANIFEST = "_manifest.json"
REJECTED = "_rejected"
REASON = "reason.json"


def new_batch_id(at: dt.datetime) -> str:
    """A unique, time-ordered batch id: ``20260115T101500Z-1a2b3c4d``."""
    return f"{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def safe_name(name: str) -> str:
    """A relative file name that stays inside its batch folder."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "file"


@dataclass(frozen=True)
class Checked:
    """A source file with the size and checksum it had when it was read."""

    file: SourceFile
    size: int
    sha256: str

    @property
    def name(self) -> str:
        """Its name inside the batch folder."""
        return safe_name(self.file.name)


class Landing:
    """Writes batches into the ``raw`` bucket (``raw`` is a :class:`FileRef` of its root)."""

    def __init__(self, raw: FileRef) -> None:
        self.raw = raw

    def batch_folder(self, source: str, batch_id: str, at: dt.datetime) -> FileRef:
        """``<source>/<yyyy>/<mm>/<dd>/<batch_id>`` of a batch landed at ``at``."""
        day = at.astimezone(dt.UTC)
        return self.raw.child(source, f"{day:%Y}", f"{day:%m}", f"{day:%d}", batch_id)

    def rejected_folder(self, source: str, batch_id: str) -> FileRef:
        """``_rejected/<source>/<batch_id>``."""
        return self.raw.child(REJECTED, source, batch_id)

    def copy(self, checked: Checked, folder: FileRef) -> FileRef:
        """Copy one file into ``folder`` byte for byte; it must still have its checksum."""
        target = folder.child(checked.name)
        size, sha256 = write_new(target, checked.file.ref.read_chunks())
        if sha256 != checked.sha256 or size != checked.size:
            raise SourceChangedError(
                f"{checked.file.origin} changed while it was being ingested "
                f"(sha256 {checked.sha256[:12]} → {sha256[:12]}); run the ingestion again",
                file=checked.file.origin,
            )
        return target

    def land(
        self,
        files: Sequence[Checked],
        folder: FileRef,
        *,
        source: str,
        source_type: str,
        table: str,
        batch_id: str,
        at: dt.datetime,
        branch: str,
        rows: Mapping[str, int],
        cursor: Cursor | None,
    ) -> FileRef:
        """Copy every file into ``folder``, then write the manifest; return the manifest."""
        entries: list[dict[str, Any]] = []
        for checked in files:
            target = self.copy(checked, folder)
            entries.append(
                {
                    "name": checked.name,
                    "uri": target.uri,
                    "original": checked.file.origin,
                    "format": checked.file.format,
                    "size": checked.size,
                    "sha256": checked.sha256,
                    "rows": rows.get(checked.name),
                }
            )
        manifest = {
            "format_version": FORMAT_VERSION,
            "batch_id": batch_id,
            "source": source,
            "source_type": source_type,
            "table": table,
            "branch": branch,
            "landed_at": at.astimezone(dt.UTC).isoformat(),
            "cursor": json.loads(cursor.to_json()) if cursor is not None else None,
            "files": entries,
        }
        target = folder.child(MANIFEST)
        write_new(target, _json(manifest))
        return target

    def quarantine(
        self,
        files: Sequence[Checked],
        *,
        source: str,
        table: str,
        batch_id: str,
        at: dt.datetime,
        branch: str,
        reasons: Sequence[str],
    ) -> FileRef:
        """Copy a rejected batch to ``_rejected/<source>/<batch_id>/`` with ``reason.json``."""
        folder = self.rejected_folder(source, batch_id)
        entries = []
        for checked in files:
            target = self.copy(checked, folder)
            entries.append(
                {
                    "name": checked.name,
                    "uri": target.uri,
                    "original": checked.file.origin,
                    "size": checked.size,
                    "sha256": checked.sha256,
                }
            )
        reason = {
            "format_version": FORMAT_VERSION,
            "batch_id": batch_id,
            "source": source,
            "table": table,
            "branch": branch,
            "rejected_at": at.astimezone(dt.UTC).isoformat(),
            "reasons": list(reasons),
            "files": entries,
        }
        write_new(folder.child(REASON), _json(reason))
        return folder


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")


__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "REASON",
    "REJECTED",
    "Checked",
    "Landing",
    "new_batch_id",
    "safe_name",
]
