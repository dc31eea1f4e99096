"""The contract of a source: :class:`Source`, and what it hands to the loader.

A source is a pydantic model (its fields are the ``sources:`` entry of
``pipeline.yaml``, ``extra="forbid"``) with one job: :meth:`Source.discover` lists the
files it offers for each bronze table, given what each table already holds
(:class:`TableState`). Folders offer their files; an HTTP source downloads the URL
and a SQL source extracts its rows to a Parquet file, both into a scratch folder.
Checksums, skipping, landing and loading are the loader's, the same for every source.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakehouse.ingest._fs import FileRef
from lakehouse.ingest.errors import SourceConfigError
from lakehouse.ingest.formats import Format, FormatOptions
from lakehouse.ingest.result import SkippedFile

#: Namespace of a table named without one (``orders`` → ``bronze.orders``).
BRONZE = "bronze"

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TABLE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def qualify_table(name: str) -> str:
    """``orders`` → ``bronze.orders``; ``bronze.orders`` stays (raises on a malformed name)."""
    text = name.strip()
    parts = text.split(".") if text else []
    if not parts or not all(_TABLE_PART.match(p) for p in parts):
        raise SourceConfigError(
            f"invalid table name {name!r}: use letters, digits and '_' (e.g. bronze.orders)"
        )
    return text if len(parts) > 1 else f"{BRONZE}.{text}"


def validate_source_name(name: str) -> str:
    """A source name is one path segment in ``raw/``: letters, digits, ``_ . -``."""
    if not _SOURCE_NAME.match(name):
        raise ValueError(
            f"invalid source name {name!r}: start with a letter or digit, then use letters, "
            "digits, '_', '.' or '-' (it names the folder raw/<source>/)"
        )
    return name


def source_name_from(text: str, default: str = "source") -> str:
    """A valid source name derived from a folder name, host name or table name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
    return cleaned[:128] if cleaned else default


@dataclass(frozen=True)
class Cursor:
    """The high-water mark of an incremental source: the largest cursor value loaded."""

    column: str
    value: Any

    def to_json(self) -> str:
        """Serialized form, kept in the bronze snapshot summary."""
        value = self.value
        encoded: Any
        if isinstance(value, bool):
            kind, encoded = "bool", value
        elif isinstance(value, int):
            kind, encoded = "int", value
        elif isinstance(value, float):
            kind, encoded = "float", value
        elif isinstance(value, Decimal):
            kind, encoded = "decimal", str(value)
        elif isinstance(value, dt.datetime):
            kind, encoded = "datetime", value.isoformat()
        elif isinstance(value, dt.date):
            kind, encoded = "date", value.isoformat()
        elif isinstance(value, str):
            kind, encoded = "string", value
        else:
            raise SourceConfigError(
                f"cursor column {self.column!r} has values of type {type(value).__name__}, "
                "which cannot be a cursor (use a number, a date, a timestamp or a string)"
            )
        return json.dumps({"column": self.column, "type": kind, "value": encoded})

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        kind, raw = data["type"], data["value"]
        value: Any
        if kind == "decimal":
            value = Decimal(raw)
        elif kind == "datetime":
            value = dt.datetime.fromisoformat(raw)
        elif kind == "date":
            value = dt.date.fromisoformat(raw)
        else:
            value = raw
        return cls(str(data["column"]), value)


class SchemaPolicy(BaseModel):
    """When a file may add columns to its bronze table (``schema_policy:`` of a source).

    A file that shares no column with the table is always refused. A file that brings
    columns the table lacks adds them only when ``new_columns`` is ``add`` **and** it
    matches the table: it has every one of ``key_columns`` when those are set, else at
    least ``min_shared_columns`` (a share, default 0.5: half) of the table's own columns
    (ingestion columns aside). Otherwise the batch is quarantined under ``raw/_rejected/``
    with the reason. Files that add no column are not concerned.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``add``: new columns may be added (schema evolution); ``reject``: never.
    new_columns: Literal["add", "reject"] = "add"
    #: Columns a file must have for its new columns to be added (default: none, use the share).
    key_columns: tuple[str, ...] = ()
    #: Without ``key_columns``: the share of the table's columns a file must have.
    min_shared_columns: float = Field(default=0.5, ge=0.0, le=1.0)


@dataclass(frozen=True)
class TableState:
    """What a bronze table on the target branch already holds, from its snapshot history."""

    table: str
    #: False when the table does not exist on the branch yet.
    exists: bool = False
    #: sha256 of every file loaded so far → the batch that loaded it.
    loaded: Mapping[str, str] = field(default_factory=dict)
    #: Every batch id loaded so far (any source), oldest first.
    batches: tuple[str, ...] = ()
    #: The latest cursor this source recorded (incremental SQL sources).
    cursor: Cursor | None = None
    #: sha256 of the files of this source's latest batch.
    last_batch: frozenset[str] = frozenset()
    #: The table's current columns and their Arrow types (hints for readers).
    columns: Mapping[str, pa.DataType] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceFile:
    """One file a source offers for a bronze table."""

    #: Name inside the batch folder; a relative POSIX path (``orders.csv``, ``2026/a.csv``).
    name: str
    #: Where it comes from, for people and the manifest: a path, a URL, a table or query.
    origin: str
    #: The bronze table it feeds (``bronze.orders``).
    table: str
    format: Format
    options: FormatOptions
    #: Where its bytes can be read now (the source folder, or the scratch folder).
    ref: FileRef
    #: The high-water mark after loading this file (incremental SQL sources).
    cursor: Cursor | None = None


@dataclass(frozen=True)
class Discovery:
    """What :meth:`Source.discover` found: files to consider, and files passed over."""

    files: Sequence[SourceFile] = ()
    #: Files the source itself passed over (unknown format …), by table.
    skipped: Mapping[str, Sequence[SkippedFile]] = field(default_factory=dict)


class Source(BaseModel, ABC):
    """A place data comes from. Subclasses add their fields and a ``type`` literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Names the source: landed files go to ``raw/<name>/<yyyy>/<mm>/<dd>/<batch_id>/``.
    name: str
    #: Which kind of source (``folder``, ``http``, ``sql``).
    type: str
    #: When a file may add columns to its bronze table (:class:`SchemaPolicy`).
    schema_policy: SchemaPolicy = Field(default_factory=SchemaPolicy)

    #: Which earlier files make an offered file "already loaded": any batch's (files
    #: and downloads), or only this source's latest batch (snapshots of a database,
    #: which may legitimately return to an earlier state).
    skip_loaded_from: ClassVar[Literal["any", "last"]] = "any"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return validate_source_name(value)

    @abstractmethod
    def targets(self) -> list[str]:
        """The bronze tables this source feeds, qualified (``bronze.orders``)."""

    @abstractmethod
    def discover(self, states: Mapping[str, TableState], workdir: Path) -> Discovery:
        """The files on offer now, per table; ``workdir`` is a scratch folder for downloads.

        Raises :class:`~lakehouse.ingest.errors.IngestError` subclasses when the source is
        missing or down.
        """

    def describe(self) -> str:
        """Where the source is, for people (no secrets)."""
        return self.name


__all__ = [
    "BRONZE",
    "Cursor",
    "Discovery",
    "SchemaPolicy",
    "Source",
    "SourceFile",
    "TableState",
    "qualify_table",
    "source_name_from",
    "validate_source_name",
]
