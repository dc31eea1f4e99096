"""What an ingestion did: :class:`IngestResult`, one per bronze table a source feeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakehouse.ingest.errors import BatchQuarantinedError


@dataclass(frozen=True)
class LandedFile:
    """A file landed unchanged in the ``raw`` bucket and loaded into bronze."""

    #: Name inside the batch folder (``orders.csv``, ``2026/orders.csv``).
    name: str
    #: Where it came from: a path, a URL, or the database table/query.
    origin: str
    #: Where it is in the ``raw`` bucket.
    uri: str
    size: int
    sha256: str
    #: Rows it added to the bronze table.
    rows: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "origin": self.origin,
            "uri": self.uri,
            "size": self.size,
            "sha256": self.sha256,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class SkippedFile:
    """A file the source offered that was not loaded, and why."""

    name: str
    origin: str
    reason: str
    #: Its checksum, when it was read.
    sha256: str | None = None
    #: The batch that loaded the same content before, if that is the reason.
    batch_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "origin": self.origin,
            "reason": self.reason,
            "sha256": self.sha256,
            "batch_id": self.batch_id,
        }


@dataclass(frozen=True)
class Quarantine:
    """A batch set aside under ``raw/_rejected/<source>/<batch_id>/``; bronze is untouched."""

    batch_id: str
    #: The batch's folder under ``raw/_rejected/`` (holds the files and ``reason.json``).
    location: str
    reasons: tuple[str, ...]
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "batch_id": self.batch_id,
            "location": self.location,
            "reasons": list(self.reasons),
            "files": list(self.files),
        }


@dataclass(frozen=True)
class IngestResult:
    """The outcome of ingesting one source into one bronze table on one branch.

    ``batch_id`` is ``None`` when there was nothing new to load (everything skipped).
    ``snapshot_id`` and ``commit_hash`` name the Iceberg snapshot and the catalog commit
    that added the batch; both are ``None`` when nothing was committed.
    """

    source: str
    table: str
    branch: str
    batch_id: str | None = None
    landed: tuple[LandedFile, ...] = ()
    rows_loaded: int = 0
    skipped: tuple[SkippedFile, ...] = ()
    quarantined: Quarantine | None = None
    snapshot_id: int | None = None
    commit_hash: str | None = None
    #: URI of the batch's landing manifest in the ``raw`` bucket.
    manifest: str | None = None
    #: The cursor value recorded with the batch (incremental SQL sources), as JSON.
    cursor: str | None = None
    #: Columns the batch added to the table's schema.
    added_columns: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """False when the batch was quarantined."""
        return self.quarantined is None

    @property
    def files_landed(self) -> int:
        """How many files were landed and loaded."""
        return len(self.landed)

    def raise_for_quarantine(self) -> IngestResult:
        """Raise :class:`BatchQuarantinedError` if the batch was quarantined, else return self."""
        q = self.quarantined
        if q is not None:
            raise BatchQuarantinedError(
                f"batch {q.batch_id} of source '{self.source}' was not loaded into "
                f"{self.table}: {'; '.join(q.reasons)} (files kept under {q.location})",
                source=self.source,
                file=q.files[0] if q.files else None,
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """JSON form (``lakehouse ingest … --output json``)."""
        return {
            "source": self.source,
            "table": self.table,
            "branch": self.branch,
            "batch_id": self.batch_id,
            "rows_loaded": self.rows_loaded,
            "landed": [f.to_json() for f in self.landed],
            "skipped": [f.to_json() for f in self.skipped],
            "quarantined": self.quarantined.to_json() if self.quarantined else None,
            "snapshot_id": self.snapshot_id,
            "commit_hash": self.commit_hash,
            "manifest": self.manifest,
            "cursor": self.cursor,
            "added_columns": list(self.added_columns),
        }


__all__ = ["IngestResult", "LandedFile", "Quarantine", "SkippedFile"]
