"""DuckDB over the Iceberg tables of one reference: plan with Iceberg, read with DuckDB.

A :class:`QuerySession` is bound to a PyIceberg catalog (normally a
:class:`~lakehouse.catalog.iceberg.RefCatalog`, i.e. one branch, tag or commit). For a
query it

1. checks that the text is one read-only query (DuckDB's parse tree, the sandbox of
   :mod:`lakehouse.query.sandbox`) and finds the ``namespace.table`` names it reads
   (sqlglot; :mod:`lakehouse.query.analysis`) — a query that names no table in DuckDB's
   parse tree (``SELECT 1``) stops here: nothing to load, neither the catalog nor sqlglot;
2. loads those tables from the catalog — an unknown one is a
   :class:`~lakehouse.query.errors.TableNotFoundError` naming the table and the reference;
3. plans each table's scan with the predicates and columns pushed down from the query
   (:mod:`lakehouse.query.planning`);
4. registers each table as a view ``namespace.table`` over exactly the planned files (or
   over an Arrow table read by PyIceberg) in a locked DuckDB connection that may read
   those files and no other, and write none; then runs the query.

Only the tables a query reads are registered. In the connections :func:`sandbox.borrowed`
keeps (one per set of files read), a view over the parquet files stays for the next query
of the same table version (:class:`KeptViews`): a query repeated — a dashboard refreshing,
a notebook cell run again — skips creating and dropping it.
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lakehouse.query import sandbox
from lakehouse.query.deletes import (
    FILE_ID,
    POSITION,
    keep_column,
    keep_mask_table,
    position_delete_table,
    without_unused_deletes,
)
from lakehouse.query.errors import QueryError, QueryExecutionError, TableNotFoundError
from lakehouse.query.planning import (
    FILE_INDEX_COLUMN,
    ROW_NUMBER_COLUMN,
    EqualityDelete,
    ScanFile,
    TableScanPlan,
    plan_table,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from lakehouse.query.analysis import TableName

logger = logging.getLogger(__name__)

_counter = itertools.count()


@dataclass(frozen=True)
class QueryPlan:
    """A checked query and the scan plan of every table it reads."""

    sql: str
    #: The reference the tables were read at, as given (``main``, ``dev``, ``v1``, ``main~2``).
    ref: str
    #: Plans by table name as the catalog spells it (``namespace.table``).
    tables: Mapping[str, TableScanPlan] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """JSON form: the query, the reference and each table's plan."""
        return {
            "sql": self.sql,
            "ref": self.ref,
            "tables": [t.to_json() for t in self.tables.values()],
        }


def connect_duckdb(allowed_paths: Iterable[str] = ()) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection, locked down the way every query here runs.

    It reads only ``allowed_paths`` (local files) and writes no file; temporary tables,
    views and registered Arrow tables work. Time zone UTC, no Python replacement scans (a
    query never picks up a Python variable by name), configuration locked — see
    :func:`lakehouse.query.sandbox.connect`. :func:`register` of a scan whose files are
    not allowed reads them through PyIceberg instead.
    """
    return sandbox.connect(allowed_paths)


def shared_duckdb() -> duckdb.DuckDBPyConnection:
    """This thread's locked DuckDB connection that reads no file (for parsing and checks)."""
    return sandbox.parser()


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """``text`` as a DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


class QuerySession:
    """Runs queries over the tables of the reference ``catalog`` is bound to.

    ``ref`` is the reference's name for messages. Each :meth:`execute` runs in a locked
    DuckDB connection that can read exactly the planned data and delete files (new, or
    this thread's previous one for the same files, see
    :func:`lakehouse.query.sandbox.borrowed`; the query's views are removed afterwards),
    unless ``connection`` is given: then the caller owns it, chose its settings (make it
    with :func:`connect_duckdb` to keep the sandbox) and may register more relations on
    it; registered table views are replaced per query.
    """

    def __init__(
        self,
        catalog: Catalog | Callable[[], Catalog],
        *,
        ref: str,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        # a factory defers opening the catalog (and importing PyIceberg) to the first
        # table a query reads: ``SELECT 1`` never needs it
        self._catalog = catalog
        self.ref = ref
        self._connection = connection

    @property
    def catalog(self) -> Catalog:
        """The catalog tables are loaded from (made on first use when given as a factory)."""
        if callable(self._catalog):
            self._catalog = self._catalog()
        return self._catalog

    # -- planning -------------------------------------------------------------------------

    def plan(self, sql: str) -> QueryPlan:
        """Check ``sql``, load the tables it reads and plan their scans.

        A query that names no table (``SELECT 1``) is checked and has nothing to plan:
        neither the catalog nor sqlglot is loaded for it.
        """
        if sandbox.reads_no_table(sql):  # the statement check (check_statement) runs here
            return QueryPlan(sql, self.ref)
        # sqlglot (tables read, pushdowns) is loaded for queries that name a table
        from lakehouse.query.analysis import parse, pushdowns, tables_read

        statement = parse(sql)
        names = tables_read(sql, statement)
        loaded: dict[TableName, Table] = {}
        for name in names:
            loaded[name] = self._load(name)
        schemas: dict[TableName, Schema] = {name: t.schema() for name, t in loaded.items()}
        pushed = pushdowns(statement, schemas)
        plans: dict[str, TableScanPlan] = {}
        for name, table in loaded.items():
            key = ".".join(table.name())
            if key in plans:  # the same table spelled two ways: read everything
                plans[key] = plan_table(table, key, _always_true())
                continue
            push = pushed[name]
            columns = sorted(push.columns) if push.columns is not None else None
            plans[key] = plan_table(table, key, push.row_filter, columns, push.predicates)
        return QueryPlan(sql, self.ref, plans)

    def _load(self, name: TableName) -> Table:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            return self.catalog.load_table((name.namespace, name.name))
        except NoSuchTableError:
            pass
        # DuckDB resolves names case-insensitively: so do we, when the spelling is unique
        try:
            found = [
                ident
                for ns in self.catalog.list_namespaces()
                if ns[0].lower() == name.namespace.lower()
                for ident in self.catalog.list_tables(ns)
                if ident[-1].lower() == name.name.lower()
            ]
        except NoSuchNamespaceError:
            found = []
        if len(found) == 1:
            return self.catalog.load_table(found[0])
        raise TableNotFoundError(str(name), self.ref)

    # -- execution ------------------------------------------------------------------------

    def execute(self, sql: str) -> pa.Table:
        """Run ``sql`` and return its result as an Arrow table."""
        return self.run(self.plan(sql))

    def run(self, plan: QueryPlan) -> pa.Table:
        """Run a planned query."""
        if self._connection is not None:  # the caller's: views stay, replaced per query
            for scan in plan.tables.values():
                register(self._connection, scan)
            return arrow_result(self._connection, plan.sql)
        with sandbox.borrowed(allowed_paths(plan), ordered=not unordered(plan)) as con:
            return run_registered(con, plan, kept_views(con))


def run_registered(
    con: duckdb.DuckDBPyConnection, plan: QueryPlan, kept: KeptViews | None = None
) -> pa.Table:
    """Run ``plan`` on ``con``: its tables registered for the query, removed afterwards.

    With ``kept``, the views :func:`register` may keep stay for the next query.
    """
    registered: list[Registration] = []
    try:
        for scan in plan.tables.values():
            registered.append(register(con, scan, kept))
        return arrow_result(con, plan.sql)
    finally:
        unregister(con, [r for r in registered if not r.kept])


def arrow_result(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql`` on ``con`` (its tables registered) and return the result as Arrow.

    A DuckDB error is :class:`QueryExecutionError` with DuckDB's message on one line.
    """
    import duckdb

    try:
        relation = con.sql(sql)
        if relation is None:
            raise QueryError("the statement returned no result")
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        from lakehouse.query.analysis import engine_message

        raise QueryExecutionError(engine_message(str(exc))) from exc


def allowed_paths(plan: QueryPlan) -> list[str]:
    """The files DuckDB reads for ``plan``: data and delete files of its ``parquet`` scans."""
    paths: dict[str, None] = {}
    for scan in plan.tables.values():
        if scan.reader == "parquet":
            paths.update(dict.fromkeys(scan.data_files))
            paths.update(dict.fromkeys(scan.delete_files))
    return list(paths)


def unordered(plan: QueryPlan) -> bool:
    """Whether ``plan`` runs in a connection that does not keep insertion order.

    True when a table is read in several runs of files, each paired with its kept-rows
    mask by position (:func:`keep_mask_groups`): while DuckDB preserves insertion order
    it runs those ``UNION ALL`` branches one after the other, so the read used one core
    (a 2-core machine read 1,000,000 rows with 5 % deleted in 22 ms against 13.5 ms
    unordered; the same rows compacted in 10 ms). Rows of such a query come in no particular
    order unless it says ``ORDER BY``, as in Trino or Spark; each run still pairs its
    rows with its mask in file order (a positional scan reads its two sides in one thread).
    """
    return any(
        scan.reader == "parquet" and len(_mask_runs(scan)) > 1 for scan in plan.tables.values()
    )


def _mask_runs(scan: TableScanPlan) -> list[list[ScanFile]]:
    """:func:`keep_mask_groups` cut for DuckDB's threads (one run per core)."""
    return keep_mask_groups(scan, os.cpu_count() or 1)


def _always_true() -> BooleanExpression:
    from pyiceberg.expressions import AlwaysTrue

    return AlwaysTrue()


# -- registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What :func:`register` created in a DuckDB connection."""

    schema: str
    view: str
    source: str | None = None
    #: The Arrow table of position deletes the view anti-joins with.
    deletes: str | None = None
    #: The Arrow table of kept rows the view joins with by position (a column per read).
    keep: str | None = None
    #: Whether the view stays for the next query (:class:`KeptViews`): not dropped.
    kept: bool = False


#: Bytes of kept-rows masks above which a view is not kept (:class:`KeptViews`).
MAX_KEPT_MASK_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class _KeptView:
    sql: str
    #: The kept-rows table registered with the view (held by the connection too).
    keep: pa.Table | None


class KeptViews:
    """The views a connection keeps between queries, by view name: their SQL and masks.

    A view is kept when it reads parquet files with no relation made anew per query (the
    anti-joined delete positions are): its SQL names every file it reads, and its
    kept-rows table is the one :func:`~lakehouse.query.deletes.keep_mask_table` keeps for
    the same files and delete files, so the same SQL and the same table mean the same
    rows. Masks larger than :data:`MAX_KEPT_MASK_BYTES` are not kept. Only connections
    :func:`sandbox.borrowed` keeps get one: each may read only the files of one set of
    table versions, and is closed with everything it holds when dropped.
    """

    def __init__(self) -> None:
        self._views: dict[str, _KeptView] = {}

    def holds(self, view: str, sql: str, keep: pa.Table | None) -> bool:
        """Whether ``view`` is registered as ``sql`` over ``keep`` (the very same table)."""
        held = self._views.get(view)
        return held is not None and held.sql == sql and held.keep is keep

    def keep(self, view: str, sql: str, keep: pa.Table | None) -> bool:
        """Note ``view`` as kept (true) unless its mask is too large (then forgotten)."""
        if keep is not None and keep.nbytes > MAX_KEPT_MASK_BYTES:
            self._views.pop(view, None)
            return False
        self._views[view] = _KeptView(sql, keep)
        return True

    def forget(self, view: str) -> bool:
        """``view`` is no longer kept (it is dropped after the query); true if it had a mask."""
        held = self._views.pop(view, None)
        return held is not None and held.keep is not None


_KEPT: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, KeptViews] = weakref.WeakKeyDictionary()


def kept_views(con: duckdb.DuckDBPyConnection) -> KeptViews:
    """The views ``con`` keeps (made on first use; gone with the connection)."""
    kept = _KEPT.get(con)
    if kept is None:
        kept = _KEPT[con] = KeptViews()
    return kept


def unregister(con: duckdb.DuckDBPyConnection, registered: Iterable[Registration]) -> None:
    """Drop what :func:`register` created (views, Arrow sources, now-empty schemas)."""
    import duckdb

    schemas: dict[str, None] = {}
    for item in registered:
        try:
            con.execute(f"DROP VIEW IF EXISTS {item.view}")
            for source in (item.source, item.deletes, item.keep):
                if source is not None:
                    con.unregister(source)
        except duckdb.Error:  # pragma: no cover - best effort
            logger.debug("could not drop %s", item.view, exc_info=True)
        schemas.setdefault(item.schema)
    for schema in schemas:
        if schema.lower() in ("main", "temp"):
            continue
        try:
            con.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(schema)}")
        except duckdb.Error:  # still holds something else
            logger.debug("schema %s kept", schema, exc_info=True)


def register(
    con: duckdb.DuckDBPyConnection, scan: TableScanPlan, kept: KeptViews | None = None
) -> Registration:
    """Create (or replace) the view ``namespace.table`` over the planned files of ``scan``.

    With ``kept`` (the connection's :class:`KeptViews`), a view that can stay is kept for
    the next query, and one it already holds as it would be made now is used as it is.
    """
    import duckdb

    assert scan.table is not None, "plans made by plan_table carry their table"
    io = scan.table.io
    namespace, _, name = scan.name.rpartition(".")
    view = f"{quote_identifier(namespace)}.{quote_identifier(name)}"
    source: str | None = None
    deletes: str | None = None
    keep: str | None = None
    stays = False
    reader = scan.reader
    try:
        if reader == "parquet":
            if any(f.position_deletes for f in scan.files):
                scan = replace(scan, files=without_unused_deletes(io, scan.files))
            # delete files read once per process (query.deletes); the relations are named
            # after the view: a caller's connection replaces them with the view
            groups = _mask_runs(scan)
            masked = [f for group in groups for f in group]
            masks = keep_mask_table(io, groups) if groups else None
            if groups:  # one Arrow table, a column per run: one registration
                keep = _keep_name(namespace, name)
            positional = position_delete_files(scan)
            if any(f.equality_deletes for f in positional) or (positional and not masked):
                deletes = f"__lakehouse_deletes_{namespace}.{name}"
            sql = parquet_sql(
                scan,
                quote_identifier(deletes) if deletes else None,
                quote_identifier(keep) if keep else None,
                groups,
            )
            if kept is not None and deletes is None and kept.holds(view, sql, masks):
                return Registration(namespace, view, keep=keep, kept=True)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
            if keep is not None:
                con.register(keep, masks)
            if deletes is not None:
                joined = [
                    (f.path, f.position_deletes if f.equality_deletes or not masked else ())
                    for f in positional
                ]
                con.register(deletes, position_delete_table(io, joined))
            try:
                con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
            except duckdb.PermissionException:
                # a locked connection not allowed to read these files: PyIceberg reads them
                logger.debug("%s: files not allowed on this connection, read by PyIceberg", view)
                reader = "arrow"
                for registered in (deletes, keep):
                    if registered is not None:
                        con.unregister(registered)
                deletes, keep = None, None
            else:
                stays = kept is not None and deletes is None and kept.keep(view, sql, masks)
        if kept is not None and not stays and kept.forget(view) and keep is None:
            con.unregister(_keep_name(namespace, name))  # the mask of the view kept before
        if reader != "parquet":
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
            source = f"__lakehouse_scan_{next(_counter)}"
            con.register(source, read_arrow(scan))
            con.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {quote_identifier(source)}"
            )
    except duckdb.Error as exc:
        from lakehouse.query.analysis import first_line

        for registered in (source, deletes, keep):
            if registered is not None:
                con.unregister(registered)
        message = f"cannot read table '{scan.name}': {first_line(str(exc))}"
        raise QueryExecutionError(message) from exc
    logger.debug(
        "registered %s (%s reader, %d data file(s), filter %s)",
        scan.name,
        reader,
        len(scan.files),
        scan.row_filter,
    )
    return Registration(namespace, view, source, deletes, keep, kept=stays)


def _keep_name(namespace: str, name: str) -> str:
    """The relation of kept-rows masks of view ``namespace.name``."""
    return f"__lakehouse_keep_{namespace}.{name}"


def read_arrow(scan: TableScanPlan) -> pa.Table:
    """Read a table through PyIceberg (``arrow`` and ``parquet`` readers) or as an empty table."""
    assert scan.table is not None
    table = scan.table
    if scan.reader == "empty":
        return table.schema().as_arrow().empty_table()
    fields = tuple(scan.columns) if scan.columns is not None else ("*",)
    return table.scan(row_filter=scan.row_filter, selected_fields=fields).to_arrow()


def _schema_map(schema: Schema, field_ids: list[int] | None = None) -> str:
    """DuckDB's ``read_parquet(schema=…)`` map: Iceberg field id → current name and type."""
    from lakehouse.query.analysis import duckdb_type

    fields = (
        schema.fields
        if field_ids is None
        else [schema.find_field(field_id) for field_id in field_ids]
    )
    entries = []
    for f in fields:
        kind = duckdb_type(f.field_type)
        assert kind is not None, "the parquet reader is only chosen for primitive columns"
        entries.append(
            f"{f.field_id}: {{name: {quote_string(f.name)}, type: {quote_string(kind)}, "
            "default_value: NULL}"
        )
    return "MAP {" + ", ".join(entries) + "}"


def _file_list(paths: list[str]) -> str:
    return "[" + ", ".join(quote_string(p) for p in paths) + "]"


def position_delete_files(scan: TableScanPlan) -> list[ScanFile]:
    """The files of ``scan`` with position deletes, in the order their file ids number them.

    Files with position deletes only come first (read together: the id is DuckDB's
    ``file_index`` in that read), then files that also have equality deletes.
    """
    pure = [f for f in scan.files if f.position_deletes and not f.equality_deletes]
    mixed = [f for f in scan.files if f.position_deletes and f.equality_deletes]
    return pure + mixed


def keep_mask_files(scan: TableScanPlan) -> list[ScanFile]:
    """The files of ``scan`` read aligned with a mask of kept rows, in read order.

    Those with position deletes only, when nothing was pushed down to ``scan``: a full
    read of them gains nothing from DuckDB's row-group pruning, and pairing its rows
    with :func:`~lakehouse.query.deletes.keep_mask_table` by position costs little next
    to a hash anti-join (see ``docs/benchmarks.md``). A scan with a predicate keeps the
    anti-join: the predicate, pushed into the read, skips row groups first.
    """
    from pyiceberg.expressions import AlwaysTrue

    if scan.predicates or scan.row_filter != AlwaysTrue():
        return []
    return [f for f in scan.files if f.position_deletes and not f.equality_deletes]


def keep_mask_groups(scan: TableScanPlan, reads: int) -> list[list[ScanFile]]:
    """:func:`keep_mask_files` cut into at most ``reads`` runs of about equal row counts.

    A positional join is read by one thread; DuckDB runs the branches of a ``UNION ALL``
    side by side when it need not keep insertion order (:func:`unordered`), so one ordered
    read per thread keeps every core busy.
    """
    files = keep_mask_files(scan)
    count = max(1, min(reads, len(files)))
    total = max(1, sum(f.record_count for f in files))
    groups: list[list[ScanFile]] = [[] for _ in range(count)]
    done = 0
    for f in files:  # the group of the file's first row
        groups[min(done * count // total, count - 1)].append(f)
        done += f.record_count
    return [g for g in groups if g]


def parquet_sql(
    scan: TableScanPlan,
    deletes: str | None = None,
    keep: str | None = None,
    runs: Sequence[Sequence[ScanFile]] = (),
) -> str:
    """The ``SELECT`` DuckDB runs to read the planned files, deletes applied.

    ``deletes`` names a relation of ``(file_id, pos)`` rows (see
    :func:`lakehouse.query.deletes.position_delete_table` over
    :func:`position_delete_files`); without it the position delete files are read by
    DuckDB in the query itself. ``keep`` names a relation of kept-rows masks, a column per
    run of files in ``runs`` (:func:`lakehouse.query.deletes.keep_mask_table` over
    :func:`keep_mask_groups`; together all files with position deletes only): then each
    run is read in one ordered scan joined with its column by position.
    """
    assert scan.table is not None
    schema = scan.table.schema()
    columns = _schema_map(schema)
    plain = [f.path for f in scan.files if not f.has_deletes]
    parts: list[str] = []
    if plain:
        parts.append(f"SELECT * FROM read_parquet({_file_list(plain)}, schema={columns})")
    by_equality: dict[tuple[EqualityDelete, ...], list[str]] = {}
    for f in scan.files:
        if f.has_deletes and not f.position_deletes:
            by_equality.setdefault(f.equality_deletes, []).append(f.path)
    for eq_deletes, paths in by_equality.items():
        conditions = [_equality_condition(schema, d, scan.name) for d in eq_deletes]
        parts.append(
            f"SELECT * FROM read_parquet({_file_list(paths)}, schema={columns}) AS d "
            f"WHERE {' AND '.join(conditions)}"
        )
    positional = position_delete_files(scan)
    if positional:
        relation = deletes if deletes is not None else _inline_deletes(positional)
        pure = [f for f in positional if not f.equality_deletes]
        if pure and keep is not None and runs:
            # one ordered read per run of files, paired row by row with its column of
            # kept-rows masks (sized by each file's own footer): no hashing; DuckDB keeps
            # filters above a positional join, so none shifts a row
            for index, run in enumerate(runs):
                parts.append(
                    f"SELECT d.* FROM read_parquet({_file_list([f.path for f in run])}, "
                    f"schema={columns}) AS d POSITIONAL JOIN {keep} AS k "
                    f"WHERE k.{keep_column(index)}"
                )
        elif pure:
            # Files with position deletes only: ONE read of them all, anti-joined once on
            # two integers, DuckDB's file_index and the row's position (a branch per file
            # made DuckDB read them one at a time; a path per row was a string comparison)
            parts.append(
                f"SELECT * EXCLUDE ({ROW_NUMBER_COLUMN}) FROM read_parquet("
                f"{_file_list([f.path for f in pure])}, schema={columns}, "
                f"file_row_number = true) AS d "
                f"ANTI JOIN {relation} AS x "
                f"ON d.{FILE_INDEX_COLUMN} = x.{FILE_ID} "
                f"AND d.{ROW_NUMBER_COLUMN} = x.{POSITION}"
            )
        for file_id, f in enumerate(positional):
            if not f.equality_deletes:
                continue
            conditions = [
                f"NOT EXISTS (SELECT 1 FROM {relation} AS x WHERE x.{FILE_ID} = {file_id} "
                f"AND x.{POSITION} = d.{ROW_NUMBER_COLUMN})"
            ]
            conditions += [_equality_condition(schema, d, scan.name) for d in f.equality_deletes]
            parts.append(
                f"SELECT * EXCLUDE ({ROW_NUMBER_COLUMN}) FROM read_parquet("
                f"{_file_list([f.path])}, schema={columns}, file_row_number = true) AS d "
                f"WHERE {' AND '.join(conditions)}"
            )
    return "\nUNION ALL\n".join(parts)


def _inline_deletes(positional: list[ScanFile]) -> str:
    """``(file_id, pos)`` of ``positional`` read from the delete files within the query."""
    delete_files = sorted({p for f in positional for p in f.position_deletes})
    index = ", ".join(f"({quote_string(f.path)}, {i}::UBIGINT)" for i, f in enumerate(positional))
    return (
        f"(SELECT m.i AS {FILE_ID}, p.pos AS {POSITION} "
        f"FROM read_parquet({_file_list(delete_files)}) AS p "
        f"JOIN (VALUES {index}) AS m(path, i) ON p.file_path = m.path)"
    )


def _equality_condition(schema: Schema, delete: EqualityDelete, table: str) -> str:
    from pyiceberg.exceptions import ValidationError

    try:
        names = [schema.find_field(i).name for i in delete.field_ids]
    except ValueError as exc:
        raise QueryError(
            f"table '{table}': equality delete file {delete.path} matches on a column the "
            "current schema no longer has"
        ) from exc
    except ValidationError as exc:  # pragma: no cover - same as above, other PyIceberg versions
        raise QueryError(f"table '{table}': {exc}") from exc
    if not names:
        raise QueryError(f"table '{table}': equality delete file {delete.path} has no columns")
    match = " AND ".join(
        f"e.{quote_identifier(n)} IS NOT DISTINCT FROM d.{quote_identifier(n)}" for n in names
    )
    return (
        f"NOT EXISTS (SELECT 1 FROM read_parquet({_file_list([delete.path])}, "
        f"schema={_schema_map(schema, list(delete.field_ids))}) AS e WHERE {match})"
    )


__all__ = [
    "MAX_KEPT_MASK_BYTES",
    "KeptViews",
    "QueryPlan",
    "QuerySession",
    "Registration",
    "allowed_paths",
    "arrow_result",
    "connect_duckdb",
    "keep_mask_files",
    "keep_mask_groups",
    "kept_views",
    "parquet_sql",
    "position_delete_files",
    "quote_identifier",
    "quote_string",
    "read_arrow",
    "register",
    "run_registered",
    "shared_duckdb",
    "unordered",
    "unregister",
]
