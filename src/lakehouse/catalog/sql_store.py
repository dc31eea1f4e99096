"""The versioned catalog on a relational database: SQLite (embedded) or PostgreSQL.

Tables (all prefixed ``lh_``):

* ``lh_refs``    — one row per branch/tag: name, type, head hash.
* ``lh_commits`` — immutable commits: parents, generation, root of the key tree,
  metadata and the operations as committed.
* ``lh_nodes``   — immutable, content-addressed nodes of the key trees
  (:mod:`lakehouse.catalog.tree`).
* ``lh_meta``    — schema version and repository settings.
* ``lh_ref_log`` — each reference's recent heads (its reflog, schema 2): a ring of
  :data:`REF_LOG_SIZE` slots per reference, written in the transaction that moves it.
* ``lh_repo_config`` — repository config objects by type (schema 2, Nessie spec 2.1).

Writers serialize per database (SQLite ``BEGIN IMMEDIATE``) or per reference
(PostgreSQL ``SELECT … FOR UPDATE`` on the ref row), so a commit is checked and
applied against the head it will replace: nothing is lost or applied twice. Readers
never lock: commits and nodes are immutable, so after resolving a head hash every
read is of immutable rows, served from an in-process cache when warm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError

from lakehouse.catalog.merge import ParentsLookup, common_ancestor, plan_merge
from lakehouse.catalog.model import (
    NO_ANCESTOR,
    REPOSITORY_CONFIG_TYPES,
    Branch,
    CommitConsistency,
    CommitMeta,
    CommitResult,
    Conflict,
    ConflictType,
    Content,
    ContentKey,
    ContentType,
    Delete,
    DiffEntry,
    Entry,
    KeyMergeDetail,
    LogEntry,
    LogPage,
    MergeBehavior,
    MergeResult,
    Operation,
    Put,
    Reference,
    ReferenceHistory,
    ReferenceHistoryState,
    ReferenceType,
    RefSpec,
    RepositoryConfig,
    ResolvedContent,
    Unchanged,
    content_from_json,
    operation_from_json,
    operation_to_json,
    validate_hash,
    validate_ref_name,
    with_id,
)
from lakehouse.catalog.sqlite_refs import SCHEMA_VERSION as SCHEMA_VERSION
from lakehouse.catalog.store import (
    RefLike,
    ResolvedRef,
    VersionStore,
    check_reference_type,
    validate_operations,
)
from lakehouse.catalog.tree import EMPTY_DATA, EMPTY_TREE, Node, TreeReader, TreeWriter, Value
from lakehouse.errors import (
    CommitConflictError,
    CommitStateUnknownError,
    InvalidInputError,
    MergeConflictError,
    ReadOnlyReferenceError,
    ReferenceAlreadyExistsError,
    ReferenceConflictError,
    ReferenceNotFoundError,
    TransientCatalogError,
)

log = logging.getLogger(__name__)

#: Heads kept per reference in ``lh_ref_log``: the current one and the 20 before it
#: (Nessie's default ``ref-previous-head-count``). Older entries are overwritten.
REF_LOG_SIZE = 21

metadata = sa.MetaData()
meta_table = sa.Table(
    "lh_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
refs_table = sa.Table(
    "lh_refs",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
commits_table = sa.Table(
    "lh_commits",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("merge_parent", sa.String(64), nullable=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("tree", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=True),
    sa.Column("committer", sa.Text, nullable=True),
    sa.Column("authored_at", sa.BigInteger, nullable=False),
    sa.Column("committed_at", sa.BigInteger, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("operations", sa.Text, nullable=False),
)
nodes_table = sa.Table(
    "lh_nodes",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

ref_log_table = sa.Table(
    "lh_ref_log",
    metadata,
    sa.Column("ref_name", sa.String(255), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.BigInteger, nullable=False),
)
repo_config_table = sa.Table(
    "lh_repo_config",
    metadata,
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Statements of the hot paths (a table commit reads a ref, a commit and tree nodes, and
#: writes nodes, a commit and the ref), built once: SQLAlchemy then only binds them,
#: instead of building, coercing and caching a new statement for every call (~0.1 ms each).
_SELECT_REF = sa.select(refs_table.c.type, refs_table.c.hash).where(
    refs_table.c.name == sa.bindparam("name")
)
_SELECT_COMMIT = sa.select(commits_table).where(commits_table.c.hash == sa.bindparam("hash"))
_SELECT_COMMITS = sa.select(commits_table).where(
    commits_table.c.hash.in_(sa.bindparam("hashes", expanding=True))
)
_SELECT_NODE = sa.select(nodes_table.c.hash, nodes_table.c.data).where(
    nodes_table.c.hash == sa.bindparam("hash")
)
_SELECT_NODES = sa.select(nodes_table.c.hash, nodes_table.c.data).where(
    nodes_table.c.hash.in_(sa.bindparam("hashes", expanding=True))
)
_INSERT_COMMIT = commits_table.insert()
#: ``INSERT … ON CONFLICT DO NOTHING`` by dialect and table, built on first use
_INSERT_IGNORE: dict[tuple[str, str], sa.Insert] = {}
_MOVE_REF = (
    refs_table.update()
    .where(refs_table.c.name == sa.bindparam("branch"), refs_table.c.hash == sa.bindparam("head"))
    .values(hash=sa.bindparam("new_hash"), updated_at=sa.bindparam("at"))
)

# One statement per reference change: the next sequence number of ``ref_name`` goes to
# slot ``seq % REF_LOG_SIZE``, replacing the entry REF_LOG_SIZE changes older (a ring, so
# the log never needs pruning). Writers of one reference are serialized (see the module
# docstring), so MAX(seq) is stable; it reads at most REF_LOG_SIZE rows by primary key.
_LOG_REF = sa.text(
    "INSERT INTO lh_ref_log (ref_name, slot, seq, hash, changed_at) "
    "SELECT CAST(:name AS VARCHAR(255)), (COALESCE(MAX(seq), 0) + 1) % :size, "
    "COALESCE(MAX(seq), 0) + 1, CAST(:hash AS VARCHAR(64)), CAST(:at AS BIGINT) "
    "FROM lh_ref_log WHERE ref_name = CAST(:name AS VARCHAR(255)) "
    "ON CONFLICT (ref_name, slot) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
    "changed_at = excluded.changed_at"
)

# SqlStore._store_commit on PostgreSQL: the commit's new nodes, its row and the move of
# its branch in one statement (data-modifying CTEs run in the statement's transaction).
_STORE_COMMIT_PG = sa.text(
    "WITH new_nodes AS ("
    " INSERT INTO lh_nodes (hash, data)"
    " SELECT * FROM unnest(CAST(:node_hashes AS VARCHAR(64)[]), CAST(:node_data AS BYTEA[]))"
    " ON CONFLICT DO NOTHING"
    "), new_commit AS ("
    " INSERT INTO lh_commits (hash, parent, merge_parent, generation, tree, message, author,"
    " committer, authored_at, committed_at, properties, operations)"
    " VALUES (CAST(:hash AS VARCHAR(64)), :parent, :merge_parent, :generation, :tree, :message,"
    " :author, :committer, :authored_at, :committed_at, :properties, :operations)"
    ") UPDATE lh_refs SET hash = CAST(:hash AS VARCHAR(64)),"
    " updated_at = CAST(:committed_at AS BIGINT)"
    " WHERE name = CAST(:branch AS VARCHAR(255)) AND hash = CAST(:head AS VARCHAR(64))"
)


def _migrate_to_2(conn: Connection) -> None:
    """Schema 2: the reflog and repository config; each reference's head starts its log."""
    ref_log_table.create(conn, checkfirst=True)
    repo_config_table.create(conn, checkfirst=True)
    conn.execute(
        ref_log_table.insert().from_select(
            ["ref_name", "slot", "seq", "hash", "changed_at"],
            sa.select(
                refs_table.c.name,
                sa.literal(1 % REF_LOG_SIZE),
                sa.literal(1),
                refs_table.c.hash,
                refs_table.c.updated_at,
            ),
        )
    )


# Each migration brings the schema from version i to i + 1. Never edit a released one
# (the first names its tables: the tables of schema 1 only, as when it was released).
_MIGRATIONS: list[Callable[[Connection], None]] = [
    lambda conn: metadata.create_all(
        conn, tables=[meta_table, refs_table, commits_table, nodes_table]
    ),
    _migrate_to_2,
]


#: A commit's generation and parent hashes (first parent first), as history walks need.
_Parents = tuple[int, tuple[str, ...]]


@dataclass(frozen=True)
class _Commit:
    hash: str
    parent: str | None
    merge_parent: str | None
    generation: int
    tree: str
    message: str
    author: str | None
    committer: str | None
    authored_at: int
    committed_at: int
    properties: str
    operations: str

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(p for p in (self.parent, self.merge_parent) if p is not None)

    def meta(self) -> CommitMeta:
        return CommitMeta(
            message=self.message,
            author=self.author,
            committer=self.committer,
            authored_time=_from_micros(self.authored_at),
            commit_time=_from_micros(self.committed_at),
            hash=self.hash,
            parent_hashes=self.parents,
            **_decode_properties(self.properties),
        )


def _encode_properties(meta: CommitMeta) -> str:
    """The ``properties`` column: the properties object, or, for a commit signed off,
    ``{"properties": {...}, "signedOffBy": [...]}`` (told apart by the value types: a
    property's value is always a string). Commits without sign-offs keep the plain form,
    so their rows (and hashes) are what they were before sign-offs were stored."""
    if not meta.signed_off_by:
        return _dumps(dict(meta.properties))
    return _dumps({"properties": dict(meta.properties), "signedOffBy": list(meta.signed_off_by)})


def _decode_properties(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if isinstance(data.get("signedOffBy"), list) and isinstance(data.get("properties"), dict):
        return {
            "properties": data["properties"],
            "signed_off_by": tuple(str(s) for s in data["signedOffBy"]),
        }
    return {"properties": data}


K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """A small thread-safe LRU map for immutable rows."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def split(self, keys: Sequence[K]) -> tuple[dict[K, V], list[K]]:
        """The cached values of ``keys``, and the keys not cached (in order)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            value = self.get(key)
            if value is None:
                missing.append(key)
            else:
                found[key] = value
        return found, missing

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            self._evict()

    def put_many(self, values: Mapping[K, V]) -> None:
        """Put every item of ``values`` (one lock for all)."""
        with self.lock:
            for key, value in values.items():
                self.data[key] = value
                self.data.move_to_end(key)
            self._evict()

    def _evict(self) -> None:
        while len(self.data) > self.size:
            self.data.popitem(last=False)


#: How many commits the first read-ahead of a history walk reads per start commit
#: (:meth:`SqlStore._ancestry`); each further miss reads twice as many, up to
#: ``_ANCESTRY_MAX_DEPTH``.
_ANCESTRY_FIRST_DEPTH = 16
_ANCESTRY_MAX_DEPTH = 4096


@functools.cache
def _parent_chains_query() -> sa.Select[Any]:
    """Hash, parents and generation of commits ``:starts`` and their first parents up to
    ``:depth`` deep, built once.

    Bound parameters (the hashes as an expanding ``IN``), so SQLAlchemy compiles it once per
    process: building the recursive union with the hashes inlined cost ~2 ms per lookup.
    Only what a history walk needs: a whole commit row carries its operations (about a
    kilobyte each), which a walk of 2,000 commits read and decoded for nothing.
    """
    seed = sa.select(commits_table.c.hash.label("h"), sa.literal(0).label("n")).where(
        commits_table.c.hash.in_(sa.bindparam("starts", expanding=True))
    )
    chain = seed.cte("chain", recursive=True)
    step = commits_table.alias("step")
    chain = chain.union_all(
        sa.select(step.c.parent, chain.c.n + 1)
        .join(chain, step.c.hash == chain.c.h)
        .where(step.c.parent.is_not(None), chain.c.n + 1 < sa.bindparam("depth"))
    )
    c = commits_table.c
    return sa.select(c.hash, c.parent, c.merge_parent, c.generation).where(
        c.hash.in_(sa.select(chain.c.h))
    )


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _now_micros() -> int:
    return time.time_ns() // 1000


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _lock_id(name: str) -> int:
    """A signed 64-bit lock id for ``name`` (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: SQLSTATE of a lock wait that ran out of ``lock_timeout`` (PostgreSQL ``lock_not_available``).
_LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def _pg_advisory_lock(engine: Engine, name: str, deadline: float) -> Iterator[bool]:
    lock_id = _lock_id(name)
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except OperationalError:
        yield False  # the commit itself reports an unavailable database
        return
    with conn:
        try:
            got = _pg_lock_until(conn, lock_id, deadline)
        except DBAPIError as exc:  # the connection failed: go on without the lock
            log.warning("commit lock %s not taken (%s)", name, exc.orig)
            conn.invalidate()
            yield False
            return
        try:
            yield got
        finally:
            if got:
                # A session lock dies with its session: when the connection broke (the
                # network failed during the commit it guarded), the server has released
                # it already, and raising here would hide the commit's own outcome (an
                # unknown outcome must reach the caller as unknown, not as this error).
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                except DBAPIError as exc:
                    log.warning("commit lock %s not released (connection lost): %s", name, exc)
                    conn.invalidate()


def _pg_lock_until(conn: Connection, lock_id: int, deadline: float) -> bool:
    """Take the session advisory lock ``lock_id`` on ``conn``, waiting until ``deadline``.

    The wait is the server's: ``pg_advisory_lock`` under a ``lock_timeout`` of the time
    left, so waiters queue in the server and are woken in turn when the holder unlocks,
    instead of polling it (8 writers polling every few ms took the CPU from the holder
    on a small machine). ``lock_timeout`` is reset before the connection goes back to
    the pool.
    """
    row = conn.execute(sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})
    if row.scalar():
        return True
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms <= 0:
        return False
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, false)"), {"t": f"{left_ms}ms"})
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        return True
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        return False
    finally:
        conn.execute(sa.text("RESET lock_timeout"))


#: In-process locks of in-memory SQLite databases, by database and lock name.
_MEMORY_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_MEMORY_LOCKS_GUARD = threading.Lock()


@contextmanager
def _local_lock(engine: Engine, name: str, deadline: float) -> Iterator[bool]:
    """``flock`` on ``<database>.commit-locks/<hash>.lock``; a thread lock for ``:memory:``."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        with _MEMORY_LOCKS_GUARD:  # an in-memory database lives as long as its engine
            lock = _MEMORY_LOCKS.setdefault((id(engine), name), threading.Lock())
        got = lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    folder = f"{database}.commit-locks"
    try:
        os.makedirs(folder, exist_ok=True)
        path = f"{folder}/{_lock_id(name) & 0xFFFFFFFFFFFFFFFF:016x}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False  # e.g. a read-only folder: commits stay optimistic
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        got = True
    except BlockingIOError:
        got = _flock_until(fd, deadline)
        if not got:  # the descriptor now belongs to the waiting thread
            yield False
            return
    try:
        yield got
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _flock_until(fd: int, deadline: float) -> bool:
    """Wait for an exclusive ``flock`` on ``fd`` until ``deadline``: True once held.

    The kernel queues the waiters, so no writer spins on a busy lock (on a small machine
    spinning waiters take the CPU from the holder). The blocking call runs in a helper
    thread; when the deadline passes first, the thread keeps the descriptor and closes it
    as soon as it gets the lock (or fails), so an abandoned wait never holds the lock.
    """
    state = threading.Lock()
    done = threading.Event()
    outcome = {"got": False, "abandoned": False}

    def wait() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ok = True
        except OSError:
            ok = False
        with state:
            if outcome["abandoned"] or not ok:
                os.close(fd)
            else:
                outcome["got"] = True
            done.set()

    threading.Thread(target=wait, name="lakehouse-commit-lock", daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    with state:
        if not outcome["got"]:
            outcome["abandoned"] = True
            if done.is_set():  # it failed: the thread closed the descriptor already
                return False
        return outcome["got"]


class SqlStore(VersionStore):
    """:class:`VersionStore` on SQLite or PostgreSQL, through SQLAlchemy Core.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/catalog.db`` or
    ``postgresql+psycopg://user:pass@host/db``. The schema is created or migrated on
    first use; ``main`` exists from the start.
    """

    def __init__(self, url: str, *, default_branch: str = "main", engine: Engine | None = None):
        self.url = url
        self.default_branch = validate_ref_name(default_branch)
        self.engine = engine or _create_engine(url)
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidInputError(f"unsupported catalog database {self.dialect!r}")
        # PostgreSQL reads run in autocommit: each statement of a READ COMMITTED
        # transaction takes its own snapshot anyway, so a read-only transaction adds
        # nothing but two round trips (BEGIN, and ROLLBACK when the pool takes it back).
        self._read_engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else self.engine
        )
        self._nodes: _LRU[str, Node] = _LRU(100_000)
        self._commits: _LRU[str, _Commit] = _LRU(50_000)
        #: generation and parents by commit, for history walks (:meth:`_ancestry`)
        self._parents: _LRU[str, _Parents] = _LRU(200_000)
        #: merge bases by (source, target) commit: commits never change, so neither does
        #: theirs (a content merge asks twice: its dry run, then the merge itself)
        self._merge_bases: _LRU[tuple[str, str], str] = _LRU(1_000)
        self._reader = TreeReader(self)
        # the write transaction of this thread, if any: reads inside it use its connection,
        # and rows it wrote are cached only once it has committed
        self._tx = threading.local()
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    @contextmanager
    def commit_lock(
        self, branch: str, keys: Iterable[ContentKey], timeout: float
    ) -> Iterator[bool]:
        """Serialise the writers of ``keys`` on ``branch`` (see :meth:`VersionStore.commit_lock`).

        PostgreSQL: session advisory locks (``pg_try_advisory_lock``) on a connection of
        their own, released at the end (or by the server when the session dies). SQLite:
        ``flock`` on one small file per key in ``<database>.commit-locks/`` next to the
        database (released by the OS when the process dies); an in-memory database uses
        in-process locks. Several keys are taken in sorted order, so writers of
        overlapping sets cannot deadlock; a lock not had within ``timeout`` is skipped.
        """
        names = sorted({f"{branch}\x00{key}" for key in keys})
        deadline = time.monotonic() + max(0.0, timeout)
        with contextlib.ExitStack() as stack:
            held = True
            for name in names:
                if self.dialect == "postgresql":
                    got = stack.enter_context(_pg_advisory_lock(self.engine, name, deadline))
                else:
                    got = stack.enter_context(_local_lock(self.engine, name, deadline))
                held = held and got
            yield held and bool(names)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read connection. Reads nested in one (a lookup's ref, commit and tree nodes)
        share it: one pool checkout and, on SQLite, one read snapshot of the database."""
        current: Connection | None = getattr(self._tx, "read", None)
        if current is not None:
            yield current
            return
        try:
            with self._read_engine.connect() as conn:
                self._tx.read = conn
                try:
                    yield conn
                finally:
                    self._tx.read = None
        except OperationalError as exc:
            raise TransientCatalogError(f"catalog database unavailable: {exc.orig}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; the outcome of a failure while committing is unknown."""
        try:
            conn = self.engine.connect().execution_options(lakehouse_write=True)
        except OperationalError as exc:
            raise TransientCatalogError(f"catalog database unavailable: {exc.orig}") from exc
        with conn:
            try:
                trans = conn.begin()
            except OperationalError as exc:
                raise TransientCatalogError(f"catalog database busy: {exc.orig}") from exc
            after: list[Callable[[], None]] = []
            self._tx.conn, self._tx.after = conn, after
            try:
                try:
                    yield conn
                except BaseException:
                    trans.rollback()
                    raise
                try:
                    trans.commit()
                except DBAPIError as exc:
                    raise CommitStateUnknownError(
                        "the catalog database failed while committing; "
                        f"the outcome is unknown: {exc.orig}"
                    ) from exc
            finally:
                self._tx.conn, self._tx.after = None, None
            for action in after:
                action()

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current write transaction has committed."""
        after = getattr(self._tx, "after", None)
        if after is None:
            action()
        else:
            after.append(action)

    def _migrate(self) -> None:
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7420001)"))
            version = 0
            if sa.inspect(conn).has_table("lh_meta"):
                row = conn.execute(
                    sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
                ).first()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise InvalidInputError(
                    f"catalog schema version {version} is newer than this Lakehouse supports "
                    f"({SCHEMA_VERSION}); upgrade Lakehouse"
                )
            for step in _MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                self._upsert_meta(conn, "schema_version", str(SCHEMA_VERSION))
            if version == 0:
                self._insert_ignore(conn, nodes_table, [{"hash": EMPTY_TREE, "data": EMPTY_DATA}])
                self._insert_ignore(conn, commits_table, [_root_row()])
                self._insert_ignore(
                    conn,
                    refs_table,
                    [
                        {
                            "name": self.default_branch,
                            "type": "BRANCH",
                            "hash": NO_ANCESTOR,
                            "updated_at": _now_micros(),
                        }
                    ],
                )
                self._log_ref(conn, self.default_branch, NO_ANCESTOR)
                self._upsert_meta(conn, "default_branch", self.default_branch)
                self._upsert_meta(conn, "repository_id", str(uuid.uuid4()))

    def _log_ref(self, conn: Connection, name: str, head: str, at: int | None = None) -> None:
        """Record that reference ``name`` now points at ``head`` (the reflog, one statement)."""
        conn.execute(
            _LOG_REF,
            {"name": name, "size": REF_LOG_SIZE, "hash": head, "at": at or _now_micros()},
        )

    def _upsert_meta(self, conn: Connection, key: str, value: str) -> None:
        updated = conn.execute(
            meta_table.update().where(meta_table.c.key == key).values(value=value)
        ).rowcount
        if not updated:
            conn.execute(meta_table.insert().values(key=key, value=value))

    def _insert_ignore(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        statement = _INSERT_IGNORE.get((self.dialect, table.name))
        if statement is None:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(table).on_conflict_do_nothing()
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                statement = sqlite_insert(table).on_conflict_do_nothing()
            _INSERT_IGNORE[(self.dialect, table.name)] = statement
        conn.execute(statement, rows)

    # -- immutable rows ---------------------------------------------------------------

    def get_nodes(self, hashes: Sequence[str]) -> dict[str, Node]:
        """Tree nodes by hash (the :class:`~lakehouse.catalog.tree.NodeSource` protocol)."""
        out, missing = self._nodes.split(hashes)
        if missing:
            fetched: dict[str, Node] = {}
            with self._maybe(getattr(self._tx, "conn", None)) as conn:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    rows = (
                        conn.execute(_SELECT_NODE, {"hash": chunk[0]})
                        if len(chunk) == 1
                        else conn.execute(_SELECT_NODES, {"hashes": chunk})
                    )
                    for h, data in rows:
                        fetched[h] = Node.decode(bytes(data))
            out.update(fetched)

            def remember() -> None:
                for h, node in fetched.items():
                    self._nodes.put(h, node)

            self._after_commit(remember)
            absent = [h for h in missing if h not in out]
            if absent:
                raise CommitStateUnknownError(f"catalog is missing tree nodes {absent[:3]}")
        return out

    def _commit_rows(
        self, hashes: Sequence[str], conn: Connection | None = None
    ) -> dict[str, _Commit]:
        out: dict[str, _Commit] = {}
        missing: list[str] = []
        for h in hashes:
            row = self._commits.get(h)
            if row is None:
                missing.append(h)
            else:
                out[h] = row
        if missing:
            with self._maybe(conn) as c:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    rows = (
                        c.execute(_SELECT_COMMIT, {"hash": chunk[0]})
                        if len(chunk) == 1
                        else c.execute(_SELECT_COMMITS, {"hashes": chunk})
                    )
                    for r in rows:
                        row = _Commit(*r)  # columns in field order (pinned by a test)
                        self._commits.put(row.hash, row)
                        out[row.hash] = row
        return out

    def _commit_row(self, h: str, conn: Connection | None = None) -> _Commit:
        row = self._commit_rows([h], conn).get(h)
        if row is None:
            raise ReferenceNotFoundError("@" + h, f"Commit '{h}' not found")
        return row

    @contextmanager
    def _maybe(self, conn: Connection | None) -> Iterator[Connection]:
        conn = conn if conn is not None else getattr(self._tx, "conn", None)
        if conn is not None:
            yield conn
        else:
            with self._read() as c:
                yield c

    def _expand_hash(self, value: str, conn: Connection | None = None) -> str:
        h = validate_hash(value)
        if len(h) == 64:
            self._commit_row(h, conn)
            return h
        with self._maybe(conn) as c:
            rows = c.execute(
                sa.select(commits_table.c.hash).where(commits_table.c.hash.like(h + "%")).limit(2)
            ).all()
        if not rows:
            raise ReferenceNotFoundError("@" + h, f"Commit '{h}' not found")
        if len(rows) > 1:
            raise InvalidInputError(f"commit hash prefix '{h}' is ambiguous; give more digits")
        return str(rows[0][0])

    def _ancestry(self) -> ParentsLookup:
        """A parents lookup for one history walk that reads ahead along first parents.

        :func:`~lakehouse.catalog.merge.common_ancestor` asks for the parents of one
        commit at a time; answered one statement each, a cold process (a fresh
        ``lakehouse merge``, an Airflow task, a restarted server) paid one round trip per
        commit since the fork. Each lookup that misses the cache instead reads the
        first-parent chains of the missing commits in one recursive statement, ``depth``
        commits deep, and the depth doubles with each such lookup (16, 32, … up to
        :data:`_ANCESTRY_MAX_DEPTH`): a walk of ``n`` commits takes about ``log2(n)``
        statements per side and reads at most about twice the commits it needed.
        """
        depth = _ANCESTRY_FIRST_DEPTH

        def lookup(hashes: Sequence[str]) -> dict[str, _Parents]:
            nonlocal depth
            found, missing = self._parents.split(hashes)
            if missing:
                known, missing = self._commits.split(missing)
                found.update((h, (r.generation, r.parents)) for h, r in known.items())
            if missing:
                found.update(self._parent_chains(missing, depth))
                depth = min(depth * 2, _ANCESTRY_MAX_DEPTH)
            return found

        return lookup

    def _merge_base(self, source: str, target: str) -> str | None:
        """The common ancestor of two commits (``None`` if unrelated), remembered."""
        base = self._merge_bases.get((source, target))
        if base is None:
            base = common_ancestor(source, target, self._ancestry())
            if base is not None:
                self._merge_bases.put((source, target), base)
        return base

    def _parent_chains(self, starts: Sequence[str], depth: int) -> dict[str, _Parents]:
        """Generation and parents of the commits ``starts`` and of up to ``depth - 1``
        first parents of each, cached."""
        query = _parent_chains_query()
        out: dict[str, _Parents] = {}
        with self._maybe(None) as c:
            for h, parent, merge_parent, generation in c.execute(
                query, {"starts": list(starts), "depth": depth}
            ):
                out[h] = (generation, tuple(p for p in (parent, merge_parent) if p is not None))
        self._parents.put_many(out)
        return out

    def _first_parent_chain(
        self, start: str, limit: int, conn: Connection | None = None
    ) -> list[_Commit]:
        """Up to ``limit`` commits from ``start`` along first parents (``start`` first)."""
        chain = sa.text(
            """
            WITH RECURSIVE chain(h, n) AS (
                SELECT CAST(:start AS VARCHAR(64)), 0
                UNION ALL
                SELECT c.parent, chain.n + 1 FROM lh_commits c JOIN chain ON c.hash = chain.h
                WHERE c.parent IS NOT NULL AND chain.n + 1 < :limit
            )
            SELECT h FROM chain ORDER BY n
            """
        )
        with self._maybe(conn) as c:
            hashes = [str(r[0]) for r in c.execute(chain, {"start": start, "limit": limit})]
            rows = self._commit_rows(hashes, c)
        return [rows[h] for h in hashes]

    # -- references -------------------------------------------------------------------

    def list_references(self) -> list[Reference]:
        """Every branch and tag, sorted by name."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(refs_table.c.name, refs_table.c.type, refs_table.c.hash).order_by(
                    refs_table.c.name
                )
            ).all()
        return [Reference.of(t, n, h) for n, t, h in rows]

    def _ref_row(
        self, conn: Connection, name: str, *, for_update: bool = False
    ) -> tuple[ReferenceType, str]:
        query = _SELECT_REF
        if for_update and self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query, {"name": name}).first()
        if row is None:
            raise ReferenceNotFoundError(name)
        return ReferenceType(row[0]), str(row[1])

    def get_reference(self, name: str) -> Reference:
        """The branch or tag called ``name``."""
        validate_ref_name(name)
        with self._read() as conn:
            kind, h = self._ref_row(conn, name)
        return Reference.of(kind, name, h)

    def create_reference(
        self, name: str, type: ReferenceType, from_ref: RefLike | None = None
    ) -> Reference:
        """Create a branch or tag pointing at ``from_ref`` (default: the default branch)."""
        validate_ref_name(name)
        kind = ReferenceType(type)
        target = self.resolve(from_ref).hash
        try:
            with self._write() as conn:
                if conn.execute(
                    sa.select(refs_table.c.name).where(refs_table.c.name == name)
                ).first():
                    raise ReferenceAlreadyExistsError(name)
                now = _now_micros()
                conn.execute(
                    refs_table.insert().values(
                        name=name, type=kind.value, hash=target, updated_at=now
                    )
                )
                self._log_ref(conn, name, target, now)
        except IntegrityError as exc:
            raise ReferenceAlreadyExistsError(name) from exc
        return Reference.of(kind, name, target)

    def assign_reference(
        self, name: str, expected_hash: str, to: RefLike, type: ReferenceType | None = None
    ) -> Reference:
        """Point ``name`` at ``to``, only if it is still at ``expected_hash``."""
        validate_ref_name(name)
        target = self.resolve(to).hash
        with self._write() as conn:
            kind, current = self._ref_row(conn, name, for_update=True)
            check_reference_type(name, kind, type)
            expected = self._expand_hash(expected_hash, conn)
            if current != expected:
                raise ReferenceConflictError(name, expected, current)
            now = _now_micros()
            conn.execute(
                refs_table.update()
                .where(refs_table.c.name == name)
                .values(hash=target, updated_at=now)
            )
            self._log_ref(conn, name, target, now)
        return Reference.of(kind, name, target)

    def delete_reference(
        self, name: str, expected_hash: str | None = None, type: ReferenceType | None = None
    ) -> None:
        """Delete a branch or tag; the default branch cannot be deleted."""
        validate_ref_name(name)
        if name == self.default_branch:
            raise InvalidInputError(f"the default branch '{name}' cannot be deleted")
        with self._write() as conn:
            kind, current = self._ref_row(conn, name, for_update=True)
            check_reference_type(name, kind, type)
            if expected_hash is not None:
                expected = self._expand_hash(expected_hash, conn)
                if current != expected:
                    raise ReferenceConflictError(name, expected, current)
            conn.execute(refs_table.delete().where(refs_table.c.name == name))
            conn.execute(ref_log_table.delete().where(ref_log_table.c.ref_name == name))

    # -- reference history and repository config ------------------------------------------

    def reference_history(
        self, name: str, limit: int | None = None, *, scan_commits: int | None = None
    ) -> ReferenceHistory:
        """The recorded recent heads of ``name``, newest first (see :class:`VersionStore`).

        The log keeps the current head and the :data:`REF_LOG_SIZE` - 1 before it; it
        starts when the reference is created (or, for a catalog upgraded from schema 1,
        at its head then) and ends with the reference: deleting it deletes its log. A
        commit is consistent when its row and its tree's root node are present;
        ``scan_commits`` (at most 1000) checks that many commits along first parents.
        """
        validate_ref_name(name)
        if limit is not None and limit < 0:
            raise InvalidInputError("the history limit must not be negative")
        with self._read() as conn:
            kind, head = self._ref_row(conn, name)
            logged = conn.execute(
                sa.select(ref_log_table.c.hash)
                .where(ref_log_table.c.ref_name == name)
                .order_by(ref_log_table.c.seq.desc())
            ).all()
        previous: list[str] = []
        newer = head
        for (h,) in logged:
            if h != newer:  # an assignment to the same commit is not a change
                previous.append(str(h))
                newer = str(h)
        if limit is not None:
            previous = previous[:limit]
        states = self._consistency([head, *previous])
        commit_log = CommitConsistency.NOT_CHECKED
        if scan_commits is not None and scan_commits > 0:
            commit_log = self._log_consistency(head, min(scan_commits, 1000))
        return ReferenceHistory(
            Reference.of(kind, name, head),
            states[0],
            tuple(states[1:]),
            commit_log,
        )

    def _consistency(self, hashes: Sequence[str]) -> list[ReferenceHistoryState]:
        """Each commit's state: present with its tree's root node, or not."""
        rows = self._commit_rows(list(dict.fromkeys(hashes)))
        trees = self._present_nodes([r.tree for r in rows.values()])
        out = []
        for h in hashes:
            row = rows.get(h)
            if row is None or row.tree not in trees:
                out.append(ReferenceHistoryState(h, CommitConsistency.COMMIT_INCONSISTENT))
            else:
                meta = row.meta() if h != NO_ANCESTOR else None
                out.append(ReferenceHistoryState(h, CommitConsistency.COMMIT_CONSISTENT, meta))
        return out

    def _present_nodes(self, hashes: Sequence[str]) -> set[str]:
        wanted = [h for h in dict.fromkeys(hashes) if self._nodes.get(h) is None]
        present = set(hashes) - set(wanted)
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                present.update(
                    str(h)
                    for (h,) in conn.execute(
                        sa.select(nodes_table.c.hash).where(nodes_table.c.hash.in_(chunk))
                    )
                )
        return present

    def _log_consistency(self, head: str, scan: int) -> CommitConsistency:
        """The worst state of up to ``scan`` commits from ``head`` along first parents."""
        try:
            chain = self._first_parent_chain(head, scan)
        except KeyError:  # a parent is missing
            return CommitConsistency.COMMIT_INCONSISTENT
        if not chain:
            return CommitConsistency.COMMIT_INCONSISTENT
        trees = self._present_nodes([c.tree for c in chain])
        if any(c.tree not in trees for c in chain):
            return CommitConsistency.COMMIT_INCONSISTENT
        return CommitConsistency.COMMIT_CONSISTENT

    def repository_config(self, types: Iterable[str]) -> list[RepositoryConfig]:
        """The stored config objects of ``types`` (unknown types: InvalidInputError)."""
        wanted = sorted(set(types))
        for kind in wanted:
            if kind not in REPOSITORY_CONFIG_TYPES:
                raise InvalidInputError(f"No repository config type registered for name {kind}")
        if not wanted:
            return []
        with self._read() as conn:
            rows = conn.execute(
                sa.select(repo_config_table.c.type, repo_config_table.c.value)
                .where(repo_config_table.c.type.in_(wanted))
                .order_by(repo_config_table.c.type)
            ).all()
        return [RepositoryConfig(str(t), json.loads(v)) for t, v in rows]

    def update_repository_config(self, config: RepositoryConfig) -> RepositoryConfig | None:
        """Store ``config`` as the object of its type; return the one it replaces."""
        value = _dumps(dict(config.value))
        with self._write() as conn:
            if self.dialect == "postgresql":  # updates are rare: serialize them all
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7420002)"))
            row = conn.execute(
                sa.select(repo_config_table.c.value).where(repo_config_table.c.type == config.type)
            ).first()
            if row is None:
                conn.execute(
                    repo_config_table.insert().values(
                        type=config.type, value=value, updated_at=_now_micros()
                    )
                )
            else:
                conn.execute(
                    repo_config_table.update()
                    .where(repo_config_table.c.type == config.type)
                    .values(value=value, updated_at=_now_micros())
                )
        return RepositoryConfig(config.type, json.loads(row[0])) if row is not None else None

    def resolve(self, ref: RefLike | None = None) -> ResolvedRef:
        """Resolve a reference spec to a commit."""
        if ref is None:
            ref = self.default_branch
        if isinstance(ref, Reference):
            ref = RefSpec(ref.name, ref.hash)
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        with self._read() as conn:
            reference: Reference | None = None
            if spec.name is not None:
                kind, head = self._ref_row(conn, spec.name)
                reference = Reference.of(kind, spec.name, head)
                h = self._expand_hash(spec.hash, conn) if spec.hash else head
            else:
                assert spec.hash is not None
                h = self._expand_hash(spec.hash, conn)
            for op, arg in spec.relative:
                h = self._relative(h, op, arg, conn)
        return ResolvedRef(reference, h)

    def _relative(self, h: str, op: str, arg: int | datetime, conn: Connection) -> str:
        if op == "~":
            assert isinstance(arg, int)
            chain = self._first_parent_chain(h, arg + 1, conn)
            if len(chain) <= arg:
                raise ReferenceNotFoundError(
                    f"{h}~{arg}", f"commit {h[:12]} has no ancestor {arg} back"
                )
            return chain[arg].hash
        if op == "^":
            assert isinstance(arg, int)
            parents = self._commit_row(h, conn).parents
            if not 1 <= arg <= len(parents):
                raise ReferenceNotFoundError(f"{h}^{arg}", f"commit {h[:12]} has no parent {arg}")
            return parents[arg - 1]
        assert isinstance(arg, datetime)
        limit = _micros(arg)
        current = h
        while True:
            page = self._first_parent_chain(current, 500, conn)
            for row in page:
                if row.committed_at <= limit:
                    return row.hash
            last = page[-1]
            if last.parent is None:
                return NO_ANCESTOR
            current = last.parent

    # -- contents ---------------------------------------------------------------------

    def _tree_at(self, ref: RefLike | None) -> tuple[ResolvedRef, str]:
        if (
            isinstance(ref, RefSpec)
            and ref.name is None
            and ref.hash is not None
            and len(ref.hash) == 64
            and not ref.relative
        ):  # a full hash, as readers pin what they resolved: its commit, maybe cached
            commit = self._commit_row(validate_hash(ref.hash))
            return ResolvedRef(None, commit.hash), commit.tree
        resolved = self.resolve(ref)
        return resolved, self._commit_row(resolved.hash).tree

    def get_contents(
        self, ref: RefLike | None, keys: Iterable[ContentKey]
    ) -> dict[ContentKey, Content]:
        """Contents of ``keys`` at ``ref`` (absent keys left out)."""
        wanted = {k.to_path_string(): k for k in keys}
        with self._read():
            _, tree = self._tree_at(ref)
            found = self._reader.lookup_many(tree, list(wanted))
        return {wanted[p]: content_from_json(v) for p, v in found.items()}

    def entries(
        self,
        ref: RefLike | None = None,
        *,
        prefix: ContentKey | None = None,
        with_content: bool = False,
    ) -> list[Entry]:
        """Keys at ``ref``, optionally only those inside namespace ``prefix``."""
        _, tree = self._tree_at(ref)
        out: list[Entry] = []
        for path, value in self._reader.items(tree):
            key = ContentKey.parse(path)
            if prefix is not None and not prefix.is_prefix_of(key):
                continue
            content = content_from_json(value) if with_content else None
            out.append(Entry(key, ContentType(value["type"]), value.get("id"), content))
        out.sort(key=lambda e: e.key)
        return out

    # -- commits ----------------------------------------------------------------------

    def commit_meta(self, hash: str) -> CommitMeta:
        """Metadata of one commit."""
        return self._commit_row(self._expand_hash(hash)).meta()

    def log(
        self,
        ref: RefLike | None = None,
        *,
        limit: int = 100,
        page_token: str | None = None,
        fetch_operations: bool = False,
    ) -> LogPage:
        """First-parent history, newest first."""
        if limit < 1:
            raise InvalidInputError("log limit must be at least 1")
        start = self._expand_hash(page_token) if page_token else self.resolve(ref).hash
        rows = [r for r in self._first_parent_chain(start, limit + 1) if r.hash != NO_ANCESTOR]
        entries = tuple(
            LogEntry(
                r.meta(),
                tuple(operation_from_json(o) for o in json.loads(r.operations))
                if fetch_operations
                else None,
            )
            for r in rows[:limit]
        )
        next_token = rows[limit].hash if len(rows) > limit else None
        return LogPage(entries, next_token)

    def diff(
        self, from_ref: RefLike, to_ref: RefLike, *, prefix: ContentKey | None = None
    ) -> list[DiffEntry]:
        """Keys that differ between two points of history."""
        _, a = self._tree_at(from_ref)
        _, b = self._tree_at(to_ref)
        out = []
        for path, va, vb in self._reader.diff(a, b):
            key = ContentKey.parse(path)
            if prefix is not None and not prefix.is_prefix_of(key):
                continue
            out.append(
                DiffEntry(
                    key,
                    content_from_json(va) if va is not None else None,
                    content_from_json(vb) if vb is not None else None,
                )
            )
        out.sort(key=lambda d: d.key)
        return out

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        """Commit ``operations`` on ``branch`` atomically, with optimistic concurrency."""
        validate_ref_name(branch)
        meta = CommitMeta(message=meta) if isinstance(meta, str) else meta
        ops = list(operations)
        validate_operations(ops)
        seen = {op.key for op in ops}
        with self._write() as conn:
            kind, head = self._ref_row(conn, branch, for_update=True)
            if kind is not ReferenceType.BRANCH:
                raise ReadOnlyReferenceError(branch)
            conflicts: list[Conflict] = []
            if expected_hash is not None:
                expected = self._expand_hash(expected_hash, conn)
                if expected != head:
                    conflicts += self._changed_since(conn, branch, expected, head, seen)
            if conflicts:  # keys moved under the caller: that is the answer, whatever else
                raise CommitConflictError(conflicts)
            head_row = self._commit_row(head, conn)
            changes, recorded, added, more = self._check_operations(head_row.tree, ops)
            conflicts += more
            if conflicts:
                raise CommitConflictError(conflicts)
            new_hash = self._write_commit(
                conn, branch, head_row, changes, recorded, meta, merge_parent=None
            ).hash
        return CommitResult(Branch(branch, new_hash), added)

    def _changed_since(
        self, conn: Connection, branch: str, expected: str, head: str, keys: Iterable[ContentKey]
    ) -> list[Conflict]:
        """Conflicts for ``keys`` changed between ``expected`` and ``head`` of ``branch``."""
        expected_row = self._commit_row(expected, conn)
        if not self._is_first_parent_ancestor(conn, expected_row, head):
            return [
                Conflict(
                    None,
                    ConflictType.UNEXPECTED_HASH,
                    f"expected hash {expected[:12]} is not in the history of '{branch}'",
                )
            ]
        paths = [k.to_path_string() for k in keys]
        old = self._reader.lookup_many(expected_row.tree, paths)
        new = self._reader.lookup_many(self._commit_row(head, conn).tree, paths)
        return [
            Conflict(
                ContentKey.parse(p),
                ConflictType.VALUE_DIFFERS,
                f"changed on '{branch}' since the expected hash {expected[:12]}",
            )
            for p in paths
            if old.get(p) != new.get(p)
        ]

    def _is_first_parent_ancestor(self, conn: Connection, ancestor: _Commit, head: str) -> bool:
        current = head
        while True:
            page = self._first_parent_chain(current, 200, conn)
            for row in page:
                if row.hash == ancestor.hash:
                    return True
                if row.generation < ancestor.generation:
                    return False
            if page[-1].parent is None:
                return False
            current = page[-1].parent

    def _check_operations(
        self, tree: str, ops: Sequence[Operation]
    ) -> tuple[
        dict[str, Value | None], list[dict[str, Any]], dict[ContentKey, str], list[Conflict]
    ]:
        """Validate ``ops`` against ``tree``; return changes, ops to record, new ids, conflicts."""
        paths = {op.key.to_path_string() for op in ops}
        for op in ops:
            if isinstance(op, Put):
                paths.update(
                    ContentKey(op.key.elements[:i]).to_path_string()
                    for i in range(1, len(op.key.elements))
                )
        current = self._reader.lookup_many(tree, list(paths))
        deleted_ids = {
            current[p].get("id")
            for op in ops
            if isinstance(op, Delete) and (p := op.key.to_path_string()) in current
        }
        changes: dict[str, Value | None] = {}
        recorded: list[dict[str, Any]] = []
        added: dict[ContentKey, str] = {}
        conflicts: list[Conflict] = []
        for op in ops:
            path = op.key.to_path_string()
            # a key deleted earlier in this commit is absent for what follows
            existing = changes[path] if path in changes else current.get(path)
            if isinstance(op, Unchanged):
                continue
            if isinstance(op, Delete):
                if existing is None:
                    conflicts.append(
                        Conflict(op.key, ConflictType.KEY_DOES_NOT_EXIST, "key does not exist")
                    )
                    continue
                changes[path] = None
                recorded.append(operation_to_json(op))
                continue
            content = op.content
            if existing is not None:
                if content.id is None:
                    conflicts.append(
                        Conflict(op.key, ConflictType.KEY_EXISTS, "key already exists")
                    )
                    continue
                if existing.get("id") != content.id or existing.get("type") != content.type:
                    conflicts.append(
                        Conflict(
                            op.key,
                            ConflictType.CONTENT_ID_DIFFERS,
                            f"expected content id {content.id}, found {existing.get('id')}",
                        )
                    )
                    continue
            elif content.id is None:
                content = with_id(content, str(uuid.uuid4()))
                assert content.id is not None
                added[op.key] = content.id
            elif content.id not in deleted_ids:
                raise InvalidInputError(
                    f"new content at '{op.key}' must not carry a content id "
                    "(only a rename, deleting the old key in the same commit, keeps an id)"
                )
            value = content.to_json()
            changes[path] = value
            recorded.append({"type": "PUT", "key": op.key.to_json(), "content": value})
        # every namespace enclosing new content must exist (after this commit), as Nessie checks
        reported: set[str] = set()
        for op in ops:
            if not isinstance(op, Put) or changes.get(op.key.to_path_string()) is None:
                continue
            for i in range(1, len(op.key.elements)):
                ns_key = ContentKey(op.key.elements[:i])
                p = ns_key.to_path_string()
                ns = changes[p] if p in changes else current.get(p)
                if p in reported or (ns is not None and ns.get("type") == ContentType.NAMESPACE):
                    continue
                reported.add(p)
                if ns is None:
                    conflicts.append(
                        Conflict(ns_key, ConflictType.NAMESPACE_ABSENT, "namespace does not exist")
                    )
                else:
                    conflicts.append(
                        Conflict(ns_key, ConflictType.NOT_A_NAMESPACE, "content is not a namespace")
                    )
        # a namespace may only be deleted when nothing remains inside it
        for op in ops:
            path = op.key.to_path_string()
            existing = current.get(path)
            if (
                isinstance(op, Delete)
                and existing is not None
                and existing.get("type") == ContentType.NAMESPACE
            ):
                for child_path, _ in self._reader.items(tree):
                    child = ContentKey.parse(child_path)
                    if op.key.is_prefix_of(child) and changes.get(child_path, 0) is not None:
                        conflicts.append(
                            Conflict(
                                op.key,
                                ConflictType.NAMESPACE_NOT_EMPTY,
                                f"namespace is not empty (contains '{child}')",
                            )
                        )
                        break
        return changes, recorded, added, conflicts

    def _write_commit(
        self,
        conn: Connection,
        branch: str,
        head: _Commit,
        changes: Mapping[str, Value | None],
        recorded: list[dict[str, Any]],
        meta: CommitMeta,
        merge_parent: str | None,
        writer: TreeWriter | None = None,
        *,
        log_ref: bool = True,
    ) -> _Commit:
        """Write one commit on top of ``head`` inside ``conn``'s transaction.

        Pass the same ``writer`` for a chain of commits in one transaction: its overlay
        sees the nodes of earlier links, which other connections cannot see yet. The new
        head goes to the reflog unless ``log_ref`` is false (the caller logs the last link
        of a chain: the heads in between were never visible).
        """
        writer = writer or TreeWriter(self)
        tree = writer.apply(head.tree, changes)
        now = _now_micros()
        generation = head.generation + 1
        if merge_parent is not None:
            generation = max(generation, self._commit_row(merge_parent, conn).generation + 1)
        row: dict[str, Any] = {
            "parent": head.hash,
            "merge_parent": merge_parent,
            "generation": generation,
            "tree": tree,
            "message": meta.message,
            "author": meta.author,
            "committer": meta.committer,
            "authored_at": _micros(meta.authored_time) if meta.authored_time else now,
            "committed_at": now,
            "properties": _encode_properties(meta),
            "operations": _dumps(recorded),
        }
        row["hash"] = hashlib.sha256(_dumps(row).encode()).hexdigest()
        updated = self._store_commit(conn, branch, head.hash, row, writer.new_nodes)
        written = writer.created(writer.new_nodes)
        writer.new_nodes.clear()  # stored; the overlay still serves them to later links
        if updated != 1:  # cannot happen while we hold the write lock; never commit blindly
            raise ReferenceConflictError(branch, head.hash, "(moved)")
        if log_ref:
            self._log_ref(conn, branch, row["hash"], now)
        commit = _Commit(**row)

        def remember() -> None:
            for h, node in written.items():
                self._nodes.put(h, node)
            self._commits.put(commit.hash, commit)

        self._after_commit(remember)
        return commit

    def _store_commit(
        self,
        conn: Connection,
        branch: str,
        head: str,
        row: Mapping[str, Any],
        nodes: Mapping[str, bytes],
    ) -> int:
        """Insert a commit's new nodes and its row, move ``branch`` from ``head`` to it.

        Returns the number of references moved (1, or 0 if ``branch`` was not at
        ``head``). On PostgreSQL this is one statement, so one round trip to the server.
        """
        if self.dialect == "postgresql":
            params = {
                **row,
                "branch": branch,
                "head": head,
                "node_hashes": list(nodes),
                "node_data": list(nodes.values()),
            }
            return int(conn.execute(_STORE_COMMIT_PG, params).rowcount)
        self._insert_ignore(conn, nodes_table, [{"hash": h, "data": d} for h, d in nodes.items()])
        conn.execute(_INSERT_COMMIT, dict(row))
        moved = conn.execute(
            _MOVE_REF,
            {"branch": branch, "head": head, "new_hash": row["hash"], "at": row["committed_at"]},
        )
        return int(moved.rowcount)

    # -- merge and transplant -----------------------------------------------------------

    def merge(
        self,
        source: RefLike,
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        meta: CommitMeta | str | None = None,
        raise_on_conflict: bool = True,
        resolved: Mapping[ContentKey, ResolvedContent] | None = None,
    ) -> MergeResult:
        """Merge ``source`` into ``into`` as one commit (see :class:`VersionStore`)."""
        target = validate_ref_name(into or self.default_branch)
        src = self.resolve(source)
        with self._write() as conn:
            kind, head = self._ref_row(conn, target, for_update=True)
            if kind is not ReferenceType.BRANCH:
                raise ReadOnlyReferenceError(target)
            base = self._merge_base(src.hash, head)
            if base is None:
                raise ReferenceConflictError(target, src.hash, head)
            head_row = self._commit_row(head, conn)
            src_tree = self._commit_row(src.hash, conn).tree
            base_tree = self._commit_row(base, conn).tree
            source_changes = {k: (a, b) for k, a, b in self._reader.diff(base_tree, src_tree)}
            target_values = self._reader.lookup_many(head_row.tree, list(source_changes))
            plan = plan_merge(
                source_changes, target_values, default_behavior, dict(key_behaviors or {})
            )
            details = list(plan.details)
            if resolved:
                details = _apply_resolved(plan.changes, details, resolved, target_values)
            if expected_target_hash is not None and plan.changes:
                expected = self._expand_hash(expected_target_hash, conn)
                if expected != head:
                    stale = self._changed_since(
                        conn, target, expected, head, [ContentKey.parse(p) for p in plan.changes]
                    )
                    details += [KeyMergeDetail(c.key, default_behavior, c) for c in stale if c.key]
                    if any(c.key is None for c in stale):
                        raise ReferenceConflictError(target, expected, head)
            details += self._namespace_conflicts(head_row.tree, plan.changes, default_behavior)
            result = MergeResult(
                was_applied=False,
                was_successful=True,
                target_branch=target,
                source_hash=src.hash,
                effective_target_hash=head,
                resultant_target_hash=head,
                common_ancestor=base,
                details=tuple(details),
            )
            if result.conflicts:
                result = _replace_result(result, was_successful=False)
                if raise_on_conflict:
                    raise MergeConflictError(result.conflicts)
                return result
            if dry_run or not plan.changes:
                return result
            if meta is None or isinstance(meta, str):
                meta = CommitMeta(message=meta or "")
            if not meta.message:
                meta = dataclasses.replace(meta, message=f"Merge {src} into {target}")
            recorded = [
                {"type": "PUT", "key": ContentKey.parse(p).to_json(), "content": v}
                if v is not None
                else {"type": "DELETE", "key": ContentKey.parse(p).to_json()}
                for p, v in sorted(plan.changes.items())
            ]
            new_hash = self._write_commit(
                conn, target, head_row, plan.changes, recorded, meta, merge_parent=src.hash
            ).hash
        return _replace_result(
            result, was_applied=True, resultant_target_hash=new_hash, added_commits=(new_hash,)
        )

    def _namespace_conflicts(
        self, tree: str, changes: Mapping[str, Value | None], behavior: MergeBehavior
    ) -> list[KeyMergeDetail]:
        """Puts whose namespace would not exist on the target after the merge."""
        parents = {p: ContentKey.parse(p).namespace for p, v in changes.items() if v is not None}
        wanted = [ns.to_path_string() for ns in parents.values() if ns is not None]
        present = self._reader.lookup_many(tree, wanted)
        out = []
        for path, ns in parents.items():
            if ns is None:
                continue
            nsp = ns.to_path_string()
            value = changes[nsp] if nsp in changes else present.get(nsp)
            if value is None:
                key = ContentKey.parse(path)
                out.append(
                    KeyMergeDetail(
                        key,
                        behavior,
                        Conflict(
                            key,
                            ConflictType.NAMESPACE_ABSENT,
                            f"namespace '{ns}' does not exist on the target",
                        ),
                    )
                )
        return out

    def transplant(
        self,
        hashes: Sequence[str],
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        raise_on_conflict: bool = True,
    ) -> MergeResult:
        """Apply the changes of each commit in ``hashes`` (oldest first) onto ``into``."""
        target = validate_ref_name(into or self.default_branch)
        if not hashes:
            raise InvalidInputError("transplant needs at least one commit hash")
        with self._write() as conn:
            kind, head = self._ref_row(conn, target, for_update=True)
            if kind is not ReferenceType.BRANCH:
                raise ReadOnlyReferenceError(target)
            expected = head
            if expected_target_hash is not None:
                expected = self._expand_hash(expected_target_hash, conn)
            picks = [self._commit_row(self._expand_hash(h, conn), conn) for h in hashes]
            head_row = self._commit_row(head, conn)
            tree = head_row.tree
            writer = TreeWriter(self)
            details: list[KeyMergeDetail] = []
            steps: list[tuple[_Commit, dict[str, Value | None]]] = []
            for pick in picks:
                if pick.parent is None:
                    raise InvalidInputError("the root commit cannot be transplanted")
                parent_tree = self._commit_row(pick.parent, conn).tree
                picked = {k: (a, b) for k, a, b in writer.diff(parent_tree, pick.tree)}
                current = writer.lookup_many(tree, list(picked))
                plan = plan_merge(picked, current, default_behavior, dict(key_behaviors or {}))
                details += plan.details
                steps.append((pick, plan.changes))
                tree = writer.apply(tree, plan.changes)
            if expected != head:  # as a merge: stale is fine unless the keys moved since
                changed = {ContentKey.parse(p) for _, changes in steps for p in changes}
                stale = self._changed_since(conn, target, expected, head, sorted(changed))
                if any(c.key is None for c in stale):
                    raise ReferenceConflictError(target, expected, head)
                flagged = {d.key for d in details if d.conflict is not None}
                details += [
                    KeyMergeDetail(c.key, default_behavior, c)
                    for c in stale
                    if c.key is not None and c.key not in flagged
                ]
            result = MergeResult(
                was_applied=False,
                was_successful=True,
                target_branch=target,
                source_hash=picks[-1].hash,
                effective_target_hash=head,
                resultant_target_hash=head,
                common_ancestor=None,
                details=tuple(details),
            )
            if result.conflicts:
                result = _replace_result(result, was_successful=False)
                if raise_on_conflict:
                    raise MergeConflictError(result.conflicts, action="transplant")
                return result
            if dry_run:
                return result
            added: list[str] = []
            current_row = head_row
            for pick, changes in steps:
                if not changes:
                    continue
                recorded = [
                    {"type": "PUT", "key": ContentKey.parse(p).to_json(), "content": v}
                    if v is not None
                    else {"type": "DELETE", "key": ContentKey.parse(p).to_json()}
                    for p, v in sorted(changes.items())
                ]
                meta = pick.meta()
                meta = CommitMeta(
                    message=meta.message,
                    author=meta.author,
                    authored_time=meta.authored_time,
                    properties={**meta.properties, "transplanted-from": pick.hash},
                    signed_off_by=meta.signed_off_by,
                )
                current_row = self._write_commit(
                    conn, target, current_row, changes, recorded, meta, None, writer, log_ref=False
                )
                added.append(current_row.hash)
            if added:
                self._log_ref(conn, target, added[-1])
        if not added:
            return result
        return _replace_result(
            result, was_applied=True, resultant_target_hash=added[-1], added_commits=tuple(added)
        )

    # ================================================================================
    # Export and import (backups, lakehouse.ops): self-contained section, issue 7.
    #
    # Records are JSON-ready dicts with a ``kind``: ``meta`` (repository settings except
    # the schema version), ``repository_config`` (type and value, export format 2),
    # ``reference``, ``commit`` (every column of lh_commits) and ``node`` (hash and the
    # encoded node). The reflog is not exported: it records how references moved in
    # this catalog; an import is itself a move, logged as each reference's first entry.
    # An export holds the references given (a
    # pinned list) and everything reachable from them: commits along all parents and
    # the nodes of their trees. Commits and nodes are immutable, so no transaction is
    # needed once the references are pinned. An import re-computes every hash.
    # ================================================================================

    def export_rows(
        self, references: Sequence[Reference] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record needed to rebuild the catalog at ``references`` (default: all, now).

        Order: meta, repository configs, references, commits (oldest generation first),
        nodes.
        """
        refs = list(references) if references is not None else self.list_references()
        with self._read() as conn:
            meta_rows = conn.execute(sa.select(meta_table.c.key, meta_table.c.value)).all()
            config_rows = conn.execute(
                sa.select(repo_config_table.c.type, repo_config_table.c.value).order_by(
                    repo_config_table.c.type
                )
            ).all()
        for key, value in sorted(meta_rows):
            if key != "schema_version":
                yield {"kind": "meta", "key": str(key), "value": str(value)}
        for kind, value in config_rows:
            yield {"kind": "repository_config", "type": str(kind), "value": json.loads(value)}
        for ref in refs:
            yield {"kind": "reference", "name": ref.name, "type": ref.type.value, "hash": ref.hash}

        commits: dict[str, _Commit] = {}
        frontier = list(dict.fromkeys(r.hash for r in refs))
        while frontier:
            found: dict[str, _Commit] = {}
            for start in range(0, len(frontier), 500):
                found.update(self._commit_rows(frontier[start : start + 500]))
            absent = [h for h in frontier if h not in found]
            if absent:
                raise InvalidInputError(
                    f"cannot export: commit {absent[0]} is referenced but missing from the catalog"
                )
            commits.update(found)
            frontier = list(
                dict.fromkeys(p for row in found.values() for p in row.parents if p not in commits)
            )
        for row in sorted(commits.values(), key=lambda r: (r.generation, r.hash)):
            yield {"kind": "commit", **dataclasses.asdict(row)}

        seen: set[str] = set()
        pending = list(dict.fromkeys(row.tree for row in commits.values()))
        while pending:
            chunk, pending = pending[:500], pending[500:]
            chunk = [h for h in chunk if h not in seen]
            if not chunk:
                continue
            with self._read() as conn:
                rows = conn.execute(
                    sa.select(nodes_table.c.hash, nodes_table.c.data).where(
                        nodes_table.c.hash.in_(chunk)
                    )
                ).all()
            got = {str(h): bytes(d) for h, d in rows}
            absent = [h for h in chunk if h not in got]
            if absent:
                raise InvalidInputError(
                    f"cannot export: tree node {absent[0]} is referenced but missing"
                )
            for h in chunk:
                seen.add(h)
                data = got[h]
                yield {"kind": "node", "hash": h, "data": data.decode("utf-8")}
                node = Node.decode(data)
                if node.children is not None:
                    pending.extend(c for c, _ in node.children.values() if c not in seen)

    def import_rows(
        self, rows: Iterable[Mapping[str, Any]], *, erase: bool = False
    ) -> dict[str, int]:
        """Load :meth:`export_rows` records into this empty catalog, all or nothing.

        Every node hash (sha256 of its data) and commit hash (sha256 of its fields, as
        :meth:`_write_commit` computes it) is re-computed, and the records must be closed:
        every parent, tree, child node and reference target present. The catalog must
        hold nothing but its empty default branch unless ``erase``, which first removes
        every reference, commit and node. Raises :class:`InvalidInputError` naming the
        first bad record.
        """
        counts = {"meta": 0, "repository_config": 0, "reference": 0, "commit": 0, "node": 0}
        commits: set[str] = {NO_ANCESTOR}
        nodes: set[str] = {EMPTY_TREE}
        wanted_commits: dict[str, str] = {}
        wanted_nodes: dict[str, str] = {}
        refs: dict[str, tuple[str, str]] = {}
        meta: dict[str, str] = {}
        configs: dict[str, RepositoryConfig] = {}
        commit_batch: list[dict[str, Any]] = []
        node_batch: list[dict[str, Any]] = []

        def flush(conn: Connection) -> None:
            self._insert_ignore(conn, commits_table, commit_batch)
            self._insert_ignore(conn, nodes_table, node_batch)
            commit_batch.clear()
            node_batch.clear()

        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("LOCK TABLE lh_refs IN EXCLUSIVE MODE"))
            existing = conn.execute(sa.select(refs_table.c.name, refs_table.c.hash)).all()
            other = [n for n, h in existing if not (n == self.default_branch and h == NO_ANCESTOR)]
            if not erase and conn.execute(sa.select(repo_config_table.c.type)).first():
                raise InvalidInputError(
                    "the target catalog is not empty (it has repository config); "
                    "import only into an empty catalog"
                )
            if other and not erase:
                raise InvalidInputError(
                    f"the target catalog is not empty (it has reference(s) "
                    f"{', '.join(sorted(other)[:5])}); import only into an empty catalog"
                )
            conn.execute(ref_log_table.delete())
            if erase:
                conn.execute(repo_config_table.delete())
                conn.execute(refs_table.delete())
                conn.execute(commits_table.delete())
                conn.execute(nodes_table.delete())
                for cache in (self._commits, self._parents):
                    with cache.lock:
                        cache.data.clear()
                with self._nodes.lock:
                    self._nodes.data.clear()
                self._insert_ignore(conn, nodes_table, [{"hash": EMPTY_TREE, "data": EMPTY_DATA}])
                self._insert_ignore(conn, commits_table, [_root_row()])
            else:
                conn.execute(refs_table.delete())
            for n, record in enumerate(rows, 1):
                kind = record.get("kind")
                where = f"record {n} ({kind})"
                if kind == "meta":
                    meta[str(record["key"])] = str(record["value"])
                elif kind == "repository_config":
                    value = record.get("value")
                    if not isinstance(value, Mapping):
                        raise InvalidInputError(f"{where}: the value is not an object")
                    try:
                        config = RepositoryConfig(str(record.get("type")), value)
                    except InvalidInputError as exc:
                        raise InvalidInputError(f"{where}: {exc}") from None
                    if config.type in configs:
                        raise InvalidInputError(f"{where}: config '{config.type}' appears twice")
                    configs[config.type] = config
                elif kind == "reference":
                    name = validate_ref_name(str(record["name"]))
                    ref_type = ReferenceType(str(record["type"]))
                    target = str(record["hash"])
                    if name in refs:
                        raise InvalidInputError(f"{where}: reference '{name}' appears twice")
                    refs[name] = (ref_type.value, target)
                    wanted_commits.setdefault(target, f"reference '{name}'")
                elif kind == "commit":
                    row = _verified_commit(record, where)
                    commits.add(row["hash"])
                    for parent in (row["parent"], row["merge_parent"]):
                        if parent is not None:
                            wanted_commits.setdefault(parent, f"commit {row['hash'][:12]}")
                    wanted_nodes.setdefault(row["tree"], f"commit {row['hash'][:12]}")
                    if row["hash"] != NO_ANCESTOR:
                        commit_batch.append(row)
                elif kind == "node":
                    h = str(record["hash"])
                    data = str(record["data"]).encode("utf-8")
                    if hashlib.sha256(data).hexdigest() != h:
                        raise InvalidInputError(f"{where}: tree node {h[:12]} fails its hash check")
                    try:
                        node = Node.decode(data)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise InvalidInputError(
                            f"{where}: tree node {h[:12]} is malformed"
                        ) from exc
                    if node.children is not None:
                        for child, _ in node.children.values():
                            wanted_nodes.setdefault(child, f"node {h[:12]}")
                    nodes.add(h)
                    node_batch.append({"hash": h, "data": data})
                else:
                    raise InvalidInputError(f"{where}: unknown record kind {kind!r}")
                if kind in counts:
                    counts[str(kind)] += 1
                if len(commit_batch) + len(node_batch) >= 1000:
                    flush(conn)
            flush(conn)
            for h, by in wanted_commits.items():
                if h not in commits:
                    raise InvalidInputError(
                        f"commit {h[:12]} (needed by {by}) is not in the import"
                    )
            for h, by in wanted_nodes.items():
                if h not in nodes:
                    raise InvalidInputError(
                        f"tree node {h[:12]} (needed by {by}) is not in the import"
                    )
            default = meta.get("default_branch", self.default_branch)
            if default != self.default_branch:
                raise InvalidInputError(
                    f"the import's default branch is '{default}', this catalog's is "
                    f"'{self.default_branch}'; set LAKEHOUSE_CATALOG__DEFAULT_BRANCH={default}"
                )
            if refs.get(default, ("",))[0] != ReferenceType.BRANCH.value:
                raise InvalidInputError(f"the import has no default branch '{default}'")
            now = _now_micros()
            conn.execute(
                refs_table.insert(),
                [
                    {"name": name, "type": t, "hash": h, "updated_at": now}
                    for name, (t, h) in sorted(refs.items())
                ],
            )
            for name, (_, h) in sorted(refs.items()):
                self._log_ref(conn, name, h, now)
            for config in configs.values():
                conn.execute(
                    repo_config_table.insert().values(
                        type=config.type, value=_dumps(dict(config.value)), updated_at=now
                    )
                )
            for key, value in meta.items():
                self._upsert_meta(conn, key, value)
        return counts

    # == end of export and import ====================================================


def _replace_result(result: MergeResult, **changes: Any) -> MergeResult:
    return dataclasses.replace(result, **changes)


#: Columns of lh_commits that the commit hash covers (everything but the hash).
_COMMIT_FIELDS = (
    "parent",
    "merge_parent",
    "generation",
    "tree",
    "message",
    "author",
    "committer",
    "authored_at",
    "committed_at",
    "properties",
    "operations",
)


def _verified_commit(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    """An exported commit as a lh_commits row, after re-computing its hash (export/import)."""
    try:
        row = {name: record[name] for name in _COMMIT_FIELDS}
        h = str(record["hash"])
    except KeyError as exc:
        raise InvalidInputError(f"{where}: commit lacks field {exc.args[0]!r}") from None
    if h == NO_ANCESTOR:
        if {**row, "hash": h} != _root_row():
            raise InvalidInputError(f"{where}: the root commit has unexpected fields")
        return {**row, "hash": h}
    if hashlib.sha256(_dumps(row).encode()).hexdigest() != h:
        raise InvalidInputError(f"{where}: commit {h[:12]} fails its hash check")
    return {**row, "hash": h}


def _root_row() -> dict[str, Any]:
    return {
        "hash": NO_ANCESTOR,
        "parent": None,
        "merge_parent": None,
        "generation": 0,
        "tree": EMPTY_TREE,
        "message": "",
        "author": None,
        "committer": None,
        "authored_at": 0,
        "committed_at": 0,
        "properties": "{}",
        "operations": "[]",
    }


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 60, "check_same_thread": False},
            pool_pre_ping=False,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("lakehouse_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    engine = sa.create_engine(url, pool_size=8, max_overflow=8)
    _ping_when_idle(engine)
    return engine


#: A pooled PostgreSQL connection unused for longer than this is pinged before reuse.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "lakehouse_last_used"


def _ping_when_idle(engine: Engine, after: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Pessimistic disconnect handling for ``engine``'s pool, without a ping per checkout.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one round trip to the server
    per store call (three per commit request over HTTP). Here a connection is pinged only
    when it comes back after ``after`` seconds unused, or is known broken, which is when
    the server may have dropped it (restart, idle timeout). A failed ping raises
    :class:`~sqlalchemy.exc.DisconnectionError`: the pool discards the connection and
    checks out another (SQLAlchemy's documented custom pre-ping). A connection dropped
    while in steady use fails its next statement, as it could between a ping and a
    statement anyway; SQLAlchemy then invalidates the pool.
    """

    @sa.event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _returned(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:
            record.info[_LAST_USED] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if getattr(dbapi_conn, "broken", False) or getattr(dbapi_conn, "closed", False):
            raise DisconnectionError("pooled connection is closed")
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < after:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


__all__ = ["SCHEMA_VERSION", "SqlStore"]


def _apply_resolved(
    changes: dict[str, Value | None],
    details: list[KeyMergeDetail],
    resolved: Mapping[ContentKey, ResolvedContent],
    target_values: Mapping[str, Value | None],
) -> list[KeyMergeDetail]:
    """Put each resolved key's content in ``changes`` when the target holds the expected one.

    A resolved key the source did not change, or whose target content is not the expected
    one, stays (or becomes) a conflict: the resolution was computed from other contents.
    """
    out: list[KeyMergeDetail] = []
    by_key = {d.key: d for d in details}
    for key, resolution in sorted(resolved.items()):
        path = key.to_path_string()
        detail = by_key.get(key)
        if detail is None:
            out.append(
                KeyMergeDetail(
                    key,
                    MergeBehavior.NORMAL,
                    Conflict(key, ConflictType.UNKNOWN, "resolved, but not changed on the source"),
                )
            )
            continue
        if target_values.get(path) != resolution.expected_target.to_json():
            by_key[key] = KeyMergeDetail(
                key,
                detail.merge_behavior,
                Conflict(
                    key,
                    ConflictType.VALUE_DIFFERS,
                    "the target's content is not the one the resolution expected",
                ),
            )
            changes.pop(path, None)
            continue
        changes[path] = resolution.content.to_json()
        by_key[key] = KeyMergeDetail(key, detail.merge_behavior)
    return [by_key[d.key] for d in details] + out
