"""A folder of files (local, or any URI pyarrow can list): ``type: folder``."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lakehouse.errors import StorageError
from lakehouse.ingest._fs import FileRef, resolve
from lakehouse.ingest.errors import SourceNotFoundError, SourceUnavailableError
from lakehouse.ingest.formats import Format, FormatOptions, infer_format
from lakehouse.ingest.result import SkippedFile
from lakehouse.ingest.sources.base import (
    Discovery,
    Source,
    SourceFile,
    TableState,
    qualify_table,
)


class TableMapping(BaseModel):
    """Which files of a folder feed which bronze table: ``{table: orders, pattern: "o*.csv"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str
    #: Glob on the file name (or on the relative path when it contains ``/``).
    pattern: str = "*"

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        return qualify_table(value)


class FolderSource(Source):
    """Files in a folder: CSV, JSON Lines or Parquet.

    Every run offers every matching file; the loader skips those whose content (sha256)
    the bronze table already holds, so new files are picked up and a file rewritten with
    new content is loaded again. Names starting with ``.`` or ``_`` (``_SUCCESS``,
    editor swap files) are ignored. Give either ``table`` (+ ``pattern``) or ``tables``.
    """

    type: Literal["folder"] = "folder"
    #: The folder: a local path or a URI (``s3://bucket/exports``).
    path: str
    #: File format; default: from each file's suffix (``.csv``, ``.jsonl``, ``.parquet``).
    format: Format | None = None
    options: FormatOptions = Field(default_factory=FormatOptions)
    #: The one bronze table all matching files feed.
    table: str | None = None
    #: Glob selecting the files for ``table``.
    pattern: str = "*"
    #: Several tables, each with its own pattern (a file goes to the first that matches).
    tables: tuple[TableMapping, ...] | None = None
    #: Look into sub-folders too.
    recursive: bool = False

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str | None) -> str | None:
        return qualify_table(value) if value is not None else None

    @model_validator(mode="after")
    def _one_target(self) -> FolderSource:
        if (self.table is None) == (self.tables is None):
            raise ValueError("give either 'table' (and 'pattern') or 'tables', not both or none")
        if self.tables is not None and not self.tables:
            raise ValueError("'tables' is empty")
        return self

    def mappings(self) -> list[TableMapping]:
        """The table mappings, with ``table``/``pattern`` as a single mapping."""
        if self.tables is not None:
            return list(self.tables)
        assert self.table is not None
        return [TableMapping(table=self.table, pattern=self.pattern)]

    def targets(self) -> list[str]:
        """The bronze tables this folder feeds, in mapping order, without repeats."""
        return list(dict.fromkeys(m.table for m in self.mappings()))

    def describe(self) -> str:
        """The folder's path."""
        return self.path

    def discover(self, states: Mapping[str, TableState], workdir: Path) -> Discovery:
        """Every matching file, sorted by relative path; unknown formats are passed over."""
        try:
            folder = resolve(self.path)
            info = folder.info()
        except (StorageError, OSError) as exc:
            raise SourceUnavailableError(
                f"cannot open folder {self.path} of source '{self.name}': {exc}", source=self.name
            ) from exc
        if info.type != pafs.FileType.Directory:
            what = "does not exist" if info.type == pafs.FileType.NotFound else "is not a folder"
            raise SourceNotFoundError(
                f"folder {self.path} of source '{self.name}' {what}", source=self.name
            )
        try:
            infos = folder.fs.get_file_info(
                pafs.FileSelector(folder.path, recursive=self.recursive)
            )
        except OSError as exc:
            raise SourceUnavailableError(
                f"cannot list folder {self.path} of source '{self.name}': {exc}", source=self.name
            ) from exc

        base = folder.path.rstrip("/") + "/"
        mappings = self.mappings()
        files: list[SourceFile] = []
        skipped: dict[str, list[SkippedFile]] = {}
        entries = sorted((i.path[len(base) :], i) for i in infos if i.type == pafs.FileType.File)
        for relative, entry in entries:
            if any(part.startswith((".", "_")) for part in relative.split("/")):
                continue
            table = _match(relative, mappings)
            if table is None:
                continue
            ref = FileRef(folder.fs, entry.path, folder.child(relative).uri)
            fmt = self.format or infer_format(relative)
            if fmt is None:
                skipped.setdefault(table, []).append(
                    SkippedFile(
                        relative,
                        ref.uri,
                        "unknown format: not .csv, .jsonl or .parquet (set the source's format)",
                    )
                )
                continue
            files.append(SourceFile(relative, ref.uri, table, fmt, self.options, ref))
        return Discovery(files, skipped)


def _match(relative: str, mappings: Sequence[TableMapping]) -> str | None:
    name = posixpath.basename(relative)
    for mapping in mappings:
        subject = relative if "/" in mapping.pattern else name
        if fnmatch.fnmatchcase(subject, mapping.pattern):
            return mapping.table
    return None


__all__ = ["FolderSource", "TableMapping"]
