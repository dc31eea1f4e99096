"""Ingestion: a source's new files → landed in ``raw`` → appended to ``bronze``, once.

:func:`ingest` runs one source against one branch:

1. read what each bronze table already holds from its snapshot history on the branch
   (:func:`lakehouse.ingest.bronze.read_state`);
2. ask the source for its files (:meth:`Source.discover`); checksum each one and pass
   over those the table already holds;
3. open every new file with pyarrow and check its columns (the header, i.e. the first
   block): reserved names, a CSV header that looks read with the wrong delimiter
   (:func:`lakehouse.ingest.formats.wrong_delimiter`), a file that shares no column with
   the table or adds columns its source's schema policy does not allow
   (:func:`lakehouse.ingest.bronze.shape_problem`), files that disagree on types;
4. fit the batch's schema to the table (:func:`lakehouse.ingest.bronze.fit`) and **stream
   the rows** into data files of an uncommitted transaction: each file is read a block
   (``ingest.block_bytes``) or row group at a time, its ingestion columns added, cast to
   the table's types and written by a rolling Parquet writer
   (:mod:`lakehouse.tables.streaming`), so memory holds one block and one row group,
   never a file. Every table's rows are written before anything is landed or committed:
   unreadable, empty or wrongly encoded input raises
   :class:`~lakehouse.ingest.errors.BadInputError` here, **before anything is landed or
   committed, for every table of the source** (the written files are deleted). A CSV
   file whose later block does not fit the types its first block gave is read whole
   instead (pyarrow's streaming reader infers types from the first block only);
5. a batch that failed a check, or has NULLs in a required column, is copied to
   ``raw/_rejected/<source>/<batch_id>/`` with ``reason.json`` (its written files
   deleted) and the table is left alone;
6. otherwise land the files in ``raw/<source>/<yyyy>/<mm>/<dd>/<batch_id>/`` with a
   manifest, and commit the written files with the snapshot summary in one catalog
   commit (schema evolution included). A commit that lost a race with another writer
   re-reads the table, drops files loaded meanwhile and writes the rows again.

A source feeding several tables gives one batch, one commit and one
:class:`~lakehouse.ingest.result.IngestResult` per table.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.control import ensure_not_paused
from lakehouse.ingest import bronze
from lakehouse.ingest._fs import FileRef, hash_file, resolve, storage_properties
from lakehouse.ingest.errors import BadInputError, IngestError, SourceChangedError
from lakehouse.ingest.formats import (
    FileBatches,
    ReadWholeFile,
    encoding_checker,
    open_file,
    wrong_delimiter,
)
from lakehouse.ingest.landing import Checked, Landing, new_batch_id
from lakehouse.ingest.result import IngestResult, LandedFile, Quarantine, SkippedFile
from lakehouse.ingest.sources.base import Cursor, Discovery, SchemaPolicy, Source, TableState
from lakehouse.observability import record_ingest

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table, Transaction

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: ``progress(stage, item, done, total)``: stages ``check``, ``read``, ``land``, ``load``.
ProgressCallback = Callable[[str, str, int, int], None]

#: How often a commit that lost a race with another writer of the table is redone.
COMMIT_ATTEMPTS = 5


def _no_progress(stage: str, item: str, done: int, total: int) -> None:
    return None


@dataclass
class _Written:
    """A batch's rows written as data files for a transaction that has not committed."""

    tx: Transaction
    files: list[DataFile]
    #: Columns the batch adds to an existing table (``()`` for a new table).
    added: tuple[str, ...] = ()


@dataclass
class _Batch:
    """One table's share of a run, between reading and committing."""

    table: str
    state: TableState
    existing: Table | None
    skipped: list[SkippedFile] = field(default_factory=list)
    files: list[Checked] = field(default_factory=list)
    batch_id: str | None = None
    folder: FileRef | None = None
    #: The files' columns and types, unified (without the ingestion columns).
    schema: pa.Schema | None = None
    #: Read files whole (a CSV file whose later blocks do not fit its first block's types).
    whole: bool = False
    written: _Written | None = None
    rows: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    cursor: Cursor | None = None


def ingest(
    lakehouse: Lakehouse,
    source: Source,
    *,
    branch: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[IngestResult]:
    """Ingest what is new at ``source`` into its bronze table(s) on ``branch``.

    ``branch`` defaults to the lakehouse's default reference (``NESSIE_REF``, else
    ``main``) and must be a branch. Returns one :class:`IngestResult` per bronze table
    the source feeds, in the source's order. Raises an
    :class:`~lakehouse.ingest.errors.IngestError` subclass (nothing committed) when the
    source is missing or down or a file cannot be read; a batch that does not fit its
    table is not an error but a result with ``quarantined`` set.
    """

    ensure_not_paused(lakehouse, "ingestion")
    report = progress or _no_progress
    target = branch or lakehouse.default_ref
    target = lakehouse.store.writable_branch(target).name
    catalog = lakehouse.catalog(target)
    properties = lakehouse.settings.fileio_properties()
    raw = resolve(lakehouse.warehouse.bucket_uri("raw"), properties)
    landing = Landing(raw)
    at = dt.datetime.now(dt.UTC)
    reading = _Reading(
        lakehouse.settings.ingest.block_bytes, report, source.name, source.schema_policy
    )

    tables = source.targets()
    existing = {name: bronze.load_table(catalog, name) for name in tables}
    states = {name: bronze.read_state(existing[name], name, source.name) for name in tables}
    with (
        storage_properties(properties),  # source folders on s3:// use the warehouse's S3
        tempfile.TemporaryDirectory(prefix="lakehouse-ingest-") as scratch,
    ):
        discovery = source.discover(states, Path(scratch))
        batches = [
            _read_batch(source, name, states[name], existing[name], discovery, landing, at, reading)
            for name in tables
        ]
        try:  # every table's rows are written before any commit: bad input commits nothing
            for batch in batches:
                _write_batch(catalog, batch, at, reading)
            results = [
                _load_batch(lakehouse, catalog, source, target, batch, landing, at, reading)
                for batch in batches
            ]
        finally:
            for batch in batches:  # written but never committed (bad input, quarantine)
                _discard(batch)
    for r in results:
        if r.batch_id is not None:  # a batch loaded or quarantined (not: nothing new)
            size = sum(f.size for f in r.landed)
            quarantined = not r.ok
            record_ingest(
                r.source,
                r.table,
                rows=r.rows_loaded,
                files=r.files_landed,
                size=size,
                quarantined=quarantined,
            )
    return results


@dataclass(frozen=True)
class _Reading:
    """How files are read in a run."""

    block_bytes: int
    report: ProgressCallback
    source: str
    policy: SchemaPolicy

    def open(self, batch: _Batch, checked: Checked) -> FileBatches:
        file = checked.file
        return open_file(
            file.ref,
            file.format,
            file.options,
            name=file.name,
            hints=batch.state.columns,
            source=self.source,
            block_bytes=self.block_bytes,
            whole=batch.whole,
        )


def _known(source: Source, state: TableState) -> Mapping[str, str]:
    if source.skip_loaded_from == "last":
        return {sha: batch for sha, batch in state.loaded.items() if sha in state.last_batch}
    return state.loaded


def _read_batch(
    source: Source,
    table: str,
    state: TableState,
    existing: Table | None,
    discovery: Discovery,
    landing: Landing,
    at: dt.datetime,
    reading: _Reading,
) -> _Batch:
    """Checksum and skip one table's files, and check their columns (raises on bad input).

    Only each file's header (its first block) is read here; the rows are read by
    :func:`_write_batch`.
    """
    report = reading.report
    batch = _Batch(table, state, existing, skipped=list(discovery.skipped.get(table, ())))
    offered = [f for f in discovery.files if f.table == table]
    known = _known(source, state)
    seen: dict[str, str] = {}
    for n, file in enumerate(offered):
        report("check", file.name, n, len(offered))
        checker = encoding_checker(file.format, file.options, file.name, source=source.name)
        try:
            size, sha256 = hash_file(file.ref, checker)
        except OSError as exc:
            raise BadInputError(
                f"cannot read {file.origin}: {exc}", source=source.name, file=file.origin
            ) from None
        if sha256 in known:
            batch.skipped.append(
                SkippedFile(
                    file.name, file.origin, "already loaded", sha256, batch_id=known[sha256]
                )
            )
            continue
        if sha256 in seen:
            reason = f"same content as {seen[sha256]}"
            batch.skipped.append(SkippedFile(file.name, file.origin, reason, sha256))
            continue
        if size == 0:
            raise BadInputError(
                f"cannot read {file.name} as {file.format}: the file is empty",
                source=source.name,
                file=file.origin,
            )
        seen[sha256] = file.name
        batch.files.append(Checked(file, size, sha256))
    report("check", "", len(offered), len(offered))
    if not batch.files:
        return batch

    batch.batch_id = new_batch_id(at)
    batch.folder = landing.batch_folder(source.name, batch.batch_id, at)
    _read_schemas(batch, reading)
    return batch


def _read_schemas(batch: _Batch, reading: _Reading) -> None:
    """Check each file's columns and unify their types into ``batch.schema`` (only the
    header, i.e. the first block, of each file is read; the ``read`` progress stage is
    :func:`_write_batch`'s, which reads the rows)."""
    batch.reasons = []
    schemas: list[pa.Schema] = []
    for checked in batch.files:
        file = checked.file
        opened = reading.open(batch, checked)
        opened.close()
        columns = opened.schema.names
        reserved = [c for c in columns if c in bronze.INGESTION_COLUMNS]
        if reserved:
            raise BadInputError(
                f"cannot read {file.name}: column(s) {', '.join(reserved)} are reserved for "
                "ingestion metadata",
                source=reading.source,
                file=file.origin,
            )
        header = opened.schema.empty_table()
        problem = wrong_delimiter(header, file.format, file.options, name=file.name)
        problem = problem or bronze.shape_problem(file.name, columns, batch.state, reading.policy)
        if problem is not None:
            batch.reasons.append(problem)
        schemas.append(opened.schema)
        if file.cursor is not None:
            batch.cursor = file.cursor
    try:
        batch.schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        batch.schema = None
        batch.reasons.append(f"the files of the batch disagree on column types: {exc}")


def _write_batch(catalog: RefCatalog, batch: _Batch, at: dt.datetime, reading: _Reading) -> None:
    """Write the batch's rows (ingestion columns added, fitted to the table) as data files
    of an uncommitted transaction, streaming file by file; or note why they do not fit.

    Raises :class:`BadInputError` for a file that cannot be read (nothing committed).
    """
    if batch.batch_id is None or batch.reasons or batch.schema is None:
        return
    try:
        _write_rows(catalog, batch, at, reading)
    except ReadWholeFile as exc:
        logger.info(
            "%s: a file's later rows do not fit the types of its first block (%s); reading "
            "the batch's files whole",
            batch.table,
            exc,
        )
        _discard(batch)
        batch.whole = True
        _read_schemas(batch, reading)
        if not batch.reasons and batch.schema is not None:
            _write_rows(catalog, batch, at, reading)


def _write_rows(catalog: RefCatalog, batch: _Batch, at: dt.datetime, reading: _Reading) -> None:
    from lakehouse.tables.streaming import write_data_files

    assert batch.batch_id is not None and batch.folder is not None and batch.schema is not None
    unified = batch.schema
    full = pa.schema([*unified, *bronze.ingestion_fields()])
    fitted = bronze.fit(batch.existing, full.empty_table())
    if isinstance(fitted, list):
        batch.reasons.extend(fitted)
        return
    target = fitted.data.schema
    tx = bronze.start_append(catalog, batch.table, batch.existing, fitted, batch_id=batch.batch_id)
    nulls: dict[str, int] = {}
    problems: list[str] = []

    def rows() -> Iterator[pa.RecordBatch]:
        assert batch.batch_id is not None and batch.folder is not None
        for n, checked in enumerate(batch.files):
            file = checked.file
            reading.report("read", file.name, n, len(batch.files))
            opened = reading.open(batch, checked)
            source_file = batch.folder.child(checked.name).uri
            try:
                for part in opened.batches():
                    part = _conform(part, unified)
                    part = bronze.with_ingestion_columns(
                        part, batch_id=batch.batch_id, source_file=source_file, ingested_at=at
                    )
                    fitted_part = bronze.fit_batch(batch.existing, target, part, nulls)
                    if isinstance(fitted_part, str):
                        problems.append(fitted_part)
                        return
                    if not nulls:  # else quarantined: only count the rest's NULLs
                        yield fitted_part
            finally:
                opened.close()
            if opened.rows == 0:
                raise BadInputError(
                    f"cannot read {file.name} as {file.format}: the file has no rows",
                    source=reading.source,
                    file=file.origin,
                )
            batch.rows[checked.name] = opened.rows
        reading.report("read", "", len(batch.files), len(batch.files))

    written: list[DataFile] = []
    added = fitted.added if batch.existing is not None else ()
    batch.written = _Written(tx, written, added)
    for data_file in write_data_files(tx.table_metadata, tx._table.io, rows(), target):
        written.append(data_file)
    problems.extend(bronze.null_reasons(nulls))
    if problems:
        batch.reasons.extend(problems)


def _conform(part: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``part`` with ``schema``'s columns in its order (missing ones NULL), as one file of a
    batch of several is read (``concat_tables(promote_options="permissive")``)."""
    if part.schema.equals(schema):
        return part
    columns = []
    for wanted in schema:
        index = part.schema.get_field_index(wanted.name)
        if index < 0:
            columns.append(pa.nulls(part.num_rows, wanted.type))
        else:
            columns.append(part.column(index).cast(wanted.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _discard(batch: _Batch) -> None:
    """Delete the data files written for ``batch`` that were not committed."""
    from lakehouse.tables.streaming import delete_files

    if batch.written is not None:
        delete_files(batch.written.tx._table.io, batch.written.files)
        batch.written = None


def _load_batch(
    lakehouse: Lakehouse,
    catalog: RefCatalog,
    source: Source,
    branch: str,
    batch: _Batch,
    landing: Landing,
    at: dt.datetime,
    reading: _Reading,
) -> IngestResult:
    """Quarantine, or land and commit, one table's batch."""
    report = reading.report
    result = IngestResult(source.name, batch.table, branch, skipped=tuple(batch.skipped))
    if batch.batch_id is None or batch.folder is None:
        return result
    batch_id = batch.batch_id
    manifest: FileRef | None = None
    landed: list[LandedFile] = []
    for attempt in range(COMMIT_ATTEMPTS):
        if batch.written is None and not batch.reasons:
            _write_batch(catalog, batch, at, reading)  # again, after a lost race
        if batch.reasons or batch.written is None:
            _discard(batch)
            reasons = batch.reasons or ["the batch has no readable rows"]
            if manifest is not None:
                raise IngestError(
                    f"{batch.table} on '{branch}' changed while batch {batch_id} was being "
                    f"loaded and the batch no longer fits it ({'; '.join(reasons)}); run the "
                    "ingestion again",
                    source=source.name,
                )
            return _quarantine(source, branch, batch, reasons, landing, at, result)
        if manifest is None:
            manifest = _land(source, branch, batch, landing, at, report)
            landed = [
                LandedFile(
                    c.name,
                    c.file.origin,
                    batch.folder.child(c.name).uri,
                    c.size,
                    c.sha256,
                    batch.rows[c.name],
                )
                for c in batch.files
            ]
        report("load", batch.table, 0, 1)
        summary = _summary(source, batch, manifest)
        written = batch.written
        try:
            committed = bronze.finish_append(
                catalog, batch.table, written.tx, written.files, summary=summary
            )
        except Exception as exc:
            if not _lost_race(exc) or attempt == COMMIT_ATTEMPTS - 1:
                if _lost_race(exc):
                    _discard(batch)  # refused: certainly not committed
                else:
                    batch.written = None  # unknown outcome: never delete its files
                raise
            logger.info("ingest into %s lost a race (%s); re-reading", batch.table, exc)
            _discard(batch)  # refused: certainly not committed
            table = bronze.load_table(catalog, batch.table)
            batch.existing = table
            for checked in _drop_loaded_meanwhile(source, batch, table):
                result = replace(
                    result,
                    skipped=(
                        *result.skipped,
                        SkippedFile(
                            checked.name, checked.file.origin, "loaded concurrently", checked.sha256
                        ),
                    ),
                )
            if not batch.files:
                return result
            continue
        batch.written = None  # committed: the table's files now
        report("load", batch.table, 1, 1)
        snapshot = committed.current_snapshot()
        assert snapshot is not None
        commit_hash = bronze.find_commit(lakehouse.store, branch, batch.table, snapshot.snapshot_id)
        loaded_names = {c.name for c in batch.files}
        return replace(
            result,
            batch_id=batch_id,
            landed=tuple(f for f in landed if f.name in loaded_names),
            rows_loaded=sum(batch.rows[name] for name in loaded_names),
            snapshot_id=snapshot.snapshot_id,
            commit_hash=commit_hash,
            manifest=manifest.uri,
            cursor=batch.cursor.to_json() if batch.cursor is not None else None,
            added_columns=written.added,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _lost_race(exc: Exception) -> bool:
    from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError

    return isinstance(exc, CommitFailedException | TableAlreadyExistsError)


def _drop_loaded_meanwhile(source: Source, batch: _Batch, table: Table | None) -> list[Checked]:
    """Drop (and return) the files another writer loaded since we read the table."""
    state = bronze.read_state(table, batch.table, source.name)
    if batch.cursor is not None and state.cursor != batch.state.cursor:
        raise SourceChangedError(
            f"another ingestion of source '{source.name}' into {batch.table} ran at the same "
            "time; run the ingestion again",
            source=source.name,
        )
    known = _known(source, state)
    gone = [c for c in batch.files if c.sha256 in known]
    batch.state = state
    if not gone:
        return []
    batch.files = [c for c in batch.files if c.sha256 not in known]
    return gone


def _summary(source: Source, batch: _Batch, manifest: FileRef) -> dict[str, str]:
    import json

    assert batch.batch_id is not None
    summary = {
        bronze.SUMMARY_BATCH_ID: batch.batch_id,
        bronze.SUMMARY_SOURCE: source.name,
        bronze.SUMMARY_FILES: json.dumps(
            [[c.name, c.sha256] for c in batch.files], separators=(",", ":")
        ),
        bronze.SUMMARY_MANIFEST: manifest.uri,
    }
    if batch.cursor is not None:
        summary[bronze.SUMMARY_CURSOR] = batch.cursor.to_json()
    return summary


def _land(
    source: Source,
    branch: str,
    batch: _Batch,
    landing: Landing,
    at: dt.datetime,
    report: ProgressCallback,
) -> FileRef:
    assert batch.batch_id is not None and batch.folder is not None
    for n, checked in enumerate(batch.files):
        report("land", checked.name, n, len(batch.files))
    manifest = landing.land(
        batch.files,
        batch.folder,
        source=source.name,
        source_type=source.type,
        table=batch.table,
        batch_id=batch.batch_id,
        at=at,
        branch=branch,
        rows=batch.rows,
        cursor=batch.cursor,
    )
    report("land", "", len(batch.files), len(batch.files))
    return manifest


def _quarantine(
    source: Source,
    branch: str,
    batch: _Batch,
    reasons: Sequence[str],
    landing: Landing,
    at: dt.datetime,
    result: IngestResult,
) -> IngestResult:
    assert batch.batch_id is not None
    folder = landing.quarantine(
        batch.files,
        source=source.name,
        table=batch.table,
        batch_id=batch.batch_id,
        at=at,
        branch=branch,
        reasons=reasons,
    )
    logger.info(
        "batch %s of source %s quarantined under %s: %s",
        batch.batch_id,
        source.name,
        folder.uri,
        "; ".join(reasons),
    )
    quarantine = Quarantine(
        batch.batch_id, folder.uri, tuple(reasons), tuple(c.name for c in batch.files)
    )
    return replace(result, batch_id=batch.batch_id, quarantined=quarantine)


__all__ = ["COMMIT_ATTEMPTS", "ProgressCallback", "ingest"]
