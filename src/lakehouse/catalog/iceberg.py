"""A PyIceberg catalog bound to one reference of the versioned catalog: tables live on branches.

:class:`RefCatalog` is a :class:`pyiceberg.catalog.MetastoreCatalog` whose state is the
content of one reference of a :class:`~lakehouse.catalog.store.VersionStore`:

* namespaces are :class:`~lakehouse.catalog.model.Namespace` content, tables are
  :class:`~lakehouse.catalog.model.IcebergTable` content (metadata location, snapshot,
  schema, spec and sort-order ids, stable content id), views are
  :class:`~lakehouse.catalog.model.IcebergView` content;
* bound to a branch (``"dev"``) it reads that branch's head and every change is one
  commit on it, made with the expected hash the table was read at; bound to a tag,
  a ``name@hash``, ``@hash`` or a relative spec (``main~3``, ``main*2026-01-01``) it
  reads that fixed point of history and every write raises
  :class:`~lakehouse.errors.ReadOnlyReferenceError`.

Files (DESIGN §3): data under the zone bucket of the table's namespace, metadata under
the ``iceberg-metadata`` bucket (see :mod:`lakehouse.storage.zones`). Every table carries
``gc.enabled=false`` and ``write.metadata.delete-after-commit.enabled=false``; commits that
would turn either on are refused, and this catalog never deletes a file: another branch,
a tag or an old commit may still point at it. Only the garbage collector, which marks
what every reference can reach, deletes files. :meth:`RefCatalog.purge_table` therefore
only drops the table from the branch.

Commits (the PyIceberg ``commit_table`` hook) follow Iceberg's REST catalog semantics:
read the branch head and the table's current metadata, validate the Iceberg
requirements against that *current* metadata, apply the updates
(:func:`pyiceberg.table.update.update_table_metadata`), write the new metadata file and
commit it with the expected hash. Writers of one table first queue on the store's
per-table commit lock (:meth:`~lakehouse.catalog.store.VersionStore.commit_lock`, bounded
wait), so concurrent appends wait their turn instead of redoing work after lost races;
``Table.append`` checks and writes its data files and their manifest before it queues
(:mod:`lakehouse.tables.appends`), so only the snapshot (the head's manifests, the manifest
list, the metadata file) and the catalog commit are made one at a time.
When the store reports that the table changed in
between, the loop re-reads and tries again (bounded, jittered backoff). When the
requirements fail because another writer moved the table's branch, a pure fast append
is rebased onto the new head (its manifests reused, a new manifest list with the right
parent, sequence number and summary totals); anything else raises
:class:`~pyiceberg.exceptions.CommitFailedException` naming the table and the branch.
An unknown commit outcome raises :class:`~pyiceberg.exceptions.CommitStateUnknownException`
and nothing is cleaned up. :meth:`RefCatalog.commit_tables` does the same for several
tables at once: every table's requirements are validated and its metadata file written,
then one catalog commit carries all of them (or none lands).

Cost (issue 10): a commit costs in proportion to the change, not to the table's history.
Staged and committed metadata share every unchanged snapshot and log entry with the
metadata they came from (no deep copies, see :mod:`lakehouse.tables.metadata`; tables of
this catalog hand out transactions that do the same), parsed metadata files and manifest
lists are kept per location (both are immutable), a metadata file another writer wrote
is parsed reusing the snapshots and log entries of the table's previous parse whose JSON
is unchanged, each snapshot is serialised to JSON once, a rebase reuses the manifests
the writer already wrote, and new tables merge small manifests on append and keep Parquet
dictionaries small (:data:`DEFAULT_TABLE_PROPERTIES`).

Locations (DESIGN §3, issue 3): an explicit table location, a metadata file to register
and any ``write.*.path`` or table location a commit sets must be inside the warehouse
(:meth:`~lakehouse.storage.zones.Warehouse.contains`), else
:class:`~lakehouse.errors.LocationNotAllowedError`. A catalog made with
``lakehouse.locations.confined=true`` (the Iceberg REST server's) also refuses to read
or write metadata of existing tables outside the warehouse, and new snapshots whose
manifest list is outside it.
"""

from __future__ import annotations

import copy
import json
import logging
import operator
import random
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pyiceberg.catalog import MetastoreCatalog, PropertiesUpdateSummary
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    NoSuchViewError,
    TableAlreadyExistsError,
    ValidationException,
    ViewAlreadyExistsError,
)
from pyiceberg.io import FileIO
from pyiceberg.manifest import (
    DataFile,
    ManifestContent,
    ManifestFile,
    write_manifest_list,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.serializers import NOOP_COMPRESSOR, Compressor, FromInputFile, ToOutputFile
from pyiceberg.table import (
    DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE,
    CommitTableResponse,
    StagedTable,
    Table,
    TableProperties,
    Transaction,
)
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil, new_table_metadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation as SnapshotOperation
from pyiceberg.table.snapshots import (
    Snapshot,
    SnapshotLogEntry,
    Summary,
    update_snapshot_summaries,
)
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertCreate,
    AssertRefSnapshotId,
    RemovePropertiesUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
    update_table_metadata,
)
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties
from pyiceberg.utils.config import Config
from pyiceberg.utils.properties import property_as_bool
from pyiceberg.view import View
from pyiceberg.view.metadata import ViewHistoryEntry, ViewMetadata, ViewVersion

from lakehouse.catalog.model import (
    CommitMeta,
    CommitResult,
    Conflict,
    ConflictType,
    Content,
    ContentKey,
    ContentType,
    Delete,
    IcebergTable,
    IcebergView,
    Namespace,
    Operation,
    Put,
    ReferenceType,
    RefSpec,
)
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import (
    CommitConflictError,
    CommitStateUnknownError,
    InvalidInputError,
    LocationNotAllowedError,
    ReadOnlyReferenceError,
    ReferenceConflictError,
    TransientCatalogError,
)
from lakehouse.storage.zones import Warehouse
from lakehouse.tables.appends import prepare_append
from lakehouse.tables.manifests import avro_compression, read_manifest_list
from lakehouse.tables.metadata import StagedTransaction, apply_updates
from lakehouse.tables.rowdelta import WRITER_PROPERTY as ROW_DELTA_PROPERTY

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Table properties every table of the versioned catalog carries (DESIGN §3).
GC_ENABLED = "gc.enabled"
METADATA_DELETE_AFTER_COMMIT = TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED
SAFETY_PROPERTIES: Mapping[str, str] = {GC_ENABLED: "false", METADATA_DELETE_AFTER_COMMIT: "false"}

#: Defaults of tables this catalog creates (a table's own properties win).
#:
#: * Appends merge small manifests, as Iceberg's Java ``newAppend()`` does, so that the
#:   manifest list each append reads and writes stays short however many snapshots the
#:   table has.
#: * A Parquet column chunk's dictionary stops at 64 KiB (Iceberg's default is 2 MiB): a
#:   column of distinct values (keys, timestamps, amounts, free text) is then written
#:   plain, not with a dictionary of every value in the row group, which is larger than
#:   the values and slower to write and to read; columns of few values keep theirs.
#:   PyIceberg's writer and Spark's both honour the property.
DEFAULT_TABLE_PROPERTIES: Mapping[str, str] = {
    TableProperties.MANIFEST_MERGE_ENABLED: "true",
    TableProperties.PARQUET_DICT_SIZE_BYTES: str(64 * 1024),
}

#: Catalog properties that tune the commit loop (values are strings, like every property).
COMMIT_ATTEMPTS = "lakehouse.commit.attempts"
COMMIT_MIN_WAIT_MS = "lakehouse.commit.min-wait-ms"
COMMIT_MAX_WAIT_MS = "lakehouse.commit.max-wait-ms"
#: Catalog property: how long a table commit waits for the store's per-table commit lock
#: before going on without it (``0`` turns the lock off; commits stay optimistic either way).
COMMIT_LOCK_TIMEOUT_MS = "lakehouse.commit.lock-timeout-ms"
#: Catalog property naming the author recorded on commits.
AUTHOR = "author"
#: Catalog property: ``"false"`` turns off the server-side rebase of stale fast appends, so
#: that a failed requirement always fails the commit (the Iceberg REST server's choice).
REBASE_FAST_APPENDS = "lakehouse.commit.rebase-fast-appends"
#: Catalog property: ``"true"`` refuses to read or write metadata of tables whose metadata
#: is outside the warehouse, whoever put them in the catalog (the Iceberg REST server's choice).
LOCATIONS_CONFINED = "lakehouse.locations.confined"

#: Table properties naming where files are written (``write.data.path``, ``write.metadata.path``,
#: ``write.object-storage.path`` …): each must be inside the warehouse.
_WRITE_PATH_PROPERTY = re.compile(r"^write\..+\.path$")

_DEFAULT_ATTEMPTS = 25
_DEFAULT_MIN_WAIT_MS = 5
_DEFAULT_MAX_WAIT_MS = 1000
_DEFAULT_LOCK_TIMEOUT_MS = 5000

#: Store conflicts that mean "someone changed this key in between": re-read and retry.
_RETRYABLE_CONFLICTS = frozenset(
    {
        ConflictType.VALUE_DIFFERS,
        ConflictType.PAYLOAD_DIFFERS,
        ConflictType.CONTENT_ID_DIFFERS,
        ConflictType.UNEXPECTED_HASH,
        ConflictType.UNKNOWN,
    }
)

#: What a commit without a new snapshot did, by Iceberg update action.
_ACTION_OPERATIONS: Mapping[str, str] = {
    "assign-uuid": "create",
    "add-schema": "update-schema",
    "set-current-schema": "update-schema",
    "add-spec": "update-spec",
    "set-default-spec": "update-spec",
    "remove-partition-specs": "update-spec",
    "add-sort-order": "replace-sort-order",
    "set-default-sort-order": "replace-sort-order",
    "set-properties": "update-properties",
    "remove-properties": "update-properties",
    "remove-snapshots": "expire-snapshots",
    "set-snapshot-ref": "manage-snapshots",
    "remove-snapshot-ref": "manage-snapshots",
    "set-statistics": "update-statistics",
    "remove-statistics": "update-statistics",
    "upgrade-format-version": "upgrade-format-version",
    "set-location": "set-location",
}


class _LostRaceError(Exception):
    """Internal: the attempt lost a race; re-read and try again."""


#: How many parsed metadata files / manifest lists a catalog keeps (both are immutable files).
_METADATA_CACHE_SIZE = 16
_MANIFEST_LIST_CACHE_SIZE = 16


#: Serialised JSON of snapshot objects, by object identity; an entry goes with its snapshot.
_SNAPSHOT_JSON: dict[int, tuple[weakref.ref[Snapshot], str]] = {}


def _snapshot_json(snapshot: Snapshot) -> str:
    """``snapshot`` as Iceberg metadata JSON, serialised once per snapshot object.

    Snapshots are immutable and consecutive metadata versions of a table share the objects
    (see :mod:`lakehouse.tables.metadata`), so each snapshot is serialised once rather than
    once per commit.
    """
    key = id(snapshot)
    hit = _SNAPSHOT_JSON.get(key)
    if hit is not None and hit[0]() is snapshot:
        return hit[1]
    text = snapshot.model_dump_json()

    def forget(ref: weakref.ref[Snapshot]) -> None:
        entry = _SNAPSHOT_JSON.get(key)
        if entry is not None and entry[0] is ref:
            del _SNAPSHOT_JSON[key]

    _SNAPSHOT_JSON[key] = (weakref.ref(snapshot, forget), text)
    return text


def _metadata_json(metadata: TableMetadata) -> str:
    """The table metadata file's JSON, as PyIceberg writes it (its keys in another order),
    with the snapshots and the snapshot log joined from what the last commit wrote."""
    if not metadata.snapshots:
        return metadata.model_dump_json()
    rest = metadata.model_dump_json(exclude={"snapshots", "snapshot_log"})
    key = str(metadata.table_uuid)
    log = _JOINED_LOGS.join(key, metadata.snapshot_log, _log_entries_json)
    snapshots = _JOINED_SNAPSHOTS.join(key, metadata.snapshots, _snapshots_json)
    return f'{rest[:-1]},"snapshot-log":[{log}],"snapshots":[{snapshots}]}}'


def _snapshots_json(snapshots: Sequence[Snapshot]) -> str:
    return ",".join(_snapshot_json(s) for s in snapshots)


def _log_entries_json(entries: Sequence[SnapshotLogEntry]) -> str:
    return ",".join(entry.model_dump_json() for entry in entries)


#: Tables whose last arrays a :class:`_JoinedJson` keeps.
_JOINED_TABLES = 16


class _JoinedJson(Generic[T]):
    """The body of one JSON array of the last metadata file written or read, per table.

    A commit appends snapshots and snapshot-log entries after the very same objects of
    the table's last version (see :mod:`lakehouse.tables.metadata`): their JSON is taken
    from the last file this process wrote or parsed for the table and only the new items
    are serialised (:meth:`join`), instead of a thousand per commit on a table with a
    thousand snapshots; anything else (an expiry dropped some) is serialised anew. The
    other way round, a metadata file another writer appended to is parsed from where the
    known body ends (:meth:`parse`). Thread-safe; the last :data:`_JOINED_TABLES` tables
    are kept.
    """

    def __init__(self) -> None:
        self._held: OrderedDict[str, tuple[list[T], str]] = OrderedDict()
        self._lock = threading.Lock()

    def join(self, key: str, items: Sequence[T], dump: Callable[[Sequence[T]], str]) -> str:
        """Items ``items`` of table ``key`` as JSON objects joined with commas."""
        with self._lock:
            held = self._held.get(key)
        text: str | None = None
        if held is not None:
            before, joined = held
            n = len(before)
            if 0 < n <= len(items) and all(map(operator.is_, before, items)):
                new = dump(items[n:]) if len(items) > n else ""
                text = f"{joined},{new}" if new else joined
        if text is None:
            text = dump(items)
        self.remember(key, items, text)
        return text

    def parse(self, key: str, body: str) -> list[Any]:
        """The items of the array whose body is ``body``: the held items of table ``key``
        when ``body`` starts with their JSON, then the rest parsed (as dicts).

        Raises :class:`ValueError` when the rest is not JSON.
        """
        with self._lock:
            held = self._held.get(key)
        items: list[Any] = []
        rest = body
        if held is not None:
            before, joined = held
            n = len(joined)
            if before and body.startswith(joined) and (len(body) == n or body[n] == ","):
                items, rest = list(before), body[n + 1 :]
        if rest:
            parsed = json.loads(f"[{rest}]")
            if not isinstance(parsed, list):
                raise ValueError("not a JSON array")
            items.extend(parsed)
        return items

    def remember(self, key: str, items: Sequence[T], text: str) -> None:
        """Hold ``text`` as the JSON of ``items`` of table ``key``."""
        with self._lock:
            self._held[key] = (list(items), text)
            self._held.move_to_end(key)
            while len(self._held) > _JOINED_TABLES:
                self._held.popitem(last=False)


_JOINED_SNAPSHOTS: _JoinedJson[Snapshot] = _JoinedJson()
_JOINED_LOGS: _JoinedJson[SnapshotLogEntry] = _JoinedJson()


#: JSON objects of one table's snapshots and log entries, with the models parsed from them.
_Memo = dict[tuple[str, Any], tuple[Any, Any]]

#: Metadata lists whose entries a parse reuses, and the key of an entry in each.
_MEMO_LISTS: Mapping[str, Callable[[dict[str, Any]], Any]] = {
    "snapshots": lambda item: item.get("snapshot-id"),
    "snapshot-log": lambda item: (item.get("snapshot-id"), item.get("timestamp-ms")),
    "metadata-log": lambda item: item.get("metadata-file"),
}


def _parse_metadata(text: str, memos: _BoundedCache[_Memo]) -> TableMetadata:
    """Parse a table metadata file, reusing the models of entries seen before.

    Another writer's metadata file differs from the one this catalog parsed last by a few
    snapshots, but PyIceberg's parse validates every snapshot and log entry again (about
    14 ms at 200 snapshots, growing with the history, inside the table's commit lock) and
    the fresh snapshot objects must then be serialised again when the next metadata file
    is written.

    A file laid out as this catalog writes them (:func:`_metadata_json`: the snapshot log
    and the snapshots last) is parsed from where the JSON this process last wrote or read
    for the table ends (:meth:`_JoinedJson.parse`): those snapshots and log entries are
    the same objects, and only the new ones and the rest of the file are read. Otherwise
    the file is read with :func:`json.loads`, and every snapshot and log entry whose JSON
    object equals one of the table's last parse is the model parsed from that object.
    Only the rest is validated by PyIceberg, as part of the whole metadata. ``memos``
    holds the latter memo of each table (by UUID). Formats other than 2 and 3 are parsed
    whole.
    """
    laid_out = _parse_our_layout(text, memos)
    if laid_out is not None:
        return laid_out
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format-version") not in (2, 3):
        return TableMetadataUtil.parse_raw(text)
    return _parse_with_memo(data, memos, _MEMO_LISTS)


#: How this catalog's metadata files end: ``…,"snapshot-log":[…],"snapshots":[…]}``.
_LOG_ARRAY = ',"snapshot-log":['
_SNAPSHOTS_ARRAY = ',"snapshots":['


def _parse_our_layout(text: str, memos: _BoundedCache[_Memo]) -> TableMetadata | None:
    """:func:`_parse_metadata` of a file in this catalog's layout; None for any other."""
    if not text.endswith("]}"):
        return None
    at_snapshots = text.rfind(_SNAPSHOTS_ARRAY)
    at_log = text.rfind(_LOG_ARRAY, 0, at_snapshots) if at_snapshots > 0 else -1
    if at_log < 0 or text[at_snapshots - 1] != "]":
        return None
    snapshots_body = text[at_snapshots + len(_SNAPSHOTS_ARRAY) : -2]
    log_body = text[at_log + len(_LOG_ARRAY) : at_snapshots - 1]
    try:
        data = json.loads(text[:at_log] + "}")
        if (
            not isinstance(data, dict)
            or data.get("format-version") not in (2, 3)
            or "snapshots" in data
            or "snapshot-log" in data
        ):
            return None
        key = str(data.get("table-uuid"))
        data["snapshot-log"] = _JOINED_LOGS.parse(key, log_body)
        data["snapshots"] = _JOINED_SNAPSHOTS.parse(key, snapshots_body)
    except ValueError:
        return None
    counts = len(data["snapshot-log"]), len(data["snapshots"])
    metadata = _parse_with_memo(data, memos, {"metadata-log": _MEMO_LISTS["metadata-log"]})
    if (len(metadata.snapshot_log), len(metadata.snapshots)) == counts:
        key = str(metadata.table_uuid)
        _JOINED_LOGS.remember(key, metadata.snapshot_log, log_body)
        _JOINED_SNAPSHOTS.remember(key, metadata.snapshots, snapshots_body)
    return metadata


def _parse_with_memo(
    data: dict[str, Any],
    memos: _BoundedCache[_Memo],
    lists: Mapping[str, Callable[[dict[str, Any]], Any]],
) -> TableMetadata:
    """Validate ``data`` as table metadata; entries of ``lists`` equal to one of the
    table's last parse are the models parsed then (see :func:`_parse_metadata`)."""
    known = memos.get(str(data.get("table-uuid"))) or {}
    raw: dict[str, list[Any]] = {}
    for name, key_of in lists.items():
        items = data.get(name)
        if not isinstance(items, list):
            continue
        raw[name] = items
        reused: list[Any] = []
        for item in items:
            hit = known.get((name, key_of(item))) if isinstance(item, dict) else None
            reused.append(hit[1] if hit is not None and hit[0] == item else item)
        data = {**data, name: reused}
    metadata = TableMetadataUtil.parse_obj(data)
    parsed: Mapping[str, Sequence[Any]] = {
        "snapshots": metadata.snapshots,
        "snapshot-log": metadata.snapshot_log,
        "metadata-log": metadata.metadata_log,
    }
    new_memo: _Memo = {}
    for name, items in raw.items():
        models = parsed[name]
        if len(models) != len(items):  # not one model per entry: nothing to reuse safely
            return metadata
        key_of = lists[name]
        for item, model in zip(items, models, strict=True):
            if isinstance(item, dict):
                new_memo[(name, key_of(item))] = (item, model)
    memos.put(str(metadata.table_uuid), new_memo)
    return metadata


class _BoundedCache(Generic[T]):
    """A small thread-safe LRU map from an immutable file's location to what it holds."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class _RefTable(Table):
    """A PyIceberg table of a :class:`RefCatalog`: its transactions stage without copies."""

    def transaction(self) -> Transaction:
        """A transaction on this table; changes are committed on the catalog's branch."""
        return StagedTransaction(self)

    def append(
        self,
        df: pa.Table | pa.RecordBatchReader,
        snapshot_properties: dict[str, str] = EMPTY_DICT,
        branch: str | None = MAIN_BRANCH,
    ) -> None:
        """Append ``df`` (PyIceberg's :meth:`~pyiceberg.table.Table.append`), one writer at a time.

        On a branch of the catalog the rows are checked against the table's schema and
        written to data files, and (format v2) their manifest is written, without any
        lock; then the append takes the table's commit lock (see
        :meth:`RefCatalog.commit_tables`), refreshes the table and builds the snapshot on
        the latest head (:meth:`~lakehouse.tables.appends.PreparedAppend.stage`), so
        concurrent appenders queue for the short part (manifest list, metadata file and
        commit) instead of building snapshots on a stale parent that must then be
        rebased or retried. When the table's layout (schema,
        partition spec, properties, location) changed in between, the rows are written
        again for the new layout, under the lock. A ``RecordBatchReader`` (read once) is
        written under the lock.
        """
        catalog = self.catalog
        if not isinstance(catalog, RefCatalog):
            super().append(df, snapshot_properties, branch)
            return
        if not catalog._queues_appends() or not _is_arrow_table(df):
            with catalog._append_lock(self):
                super().append(df, snapshot_properties, branch)
            return
        branch_name = catalog._writable_branch()  # a tag refuses before any file is written
        base = self.metadata
        files = _write_data_files(base, self.io, cast("pa.Table", df))
        prepared = prepare_append(base, self.io, files) if branch is not None else None
        try:
            with catalog._append_lock(self, branch_name):
                if not _same_layout(base, self.metadata):
                    if prepared is not None:
                        prepared.discard()
                    super().append(df, snapshot_properties, branch)
                    return
                with self.transaction() as transaction:
                    if prepared is not None and branch is not None:
                        if prepared.stage(transaction, branch, snapshot_properties):
                            return
                        prepared.discard()
                    self._append_files(transaction, files, snapshot_properties, branch)
        except Exception as exc:
            if (
                prepared is not None
                and not isinstance(exc, CommitStateUnknownException)
                and self.metadata.snapshot_by_id(prepared.snapshot_id) is None
            ):
                prepared.discard()  # it did not land
            raise

    def _append_files(
        self,
        transaction: Transaction,
        files: Sequence[DataFile],
        snapshot_properties: dict[str, str],
        branch: str | None,
    ) -> None:
        """Stage an append of ``files`` on ``transaction`` with PyIceberg's producers."""
        merge = property_as_bool(
            transaction.table_metadata.properties,
            TableProperties.MANIFEST_MERGE_ENABLED,
            TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT,
        )
        update = transaction.update_snapshot(snapshot_properties, branch=branch)
        with update.merge_append() if merge else update.fast_append() as producer:
            for data_file in files:
                producer.append_data_file(data_file)


def _is_arrow_table(df: object) -> bool:
    """Whether ``df`` is a ``pyarrow.Table`` (pyarrow is imported only by writers)."""
    import pyarrow as pa  # deferred: reading the catalog does not need pyarrow

    return isinstance(df, pa.Table)


def _write_data_files(metadata: TableMetadata, io: FileIO, df: pa.Table) -> list[DataFile]:
    """Check ``df`` against the table's schema and write it as data files, as PyIceberg's
    ``Transaction.append`` does (nothing is committed; an empty table writes no file)."""
    # deferred: the writer's half of PyIceberg needs pyarrow, reading the catalog does not
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files

    _check_pyarrow_schema_compatible(
        metadata.schema(),
        provided_schema=df.schema,
        downcast_ns_timestamp_to_us=Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE)
        or False,
        format_version=metadata.format_version,
    )
    if df.num_rows == 0:
        return []
    return list(
        _dataframe_to_data_files(table_metadata=metadata, write_uuid=uuid.uuid4(), df=df, io=io)
    )


def _same_layout(written: TableMetadata, current: TableMetadata) -> bool:
    """Whether data files written for ``written`` fit ``current`` as they are.

    Same table, format version, current schema, default partition spec and sort order,
    location and properties (which decide file paths, formats and name mapping); other
    appends in between do not matter.
    """
    return current is written or (
        current.table_uuid == written.table_uuid
        and current.format_version == written.format_version
        and current.current_schema_id == written.current_schema_id
        and current.default_spec_id == written.default_spec_id
        and current.default_sort_order_id == written.default_sort_order_id
        and current.location == written.location
        and current.properties == written.properties
        and current.schema() == written.schema()
        and current.spec() == written.spec()
    )


@dataclass(frozen=True)
class TableChange:
    """Requirements and updates for one table of :meth:`RefCatalog.commit_tables`.

    ``base_location`` is the metadata location the change was computed from, when known
    (it only improves the error message when updates no longer apply).
    """

    identifier: str | Identifier
    requirements: tuple[TableRequirement, ...] = ()
    updates: tuple[TableUpdate, ...] = ()
    base_location: str | None = None

    @classmethod
    def of_transaction(cls, table: Table, transaction: Transaction) -> TableChange:
        """The change an uncommitted PyIceberg ``transaction`` on ``table`` would commit.

        The requirements pin the table's UUID as well, so the change cannot land on a
        table dropped and created again meanwhile. (PyIceberg keeps a transaction's
        updates and requirements in private attributes; this is the one place that
        reads them.)
        """
        from pyiceberg.table.update import AssertTableUUID

        requirements = (
            *transaction._requirements,
            AssertTableUUID(uuid=table.metadata.table_uuid),
        )
        return cls(table.name(), requirements, transaction._updates, table.metadata_location)


class RefCatalog(MetastoreCatalog):
    """A PyIceberg catalog over the contents of one reference of a :class:`VersionStore`.

    ``ref`` is a branch name (read-write), or a tag, ``name@hash``, ``@hash`` or a
    relative spec (read-only). ``warehouse`` decides where new tables keep their files.
    ``properties`` are PyIceberg catalog properties (FileIO settings such as
    ``s3.endpoint``), plus ``author`` and the ``lakehouse.commit.*`` tuning keys.
    """

    def __init__(
        self,
        name: str,
        store: VersionStore,
        ref: str,
        warehouse: Warehouse,
        **properties: str,
    ) -> None:
        super().__init__(name, **properties)
        self.store = store
        self.ref = ref
        self.warehouse = warehouse
        self._spec = RefSpec.parse(ref)
        self._max_attempts = max(1, int(properties.get(COMMIT_ATTEMPTS, _DEFAULT_ATTEMPTS)))
        self._min_wait_ms = max(0, int(properties.get(COMMIT_MIN_WAIT_MS, _DEFAULT_MIN_WAIT_MS)))
        self._max_wait_ms = max(0, int(properties.get(COMMIT_MAX_WAIT_MS, _DEFAULT_MAX_WAIT_MS)))
        self._lock_timeout_ms = max(
            0, int(properties.get(COMMIT_LOCK_TIMEOUT_MS, _DEFAULT_LOCK_TIMEOUT_MS))
        )
        self._held = threading.local()  # commit locks this thread holds: (branch, key)
        self._rebase = properties.get(REBASE_FAST_APPENDS, "true").strip().lower() != "false"
        self._confined = properties.get(LOCATIONS_CONFINED, "false").strip().lower() == "true"
        self._metadata_cache: _BoundedCache[TableMetadata] = _BoundedCache(_METADATA_CACHE_SIZE)
        self._manifest_lists: _BoundedCache[tuple[ManifestFile, ...]] = _BoundedCache(
            _MANIFEST_LIST_CACHE_SIZE
        )
        # per table (uuid): the entries of its last parsed metadata file, for the next parse
        self._metadata_memo: _BoundedCache[_Memo] = _BoundedCache(_METADATA_CACHE_SIZE)

    def __repr__(self) -> str:
        return f"RefCatalog(name={self.name!r}, ref={self.ref!r})"

    def with_ref(self, ref: str) -> RefCatalog:
        """The same catalog bound to another reference."""
        other = RefCatalog(self.name, self.store, ref, self.warehouse, **self.properties)
        other._metadata_cache = self._metadata_cache  # parsed immutable files: safe to share
        other._manifest_lists = self._manifest_lists
        other._metadata_memo = self._metadata_memo
        return other

    @property
    def is_read_only(self) -> bool:
        """True when bound to a fixed point of history (a hash or relative spec).

        A catalog bound to a tag is also read-only; that is only known by asking the store.
        """
        return self._spec.hash is not None or bool(self._spec.relative) or self._spec.name is None

    # -- reading ----------------------------------------------------------------------

    def _read(self, keys: Iterable[ContentKey]) -> tuple[str, dict[ContentKey, Content]]:
        """Resolve the bound reference once and read ``keys`` at that commit."""
        resolved = self.store.resolve(self.ref)
        return resolved.hash, self.store.get_contents(RefSpec(hash=resolved.hash), list(keys))

    def _read_branch(
        self, branch: str, keys: Iterable[ContentKey]
    ) -> tuple[str, dict[ContentKey, Content]]:
        """Head of ``branch`` and ``keys`` at that head (the expected hash of the next commit).

        :class:`ReadOnlyReferenceError` when ``branch`` names a tag: callers read before
        they write anything.
        """
        resolved = self.store.resolve(branch)
        reference = resolved.reference
        if reference is not None and reference.type is not ReferenceType.BRANCH:
            raise ReadOnlyReferenceError(reference.name, kind="tag")
        return resolved.hash, self.store.get_contents(RefSpec(hash=resolved.hash), list(keys))

    def _branch_name(self) -> str:
        """The name this catalog commits to, when its reference is a name at all (whether it
        is a branch, :meth:`_read_branch` tells); else :class:`ReadOnlyReferenceError`."""
        if self._spec.name is None:
            raise ReadOnlyReferenceError(self.ref, kind="detached commit")
        if self._spec.hash is not None or self._spec.relative:
            raise ReadOnlyReferenceError(self.ref, kind="commit")
        return self._spec.name

    def _writable_branch(self) -> str:
        """The branch this catalog commits to, or :class:`ReadOnlyReferenceError`."""
        return self.store.writable_branch(self._branch_name()).name

    def _table_from_content(self, key: ContentKey, content: IcebergTable) -> Table:
        location = content.metadata_location
        if self._confined:
            self._check_location(location, f"metadata of table '{key}'")
        metadata = self._metadata_cache.get(location)
        if metadata is None:
            metadata = self._read_metadata(location)
            self._metadata_cache.put(location, metadata)
        return _RefTable(
            identifier=key.elements,
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def _read_metadata(self, location: str) -> TableMetadata:
        """Read and parse a metadata file, reusing what the table's last parse saw
        (:func:`_parse_metadata`); compressed files are parsed by PyIceberg."""
        io = self._load_file_io(location=location)
        if Compressor.get_compressor(location) is not NOOP_COMPRESSOR:
            return FromInputFile.table_metadata(io.new_input(location))
        with io.new_input(location).open() as stream:
            text = stream.read().decode("utf-8")
        return _parse_metadata(text, self._metadata_memo)

    # -- keys ---------------------------------------------------------------------------

    @staticmethod
    def _table_key(
        identifier: str | Identifier, err: type[Exception] = NoSuchTableError
    ) -> ContentKey:
        elements = MetastoreCatalog.identifier_to_tuple(identifier)
        if len(elements) < 2:
            raise err(
                f"invalid table identifier {'.'.join(elements)!r}: "
                "use <namespace>.<name>, tables live inside a namespace"
            )
        return ContentKey(tuple(elements))

    @staticmethod
    def _namespace_key(namespace: str | Identifier) -> ContentKey | None:
        """Key of a namespace, ``None`` for the root (``()`` or ``""``)."""
        elements = MetastoreCatalog.identifier_to_tuple(namespace)
        if not elements or elements == ("",):
            return None
        return ContentKey(tuple(elements))

    # -- commits ------------------------------------------------------------------------

    def _meta(self, message: str, properties: Mapping[str, str]) -> CommitMeta:
        return CommitMeta(
            message=message,
            author=self.properties.get(AUTHOR),
            properties={"application": "lakehouse", **properties},
        )

    def _commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        expected_hash: str,
        meta: CommitMeta,
        on_conflict: Callable[[Conflict], None],
    ) -> CommitResult:
        """Commit, mapping store errors.

        ``on_conflict`` raises the PyIceberg error of a terminal conflict; conflicts it
        lets through are retryable (raised as :class:`_LostRaceError`) unless unknown.
        """
        try:
            return self.store.commit(branch, operations, meta, expected_hash=expected_hash)
        except CommitStateUnknownError as exc:
            raise CommitStateUnknownException(
                f"{meta.message} on '{branch}': the outcome of the commit is unknown; "
                f"check the log of '{branch}' before retrying ({exc})"
            ) from exc
        except CommitConflictError as exc:
            for conflict in exc.conflicts:
                on_conflict(conflict)
            if all(c.type in _RETRYABLE_CONFLICTS for c in exc.conflicts):
                raise _LostRaceError(str(exc)) from exc
            raise CommitFailedException(f"{meta.message} on '{branch}' failed: {exc}") from exc
        except (TransientCatalogError, ReferenceConflictError) as exc:
            raise _LostRaceError(str(exc)) from exc
        except InvalidInputError as exc:
            # e.g. an update (a put carrying the content id) of a key that another commit
            # deleted meanwhile: re-read, the next attempt reports what happened.
            if self.store.resolve(branch).hash != expected_hash:
                raise _LostRaceError(str(exc)) from exc
            raise

    def _retrying(self, what: str, attempt: Callable[[int], T]) -> T:
        """Run ``attempt(n)`` until it does not lose a race, at most ``_max_attempts`` times."""
        last: Exception | None = None
        for n in range(self._max_attempts):
            if n:
                cap = min(self._max_wait_ms, self._min_wait_ms * (2 ** min(n - 1, 16)))
                time.sleep(random.uniform(0.5, 1.0) * cap / 1000)
            try:
                return attempt(n)
            except (_LostRaceError, TransientCatalogError) as exc:
                last = exc
                logger.debug("%s: lost a race (attempt %d), retrying: %s", what, n + 1, exc)
        raise CommitFailedException(
            f"{what}: gave up after {self._max_attempts} attempts because of concurrent "
            f"commits ({last})"
        )

    def _conflict_mapper(
        self,
        branch: str,
        *,
        exists: Callable[[ContentKey], Exception] | None = None,
        missing: Callable[[ContentKey], Exception] | None = None,
        not_empty: Callable[[ContentKey], Exception] | None = None,
    ) -> Callable[[Conflict], None]:
        def on_conflict(conflict: Conflict) -> None:
            key = conflict.key
            if key is None:
                return
            kind = conflict.type
            if kind is ConflictType.NAMESPACE_ABSENT:
                parent = key.namespace or key
                raise NoSuchNamespaceError(f"namespace '{parent}' does not exist on '{branch}'")
            if kind is ConflictType.NOT_A_NAMESPACE:
                parent = key.namespace or key
                raise NoSuchNamespaceError(f"'{parent}' is not a namespace on '{branch}'")
            if kind is ConflictType.KEY_EXISTS and exists is not None:
                raise exists(key)
            if kind is ConflictType.KEY_DOES_NOT_EXIST and missing is not None:
                raise missing(key)
            if kind is ConflictType.NAMESPACE_NOT_EMPTY and not_empty is not None:
                raise not_empty(key)

        return on_conflict

    def _check_namespace(
        self, branch: str, key: ContentKey, found: Mapping[ContentKey, Content]
    ) -> None:
        parent = key.namespace
        if parent is None:
            return
        content = found.get(parent)
        if content is None:
            raise NoSuchNamespaceError(f"namespace '{parent}' does not exist on '{branch}'")
        if not isinstance(content, Namespace):
            raise NoSuchNamespaceError(f"'{parent}' is not a namespace on '{branch}'")

    @staticmethod
    def _with_parent(key: ContentKey) -> list[ContentKey]:
        return [key] if key.namespace is None else [key, key.namespace]

    # -- per-table commit lock ------------------------------------------------------------

    @contextmanager
    def _table_lock(self, branch: str, keys: Sequence[ContentKey]) -> Iterator[None]:
        """Hold the store's commit lock of ``keys`` on ``branch`` (re-entrant per thread)."""
        held: set[tuple[str, ContentKey]] = self._held.__dict__.setdefault("keys", set())
        wanted = [key for key in dict.fromkeys(keys) if (branch, key) not in held]
        if self._lock_timeout_ms <= 0 or not wanted:
            yield
            return
        with self.store.commit_lock(branch, wanted, self._lock_timeout_ms / 1000):
            held.update((branch, key) for key in wanted)
            try:
                yield
            finally:
                held.difference_update((branch, key) for key in wanted)

    def _branch_locked_for(self, keys: Sequence[ContentKey]) -> str | None:
        """The bound branch when this thread holds its commit lock of every key in ``keys``
        (an append's: the branch was found writable before the lock was taken)."""
        held: set[tuple[str, ContentKey]] = self._held.__dict__.get("keys", set())
        name = self._spec.name
        if name is None or self._spec.hash is not None or self._spec.relative:
            return None
        return name if keys and all((name, key) in held for key in keys) else None

    def _queues_appends(self) -> bool:
        """Whether appends of this catalog's tables queue on the per-table commit lock."""
        return self._lock_timeout_ms > 0 and not self.is_read_only

    @contextmanager
    def _append_lock(self, table: Table, branch: str | None = None) -> Iterator[None]:
        """The commit lock of ``table`` on the bound branch (``branch`` when already
        resolved), with ``table`` refreshed inside."""
        if not self._queues_appends():
            yield
            return
        key = self._table_key(table.name())
        branch = branch or self._writable_branch()
        with self._table_lock(branch, [key]):
            table.refresh()
            yield

    # -- tables: create, register -------------------------------------------------------

    def _forced_properties(self, data_path: str, metadata_path: str) -> dict[str, str]:
        return {
            **SAFETY_PROPERTIES,
            TableProperties.WRITE_DATA_PATH: data_path,
            TableProperties.WRITE_METADATA_PATH: metadata_path,
        }

    @staticmethod
    def _check_safety(properties: Mapping[str, str], what: str) -> None:
        for prop, required in SAFETY_PROPERTIES.items():
            value = properties.get(prop)
            if value is not None and value.strip().lower() != required:
                raise ValueError(
                    f"{what}: {prop}={value!r} is not allowed; it must stay {required!r} because "
                    "other branches, tags and old commits may still use the table's files "
                    "(only `lakehouse maintenance gc` deletes files)"
                )

    def _check_location(self, uri: str, what: str) -> None:
        """:class:`LocationNotAllowedError` unless ``uri`` is inside the warehouse."""
        if not self.warehouse.contains(uri):
            raise LocationNotAllowedError(uri, what)

    def _check_write_paths(
        self,
        what: str,
        location: str | None,
        properties: Mapping[str, str],
        before: TableMetadata | None = None,
    ) -> None:
        """Check a table location and its ``write.*.path`` properties (only changed ones
        when ``before`` is given: existing tables keep working)."""
        if location is not None and (before is None or location != before.location):
            if not location:
                raise LocationNotAllowedError(location, f"{what}: a new table needs a location;")
            self._check_location(location, f"{what}: table location")
        for prop, value in properties.items():
            if _WRITE_PATH_PROPERTY.match(prop) and (
                before is None or before.properties.get(prop) != value
            ):
                self._check_location(value, f"{what}: property {prop}")

    def _create_staged_table(
        self,
        identifier: str | Identifier,
        schema: Schema | pa.Schema,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: Properties = EMPTY_DICT,
    ) -> StagedTable:
        """New table metadata, with the warehouse's locations and the safety properties.

        Data goes under the zone bucket (or ``location``/data when given), metadata under
        the ``iceberg-metadata`` bucket, unless ``properties`` give ``write.data.path`` /
        ``write.metadata.path`` inside the warehouse; any ``write.*.path`` outside it is
        refused (:class:`LocationNotAllowedError`), never replaced.
        """
        key = self._table_key(identifier, ValueError)
        self._check_safety(properties, f"create table '{key}'")
        if location:
            self._check_location(location, f"create table '{key}': location")
        self._check_write_paths(f"create table '{key}'", None, properties)
        format_version = int(
            properties.get(TableProperties.FORMAT_VERSION, TableProperties.DEFAULT_FORMAT_VERSION)
        )
        iceberg_schema = self._convert_schema_if_needed(schema, cast(Any, format_version))
        paths = self.warehouse.table_locations(key.elements[:-1], key.name)
        table_location = location.rstrip("/") if location else paths.root
        data_path = f"{table_location}/data" if location else paths.data
        table_properties = {
            **DEFAULT_TABLE_PROPERTIES,
            **self._forced_properties(data_path, paths.metadata),
            **properties,
            **SAFETY_PROPERTIES,
        }
        self._check_write_paths(f"create table '{key}'", None, table_properties)
        metadata = new_table_metadata(
            location=table_location,
            schema=iceberg_schema,
            partition_spec=partition_spec,
            sort_order=sort_order,
            properties=table_properties,
        )
        provider = load_location_provider(table_location, table_properties)
        metadata_location = provider.new_table_metadata_file_location()
        return StagedTable(
            identifier=key.elements,
            metadata=metadata,
            metadata_location=metadata_location,
            io=self._load_file_io(properties=table_properties, location=metadata_location),
            catalog=self,
        )

    def create_table(
        self,
        identifier: str | Identifier,
        schema: Schema | pa.Schema,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: Properties = EMPTY_DICT,
    ) -> Table:
        """Create a table on the bound branch (one commit: "Create table <key>")."""
        key = self._table_key(identifier, ValueError)
        branch = self._branch_name()
        head, found = self._read_branch(branch, self._with_parent(key))
        self._check_namespace(branch, key, found)
        if key in found:
            raise TableAlreadyExistsError(f"table '{key}' already exists on '{branch}'")
        staged = self._create_staged_table(
            identifier, schema, location, partition_spec, sort_order, properties
        )
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        content = self._table_content(staged.metadata, staged.metadata_location, None)
        self._put_new(
            branch,
            key,
            content,
            head,
            self._meta(f"Create table {key}", {"iceberg.operation": "create"}),
            exists=lambda k: TableAlreadyExistsError(f"table '{k}' already exists on '{branch}'"),
        )
        return _RefTable(
            identifier=key.elements,
            metadata=staged.metadata,
            metadata_location=staged.metadata_location,
            io=staged.io,
            catalog=self,
        )

    def _put_new(
        self,
        branch: str,
        key: ContentKey,
        content: Content,
        head: str,
        meta: CommitMeta,
        *,
        exists: Callable[[ContentKey], Exception],
    ) -> CommitResult:
        """Put new content at ``key`` (no id: the store assigns one), retrying lost races."""
        on_conflict = self._conflict_mapper(branch, exists=exists)

        def attempt(n: int) -> CommitResult:
            expected = head
            if n:
                expected, found = self._read_branch(branch, self._with_parent(key))
                self._check_namespace(branch, key, found)
                if key in found:
                    raise exists(key)
            return self._commit(branch, [Put(key, content)], expected, meta, on_conflict)

        return self._retrying(f"{meta.message} on '{branch}'", attempt)

    def register_table(
        self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False
    ) -> Table:
        """Register existing table metadata at ``identifier`` on the bound branch.

        Missing safety properties (``gc.enabled``, delete-after-commit) are added, and so
        are a missing ``write.metadata.path`` (the warehouse's metadata folder) and a missing
        ``write.data.path`` (``<table location>/data``), by writing a new metadata version;
        the given file is never changed. With ``overwrite`` an existing table at the key is
        replaced (its content id stays).
        """
        key = self._table_key(identifier, ValueError)
        branch = self._branch_name()
        _, found = self._read_branch(branch, self._with_parent(key))
        self._check_namespace(branch, key, found)
        if key in found and not (overwrite and isinstance(found[key], IcebergTable)):
            raise TableAlreadyExistsError(f"table '{key}' already exists on '{branch}'")
        # checked before reading: a registered table must not point the catalog anywhere
        self._check_location(metadata_location, f"register table '{key}': metadata location")
        io = self._load_file_io(location=metadata_location)
        metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
        self._check_write_paths(f"register table '{key}'", metadata.location, metadata.properties)
        needed = {k: v for k, v in SAFETY_PROPERTIES.items() if metadata.properties.get(k) != v}
        if not metadata.properties.get(
            TableProperties.WRITE_DATA_PATH
        ) or not metadata.properties.get(TableProperties.WRITE_METADATA_PATH):
            paths = self.warehouse.table_locations(key.elements[:-1], key.name)
            if not metadata.properties.get(TableProperties.WRITE_DATA_PATH):
                needed[TableProperties.WRITE_DATA_PATH] = f"{metadata.location.rstrip('/')}/data"
            if not metadata.properties.get(TableProperties.WRITE_METADATA_PATH):
                needed[TableProperties.WRITE_METADATA_PATH] = paths.metadata
        if needed:
            metadata = update_table_metadata(
                metadata,
                (SetPropertiesUpdate(updates=needed),),
                metadata_location=metadata_location,
            )
            provider = load_location_provider(metadata.location, metadata.properties)
            metadata_location = provider.new_table_metadata_file_location(
                self._parse_metadata_version(metadata_location) + 1
            )
            io = self._load_file_io(metadata.properties, metadata_location)
            self._write_metadata(metadata, io, metadata_location)

        meta = self._meta(f"Register table {key}", {"iceberg.operation": "register"})
        on_conflict = self._conflict_mapper(
            branch,
            exists=lambda k: TableAlreadyExistsError(f"table '{k}' already exists on '{branch}'"),
        )
        registered = metadata

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, self._with_parent(key))
            self._check_namespace(branch, key, found)
            existing = found.get(key)
            content_id: str | None = None
            if existing is not None:
                if not overwrite or not isinstance(existing, IcebergTable):
                    raise TableAlreadyExistsError(f"table '{key}' already exists on '{branch}'")
                content_id = existing.id
            content = self._table_content(registered, metadata_location, content_id)
            self._commit(branch, [Put(key, content)], head, meta, on_conflict)

        self._retrying(f"register table '{key}' on '{branch}'", attempt)
        return _RefTable(
            identifier=key.elements,
            metadata=registered,
            metadata_location=metadata_location,
            io=self._load_file_io(registered.properties, metadata_location),
            catalog=self,
        )

    @staticmethod
    def _table_content(
        metadata: TableMetadata, metadata_location: str, content_id: str | None
    ) -> IcebergTable:
        snapshot_id = metadata.current_snapshot_id
        return IcebergTable(
            metadata_location=metadata_location,
            snapshot_id=snapshot_id if snapshot_id is not None else -1,
            schema_id=metadata.current_schema_id,
            spec_id=metadata.default_spec_id,
            sort_order_id=metadata.default_sort_order_id,
            id=content_id,
        )

    # -- tables: load, exists, list ------------------------------------------------------

    def load_table(self, identifier: str | Identifier) -> Table:
        """The table at ``identifier`` on the bound reference."""
        key = self._table_key(identifier)
        _, found = self._read([key])
        content = found.get(key)
        if not isinstance(content, IcebergTable):
            raise NoSuchTableError(f"table '{key}' does not exist on '{self.ref}'")
        return self._table_from_content(key, content)

    def table_exists(self, identifier: str | Identifier) -> bool:
        """True if an Iceberg table is at ``identifier`` on the bound reference."""
        key = self._table_key(identifier)
        _, found = self._read([key])
        return isinstance(found.get(key), IcebergTable)

    def _list(self, namespace: str | Identifier, kind: ContentType) -> list[Identifier]:
        ns_key = self._namespace_key(namespace)
        resolved = self.store.resolve(self.ref)
        at = RefSpec(hash=resolved.hash)
        if ns_key is not None:
            found = self.store.get_contents(at, [ns_key])
            if not isinstance(found.get(ns_key), Namespace):
                raise NoSuchNamespaceError(f"namespace '{ns_key}' does not exist on '{self.ref}'")
        depth = 1 if ns_key is None else len(ns_key.elements) + 1
        return [
            entry.key.elements
            for entry in self.store.entries(at, prefix=ns_key)
            if entry.type is kind and len(entry.key.elements) == depth
        ]

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        """Tables directly inside ``namespace`` on the bound reference."""
        return self._list(namespace, ContentType.ICEBERG_TABLE)

    # -- tables: commit -----------------------------------------------------------------

    def commit_table(
        self,
        table: Table,
        requirements: tuple[TableRequirement, ...],
        updates: tuple[TableUpdate, ...],
    ) -> CommitTableResponse:
        """Apply ``updates`` to the table on the bound branch as one catalog commit."""
        change = TableChange(table.name(), requirements, updates, table.metadata_location)
        return self.commit_tables([change])[0]

    def commit_tables(self, changes: Sequence[TableChange]) -> list[CommitTableResponse]:
        """Apply changes to several tables on the bound branch as ONE catalog commit.

        Every table's requirements are validated against its current metadata and every
        new metadata file is written before a single store commit, made with the expected
        hash everything was read at, puts all of them; any failure commits nothing. Lost
        races re-read and start over (bounded). Returns one response per change, in order.
        A change that leaves its table as it is writes nothing.
        """
        if not changes:
            raise ValueError("commit_tables needs at least one table change")
        keys = [self._table_key(change.identifier) for change in changes]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(
                f"a multi-table commit names table(s) {', '.join(duplicates)} more than once; "
                "put all changes of a table in one entry"
            )
        # a tag is refused by the first read of the branch, before any file is written
        branch = self._branch_locked_for(keys) or self._branch_name()
        creating = [any(isinstance(r, AssertCreate) for r in c.requirements) for c in changes]
        for key, change in zip(keys, changes, strict=True):
            self._check_property_updates(key, change.updates)
        if len(changes) == 1:
            message, props = self._describe(keys[0], changes[0].updates, creating[0])
        else:
            names = ", ".join(str(k) for k in keys)
            message = f"Update {len(keys)} tables: {names}"
            props = {"iceberg.operation": "multi-table-commit", "iceberg.tables": names}
        meta = self._meta(message, props)
        on_conflict = self._conflict_mapper(
            branch,
            exists=lambda k: TableAlreadyExistsError(f"table '{k}' already exists on '{branch}'"),
            missing=lambda k: NoSuchTableError(f"table '{k}' does not exist on '{branch}'"),
        )
        wanted = list(dict.fromkeys(k for key in keys for k in self._with_parent(key)))
        what = f"commit to table '{keys[0]}'" if len(keys) == 1 else f"commit to {len(keys)} tables"

        def attempt(n: int) -> list[CommitTableResponse]:
            head, found = self._read_branch(branch, wanted)
            puts: list[Operation] = []
            responses: list[CommitTableResponse] = []
            for key, change, create in zip(keys, changes, creating, strict=True):
                put, response = self._prepare_change(key, branch, found, change, create, n)
                if put is not None:
                    puts.append(put)
                responses.append(response)
            if puts:
                self._commit(branch, puts, head, meta, on_conflict)
                for response in responses:  # the next commit starts from these: keep them parsed
                    self._metadata_cache.put(response.metadata_location, response.metadata)
            return responses

        with self._table_lock(branch, keys):
            return self._retrying(f"{what} on '{branch}'", attempt)

    def _prepare_change(
        self,
        key: ContentKey,
        branch: str,
        found: Mapping[ContentKey, Content],
        change: TableChange,
        creating: bool,
        attempt: int,
    ) -> tuple[Put | None, CommitTableResponse]:
        """Validate one change at the read head and write its new metadata file.

        Returns the put to commit (``None`` when nothing changes) and the response.
        """
        content = found.get(key)
        current: Table | None = None
        if content is not None:
            if not isinstance(content, IcebergTable) or creating:
                if creating:
                    raise TableAlreadyExistsError(f"table '{key}' already exists on '{branch}'")
                raise NoSuchTableError(f"table '{key}' does not exist on '{branch}'")
            current = self._table_from_content(key, content)
        elif creating:
            self._check_namespace(branch, key, found)
        else:
            raise NoSuchTableError(f"table '{key}' does not exist on '{branch}'")

        to_apply = self._validated_updates(
            key, branch, current, change.requirements, change.updates, attempt
        )
        new_metadata = self._apply(key, branch, change.base_location, current, to_apply)
        if current is not None and new_metadata == current.metadata:
            return None, CommitTableResponse(
                metadata=current.metadata, metadata_location=current.metadata_location
            )
        version = (
            self._parse_metadata_version(current.metadata_location) + 1
            if current is not None
            else 0
        )
        provider = load_location_provider(new_metadata.location, new_metadata.properties)
        new_location = provider.new_table_metadata_file_location(version)
        self._check_write_paths(
            f"commit to table '{key}'",
            new_metadata.location,
            new_metadata.properties,
            current.metadata if current is not None else None,
        )
        if self._confined:
            self._check_location(new_location, f"commit to table '{key}': metadata file")
            known = {
                snapshot.snapshot_id
                for snapshot in (current.metadata.snapshots if current is not None else ())
            }
            for snapshot in new_metadata.snapshots:
                if snapshot.snapshot_id not in known:
                    self._check_location(
                        snapshot.manifest_list,
                        f"commit to table '{key}': manifest list of snapshot "
                        f"{snapshot.snapshot_id}",
                    )
        io = self._load_file_io(new_metadata.properties, new_location)
        self._write_metadata(new_metadata, io, new_location)
        new_content = self._table_content(
            new_metadata, new_location, content.id if content is not None else None
        )
        return Put(key, new_content), CommitTableResponse(
            metadata=new_metadata, metadata_location=new_location
        )

    def _apply(
        self,
        key: ContentKey,
        branch: str,
        base_location: str | None,
        current: Table | None,
        updates: tuple[TableUpdate, ...],
    ) -> TableMetadata:
        try:
            if current is None:  # a new table: PyIceberg's path, with validation
                base = self._empty_table_metadata()
                new_metadata = update_table_metadata(base, updates, enforce_validation=True)
                missing = self._missing_safety(new_metadata)
                if missing:
                    new_metadata = update_table_metadata(
                        base,
                        (*updates, SetPropertiesUpdate(updates=missing)),
                        enforce_validation=True,
                    )
            else:
                new_metadata = apply_updates(current.metadata, updates, current.metadata_location)
                missing = self._missing_safety(new_metadata)
                if missing:  # tables registered elsewhere: add the safety properties on the way
                    new_metadata = apply_updates(
                        new_metadata, (SetPropertiesUpdate(updates=missing),)
                    )
        except ValueError as exc:
            if (
                current is not None
                and base_location is not None
                and current.metadata_location != base_location
            ):
                raise CommitFailedException(
                    f"cannot commit to table '{key}' on branch '{branch}': it changed "
                    f"concurrently and the updates no longer apply ({exc}); reload and retry"
                ) from exc
            raise
        return new_metadata

    @staticmethod
    def _missing_safety(metadata: TableMetadata) -> dict[str, str]:
        return {k: v for k, v in SAFETY_PROPERTIES.items() if metadata.properties.get(k) != v}

    def _check_property_updates(self, key: ContentKey, updates: Sequence[TableUpdate]) -> None:
        for update in updates:
            if isinstance(update, SetPropertiesUpdate):
                try:
                    self._check_safety(update.updates, f"commit to table '{key}'")
                except ValueError as exc:
                    raise ValidationException(str(exc)) from exc
            elif isinstance(update, RemovePropertiesUpdate):
                removed = sorted(set(update.removals) & set(SAFETY_PROPERTIES))
                if removed:
                    raise ValidationException(
                        f"commit to table '{key}': property {', '.join(removed)} cannot be "
                        "removed; it must stay 'false' because other branches may still use "
                        "the table's files"
                    )

    @staticmethod
    def _describe(
        key: ContentKey, updates: Sequence[TableUpdate], creating: bool
    ) -> tuple[str, dict[str, str]]:
        actions = list(dict.fromkeys(str(getattr(u, "action", type(u).__name__)) for u in updates))
        props = {"iceberg.table": str(key), "iceberg.actions": ",".join(actions)}
        snapshots = [u.snapshot for u in updates if isinstance(u, AddSnapshotUpdate)]
        if creating:
            operation = "create"
        elif snapshots:
            # one kind of snapshot keeps its name; a mix (delete + append = overwrite,
            # upsert) is an overwrite
            kinds = {s.summary.operation.value if s.summary else "append" for s in snapshots}
            operation = kinds.pop() if len(kinds) == 1 else SnapshotOperation.OVERWRITE.value
            props["iceberg.snapshot-id"] = str(snapshots[-1].snapshot_id)
        else:
            operation = next(
                (_ACTION_OPERATIONS[a] for a in actions if a in _ACTION_OPERATIONS),
                actions[0] if actions else "noop",
            )
        props["iceberg.operation"] = operation
        verb = "Create" if creating else "Update"
        return f"{verb} table {key}", props

    # -- concurrency: requirements and fast-append rebase ------------------------------------

    def _validated_updates(
        self,
        key: ContentKey,
        branch: str,
        current: Table | None,
        requirements: Sequence[TableRequirement],
        updates: tuple[TableUpdate, ...],
        attempt: int,
    ) -> tuple[TableUpdate, ...]:
        """``updates`` if the requirements hold on the current metadata, else a rebase of them.

        Raises :class:`CommitFailedException` when they cannot be rebased.
        """
        base = current.metadata if current is not None else None
        failures: list[tuple[TableRequirement, CommitFailedException]] = []
        for requirement in requirements:
            try:
                requirement.validate(base)
            except CommitFailedException as exc:
                failures.append((requirement, exc))
        if not failures:
            return updates
        if any(isinstance(r, AssertCreate) for r, _ in failures):
            raise TableAlreadyExistsError(f"table '{key}' already exists on '{branch}'")
        if (
            self._rebase
            and current is not None
            and len(failures) == 1
            and isinstance(failures[0][0], AssertRefSnapshotId)
        ):
            rebased = self._rebase_fast_append(current.metadata, updates, failures[0][0], attempt)
            if rebased is not None:
                logger.info(
                    "rebased a fast append to table '%s' on '%s' onto the concurrent head",
                    key,
                    branch,
                )
                return rebased
        reasons = "; ".join(str(exc) for _, exc in failures)
        why = (
            "this change is not a fast append that can be rebased"
            if self._rebase
            else "its requirements no longer hold"
        )
        raise CommitFailedException(
            f"cannot commit to table '{key}' on branch '{branch}': the table was changed "
            f"concurrently and {why} (Iceberg: {reasons}); reload the table and retry"
        )

    def _manifest_list(self, io: FileIO, path: str) -> tuple[ManifestFile, ...]:
        """The manifests a manifest list names, parsed once per catalog (lists are immutable).

        Read past PyIceberg's process-wide manifest cache on purpose: a rebase reads the
        lists of snapshots that never landed, and their manifests' sequence numbers must
        not be what later reads of the committed lists see.
        """
        manifests = self._manifest_lists.get(path)
        if manifests is None:
            manifests = read_manifest_list(io, path)
            self._manifest_lists.put(path, manifests)
        return manifests

    def _rebase_fast_append(
        self,
        current: TableMetadata,
        updates: tuple[TableUpdate, ...],
        failed: AssertRefSnapshotId,
        attempt: int,
    ) -> tuple[TableUpdate, ...] | None:
        """Re-parent a pure fast append onto the current head of its Iceberg branch.

        A pure fast append is only ``AddSnapshot`` (operation ``append``, one or a chain)
        plus ``SetSnapshotRef`` of the branch the failed requirement names, whose snapshots
        consist of the parent's manifests plus new manifests of ADDED data files only.
        Each snapshot is rewritten with the same id: a new manifest list holds its own
        manifests, reused as written (their entries inherit sequence numbers from the list,
        as in Iceberg's own FastAppend retry), at the new sequence number, plus the current
        head's manifests, and the summary totals are recomputed from the head's. Only a
        manifest list is written, and manifest lists read are parsed once per catalog, so a
        lost race costs about one list write. Returns ``None`` when the updates do not
        qualify.
        """
        if current.format_version not in (1, 2):
            return None
        adds: list[Snapshot] = []
        ref_updates: list[SetSnapshotRefUpdate] = []
        for update in updates:
            if isinstance(update, AddSnapshotUpdate):
                adds.append(update.snapshot)
            elif isinstance(update, SetSnapshotRefUpdate):
                ref_updates.append(update)
            else:
                return None
        ref = failed.ref
        if not adds or not ref_updates:
            return None
        chain = [s.snapshot_id for s in adds]
        if any(u.ref_name != ref or u.type != SnapshotRefType.BRANCH for u in ref_updates):
            return None
        if ref_updates[-1].snapshot_id != chain[-1] or any(
            u.snapshot_id not in chain for u in ref_updates
        ):
            return None
        for i, snapshot in enumerate(adds):
            parent_id = failed.snapshot_id if i == 0 else chain[i - 1]
            if (
                snapshot.parent_snapshot_id != parent_id
                or snapshot.summary is None
                or snapshot.summary.operation != SnapshotOperation.APPEND
                # a row delta's inserts assumed their keys absent at the head it read
                or snapshot.summary.get(ROW_DELTA_PROPERTY) is not None
                or current.snapshot_by_id(snapshot.snapshot_id) is not None
            ):
                return None
        head = current.snapshot_by_name(ref)
        if head is None:
            return None

        io = self._load_file_io(current.properties, current.location)
        if failed.snapshot_id is None:
            parent_manifests_before: list[ManifestFile] = []
        else:
            original_parent = current.snapshot_by_id(failed.snapshot_id)
            if original_parent is None:  # expired meanwhile: cannot prove it is a fast append
                return None
            parent_manifests_before = list(self._manifest_list(io, original_parent.manifest_list))

        provider = load_location_provider(current.location, current.properties)
        compression = avro_compression(current)
        format_version = current.format_version
        sequence_number = current.next_sequence_number()
        parent = head
        parent_manifests = _live_manifests(self._manifest_list(io, head.manifest_list))
        rebased: dict[int, Snapshot] = {}
        commit_uuid = uuid.uuid4()
        for snapshot in adds:
            manifests = list(self._manifest_list(io, snapshot.manifest_list))
            own = [m for m in manifests if m.added_snapshot_id == snapshot.snapshot_id]
            inherited = {
                m.manifest_path for m in manifests if m.added_snapshot_id != snapshot.snapshot_id
            }
            # a fast append keeps every live manifest of its parent (it may drop the ones
            # holding only deleted entries) and adds its own
            live = {m.manifest_path for m in _live_manifests(parent_manifests_before)}
            every = {m.manifest_path for m in parent_manifests_before}
            if not own or not live <= inherited <= every:
                return None
            new_manifests: list[ManifestFile] = []
            for manifest in own:
                if (
                    manifest.content != ManifestContent.DATA
                    or (manifest.existing_files_count or 0) > 0
                    or (manifest.deleted_files_count or 0) > 0
                    or manifest.min_sequence_number != manifest.sequence_number
                ):
                    return None
                # The manifest holds only ADDED entries whose sequence numbers are inherited
                # from the manifest list (equal min and manifest sequence numbers say no entry
                # carries its own), so it is reused as written; only its list entry moves to
                # the new sequence number.
                moved = copy.copy(manifest)
                if format_version > 1:
                    moved.sequence_number = sequence_number
                    moved.min_sequence_number = sequence_number
                new_manifests.append(moved)
            list_path = provider.new_metadata_location(
                f"snap-{snapshot.snapshot_id}-{attempt + 1}-{commit_uuid}.avro"
            )
            with write_manifest_list(
                format_version=format_version,
                output_file=io.new_output(list_path),
                snapshot_id=snapshot.snapshot_id,
                parent_snapshot_id=parent.snapshot_id,
                sequence_number=sequence_number,
                avro_compression=compression,
            ) as list_writer:
                list_writer.add_manifests(new_manifests + parent_manifests)
            assert snapshot.summary is not None
            added = {
                k: v
                for k, v in snapshot.summary.additional_properties.items()
                if not k.startswith("total-")
            }
            # Without a head summary the totals are unknown: leave them out rather than
            # counting from zero.
            previous: Mapping[str, str] = parent.summary or {"operation": "unknown"}
            summary = update_snapshot_summaries(
                Summary(SnapshotOperation.APPEND, **added), previous_summary=previous
            )
            new_snapshot = Snapshot(
                snapshot_id=snapshot.snapshot_id,
                parent_snapshot_id=parent.snapshot_id,
                sequence_number=sequence_number,
                timestamp_ms=max(int(time.time() * 1000), parent.timestamp_ms),
                manifest_list=list_path,
                summary=summary,
                schema_id=snapshot.schema_id,
            )
            rebased[snapshot.snapshot_id] = new_snapshot
            parent = new_snapshot
            parent_manifests_before = manifests
            parent_manifests = _live_manifests(new_manifests + parent_manifests)
            if format_version > 1:
                sequence_number += 1

        out: list[TableUpdate] = []
        for update in updates:
            if isinstance(update, AddSnapshotUpdate):
                out.append(AddSnapshotUpdate(snapshot=rebased[update.snapshot.snapshot_id]))
            else:
                out.append(update)
        return tuple(out)

    # -- tables: drop, rename -------------------------------------------------------------

    def drop_table(self, identifier: str | Identifier) -> None:
        """Remove the table from the bound branch; its files stay (see the module docstring)."""
        key = self._table_key(identifier)
        branch = self._branch_name()
        meta = self._meta(
            f"Drop table {key}", {"iceberg.operation": "drop", "iceberg.table": str(key)}
        )
        on_conflict = self._conflict_mapper(
            branch, missing=lambda k: NoSuchTableError(f"table '{k}' does not exist on '{branch}'")
        )

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, [key])
            if not isinstance(found.get(key), IcebergTable):
                raise NoSuchTableError(f"table '{key}' does not exist on '{branch}'")
            self._commit(branch, [Delete(key)], head, meta, on_conflict)

        self._retrying(f"drop table '{key}' on '{branch}'", attempt)

    def purge_table(self, identifier: str | Identifier) -> None:
        """Same as :meth:`drop_table`: no file is deleted.

        Other branches, tags and old commits may still use the table's files; the garbage
        collector (``lakehouse maintenance gc``) deletes them once nothing reaches them.
        """
        self.drop_table(identifier)

    def rename_table(
        self, from_identifier: str | Identifier, to_identifier: str | Identifier
    ) -> Table:
        """Rename in one commit (delete the old key, put the new one with the same content id)."""
        source = self._table_key(from_identifier)
        target = self._table_key(to_identifier, ValueError)
        branch = self._branch_name()
        meta = self._meta(
            f"Rename table {source} to {target}",
            {"iceberg.operation": "rename", "iceberg.table": str(target)},
        )
        on_conflict = self._conflict_mapper(
            branch,
            exists=lambda k: TableAlreadyExistsError(f"table '{k}' already exists on '{branch}'"),
            missing=lambda k: NoSuchTableError(f"table '{k}' does not exist on '{branch}'"),
        )

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, [source, *self._with_parent(target)])
            content = found.get(source)
            if not isinstance(content, IcebergTable):
                raise NoSuchTableError(f"table '{source}' does not exist on '{branch}'")
            if target in found:
                raise TableAlreadyExistsError(f"table '{target}' already exists on '{branch}'")
            self._check_namespace(branch, target, found)
            self._commit(branch, [Delete(source), Put(target, content)], head, meta, on_conflict)

        self._retrying(f"rename table '{source}' on '{branch}'", attempt)
        return self.load_table(target.elements)

    # -- namespaces -----------------------------------------------------------------------

    def _ns_key_or_fail(self, namespace: str | Identifier) -> ContentKey:
        key = self._namespace_key(namespace)
        if key is None:
            raise NoSuchNamespaceError("the root namespace cannot be used here; name a namespace")
        return key

    def create_namespace(
        self, namespace: str | Identifier, properties: Properties = EMPTY_DICT
    ) -> None:
        """Create a namespace (its parent namespace must exist)."""
        key = self._ns_key_or_fail(namespace)
        branch = self._branch_name()
        meta = self._meta(f"Create namespace {key}", {"iceberg.operation": "create-namespace"})

        def exists(k: ContentKey) -> Exception:
            return NamespaceAlreadyExistsError(f"namespace '{k}' already exists on '{branch}'")

        on_conflict = self._conflict_mapper(branch, exists=exists)
        content = Namespace(key.elements, {str(k): str(v) for k, v in properties.items()})

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, self._with_parent(key))
            if key in found:
                raise exists(key)
            self._check_namespace(branch, key, found)
            self._commit(branch, [Put(key, content)], head, meta, on_conflict)

        self._retrying(f"create namespace '{key}' on '{branch}'", attempt)

    def drop_namespace(self, namespace: str | Identifier) -> None:
        """Drop an empty namespace."""
        key = self._ns_key_or_fail(namespace)
        branch = self._branch_name()
        meta = self._meta(f"Drop namespace {key}", {"iceberg.operation": "drop-namespace"})
        on_conflict = self._conflict_mapper(
            branch,
            missing=lambda k: NoSuchNamespaceError(f"namespace '{k}' does not exist on '{branch}'"),
            not_empty=lambda k: NamespaceNotEmptyError(
                f"namespace '{k}' on '{branch}' is not empty"
            ),
        )

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, [key])
            if not isinstance(found.get(key), Namespace):
                raise NoSuchNamespaceError(f"namespace '{key}' does not exist on '{branch}'")
            self._commit(branch, [Delete(key)], head, meta, on_conflict)

        self._retrying(f"drop namespace '{key}' on '{branch}'", attempt)

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        """Namespaces directly inside ``namespace`` (top-level ones by default)."""
        return self._list(namespace, ContentType.NAMESPACE)

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        """Properties of a namespace on the bound reference."""
        key = self._ns_key_or_fail(namespace)
        _, found = self._read([key])
        content = found.get(key)
        if not isinstance(content, Namespace):
            raise NoSuchNamespaceError(f"namespace '{key}' does not exist on '{self.ref}'")
        return dict(content.properties)

    def namespace_exists(self, namespace: str | Identifier) -> bool:
        """True if the namespace exists on the bound reference."""
        key = self._namespace_key(namespace)
        if key is None:
            return True
        _, found = self._read([key])
        return isinstance(found.get(key), Namespace)

    def update_namespace_properties(
        self,
        namespace: str | Identifier,
        removals: set[str] | None = None,
        updates: Properties = EMPTY_DICT,
    ) -> PropertiesUpdateSummary:
        """Change namespace properties (a Put keeping the namespace's content id)."""
        key = self._ns_key_or_fail(namespace)
        branch = self._branch_name()
        meta = self._meta(
            f"Update namespace {key} properties", {"iceberg.operation": "update-namespace"}
        )
        on_conflict = self._conflict_mapper(
            branch,
            missing=lambda k: NoSuchNamespaceError(f"namespace '{k}' does not exist on '{branch}'"),
        )

        def attempt(_: int) -> PropertiesUpdateSummary:
            head, found = self._read_branch(branch, [key])
            current = found.get(key)
            if not isinstance(current, Namespace):
                raise NoSuchNamespaceError(f"namespace '{key}' does not exist on '{branch}'")
            summary, new_properties = self._get_updated_props_and_update_summary(
                current_properties=dict(current.properties), removals=removals, updates=updates
            )
            if dict(new_properties) != dict(current.properties):
                content = Namespace(key.elements, dict(new_properties), id=current.id)
                self._commit(branch, [Put(key, content)], head, meta, on_conflict)
            return summary

        return self._retrying(f"update namespace '{key}' on '{branch}'", attempt)

    # -- views ------------------------------------------------------------------------------

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        """Views directly inside ``namespace`` on the bound reference."""
        return self._list(namespace, ContentType.ICEBERG_VIEW)

    def view_exists(self, identifier: str | Identifier) -> bool:
        """True if an Iceberg view is at ``identifier`` on the bound reference."""
        key = self._table_key(identifier, NoSuchViewError)
        _, found = self._read([key])
        return isinstance(found.get(key), IcebergView)

    def load_view(self, identifier: str | Identifier) -> View:
        """The view at ``identifier`` on the bound reference."""
        key = self._table_key(identifier, NoSuchViewError)
        _, found = self._read([key])
        content = found.get(key)
        if not isinstance(content, IcebergView):
            raise NoSuchViewError(f"view '{key}' does not exist on '{self.ref}'")
        return View(key.elements, self._read_view_metadata(content.metadata_location))

    def _read_view_metadata(self, location: str) -> ViewMetadata:
        io = self._load_file_io(location=location)
        with io.new_input(location).open() as stream:
            return ViewMetadata.model_validate_json(stream.read())

    def drop_view(self, identifier: str | Identifier) -> None:
        """Remove the view from the bound branch (its files stay)."""
        key = self._table_key(identifier, NoSuchViewError)
        branch = self._branch_name()
        meta = self._meta(f"Drop view {key}", {"iceberg.operation": "drop-view"})

        def missing(k: ContentKey) -> Exception:
            return NoSuchViewError(f"view '{k}' does not exist on '{branch}'")

        on_conflict = self._conflict_mapper(branch, missing=missing)

        def attempt(_: int) -> None:
            head, found = self._read_branch(branch, [key])
            if not isinstance(found.get(key), IcebergView):
                raise missing(key)
            self._commit(branch, [Delete(key)], head, meta, on_conflict)

        self._retrying(f"drop view '{key}' on '{branch}'", attempt)

    def register_view(self, identifier: str | Identifier, metadata_location: str) -> View:
        """Register existing view metadata at ``identifier`` on the bound branch."""
        key = self._table_key(identifier, ValueError)
        self._check_location(metadata_location, f"register view '{key}': metadata location")
        metadata = self._read_view_metadata(metadata_location)
        self._put_view(key, metadata, metadata_location, "Register")
        return View(key.elements, metadata)

    def create_view(
        self,
        identifier: str | Identifier,
        schema: Schema | pa.Schema,
        view_version: ViewVersion,
        location: str | None = None,
        properties: Properties = EMPTY_DICT,
    ) -> View:
        """Create a view; its metadata goes under the ``iceberg-metadata`` bucket."""
        key = self._table_key(identifier, ValueError)
        if location:
            self._check_location(location, f"create view '{key}': location")
        branch = self._branch_name()
        _, found = self._read_branch(branch, self._with_parent(key))
        self._check_namespace(branch, key, found)
        if key in found:
            raise ViewAlreadyExistsError(f"view '{key}' already exists on '{branch}'")
        iceberg_schema = self._convert_schema_if_needed(schema)
        version = view_version.model_copy(update={"schema_id": iceberg_schema.schema_id})
        paths = self.warehouse.table_locations(key.elements[:-1], key.name)
        metadata_folder = f"{location.rstrip('/')}/metadata" if location else paths.metadata
        metadata = ViewMetadata(
            view_uuid=str(uuid.uuid4()),
            format_version=1,
            location=metadata_folder.rsplit("/", 1)[0],
            schemas=[iceberg_schema],
            current_version_id=version.version_id,
            versions=[version],
            version_log=[
                ViewHistoryEntry(timestamp_ms=version.timestamp_ms, version_id=version.version_id)
            ],
            properties={str(k): str(v) for k, v in properties.items()},
        )
        metadata_location = f"{metadata_folder}/00000-{uuid.uuid4()}.metadata.json"
        io = self._load_file_io(location=metadata_location)
        with io.new_output(metadata_location).create(overwrite=False) as stream:
            stream.write(metadata.model_dump_json().encode("utf-8"))
        self._put_view(key, metadata, metadata_location, "Create")
        return View(key.elements, metadata)

    def _put_view(
        self, key: ContentKey, metadata: ViewMetadata, metadata_location: str, verb: str
    ) -> None:
        branch = self._branch_name()
        current = next(
            (v for v in metadata.versions if v.version_id == metadata.current_version_id), None
        )
        content = IcebergView(
            metadata_location=metadata_location,
            version_id=metadata.current_version_id,
            schema_id=current.schema_id if current is not None else 0,
        )

        def exists(k: ContentKey) -> Exception:
            return ViewAlreadyExistsError(f"view '{k}' already exists on '{branch}'")

        head, found = self._read_branch(branch, self._with_parent(key))
        self._check_namespace(branch, key, found)
        if key in found:
            raise exists(key)
        self._put_new(
            branch,
            key,
            content,
            head,
            self._meta(f"{verb} view {key}", {"iceberg.operation": f"{verb.lower()}-view"}),
            exists=exists,
        )

    # -- safety -------------------------------------------------------------------------------

    @staticmethod
    def _write_metadata(metadata: TableMetadata, io: FileIO, metadata_path: str) -> None:
        """Write a new metadata file (never overwriting), serialising each snapshot only once.

        Same content as PyIceberg's writer (snapshots last); with its legacy
        ``current-snapshot-id`` setting on, PyIceberg's writer is used as it is.
        """
        if Config().get_bool("legacy-current-snapshot-id"):
            ToOutputFile.table_metadata(metadata, io.new_output(metadata_path))
            return
        data = _metadata_json(metadata).encode("utf-8")
        data = Compressor.get_compressor(metadata_path).bytes_compressor()(data)
        with io.new_output(metadata_path).create(overwrite=False) as stream:
            stream.write(data)

    @staticmethod
    def _delete_old_metadata(io: FileIO, base: TableMetadata, metadata: TableMetadata) -> None:
        """Never delete old metadata files: other branches may still point at them."""


def _live_manifests(manifests: Iterable[ManifestFile]) -> list[ManifestFile]:
    """Manifests a fast append carries over: those with added or existing files."""
    return [m for m in manifests if m.has_added_files() or m.has_existing_files()]


__all__ = [
    "COMMIT_LOCK_TIMEOUT_MS",
    "DEFAULT_TABLE_PROPERTIES",
    "LOCATIONS_CONFINED",
    "REBASE_FAST_APPENDS",
    "SAFETY_PROPERTIES",
    "RefCatalog",
    "TableChange",
]
