"""Bronze tables: what they hold already, whether a batch fits, and the append commit.

**Exactly once.** Each batch is one Iceberg snapshot whose summary carries the batch
id, the source, the name and sha256 of every file and, for incremental sources, the
cursor value — committed atomically with the data by ``Transaction.append(df,
snapshot_properties=…)``. :func:`read_state` rebuilds what a table holds by walking
the ancestry of its current snapshot on the branch the catalog is bound to, and the
table's ingest-state checkpoint for what snapshot expiry removed (below). Snapshot
summary keys:

======================================  ==================================================
``lakehouse.ingest.batch-id``           the batch id
``lakehouse.ingest.source``             the source name
``lakehouse.ingest.files``              JSON ``[[name, sha256], …]`` of the batch's files
``lakehouse.ingest.manifest``           URI of the landing manifest in ``raw``
``lakehouse.ingest.cursor``             JSON cursor (incremental SQL sources)
``lakehouse.ingest.kafka.offsets``      next Kafka offsets to read (:mod:`.kafka`)
======================================  ==================================================

**Checkpoints.** Snapshot expiry drops summaries, so before it removes snapshots that
carry ingestion state it folds that state (with the previous checkpoint's) into an
*ingest-state checkpoint*: a gzip JSON file, ``ingest-checkpoint-<uuid>.gz.json``, next
to the table's metadata files (in the ``iceberg-metadata`` bucket), named by the table
property :data:`CHECKPOINT_PROPERTY` in the same catalog commit as the expiry
(:mod:`lakehouse.maintenance.expire`). Every checkpoint is cumulative — it holds
everything older than the snapshots still in the ancestry — so a reader needs only the
one the current metadata names: :func:`ingest_state` reads the ancestry first, then that
checkpoint (newest wins for cursors, offsets and the last batch of each source;
loaded-file sets are unioned, the oldest batch of a file winning). :func:`read_state`,
the Kafka consumer's offsets and the disaster-recovery replay points all read it.
Checkpoint files are immutable and never deleted by expiry (another branch's metadata
may name an older one); only the garbage collector deletes them, once no live metadata
names them.
Format (:data:`CHECKPOINT_FORMAT_VERSION`)::

    {"format_version": 1, "kind": "lakehouse.ingest.checkpoint", "table_uuid": "…",
     "created_at": "…", "previous": "<location of the checkpoint it folded in>" | null,
     "through_snapshot_id": <newest folded snapshot>, "sha256": "<of the state JSON>",
     "state": {"batches": […], "loaded": {sha256: batch}, "sources": {name: {"batch_id",
               "files": [sha256…], "cursor"}}, "kafka_offsets": {topic: {partition: next}},
               "latest_source", "latest_batch", "latest_cursor"}}

**Concurrency.** Two runs ingesting the same file at once must not both load it. The
commit therefore also sets the table property ``lakehouse.ingest.last-batch-id``, so it
is never a pure fast append that the catalog would rebase onto a concurrent commit,
and ingestion tables carry ``commit.retry.num-retries=0`` so PyIceberg does not rebuild
it onto the new head either: a concurrent commit makes this one fail, and the loader
re-reads the table's history and drops files that were loaded meanwhile.

**Schema drift.** New columns are added (``union_by_name``) in the same transaction
as the append. Columns may arrive narrower than the table (``int`` into ``long``, an
integer into ``double`` or ``decimal``) and are cast; a type the table cannot be widened
to (``long`` → ``string``), a missing required column or NULLs in a required column
make the batch incompatible (see :func:`fit`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    ResolveError,
    ValidationError,
)
from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids, schema_to_pyarrow
from pyiceberg.schema import Schema, promote
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from lakehouse.catalog.files import INGEST_CHECKPOINT_PROPERTY
from lakehouse.ingest.sources.base import Cursor, SchemaPolicy, TableState
from lakehouse.tables.bookkeeping import (  # the summary keys (see the module docstring)
    LAST_BATCH_PROPERTY,
    SUMMARY_BATCH_ID,
    SUMMARY_CURSOR,
    SUMMARY_FILES,
    SUMMARY_KAFKA_OFFSETS,
    SUMMARY_MANIFEST,
    SUMMARY_PREFIX,
    SUMMARY_SOURCE,
    parse_kafka_offsets,
)
from lakehouse.tables.merge import summaries

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table, Transaction

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.catalog.store import VersionStore

#: Ingestion columns every bronze table carries.
BATCH_ID = "_batch_id"
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
INGESTION_COLUMNS = (BATCH_ID, SOURCE_FILE, INGESTED_AT)

#: Table property naming the table's ingest-state checkpoint file (see the module docstring;
#: defined with the file walkers, which must all see the file).
CHECKPOINT_PROPERTY = INGEST_CHECKPOINT_PROPERTY
#: Version of the checkpoint file format.
CHECKPOINT_FORMAT_VERSION = 1
#: The ``kind`` every checkpoint file declares.
CHECKPOINT_KIND = "lakehouse.ingest.checkpoint"
#: Checkpoint file names: ``ingest-checkpoint-<uuid>.gz.json`` next to ``*.metadata.json``
#: (gzip inside; like Iceberg's ``.gz.metadata.json``, the name does not end in ``.gz`` so
#: that FileIOs which compress or decompress by extension leave the bytes alone).
CHECKPOINT_PREFIX = "ingest-checkpoint-"
CHECKPOINT_SUFFIX = ".gz.json"

#: Table properties of ingestion tables: no blind retry of a conflicting append.
TABLE_PROPERTIES: Mapping[str, str] = {"commit.retry.num-retries": "0"}


@dataclass(frozen=True)
class SourceProgress:
    """What one source recorded last in a table."""

    #: The source's newest batch.
    batch_id: str
    #: sha256 of the files of that batch.
    files: frozenset[str] = frozenset()
    #: The newest cursor (JSON) the source recorded, possibly in an older batch.
    cursor: str | None = None


@dataclass(frozen=True)
class IngestState:
    """Everything ingestion recorded in a table: its ancestry's summaries plus its checkpoint.

    The one place exactly-once state is assembled (:func:`ingest_state`); batch ingestion
    (:func:`read_state`), the Kafka consumer and the disaster-recovery replay points read it.
    """

    #: sha256 of every file loaded so far → the (oldest) batch that loaded it.
    loaded: Mapping[str, str] = field(default_factory=dict)
    #: Every batch id, oldest first.
    batches: tuple[str, ...] = ()
    #: Per source name, its newest batch and cursor.
    sources: Mapping[str, SourceProgress] = field(default_factory=dict)
    #: topic → partition → next offset to read (newest recorded per partition).
    kafka_offsets: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    #: Source and batch id of the newest snapshot naming a source.
    latest_source: str | None = None
    latest_batch: str | None = None
    #: The newest cursor (JSON) of any source.
    latest_cursor: str | None = None
    #: Location of the checkpoint this state includes (``None``: none).
    checkpoint: str | None = None

    @property
    def empty(self) -> bool:
        """True when nothing ingestion-related was recorded."""
        return not (
            self.loaded
            or self.batches
            or self.sources
            or self.kafka_offsets
            or self.latest_source
            or self.latest_cursor
        )

    def over(self, older: IngestState) -> IngestState:
        """This (newer) state on top of ``older``: newest wins, loaded files are unioned."""
        sources = dict(older.sources)
        for name, progress in self.sources.items():
            before = sources.get(name)
            if progress.cursor is None and before is not None and before.cursor is not None:
                progress = SourceProgress(progress.batch_id, progress.files, before.cursor)
            sources[name] = progress
        offsets = {t: dict(parts) for t, parts in older.kafka_offsets.items()}
        for topic, parts in self.kafka_offsets.items():
            offsets.setdefault(topic, {}).update(parts)
        newer_latest = self.latest_source is not None
        return IngestState(
            loaded={**self.loaded, **older.loaded},  # the oldest batch of a file wins
            batches=(*older.batches, *self.batches),
            sources=sources,
            kafka_offsets=offsets,
            latest_source=self.latest_source if newer_latest else older.latest_source,
            latest_batch=self.latest_batch if newer_latest else older.latest_batch,
            latest_cursor=self.latest_cursor or older.latest_cursor,
            checkpoint=self.checkpoint or older.checkpoint,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form (the ``state`` of a checkpoint file)."""
        return {
            "batches": list(self.batches),
            "loaded": dict(sorted(self.loaded.items())),
            "sources": {
                name: {"batch_id": p.batch_id, "files": sorted(p.files), "cursor": p.cursor}
                for name, p in sorted(self.sources.items())
            },
            "kafka_offsets": {
                t: {str(p): o for p, o in sorted(parts.items())}
                for t, parts in sorted(self.kafka_offsets.items())
            },
            "latest_source": self.latest_source,
            "latest_batch": self.latest_batch,
            "latest_cursor": self.latest_cursor,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, checkpoint: str | None = None) -> IngestState:
        """Parse :meth:`to_json` output."""
        return cls(
            loaded={str(k): str(v) for k, v in data["loaded"].items()},
            batches=tuple(str(b) for b in data["batches"]),
            sources={
                str(name): SourceProgress(
                    str(p["batch_id"]), frozenset(str(f) for f in p["files"]), p.get("cursor")
                )
                for name, p in data["sources"].items()
            },
            kafka_offsets={
                str(t): {int(p): int(o) for p, o in parts.items()}
                for t, parts in data["kafka_offsets"].items()
            },
            latest_source=data.get("latest_source"),
            latest_batch=data.get("latest_batch"),
            latest_cursor=data.get("latest_cursor"),
            checkpoint=checkpoint,
        )


def has_ingest_keys(snapshot: Snapshot) -> bool:
    """True if ``snapshot`` carries ``lakehouse.ingest.*`` summary keys (its own or merged)."""
    return any(k.startswith(SUMMARY_PREFIX) for props in summaries(snapshot) for k in props)


def state_of_snapshots(snapshots: Iterable[Snapshot]) -> IngestState:
    """The ingestion state recorded in ``snapshots`` (newest first, e.g. an ancestry)."""
    loaded: dict[str, str] = {}
    batches: list[str] = []
    sources: dict[str, SourceProgress] = {}
    offsets: dict[str, dict[int, int]] = {}
    latest_source: str | None = None
    latest_batch: str | None = None
    latest_cursor: str | None = None
    # a content-merged snapshot stands for the source snapshots it merged (their
    # summaries follow its own, newest first): the source branch's batches stay loaded
    for props in (props for snapshot in snapshots for props in summaries(snapshot)):
        if not any(k.startswith(SUMMARY_PREFIX) for k in props):
            continue
        for topic, parts in parse_kafka_offsets(props.get(SUMMARY_KAFKA_OFFSETS)).items():
            known = offsets.setdefault(topic, {})
            for partition, offset in parts.items():
                known.setdefault(partition, offset)  # walking back in time: the newest wins
        source = props.get(SUMMARY_SOURCE) or None
        batch = props.get(SUMMARY_BATCH_ID) or None
        cursor = props.get(SUMMARY_CURSOR) or None
        if latest_source is None and source is not None:
            latest_source, latest_batch = source, batch
        if latest_cursor is None:
            latest_cursor = cursor
        if batch is None:
            continue
        batches.append(batch)
        shas = [sha for _, sha in json.loads(props.get(SUMMARY_FILES) or "[]")]
        for sha in shas:
            loaded[sha] = batch  # walking back in time: the oldest batch wins
        if source is not None:
            progress = sources.get(source)
            if progress is None:
                sources[source] = SourceProgress(batch, frozenset(shas), cursor)
            elif progress.cursor is None and cursor is not None:
                sources[source] = SourceProgress(progress.batch_id, progress.files, cursor)
    return IngestState(
        loaded=loaded,
        batches=tuple(reversed(batches)),
        sources=sources,
        kafka_offsets=offsets,
        latest_source=latest_source,
        latest_batch=latest_batch,
        latest_cursor=latest_cursor,
    )


def ingest_state(table: Table | None) -> IngestState:
    """Ingestion state of ``table``: its current snapshot's ancestry, then its checkpoint.

    Raises :class:`~lakehouse.ingest.errors.IngestError` when the table names a
    checkpoint that cannot be read or verified: without it, exactly-once is unknown.
    """
    if table is None:
        return IngestState()
    recent = state_of_snapshots(ancestors_of(table.current_snapshot(), table.metadata))
    location = table.properties.get(CHECKPOINT_PROPERTY)
    if not location:
        return recent
    older = read_checkpoint(table.io, location, table_uuid=str(table.metadata.table_uuid))
    return recent.over(older)


def read_state(table: Table | None, name: str, source: str) -> TableState:
    """What ``table`` holds from earlier batches (:func:`ingest_state` seen by ``source``)."""
    if table is None:
        return TableState(name)
    state = ingest_state(table)
    progress = state.sources.get(source)
    columns = {
        f.name: _plain(f.type) for f in schema_to_pyarrow(table.schema(), include_field_ids=False)
    }
    return TableState(
        name,
        exists=True,
        loaded=state.loaded,
        batches=state.batches,
        cursor=Cursor.from_json(progress.cursor) if progress and progress.cursor else None,
        columns=columns,
        last_batch=progress.files if progress is not None else frozenset(),
    )


# -- checkpoints -------------------------------------------------------------------------------


def _state_digest(state: Mapping[str, Any]) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_location(metadata_location: str) -> str:
    """A new checkpoint file's location, in the folder of ``metadata_location``."""
    folder = metadata_location.rsplit("/", 1)[0]
    return f"{folder}/{CHECKPOINT_PREFIX}{uuid.uuid4().hex}{CHECKPOINT_SUFFIX}"


def write_checkpoint(
    io: FileIO,
    location: str,
    state: IngestState,
    *,
    table_uuid: str,
    previous: str | None,
    through_snapshot_id: int | None,
) -> None:
    """Write ``state`` as a new checkpoint file at ``location`` (never overwrites)."""
    body = state.to_json()
    document = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "kind": CHECKPOINT_KIND,
        "table_uuid": table_uuid,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "previous": previous,
        "through_snapshot_id": through_snapshot_id,
        "sha256": _state_digest(body),
        "state": body,
    }
    data = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
    with io.new_output(location).create(overwrite=False) as stream:
        stream.write(data)


def read_checkpoint(io: FileIO, location: str, *, table_uuid: str | None = None) -> IngestState:
    """The state in the checkpoint file at ``location``, verified.

    Raises :class:`~lakehouse.ingest.errors.IngestError` when it is missing, unreadable,
    of another format version, of another table (``table_uuid``) or fails its checksum.
    """
    from lakehouse.ingest.errors import IngestError

    try:
        with io.new_input(location).open() as stream:
            data = stream.read()
        document = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except Exception as exc:  # missing, truncated, not gzip, not JSON
        raise IngestError(
            f"cannot read the ingestion checkpoint {location}: "
            f"{' '.join(str(exc).split()) or type(exc).__name__}; without it the table's "
            "exactly-once state is unknown (restore the file, e.g. from a backup)"
        ) from exc
    if not isinstance(document, dict) or document.get("kind") != CHECKPOINT_KIND:
        raise IngestError(f"{location} is not an ingestion checkpoint")
    version = document.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise IngestError(
            f"the ingestion checkpoint {location} has format version {version!r}; this "
            f"version of lakehouse reads {CHECKPOINT_FORMAT_VERSION}: upgrade lakehouse"
        )
    if table_uuid is not None and document.get("table_uuid") != table_uuid:
        raise IngestError(
            f"the ingestion checkpoint {location} belongs to table "
            f"{document.get('table_uuid')}, not {table_uuid}"
        )
    body = document.get("state")
    if not isinstance(body, dict) or document.get("sha256") != _state_digest(body):
        raise IngestError(f"the ingestion checkpoint {location} fails its checksum")
    try:
        return IngestState.from_json(body, checkpoint=location)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IngestError(f"the ingestion checkpoint {location} is malformed: {exc}") from exc


def _plain(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(type_):
        return pa.string()
    if pa.types.is_large_binary(type_):
        return pa.binary()
    if pa.types.is_large_list(type_):
        return pa.list_(type_.value_field.with_type(_plain(type_.value_type)))
    return type_


def with_ingestion_columns(
    data: pa.Table, *, batch_id: str, source_file: str, ingested_at: dt.datetime
) -> pa.Table:
    """``data`` plus ``_batch_id``, ``_source_file`` and ``_ingested_at`` (all non-null)."""
    n = data.num_rows
    at = ingested_at.astimezone(dt.UTC)
    micros = (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    columns = [
        (BATCH_ID, _constant_string(batch_id, n)),
        (SOURCE_FILE, _constant_string(source_file, n)),
        (INGESTED_AT, pa.repeat(pa.scalar(micros, pa.int64()), n).cast(pa.timestamp("us", "UTC"))),
    ]
    for name, array in columns:
        data = data.append_column(pa.field(name, array.type, nullable=False), array)
    return data


def _constant_string(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as a string array, built from buffers (fast for millions)."""
    data = value.encode("utf-8")
    size = len(data)
    if size * (n + 1) >= 2**31 - 1:  # beyond 32-bit offsets
        return pa.repeat(pa.scalar(value, pa.large_string()), n)
    ends = pc.cumulative_sum(pa.repeat(pa.scalar(size, pa.int32()), n + 1))
    offsets = pc.subtract(ends, pa.scalar(size, pa.int32()))
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(data * n))


@dataclass(frozen=True)
class Fit:
    """A batch made to fit a table: the data to append and the schema change, if any."""

    data: pa.Table
    #: True when the table's schema must be evolved (``union_by_name``) first.
    evolve: bool
    #: Columns the batch adds.
    added: tuple[str, ...]


def fit(table: Table | None, batch: pa.Table) -> Fit | list[str]:
    """``batch`` shaped for ``table`` (``None``: a new table), or the reasons it cannot be.

    Columns the table has are cast to its types when that keeps every value (and the
    batch's nullability is set to the table's); columns of an all-NULL type become
    strings when new. Anything else that differs is left to ``union_by_name``, whose
    refusal (e.g. ``long`` → ``string``) is a reason.
    """
    if table is None:
        columns, fields = [], []
        for field, column in zip(batch.schema, batch.columns, strict=True):
            if pa.types.is_null(field.type):
                column = column.cast(pa.string())
                field = field.with_type(pa.string())
            columns.append(column)
            fields.append(field)
        data = pa.Table.from_arrays(columns, schema=pa.schema(fields))
        return Fit(data, evolve=False, added=tuple(data.column_names))

    schema = table.schema()
    existing = {f.name: f for f in schema.fields}
    reasons: list[str] = []
    for name, field_ in existing.items():
        if field_.required and name not in batch.column_names:
            reasons.append(f"required column {name!r} is missing")
    columns, fields = [], []
    added: list[str] = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        current = existing.get(field.name)
        if current is None:
            if pa.types.is_null(field.type):
                column = column.cast(pa.string())
                field = field.with_type(pa.string())
            columns.append(column)
            fields.append(field.with_nullable(True))
            added.append(field.name)
            continue
        target = _plain(schema_to_pyarrow(Schema(current), include_field_ids=False).field(0).type)
        if current.required and column.null_count:
            reasons.append(
                f"column {field.name!r} is required but {column.null_count} row(s) are NULL"
            )
        if field.type != target and _castable(field.type, target):
            try:
                column = column.cast(target)
                field = field.with_type(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                reasons.append(f"column {field.name!r}: cannot cast to {current.field_type}: {exc}")
        columns.append(column)
        fields.append(field.with_nullable(not current.required))
    if reasons:
        return reasons
    data = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    try:
        evolved = table.update_schema().union_by_name(data.schema)._apply()
    except (ValueError, ResolveError, ValidationError) as exc:
        return [f"incompatible schema change: {_one_line(exc)}"]
    evolve = evolved.as_struct() != schema.as_struct()
    return Fit(data, evolve=evolve, added=tuple(added))


def shape_problem(
    name: str, columns: Sequence[str], table: TableState, policy: SchemaPolicy
) -> str | None:
    """Why the file ``name`` with ``columns`` must not load into ``table`` (``None``: fine).

    For an existing table: a file that shares no column with it, or that adds columns
    the source's :class:`~lakehouse.ingest.sources.base.SchemaPolicy` does not allow
    (``new_columns: reject``; missing ``key_columns``; fewer than ``min_shared_columns``
    of the table's columns). Ingestion columns do not count.
    """
    if not table.exists:
        return None
    own = [c for c in table.columns if c not in INGESTION_COLUMNS]
    if not own:
        return None
    present = set(columns)
    shared = [c for c in own if c in present]
    added = [c for c in columns if c not in table.columns]
    if not shared:
        return (
            f"{name} shares no column with {table.table} (the file has {_names(columns)}; "
            f"the table has {_names(own)})"
        )
    if not added:
        return None
    adds = f"{name} would add column(s) {_names(added)} to {table.table}"
    if policy.new_columns == "reject":
        return f"{adds}, but the source's schema policy allows no new columns"
    if policy.key_columns:
        missing = [k for k in policy.key_columns if k not in present]
        if missing:
            return f"{adds}, but lacks the key column(s) {_names(missing)}"
        return None
    if len(shared) < policy.min_shared_columns * len(own):
        return (
            f"{adds}, but has only {len(shared)} of the table's {len(own)} column(s) (the schema "
            f"policy needs a share of {policy.min_shared_columns:g})"
        )
    return None


def _names(columns: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """True if every value of ``source`` has the same value as ``target``."""
    if pa.types.is_null(source):
        return True
    if pa.types.is_integer(source):
        if pa.types.is_integer(target):
            return bool(target.bit_width >= source.bit_width)
        return bool(pa.types.is_floating(target) or pa.types.is_decimal(target))
    try:
        a = _pyarrow_to_schema_without_ids(pa.schema([pa.field("x", source)])).fields[0]
        b = _pyarrow_to_schema_without_ids(pa.schema([pa.field("x", target)])).fields[0]
        promote(a.field_type, b.field_type)
    except (ResolveError, ValueError, TypeError):
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def ensure_namespace(catalog: RefCatalog, namespace: Sequence[str]) -> None:
    """Create ``namespace`` (and its parents) on the catalog's branch when missing."""
    for depth in range(1, len(namespace) + 1):
        part = tuple(namespace[:depth])
        if not catalog.namespace_exists(part):
            with contextlib.suppress(NamespaceAlreadyExistsError):  # created concurrently
                catalog.create_namespace(part)


def load_table(catalog: RefCatalog, name: str) -> Table | None:
    """The table on the catalog's branch, or ``None`` when it does not exist."""
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return None


def _evolved(table: Table, fitted: Fit) -> Transaction:
    """A transaction on ``table`` whose schema first takes the new columns of ``fitted``.

    New columns go before the ingestion columns, which stay last.
    """
    tx = table.transaction()
    if fitted.evolve:
        with tx.update_schema() as update:
            update.union_by_name(fitted.data.schema)
            if BATCH_ID in table.schema().column_names:
                for column in fitted.added:
                    if column not in INGESTION_COLUMNS:
                        update.move_before(column, BATCH_ID)
    return tx


def append(
    catalog: RefCatalog,
    name: str,
    table: Table | None,
    fitted: Fit,
    *,
    batch_id: str,
    summary: Mapping[str, str],
) -> Table:
    """Commit ``fitted`` to ``name`` as one snapshot (one catalog commit); return the table.

    A new table is created in the same commit. Raises PyIceberg's
    ``CommitFailedException`` / ``TableAlreadyExistsError`` when another writer got there
    first: re-read and try again.
    """
    properties = {**summary}
    if table is None:
        ensure_namespace(catalog, name.split(".")[:-1])
        create = catalog.create_table_transaction(
            name,
            schema=fitted.data.schema,
            properties={**TABLE_PROPERTIES, LAST_BATCH_PROPERTY: batch_id},
        )
        create.append(fitted.data, snapshot_properties=properties)
        return create.commit_transaction()

    missing = {k: v for k, v in TABLE_PROPERTIES.items() if table.properties.get(k) != v}
    if missing:  # a table created elsewhere: switch off blind retries first
        table = table.transaction().set_properties(missing).commit_transaction()
    tx = _evolved(table, fitted)
    tx.append(fitted.data, snapshot_properties=properties)
    tx.set_properties({LAST_BATCH_PROPERTY: batch_id})
    return tx.commit_transaction()


def ingestion_fields() -> list[pa.Field]:
    """The ingestion columns' fields, as :func:`with_ingestion_columns` adds them."""
    return [
        pa.field(BATCH_ID, pa.string(), nullable=False),
        pa.field(SOURCE_FILE, pa.string(), nullable=False),
        pa.field(INGESTED_AT, pa.timestamp("us", "UTC"), nullable=False),
    ]


def fit_batch(
    table: Table | None, target: pa.Schema, batch: pa.RecordBatch, nulls: dict[str, int]
) -> pa.RecordBatch | str:
    """One record batch cast to ``target`` (the schema of a :func:`fit` of the batch's
    schema), or why it cannot be; NULLs in columns ``table`` requires are counted into
    ``nulls`` (the caller turns them into a reason, as :func:`fit` does)."""
    if table is not None:
        schema = table.schema()
        for name in batch.schema.names:
            try:
                required = schema.find_field(name).required
            except ValueError:
                continue
            count = batch.column(name).null_count
            if required and count:
                nulls[name] = nulls.get(name, 0) + count
    columns = []
    for wanted in target:
        column = batch.column(wanted.name)
        if column.type != wanted.type:
            try:
                column = column.cast(wanted.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                return f"column {wanted.name!r}: cannot cast to {wanted.type}: {exc}"
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=target)


def null_reasons(nulls: Mapping[str, int]) -> list[str]:
    """What :func:`fit` says of NULLs in required columns, from :func:`fit_batch`'s counts."""
    return [
        f"column {name!r} is required but {count} row(s) are NULL"
        for name, count in nulls.items()
        if count
    ]


def start_append(
    catalog: RefCatalog, name: str, table: Table | None, fitted: Fit, *, batch_id: str
) -> Transaction:
    """The transaction of :func:`append` before its rows: the table created, or its schema
    evolved, and the batch property set. Write the rows as data files with its metadata
    (:func:`lakehouse.tables.streaming.write_data_files`), then :func:`finish_append`.
    """
    if table is None:  # its namespace is made by finish_append: nothing committed yet
        return catalog.create_table_transaction(
            name,
            schema=fitted.data.schema,
            properties={**TABLE_PROPERTIES, LAST_BATCH_PROPERTY: batch_id},
        )
    tx = _evolved(table, fitted)
    tx.set_properties({LAST_BATCH_PROPERTY: batch_id})
    return tx


def finish_append(
    catalog: RefCatalog,
    name: str,
    tx: Transaction,
    data_files: Sequence[DataFile],
    *,
    summary: Mapping[str, str],
) -> Table:
    """Commit the data files written for ``tx`` (:func:`start_append`) as one append
    snapshot carrying ``summary``: one catalog commit (a new table's namespace is created
    first, if missing). Raises as :func:`append`."""
    from pyiceberg.table import CreateTableTransaction

    from lakehouse.tables.streaming import append_data_files

    if isinstance(tx, CreateTableTransaction):
        ensure_namespace(catalog, name.split(".")[:-1])
    else:
        table = tx._table
        missing = {k: v for k, v in TABLE_PROPERTIES.items() if table.properties.get(k) != v}
        if missing:  # a table created elsewhere: switch off blind retries first
            tx.set_properties(missing)
    append_data_files(tx, data_files, snapshot_properties=summary)
    return tx.commit_transaction()


def find_commit(
    store: VersionStore, branch: str, name: str, snapshot_id: int, *, depth: int = 50
) -> str | None:
    """Hash of the catalog commit on ``branch`` that set table ``name`` to ``snapshot_id``."""
    from lakehouse.catalog.model import ContentKey, IcebergTable, Put

    key = ContentKey.parse(name)
    for n, entry in enumerate(store.iter_log(branch, fetch_operations=True, page_size=depth)):
        if n >= depth:
            break
        for op in entry.operations or ():
            if (
                isinstance(op, Put)
                and op.key == key
                and isinstance(op.content, IcebergTable)
                and op.content.snapshot_id == snapshot_id
            ):
                return entry.hash
    return None


__all__ = [
    "BATCH_ID",
    "CHECKPOINT_FORMAT_VERSION",
    "CHECKPOINT_KIND",
    "CHECKPOINT_PREFIX",
    "CHECKPOINT_PROPERTY",
    "CHECKPOINT_SUFFIX",
    "INGESTED_AT",
    "INGESTION_COLUMNS",
    "LAST_BATCH_PROPERTY",
    "SOURCE_FILE",
    "SUMMARY_BATCH_ID",
    "SUMMARY_CURSOR",
    "SUMMARY_FILES",
    "SUMMARY_MANIFEST",
    "SUMMARY_PREFIX",
    "SUMMARY_SOURCE",
    "TABLE_PROPERTIES",
    "Fit",
    "IngestState",
    "SourceProgress",
    "append",
    "checkpoint_location",
    "ensure_namespace",
    "find_commit",
    "finish_append",
    "fit",
    "fit_batch",
    "has_ingest_keys",
    "ingest_state",
    "ingestion_fields",
    "load_table",
    "null_reasons",
    "read_checkpoint",
    "read_state",
    "shape_problem",
    "start_append",
    "state_of_snapshots",
    "with_ingestion_columns",
    "write_checkpoint",
]
