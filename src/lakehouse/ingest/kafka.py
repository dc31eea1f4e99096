"""Change data capture from Kafka: Debezium change events → ``raw`` → bronze change log → silver.

::

    import lakehouse
    from lakehouse.ingest.kafka import KafkaCdcSource, consume_cdc

    with lakehouse.connect() as lh:
        source = KafkaCdcSource(topics=["shop.public.orders"], table="silver.orders", key=["id"])
        result = consume_cdc(lh, source, max_batches=10)
        print(result.events, result.offsets)

**Events.** Debezium's JSON envelope (``before``, ``after``, ``op`` ``c``/``u``/``d``/``r``,
``ts_ms``, ``source``), bare or inside the ``{"schema": …, "payload": …}`` wrapper of the
JSON converter with schemas on. Tombstones (a null value, which Debezium sends after a
delete for log compaction) carry no change and are ignored. :func:`parse_event` is the
parser.

**One batch** (up to ``batch_size`` records or ``batch_timeout`` seconds) becomes:

1. the records landed unchanged in ``raw/kafka/<topic>/<yyyy>/<mm>/<dd>/<batch_id>/`` as
   ``events.jsonl`` (one line per record: ``partition``, ``offset``, ``timestamp``,
   ``key`` and ``value``, the value text exactly as consumed) with the landing manifest
   of :mod:`lakehouse.ingest.landing`;
2. one row per change event appended to the **bronze change log** (default
   ``bronze.<name>_changes``): ``op``, ``ts_ms``, ``source`` (the Debezium ``source``
   block as JSON), ``position`` (the comparable source position, JSON), ``topic``,
   ``partition``, ``offset``, ``kafka_timestamp``, ``key`` (the message key text) and the
   ``before``/``after`` images **as JSON text** (the log accepts any source schema and
   never needs evolving), plus the ingestion columns ``_batch_id``, ``_source_file`` and
   ``_ingested_at``;
3. the changes applied to the **silver table** by primary key, in source order (per
   partition by offset; Debezium keys messages by the primary key, so one key is always
   in one partition): the newest change of each key wins, ``c``/``u``/``r`` upsert the
   ``after`` image and ``d`` deletes. Silver has the ``after`` image's columns plus
   ``_cdc_op``, ``_cdc_ts_ms``, ``_cdc_position`` and ``_cdc_offset``
   (``topic/partition/offset``) of the change that wrote the row.

**Exactly once.** Bronze and silver are committed in ONE catalog commit
(:meth:`lakehouse.catalog.iceberg.RefCatalog.commit_tables`), and each of their new
snapshots carries, in the summary property :data:`SUMMARY_KAFKA_OFFSETS`
(``lakehouse.ingest.kafka.offsets``), JSON ``{"<topic>": {"<partition>": <offset>}}``
where the offset is **the next offset to read** (the last consumed offset + 1), for every
partition consumed so far. On start the consumer reads these offsets back from the
tables' snapshot ancestry on the branch — and from their ingest-state checkpoint for
snapshots that expiry removed (:func:`lakehouse.ingest.bronze.ingest_state`) — and
``assign()``\\ s its partitions there
(partitions never seen start at the beginning); Kafka's committed group offsets are
neither read nor written (``enable.auto.commit=false``). A crash before the commit
loses nothing (the batch is consumed again), a crash after it applies nothing twice.
Landing happens before the commit, so ``raw`` may hold a batch that was consumed again
after a crash (under another batch id); the tables never do.

**Debezium duplicates.** Debezium is at-least-once: after a connector restart it re-sends
a suffix of the change stream (same source positions, new Kafka offsets). Bronze logs
every Kafka record once, duplicates included (each offset exactly once). Silver skips a
change whose source position is at or before the position that wrote the key's current
row (or an earlier change of the same key in the batch); positions are compared when the
connector's are comparable (PostgreSQL ``sequence``/``lsn``, MySQL ``file``/``pos``/
``row``, else ``ts_ms``-less equality of the ``source`` block). Upserts and deletes by
key are idempotent anyway, and a re-sent suffix ends in the state it started from.

**Bad input.** A record that is not UTF-8 JSON, has no valid ``op``, lacks the image its
``op`` needs or a key column is a *poison event*: it is **skipped**, not applied — copied
to ``raw/_rejected/kafka/<topic>/<batch_id>/`` with ``reason.json`` naming partition,
offset and reason — and the stream goes on (its offset is committed with the batch, so it
is not consumed again). A batch whose ``after`` images do not fit silver's schema (a
type silver cannot be widened to) is quarantined the same way, **nothing is committed**
and :class:`~lakehouse.ingest.errors.BatchQuarantinedError` stops the stream: it would
fail again on every restart until the table (or the connector) is fixed. New columns are
added to silver.

**Types.** With the JSON converter's schemas on, :func:`row_schema` types every column from
the event's schema and decodes Kafka Connect's and Debezium's logical types (``Decimal``,
``Date``, ``MicroTimestamp``, ``ZonedTimestamp`` …, see :class:`RowSchema`). Without a
schema, values keep their JSON types (configure the connector's
``decimal.handling.mode=string`` or ``double`` and ``time.precision.mode`` as wanted).

**Pause.** :func:`consume_cdc` refuses to start while the lakehouse is paused for
disaster recovery, and checks the flag again before every batch: a running consumer
finishes its current commit and stops (``stopped="paused"``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import json
import logging
import operator
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakehouse.control import SUMMARY_KAFKA_OFFSETS, ensure_not_paused, pause_state
from lakehouse.ingest import bronze
from lakehouse.ingest._fs import FileRef, hash_file, resolve, storage_properties
from lakehouse.ingest.errors import (
    BadInputError,
    BatchQuarantinedError,
    IngestError,
    SourceConfigError,
    SourceUnavailableError,
)
from lakehouse.ingest.formats import FormatOptions
from lakehouse.ingest.landing import Checked, Landing, new_batch_id
from lakehouse.ingest.sources.base import SourceFile, qualify_table
from lakehouse.observability import record_cdc_lag, record_ingest
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES
from lakehouse.tables.upsert import lookup, stage_upsert

try:  # the kafka extra's fast JSON codec; the standard library's when it is missing
    import orjson
except ImportError:  # pragma: no cover - depends on the install
    orjson = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: Debezium operations: create, update, delete, read (snapshot).
OPS = frozenset({"c", "u", "d", "r"})
#: Silver's change-tracking columns (the change that wrote the row).
CDC_OP = "_cdc_op"
CDC_TS_MS = "_cdc_ts_ms"
CDC_POSITION = "_cdc_position"
CDC_OFFSET = "_cdc_offset"
CDC_COLUMNS = (CDC_OP, CDC_TS_MS, CDC_POSITION, CDC_OFFSET)
#: Snapshot summary property of the batch (besides :data:`SUMMARY_KAFKA_OFFSETS`).
SUMMARY_BATCH_ID = bronze.SUMMARY_BATCH_ID
SUMMARY_SOURCE = bronze.SUMMARY_SOURCE
SUMMARY_MANIFEST = bronze.SUMMARY_MANIFEST
#: Table property each CDC commit sets (so it is never rebased as a pure fast append).
LAST_BATCH_PROPERTY = "lakehouse.ingest.kafka.last-batch-id"
#: What Debezium's PostgreSQL connector sends for an unchanged TOASTed value it does not have
#: (``unavailable.value.placeholder``; the table's ``REPLICA IDENTITY`` is not ``FULL``).
UNAVAILABLE = "__debezium_unavailable_value"
#: Name of the landed file in each batch folder.
EVENTS_FILE = "events.jsonl"

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

#: ``topic → partition → next offset to read``.
Offsets = dict[str, dict[int, int]]


# -- configuration -----------------------------------------------------------------------------


class KafkaCdcSource(BaseModel):
    """Which topics feed which silver table, keyed by which columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Topics of Debezium change events (one per source table, usually).
    topics: tuple[str, ...] = Field(min_length=1)
    #: The silver table the changes are applied to (``silver.orders``).
    table: str
    #: Primary-key column(s) of the source table.
    key: tuple[str, ...] = Field(min_length=1)
    #: The bronze change log (default ``bronze.<table name>_changes``).
    bronze_table: str | None = None
    #: Records per batch (one commit each) at most.
    batch_size: int = Field(default=10_000, gt=0)
    #: Seconds a batch waits for records before it is committed with what it has.
    batch_timeout: float = Field(default=1.0, gt=0)
    #: ``host:port[,…]`` (default: ``settings.kafka.bootstrap_servers``).
    bootstrap_servers: str | None = None
    #: Extra librdkafka consumer settings, applied over ``settings.kafka.conf``.
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for topic in value:
            if not _TOPIC.match(topic):
                raise ValueError(f"invalid topic name {topic!r}")
        if len(set(value)) != len(value):
            raise ValueError("a topic is named twice")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(k.strip() for k in value if k.strip())
        if not cleaned:
            raise ValueError("at least one key column is needed")
        if any(k.startswith("_cdc_") for k in cleaned):
            raise ValueError("key columns cannot be _cdc_* columns")
        return cleaned

    @field_validator("table", "bronze_table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = qualify_table(value)
        return name

    @property
    def change_log(self) -> str:
        """The bronze change-log table."""
        return self.bronze_table or f"bronze.{self.table.rsplit('.', 1)[-1]}_changes"

    @classmethod
    def create(cls, **fields: Any) -> KafkaCdcSource:
        """Build one, raising :class:`SourceConfigError` (one line) when invalid."""
        from pydantic import ValidationError

        try:
            return cls(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise SourceConfigError(
                f"invalid Kafka CDC source: {where}: {first.get('msg')}".replace(": :", ":")
            ) from None


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One Kafka record as consumed (value ``None`` is a tombstone)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    #: Kafka timestamp (ms since the epoch), when the broker gave one.
    timestamp: int | None = None


@dataclass(frozen=True)
class ChangeEvent:
    """A parsed Debezium change event and the record it came from."""

    record: Record
    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ts_ms: int | None
    source: dict[str, Any]
    #: Comparable source position (``None`` when the connector's is not known).
    position: tuple[int, ...] | None
    #: Column types from the converter's schema (``None``: no schema, types are inferred).
    types: Mapping[str, pa.DataType] | None = None

    @property
    def image(self) -> dict[str, Any]:
        """The row image that names the key: ``after``, or ``before`` for a delete."""
        image = self.before if self.op == "d" else self.after
        assert image is not None
        return image

    @functools.cached_property
    def position_text(self) -> str:
        """The position as JSON (silver's ``_cdc_position``), e.g. ``[35028008, 35028192]``."""
        if self.position is not None:
            return "[" + ", ".join(map(str, self.position)) + "]"  # as json.dumps writes it
        return json.dumps(_position_fields(self.source), sort_keys=True, separators=(",", ":"))


def _position_fields(source: Mapping[str, Any]) -> dict[str, Any]:
    drop = {"ts_ms", "ts_us", "ts_ns", "snapshot", "version", "name"}
    return {k: v for k, v in source.items() if k not in drop}


def _loads(data: bytes) -> Any:
    """Parse JSON bytes (orjson when installed; the standard parser explains refusals)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json says why, or reads what orjson refuses (NaN, integers over 64 bits)
    return json.loads(data.decode("utf-8"))


def _dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text (``{"a":1}``), orjson when installed."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=default).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError: integers over 64 bits, NaN keys …
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


_SEQUENCE = re.compile(r'\[\s*(?:"(\d+)"|(\d+)|null)\s*,\s*(?:"(\d+)"|(\d+)|null)\s*\]')


def _sequence(text: str) -> tuple[int, int] | None:
    """PostgreSQL's ``["<last commit lsn>", "<lsn>"]`` (a null is 0), or ``None``."""
    match = _SEQUENCE.fullmatch(text)
    if match is None:
        return None
    a, b, c, d = match.groups()
    return (int(a or b or 0), int(c or d or 0))


def source_position(source: Mapping[str, Any]) -> tuple[int, ...] | None:
    """A comparable position from a Debezium ``source`` block, or ``None``.

    PostgreSQL: ``sequence`` (``["<last commit lsn>", "<lsn>"]``) as a pair, else
    ``(lsn,)``; MySQL: ``(binlog file number, pos, row)``. Positions of one connector
    only grow along its change stream; they are compared per key only.
    """
    sequence = source.get("sequence")
    if isinstance(sequence, str):
        pair = _sequence(sequence)
        if pair is not None:
            return pair
    lsn = _int(source.get("lsn"))
    if lsn is not None and source.get("connector") != "mongodb":
        return (0, lsn) if isinstance(sequence, str) else (lsn,)
    file, pos = source.get("file"), _int(source.get("pos"))
    if isinstance(file, str) and pos is not None:
        digits = re.findall(r"\d+", file)
        number = int(digits[-1]) if digits else 0
        return (number, pos, _int(source.get("row")) or 0)
    return None


# -- the JSON converter's schema: Kafka Connect and Debezium logical types ----------------------

_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1)


def _decimal(scale: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"a Decimal is base64 text, not {type(value).__name__}")
        unscaled = int.from_bytes(base64.b64decode(value, validate=True), "big", signed=True)
        sign, digits, _ = decimal.Decimal(unscaled).as_tuple()
        return decimal.Decimal((sign, digits, -scale))  # exact: no context rounding

    return convert


def _variable_decimal(value: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError("a VariableScaleDecimal is an object with 'scale' and 'value'")
    convert = _decimal(int(value["scale"]))
    return str(convert(value["value"]))


def _since_epoch(divisor: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        whole, rest = divmod(int(value), divisor)
        return _EPOCH + dt.timedelta(seconds=whole, microseconds=rest * 1_000_000 // divisor)

    return convert


def _time_of_day(divisor: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        micros = int(value) * 1_000_000 // divisor
        seconds, micro = divmod(micros, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return dt.time(hour % 24, minute, second, micro)

    return convert


def _zoned(value: Any) -> Any:
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC)


def _date(value: Any) -> Any:
    return _EPOCH_DATE + dt.timedelta(days=int(value))


def _json_text(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _binary(value: Any) -> Any:
    return base64.b64decode(value, validate=True)


_PLAIN_TYPES: dict[str, pa.DataType] = {
    "int8": pa.int32(),
    "int16": pa.int32(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "string": pa.string(),
}
_TIMESTAMP = pa.timestamp("us")
#: Logical type name → (Arrow type, converter of the JSON value).
_LOGICAL: dict[str, tuple[pa.DataType, Callable[[Any], Any]]] = {
    "org.apache.kafka.connect.data.Date": (pa.date32(), _date),
    "io.debezium.time.Date": (pa.date32(), _date),
    "org.apache.kafka.connect.data.Timestamp": (_TIMESTAMP, _since_epoch(1_000)),
    "io.debezium.time.Timestamp": (_TIMESTAMP, _since_epoch(1_000)),
    "io.debezium.time.MicroTimestamp": (_TIMESTAMP, _since_epoch(1_000_000)),
    "io.debezium.time.NanoTimestamp": (_TIMESTAMP, _since_epoch(1_000_000_000)),
    "io.debezium.time.ZonedTimestamp": (pa.timestamp("us", "UTC"), _zoned),
    "org.apache.kafka.connect.data.Time": (pa.time64("us"), _time_of_day(1_000)),
    "io.debezium.time.Time": (pa.time64("us"), _time_of_day(1_000)),
    "io.debezium.time.MicroTime": (pa.time64("us"), _time_of_day(1_000_000)),
    "io.debezium.time.NanoTime": (pa.time64("us"), _time_of_day(1_000_000_000)),
    "io.debezium.data.VariableScaleDecimal": (pa.string(), _variable_decimal),
    "io.debezium.data.Json": (pa.string(), _json_text),
}


@dataclass(frozen=True)
class RowSchema:
    """How to read one row image of the JSON converter's schema (``before``/``after``).

    Kafka Connect's and Debezium's logical types become Python values of their meaning —
    ``Decimal`` (base64 unscaled bytes and a scale) a :class:`decimal.Decimal` of the
    column's precision, ``Date``/``Timestamp``/``MicroTimestamp``/``NanoTimestamp`` dates
    and timestamps, ``ZonedTimestamp`` a UTC timestamp, ``Time``/``MicroTime``/``NanoTime``
    times, ``Json``/``VariableScaleDecimal`` and structs text — and every column gets its
    Arrow type from the schema, so a batch whose values are all NULL does not guess.
    """

    #: Column name → Arrow type.
    types: dict[str, pa.DataType]
    #: Column name → converter of its JSON value (columns that need one).
    converters: dict[str, Callable[[Any], Any]]

    def decode(self, image: dict[str, Any]) -> dict[str, Any]:
        """``image`` with its logically typed values converted."""
        if not self.converters:
            return image
        out = dict(image)
        for name, convert in self.converters.items():
            value = out.get(name)
            if value is not None:
                out[name] = convert(value)
        return out


def _column(field: Mapping[str, Any]) -> tuple[pa.DataType, Callable[[Any], Any] | None]:
    name, kind = field.get("name"), field.get("type")
    if name == "org.apache.kafka.connect.data.Decimal":
        params = field.get("parameters") or {}
        scale = int(params.get("scale", 0))
        precision = _int(params.get("connect.decimal.precision"))
        if precision is not None and 0 < precision <= 38 and 0 <= scale <= precision:
            return pa.decimal128(precision, scale), _decimal(scale)
        convert = _decimal(scale)
        return pa.string(), lambda v: str(convert(v))
    if isinstance(name, str) and name in _LOGICAL:
        return _LOGICAL[name]
    if kind in _PLAIN_TYPES:
        return _PLAIN_TYPES[str(kind)], None
    if kind == "bytes":
        return pa.binary(), _binary
    return pa.string(), _json_text  # struct, array, map: kept as JSON text


def row_schema(schema: Any) -> RowSchema | None:
    """The :class:`RowSchema` of an envelope's schema (``None`` when there is none)."""
    if not isinstance(schema, dict):
        return None
    for part in schema.get("fields") or ():
        if isinstance(part, dict) and part.get("field") in ("after", "before"):
            columns = part.get("fields")
            if isinstance(columns, list):
                types: dict[str, pa.DataType] = {}
                converters: dict[str, Callable[[Any], Any]] = {}
                for column in columns:
                    if not isinstance(column, dict) or not isinstance(column.get("field"), str):
                        continue
                    arrow_type, convert = _column(column)
                    types[column["field"]] = arrow_type
                    if convert is not None:
                        converters[column["field"]] = convert
                return RowSchema(types, converters)
    return None


def parse_event(record: Record) -> ChangeEvent | None:
    """The change event of ``record``; ``None`` for a tombstone.

    Raises :class:`BadInputError` (one line) for a poison event: not UTF-8 JSON, not an
    object, no valid ``op``, or without the ``after`` (``c``/``u``/``r``) or ``before``
    (``d``) image.
    """
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    if record.value is None:
        return None
    try:
        data = _loads(record.value)
    except UnicodeDecodeError:
        raise BadInputError(f"{where}: the value is not UTF-8", source="kafka") from None
    except ValueError as exc:
        raise BadInputError(f"{where}: malformed JSON ({exc})", source="kafka") from None
    schema: Any = None
    if isinstance(data, dict) and "payload" in data and set(data) <= {"schema", "payload"}:
        schema, data = data.get("schema"), data["payload"]
        if data is None:
            return None
    if not isinstance(data, dict):
        raise BadInputError(
            f"{where}: a change event is a JSON object, not {type(data).__name__}", source="kafka"
        )
    op = data.get("op")
    if op not in OPS:
        what = "has no 'op'" if op is None else f"has op {op!r} (expected c, u, d or r)"
        raise BadInputError(f"{where}: the change event {what}", source="kafka")
    before, after = data.get("before"), data.get("after")
    for name, image in (("before", before), ("after", after)):
        if image is not None and not isinstance(image, dict):
            raise BadInputError(f"{where}: '{name}' is not an object", source="kafka")
    needed = "before" if op == "d" else "after"
    if (before if op == "d" else after) is None:
        raise BadInputError(f"{where}: op {op!r} without the '{needed}' image", source="kafka")
    source = data.get("source")
    source = source if isinstance(source, dict) else {}
    ts = _int(data.get("ts_ms"))
    types: dict[str, pa.DataType] | None = None
    columns = row_schema(schema)
    if columns is not None:
        try:
            before = None if before is None else columns.decode(before)
            after = None if after is None else columns.decode(after)
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise BadInputError(
                f"{where}: a value does not match the event's schema ({exc})", source="kafka"
            ) from None
        types = columns.types
    return ChangeEvent(record, op, before, after, ts, source, source_position(source), types)


def row_key(event: ChangeEvent, key: Sequence[str]) -> tuple[Any, ...]:
    """The primary-key value of the row ``event`` changes (raises :class:`BadInputError`)."""
    image = event.image
    missing = [k for k in key if image.get(k) is None]
    if missing:
        r = event.record
        raise BadInputError(
            f"{r.topic}[{r.partition}]@{r.offset}: key column(s) {', '.join(missing)} missing "
            f"or null in the '{'before' if event.op == 'd' else 'after'}' image",
            source="kafka",
        )
    return tuple(image[k] for k in key)


def in_source_order(records: Iterable[Record]) -> list[Record]:
    """Records ordered per partition by offset (topic, partition, offset)."""
    return sorted(records, key=operator.attrgetter("topic", "partition", "offset"))


def next_offsets(previous: Mapping[str, Mapping[int, int]], records: Iterable[Record]) -> Offsets:
    """``previous`` advanced past ``records``: per partition, the last offset + 1."""
    merged: Offsets = {t: dict(parts) for t, parts in previous.items()}
    for r in records:
        parts = merged.setdefault(r.topic, {})
        parts[r.partition] = max(parts.get(r.partition, 0), r.offset + 1)
    return merged


def offsets_json(offsets: Mapping[str, Mapping[int, int]]) -> str:
    """The :data:`SUMMARY_KAFKA_OFFSETS` value (``{"topic": {"0": 42}}``, sorted)."""
    return json.dumps(
        {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in sorted(offsets.items())},
        separators=(",", ":"),
    )


def recorded_offsets(*tables: Table | None) -> Offsets:
    """The next offsets to read, from the ingestion state of ``tables`` (newest wins).

    Each table's state is its snapshot ancestry on top of its ingest-state checkpoint
    (:func:`lakehouse.ingest.bronze.ingest_state`), so offsets survive snapshot expiry.
    Several tables (bronze and silver are committed together) merge by the largest.
    """
    merged: Offsets = {}
    for table in tables:
        if table is None:
            continue
        for topic, parts in bronze.ingest_state(table).kafka_offsets.items():
            target = merged.setdefault(topic, {})
            for partition, offset in parts.items():
                target[partition] = max(target.get(partition, 0), offset)
    return merged


@dataclass
class Plan:
    """What a batch does to silver: the final image of every key it changes."""

    #: key → the change that decides the key's row (an upsert or a delete).
    final: dict[tuple[Any, ...], ChangeEvent] = field(default_factory=dict)
    #: Changes skipped because their source position was already applied.
    duplicates: int = 0


def plan_changes(
    events: Sequence[ChangeEvent],
    key: Sequence[str],
    applied: Mapping[tuple[Any, ...], str] | None = None,
    keys: Sequence[tuple[Any, ...]] | None = None,
) -> Plan:
    """The net effect of ``events`` (in source order) on silver, by key.

    ``applied`` maps keys to the ``_cdc_position`` of their current silver row. A change
    at or before the position already applied to its key (in silver or earlier in the
    batch) is a duplicate and skipped. ``keys`` are the events' :func:`row_key` values
    when the caller has them already.
    """
    plan = Plan()
    # key → (position, its text; the text only where there is no comparable position)
    seen: dict[tuple[Any, ...], tuple[tuple[int, ...] | None, str | None]] = {}
    for text_key, position in (applied or {}).items():
        seen[text_key] = (_parse_position(position), position)
    if keys is None:
        keys = [row_key(event, key) for event in events]
    for event, k in zip(events, keys, strict=True):
        known = seen.get(k)
        if known is not None and _not_after(event, known):
            plan.duplicates += 1
            continue
        seen[k] = (event.position, None if event.position is not None else event.position_text)
        plan.final[k] = event
    return plan


def _parse_position(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _not_after(event: ChangeEvent, known: tuple[tuple[int, ...] | None, str | None]) -> bool:
    position, text = known
    if event.position is not None and position is not None and len(position) == len(event.position):
        if len(position) == 2:
            # PostgreSQL [last commit LSN, LSN]: per key the change's own LSN decides. A
            # later change of a row comes from a transaction that took the row's lock after
            # the earlier one committed, so its LSN is larger; the commit LSN is null (0)
            # for the first change Debezium streams after a (re)start, so comparing whole
            # pairs would skip a real change as a duplicate.
            return event.position[1] <= position[1]
        return event.position <= position
    return event.position_text == text


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """One committed batch."""

    batch_id: str
    records: int
    changes: int
    tombstones: int
    rejected: int
    duplicates: int
    upserts: int
    deletes: int
    offsets: Offsets
    commit_hash: str | None
    #: Silver's snapshot id after the commit (``None`` when silver did not change).
    silver_snapshot_id: int | None
    added_columns: tuple[str, ...] = ()
    #: Where poison events of this batch were set aside.
    rejected_at: tuple[str, ...] = ()
    #: Largest Debezium ``ts_ms`` of the batch.
    max_ts_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "batch_id": self.batch_id,
            "records": self.records,
            "changes": self.changes,
            "tombstones": self.tombstones,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "upserts": self.upserts,
            "deletes": self.deletes,
            "offsets": _offsets_out(self.offsets),
            "commit_hash": self.commit_hash,
            "silver_snapshot_id": self.silver_snapshot_id,
            "added_columns": list(self.added_columns),
            "rejected_at": list(self.rejected_at),
        }


def _offsets_out(offsets: Mapping[str, Mapping[int, int]]) -> dict[str, dict[str, int]]:
    return {
        t: {str(p): o for p, o in sorted(parts.items())} for t, parts in sorted(offsets.items())
    }


@dataclass
class KafkaIngestResult:
    """What :func:`consume_cdc` did, summed over its batches."""

    table: str
    bronze_table: str
    branch: str
    topics: tuple[str, ...]
    #: Offsets it started from (from the catalog) and ended at (next offsets to read).
    start_offsets: Offsets = field(default_factory=dict)
    offsets: Offsets = field(default_factory=dict)
    batches: int = 0
    records: int = 0
    changes: int = 0
    tombstones: int = 0
    rejected: int = 0
    duplicates: int = 0
    upserts: int = 0
    deletes: int = 0
    added_columns: tuple[str, ...] = ()
    last_commit: str | None = None
    #: Why it stopped: ``max-batches``, ``idle``, ``stopped`` (signal) or ``paused``.
    stopped: str | None = None

    def add(self, batch: BatchResult) -> None:
        """Count one committed batch."""
        self.batches += 1
        self.records += batch.records
        self.changes += batch.changes
        self.tombstones += batch.tombstones
        self.rejected += batch.rejected
        self.duplicates += batch.duplicates
        self.upserts += batch.upserts
        self.deletes += batch.deletes
        self.offsets = batch.offsets
        self.last_commit = batch.commit_hash or self.last_commit
        self.added_columns = tuple(dict.fromkeys((*self.added_columns, *batch.added_columns)))

    def to_json(self) -> dict[str, Any]:
        """JSON form (``lakehouse ingest kafka --output json``)."""
        return {
            "table": self.table,
            "bronze_table": self.bronze_table,
            "branch": self.branch,
            "topics": list(self.topics),
            "batches": self.batches,
            "records": self.records,
            "changes": self.changes,
            "tombstones": self.tombstones,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "upserts": self.upserts,
            "deletes": self.deletes,
            "added_columns": list(self.added_columns),
            "start_offsets": _offsets_out(self.start_offsets),
            "offsets": _offsets_out(self.offsets),
            "last_commit": self.last_commit,
            "stopped": self.stopped,
        }


# -- the consumer ------------------------------------------------------------------------------

#: ``on_batch(result)`` after every commit.
BatchCallback = Callable[[BatchResult], None]


class RecordSource(ABC):
    """Where records come from: Kafka via confluent-kafka (tests may pass another)."""

    @abstractmethod
    def assign(self, offsets: Mapping[str, Mapping[int, int]]) -> Offsets:
        """Start every partition of the topics at ``offsets`` (else the beginning).

        Returns the partitions assigned with their start offsets (``-2``: beginning).
        """

    @abstractmethod
    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds."""

    def close(self) -> None:  # noqa: B027  # optional: sources without a connection
        """Release the connection (nothing by default)."""

    def lag(self, offsets: Mapping[str, Mapping[int, int]]) -> dict[tuple[str, int], int]:
        """Records behind each partition's end from ``offsets`` (empty when unknown)."""
        return {}


class KafkaRecordSource(RecordSource):
    """A confluent-kafka consumer with manually assigned partitions, no offset commits."""

    def __init__(self, topics: Sequence[str], conf: Mapping[str, str]) -> None:
        try:
            from confluent_kafka import Consumer
        except ImportError:  # pragma: no cover - depends on the install
            raise SourceConfigError(
                "Kafka ingestion needs confluent-kafka: pip install 'lakehouse[kafka]'"
            ) from None
        self.topics = tuple(topics)
        settings = {
            "group.id": "lakehouse-cdc",  # required by librdkafka; never committed to
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "false",
            "auto.offset.reset": "earliest",
            **conf,
        }
        settings["enable.auto.commit"] = "false"
        self._bootstrap = str(settings.get("bootstrap.servers", ""))
        self._consumer = Consumer(settings, logger=logging.getLogger("lakehouse.ingest.kafka.rd"))

    def _partitions(self, topic: str, timeout: float = 15.0) -> list[int]:
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + timeout
        while True:
            try:
                meta = self._consumer.list_topics(topic, timeout=max(1.0, timeout / 3))
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise SourceUnavailableError(
                        f"Kafka at {self._bootstrap} cannot be reached: {exc.args[0]}",
                        source="kafka",
                    ) from None
                continue
            found = meta.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            if time.monotonic() >= deadline:
                why = found.error if found is not None and found.error else "no partitions"
                raise SourceUnavailableError(
                    f"topic {topic!r} on Kafka at {self._bootstrap} is not available ({why})",
                    source="kafka",
                )
            time.sleep(0.5)

    def assign(self, offsets: Mapping[str, Mapping[int, int]]) -> Offsets:
        """Assign every partition of every topic at the catalog's offsets."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        assigned: Offsets = {}
        partitions = []
        for topic in self.topics:
            known = offsets.get(topic, {})
            for p in self._partitions(topic):
                start = known.get(p, OFFSET_BEGINNING)
                if start >= 0:
                    low, _ = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=15
                    )
                    if start < low:
                        raise IngestError(
                            f"the catalog's next offset for {topic}[{p}] is {start} but Kafka "
                            f"only keeps offsets from {low} (retention): events were lost; "
                            "re-snapshot the source (a new Debezium snapshot) into this table",
                            source="kafka",
                        )
                partitions.append(TopicPartition(topic, p, start))
                assigned.setdefault(topic, {})[p] = start
        self._consumer.assign(partitions)
        return assigned

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Consume up to ``max_records``; fatal consumer errors raise."""
        from confluent_kafka import KafkaError

        out: list[Record] = []
        for msg in self._consumer.consume(num_messages=max_records, timeout=timeout):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal() or err.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                ):
                    raise SourceUnavailableError(f"Kafka: {err.str()}", source="kafka")
                logger.warning("Kafka consumer: %s", err.str())
                continue
            ts_type, ts = msg.timestamp()
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            out.append(
                Record(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    value=msg.value(),
                    key=msg.key(),
                    timestamp=ts if ts_type else None,
                )
            )
        return out

    def lag(self, offsets: Mapping[str, Mapping[int, int]]) -> dict[tuple[str, int], int]:
        """High watermark minus the next offset, per partition, from the consumer's cache."""
        from confluent_kafka import TopicPartition

        out: dict[tuple[str, int], int] = {}
        for topic, parts in offsets.items():
            for partition, offset in parts.items():
                tp = TopicPartition(topic, partition)
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high is not None and high >= 0 and offset >= 0:
                    out[(topic, partition)] = high - offset
        return out

    def close(self) -> None:
        """Close the consumer (commits nothing: auto-commit is off)."""
        self._consumer.close()


def consumer_conf(lakehouse: Lakehouse, source: KafkaCdcSource) -> dict[str, str]:
    """librdkafka settings: ``settings.kafka`` overlaid with the source's."""
    kafka = lakehouse.settings.kafka
    conf = {**kafka.conf, **source.conf}
    conf["bootstrap.servers"] = source.bootstrap_servers or conf.get(
        "bootstrap.servers", kafka.bootstrap_servers
    )
    return conf


def consume_cdc(
    lakehouse: Lakehouse,
    source: KafkaCdcSource,
    *,
    branch: str | None = None,
    max_batches: int | None = None,
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
    on_batch: BatchCallback | None = None,
    records: RecordSource | None = None,
) -> KafkaIngestResult:
    """Consume change events from ``source.topics`` into bronze and silver on ``branch``.

    Runs until ``max_batches`` batches are committed, no record arrived for
    ``idle_timeout`` seconds, ``stop`` is set (the batch being gathered is committed
    first) or the lakehouse is paused. ``records`` replaces the Kafka consumer (tests).
    Raises :class:`~lakehouse.ops.errors.PausedError` when paused at the start,
    :class:`BatchQuarantinedError` when a batch does not fit silver (nothing committed)
    and :class:`SourceUnavailableError` when Kafka cannot be reached.
    """
    ensure_not_paused(lakehouse, "ingestion")
    target = lakehouse.store.writable_branch(branch or lakehouse.default_ref).name
    catalog = lakehouse.catalog(target)
    properties = lakehouse.settings.fileio_properties()
    landing = Landing(resolve(lakehouse.warehouse.bucket_uri("raw"), properties))
    loader = _Loader(lakehouse, catalog, source, target, landing)
    start = recorded_offsets(loader.bronze_table(), loader.silver_table())
    result = KafkaIngestResult(
        source.table, source.change_log, target, source.topics, start_offsets=start, offsets=start
    )
    own = records is None
    feed = records or KafkaRecordSource(source.topics, consumer_conf(lakehouse, source))
    stop = stop or threading.Event()
    try:
        assigned = feed.assign(start)
        logger.info("consuming %s from %s", ", ".join(source.topics), assigned)
        offsets = start
        idle_since = time.monotonic()
        with storage_properties(properties):
            while not stop.is_set():
                if max_batches is not None and result.batches >= max_batches:
                    result.stopped = "max-batches"
                    break
                if result.batches and pause_state(lakehouse.store).paused:
                    result.stopped = "paused"
                    break
                batch = _gather(feed, source, stop)
                if not batch:
                    if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                        result.stopped = "idle"
                        break
                    continue
                idle_since = time.monotonic()
                done = loader.load(batch, offsets)
                offsets = done.offsets
                result.add(done)
                record_ingest(
                    "kafka", source.table, rows=done.changes, rejected_records=done.rejected
                )
                record_cdc_lag(
                    source.table, newest_event_ms=done.max_ts_ms, lag_records=feed.lag(offsets)
                )
                if on_batch is not None:
                    on_batch(done)
            else:
                result.stopped = "stopped"
    finally:
        if own:
            feed.close()
    return result


def _gather(feed: RecordSource, source: KafkaCdcSource, stop: threading.Event) -> list[Record]:
    """Records until the batch is full, its time is up, or ``stop`` is set."""
    deadline = time.monotonic() + source.batch_timeout
    out: list[Record] = []
    while len(out) < source.batch_size and not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        out.extend(feed.poll(source.batch_size - len(out), min(left, 0.25)))
    return out


class _Loader:
    """Lands, logs and applies batches for one source on one branch."""

    def __init__(
        self,
        lakehouse: Lakehouse,
        catalog: RefCatalog,
        source: KafkaCdcSource,
        branch: str,
        landing: Landing,
    ) -> None:
        self.lakehouse = lakehouse
        self.catalog = catalog
        self.source = source
        self.branch = branch
        self.landing = landing

    def bronze_table(self) -> Table | None:
        return bronze.load_table(self.catalog, self.source.change_log)

    def silver_table(self) -> Table | None:
        return bronze.load_table(self.catalog, self.source.table)

    # -- one batch ------------------------------------------------------------------------

    def load(self, records: list[Record], offsets: Offsets) -> BatchResult:
        at = dt.datetime.now(dt.UTC)
        batch_id = new_batch_id(at)
        ordered = in_source_order(records)
        events: list[ChangeEvent] = []
        keys: list[tuple[Any, ...]] = []
        poison: list[tuple[Record, str]] = []
        logged: list[tuple[Record, ChangeEvent | None, str | None]] = []
        tombstones = 0
        for record in ordered:
            try:
                event = parse_event(record)
                k = None if event is None else row_key(event, self.source.key)
            except BadInputError as exc:
                poison.append((record, str(exc)))
                logged.append((record, None, str(exc)))
                continue
            logged.append((record, event, None))
            if event is None or k is None:
                tombstones += 1
            else:
                events.append(event)
                keys.append(k)
        new_offsets = next_offsets(offsets, ordered)

        with tempfile.TemporaryDirectory(prefix="lakehouse-kafka-") as scratch:
            silver = self.silver_table()
            change_log = self.bronze_table()
            applied = self._applied(silver, keys)
            plan = plan_changes(events, self.source.key, applied.positions, keys)
            upserts = [e for e in plan.final.values() if e.op != "d"]
            deletes = [k for k, e in plan.final.items() if e.op == "d" and k in applied.rows]
            silver_data, reasons = self._silver_rows(upserts)
            fitted: bronze.Fit | None = None
            if silver_data is not None and not reasons:
                fit = bronze.fit(silver, silver_data)
                if isinstance(fit, list):
                    reasons = fit
                else:
                    fitted = fit
            if reasons:
                where = self._reject(ordered, scratch, batch_id, at, reasons)
                raise BatchQuarantinedError(
                    f"batch {batch_id} of {', '.join(self.source.topics)} does not fit "
                    f"{self.source.table}: {'; '.join(reasons)} (nothing committed; events "
                    f"kept under {where[0] if where else 'raw/_rejected/'})",
                    source="kafka",
                )
            rejected_at: list[str] = []
            if poison:
                rejected_at = self._reject(
                    [r for r, _ in poison], scratch, batch_id, at, [f"{why}" for _, why in poison]
                )
                for _, why in poison:
                    logger.warning("skipped a poison event: %s", why)
            manifests = self._land(ordered, scratch, batch_id, at)
            summary = {
                SUMMARY_KAFKA_OFFSETS: offsets_json(new_offsets),
                SUMMARY_BATCH_ID: batch_id,
                SUMMARY_SOURCE: "kafka",
                SUMMARY_MANIFEST: ",".join(manifests),
            }
            change_log = self._ensure_change_log(change_log)
            from lakehouse.catalog.iceberg import TableChange

            changes: list[TableChange] = []
            log_rows = self._log_rows(logged, batch_id, manifests, at)
            tx = change_log.transaction()
            tx.append(log_rows, snapshot_properties=summary)
            tx.set_properties({LAST_BATCH_PROPERTY: batch_id})
            changes.append(TableChange.of_transaction(change_log, tx))
            added: tuple[str, ...] = ()
            silver_changed = bool(deletes or upserts)
            if silver_changed:
                if silver is None:
                    assert fitted is not None
                    silver = self._create_silver(fitted.data.schema)
                    fit2 = bronze.fit(silver, fitted.data)
                    assert not isinstance(fit2, list)
                    fitted = fit2
                else:
                    added = fitted.added if fitted is not None else ()
                silver_tx = self._apply(silver, applied, plan, fitted, summary, batch_id)
                changes.append(TableChange.of_transaction(silver, silver_tx))
            responses = self.catalog.commit_tables(changes)
        commit = self._commit_hash()
        silver_snapshot = responses[1].metadata.current_snapshot_id if silver_changed else None
        ts = [e.ts_ms for e in events if e.ts_ms is not None]
        return BatchResult(
            batch_id=batch_id,
            records=len(ordered),
            changes=len(events),
            tombstones=tombstones,
            rejected=len(poison),
            duplicates=plan.duplicates,
            upserts=len(upserts),
            deletes=len(deletes),
            offsets=new_offsets,
            commit_hash=commit,
            silver_snapshot_id=silver_snapshot,
            added_columns=added,
            rejected_at=tuple(rejected_at),
            max_ts_ms=max(ts) if ts else None,
        )

    def _commit_hash(self) -> str | None:
        try:
            return self.lakehouse.store.resolve(self.branch).hash
        except Exception:  # pragma: no cover - informational only
            return None

    # -- silver ---------------------------------------------------------------------------

    @dataclass
    class _Applied:
        positions: dict[tuple[Any, ...], str]
        rows: set[tuple[Any, ...]]
        existing: pa.Table | None
        row_filter: Any

    def _applied(self, silver: Table | None, keys: Sequence[tuple[Any, ...]]) -> _Loader._Applied:
        """Silver's current rows for ``keys`` (found by key, lakehouse.tables)."""
        if silver is None or not keys or silver.current_snapshot() is None:
            return self._Applied({}, set(), None, None)
        key = self.source.key
        columns = set(silver.schema().column_names)
        if not all(k in columns for k in key):
            return self._Applied({}, set(), None, None)
        key_types = silver.schema().as_arrow()
        wanted = set(keys)  # each key once: a batch changes a hot key many times
        wanted_keys = pa.table(
            {
                k: pa.array([w[i] for w in wanted], key_types.field(k).type)
                for i, k in enumerate(key)
            }
        )
        wanted_columns = [*key, *([CDC_POSITION] if CDC_POSITION in columns else [])]
        existing = lookup(silver, wanted_keys, key, wanted_columns)
        positions: dict[tuple[Any, ...], str] = {}
        rows: set[tuple[Any, ...]] = set()
        if existing.num_rows:
            cols = [existing.column(k).to_pylist() for k in key]
            pos = (
                existing.column(CDC_POSITION).to_pylist()
                if CDC_POSITION in existing.column_names
                else [None] * existing.num_rows
            )
            for i, p in enumerate(pos):
                k_ = tuple(c[i] for c in cols)
                if k_ in wanted:
                    rows.add(k_)
                    if p:
                        positions[k_] = p
        return self._Applied(positions, rows, existing, None)

    def _silver_rows(self, upserts: Sequence[ChangeEvent]) -> tuple[pa.Table | None, list[str]]:
        """The upserted ``after`` images as a table with the ``_cdc_*`` columns."""
        if not upserts:
            return None, []
        names: dict[str, None] = {}
        for event in upserts:
            for name in event.image:
                if name in CDC_COLUMNS:
                    return None, [f"column {name!r} of the source is reserved for CDC metadata"]
                names.setdefault(name)
        arrays: list[pa.Array] = []
        fields: list[pa.Field] = []
        declared: dict[str, pa.DataType] = {}
        for event in reversed(upserts):  # the newest schema wins
            if event.types is not None:
                declared = {**event.types, **declared}
        for name in names:
            try:
                array = pa.array([e.image.get(name) for e in upserts], declared.get(name))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                return None, [f"column {name!r} has values of different types ({exc})"]
            if pa.types.is_string(array.type) and pc.any(pc.equal(array, UNAVAILABLE)).as_py():
                logger.warning(
                    "column %r of %s holds Debezium's placeholder %r: PostgreSQL did not send an "
                    "unchanged TOASTed value; set REPLICA IDENTITY FULL on the source table "
                    "(docs/cdc.md)",
                    name,
                    self.source.table,
                    UNAVAILABLE,
                )
            arrays.append(array)
            fields.append(pa.field(name, array.type))
        meta = [
            (CDC_OP, pa.array([e.op for e in upserts], pa.string())),
            (CDC_TS_MS, pa.array([e.ts_ms for e in upserts], pa.int64())),
            (CDC_POSITION, pa.array([e.position_text for e in upserts], pa.string())),
            (CDC_OFFSET, pa.array([_where(e.record) for e in upserts], pa.string())),
        ]
        for name, array in meta:
            arrays.append(array)
            fields.append(pa.field(name, array.type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), []

    def _create_silver(self, schema: pa.Schema) -> Table:
        bronze.ensure_namespace(self.catalog, self.source.table.split(".")[:-1])
        return self.catalog.create_table(
            self.source.table,
            schema=schema,
            properties={**DEFAULT_TABLE_PROPERTIES, **bronze.TABLE_PROPERTIES},
        )

    def _apply(
        self,
        silver: Table,
        applied: _Loader._Applied,
        plan: Plan,
        fitted: bronze.Fit | None,
        summary: Mapping[str, str],
        batch_id: str,
    ) -> Transaction:
        """Silver's transaction: position-delete the changed keys' rows, append their new images."""
        key = self.source.key
        tx = silver.transaction()
        props = dict(summary)
        if fitted is not None and fitted.evolve:
            with tx.update_schema() as update:
                update.union_by_name(fitted.data.schema)
                current = silver.schema().column_names
                if CDC_OP in current:
                    for column in fitted.added:
                        if column not in CDC_COLUMNS:
                            update.move_before(column, CDC_OP)
        # Merge-on-read: the changed keys' old rows get position deletes, their new images
        # are appended, one row-delta snapshot (lakehouse.tables); no row is rewritten.
        gone = [k for k, e in plan.final.items() if e.op == "d" and k in applied.rows]
        key_types = silver.schema().as_arrow()
        delete_keys = pa.table(
            {k: pa.array([g[i] for g in gone], key_types.field(k).type) for i, k in enumerate(key)}
        )
        data = fitted.data if fitted is not None else None
        if data is None:
            data = key_types.empty_table()
        stage_upsert(tx, data, key, delete_keys=delete_keys, properties=props, detect_changes=False)
        tx.set_properties({LAST_BATCH_PROPERTY: batch_id})
        return tx

    # -- bronze change log ------------------------------------------------------------------

    def _ensure_change_log(self, table: Table | None) -> Table:
        if table is not None:
            return table
        from pyiceberg.exceptions import TableAlreadyExistsError

        bronze.ensure_namespace(self.catalog, self.source.change_log.split(".")[:-1])
        try:
            return self.catalog.create_table(
                self.source.change_log,
                schema=CHANGE_LOG_SCHEMA,
                properties=dict(bronze.TABLE_PROPERTIES),
            )
        except TableAlreadyExistsError:  # pragma: no cover - created concurrently
            return self.catalog.load_table(self.source.change_log)

    def _log_rows(
        self,
        logged: Sequence[tuple[Record, ChangeEvent | None, str | None]],
        batch_id: str,
        manifests: Sequence[str],
        at: dt.datetime,
    ) -> pa.Table:
        """One change-log row per record (changes, tombstones and rejected records)."""

        def dumps(image: dict[str, Any] | None) -> str | None:
            if image is None:
                return None
            return _dumps(image, _json_value)

        by_topic = {m.split("/kafka/", 1)[-1].split("/", 1)[0]: m for m in manifests}
        # milliseconds → timestamp[us] in Arrow, not a datetime object per record
        millis = pa.array([r.timestamp for r, _, _ in logged], pa.int64())
        kafka_ts = pc.multiply(millis, 1000).cast(pa.timestamp("us", "UTC"))
        data = {
            "op": [e.op if e else None for _, e, _ in logged],
            "ts_ms": [e.ts_ms if e else None for _, e, _ in logged],
            "source": [_dumps(e.source) if e else None for _, e, _ in logged],
            "position": [e.position_text if e else None for _, e, _ in logged],
            "topic": [r.topic for r, _, _ in logged],
            "partition": [r.partition for r, _, _ in logged],
            "offset": [r.offset for r, _, _ in logged],
            "kafka_timestamp": kafka_ts,
            "key": [_text(r.key) for r, _, _ in logged],
            "before": [dumps(e.before) if e else None for _, e, _ in logged],
            "after": [dumps(e.after) if e else None for _, e, _ in logged],
            "error": [error for _, _, error in logged],
        }
        table = pa.Table.from_pydict(data, schema=_CHANGE_LOG_ARROW)
        landed = {t: m.rsplit("/", 1)[0] + "/" + EVENTS_FILE for t, m in by_topic.items()}
        files = [landed[r.topic] for r, _, _ in logged]
        table = bronze.with_ingestion_columns(
            table, batch_id=batch_id, source_file="", ingested_at=at
        )
        index = table.column_names.index(bronze.SOURCE_FILE)
        return table.set_column(
            index,
            pa.field(bronze.SOURCE_FILE, pa.string(), nullable=False),
            pa.array(files, pa.string()),
        )

    # -- raw landing ---------------------------------------------------------------------------

    def _files(
        self, records: Sequence[Record], scratch: str, batch_id: str
    ) -> dict[str, tuple[Checked, int]]:
        """One ``events.jsonl`` per topic in the scratch folder, checked."""
        by_topic: dict[str, list[Record]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        out: dict[str, tuple[Checked, int]] = {}
        for topic, items in by_topic.items():
            path = Path(scratch) / batch_id / topic / EVENTS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as fh:
                for r in items:
                    fh.write(_dumps(_raw_line(r)))
                    fh.write("\n")
            ref = resolve(str(path), {})
            size, sha256 = hash_file(ref)
            file = SourceFile(
                name=EVENTS_FILE,
                origin=f"kafka://{topic}",
                ref=ref,
                format="jsonl",
                options=FormatOptions(),
                table=self.source.change_log,
            )
            out[topic] = (Checked(file, size, sha256), len(items))
        return out

    def _land(
        self, records: Sequence[Record], scratch: str, batch_id: str, at: dt.datetime
    ) -> list[str]:
        manifests = []
        for topic, (checked, n) in self._files(records, scratch, batch_id).items():
            folder = self.landing.batch_folder(f"kafka/{topic}", batch_id, at)
            manifest: FileRef = self.landing.land(
                [checked],
                folder,
                source=f"kafka/{topic}",
                source_type="kafka",
                table=self.source.change_log,
                batch_id=batch_id,
                at=at,
                branch=self.branch,
                rows={EVENTS_FILE: n},
                cursor=None,
            )
            manifests.append(manifest.uri)
        return manifests

    def _reject(
        self,
        records: Sequence[Record],
        scratch: str,
        batch_id: str,
        at: dt.datetime,
        reasons: Sequence[str],
    ) -> list[str]:
        where = []
        rejected = Path(scratch) / "_rejected"
        for topic, (checked, _) in self._files(records, str(rejected), batch_id).items():
            folder = self.landing.quarantine(
                [checked],
                source=f"kafka/{topic}",
                table=self.source.table,
                batch_id=batch_id,
                at=at,
                branch=self.branch,
                reasons=reasons,
            )
            where.append(folder.uri)
        return where


def _json_value(value: Any) -> Any:
    """JSON form of a decoded logical value (the change log's images)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _where(record: Record) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    return data.decode("utf-8", errors="replace")


def _raw_line(record: Record) -> dict[str, Any]:
    value: str | None
    line: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
    }
    if record.value is None:
        value = None
    else:
        try:
            value = record.value.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            line["value_base64"] = base64.b64encode(record.value).decode("ascii")
            return line
    line["value"] = value
    return line


_CHANGE_LOG_ARROW = pa.schema(
    [
        pa.field("op", pa.string()),
        pa.field("ts_ms", pa.int64()),
        pa.field("source", pa.string()),
        pa.field("position", pa.string()),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kafka_timestamp", pa.timestamp("us", "UTC")),
        pa.field("key", pa.string()),
        pa.field("before", pa.string()),
        pa.field("after", pa.string()),
        pa.field("error", pa.string()),
    ]
)
#: Schema of the bronze change log (plus the ingestion columns).
CHANGE_LOG_SCHEMA = pa.schema(
    [
        *_CHANGE_LOG_ARROW,
        pa.field(bronze.BATCH_ID, pa.string(), nullable=False),
        pa.field(bronze.SOURCE_FILE, pa.string(), nullable=False),
        pa.field(bronze.INGESTED_AT, pa.timestamp("us", "UTC"), nullable=False),
    ]
)

__all__ = [
    "CDC_COLUMNS",
    "CHANGE_LOG_SCHEMA",
    "OPS",
    "UNAVAILABLE",
    "BatchCallback",
    "BatchResult",
    "ChangeEvent",
    "KafkaCdcSource",
    "KafkaIngestResult",
    "KafkaRecordSource",
    "Plan",
    "Record",
    "RecordSource",
    "RowSchema",
    "consume_cdc",
    "consumer_conf",
    "in_source_order",
    "next_offsets",
    "offsets_json",
    "parse_event",
    "plan_changes",
    "recorded_offsets",
    "row_key",
    "row_schema",
    "source_position",
]
