"""SQL over any reference of the versioned catalog: plan with Iceberg, read with DuckDB.

::

    import lakehouse
    from lakehouse import query

    with lakehouse.connect() as lh:
        rows = query.sql(lh, "SELECT o_orderstatus, count(*) FROM silver.orders GROUP BY 1")
        rows = query.sql(lh, "SELECT * FROM silver.orders", ref="dev")   # a branch, tag, hash
        plan = query.plan(lh, "SELECT * FROM gold.sales WHERE day = DATE '2024-01-01'")
        plan.tables["gold.sales"].data_files                               # after pruning
        result = query.fetch(lh, "SELECT 1 AS one")                        # Python values

Every table of the reference is visible as ``namespace.table``; only the tables a query
reads are loaded. Queries are read-only and sandboxed: one ``SELECT`` (or ``EXPLAIN`` of
one) in a locked DuckDB connection that can read exactly the planned files and write
none (:mod:`lakehouse.query.sandbox`); anything else is a :class:`ForbiddenQueryError`.
A reference is resolved once per query, so all its tables are read at the same commit.
:func:`fetch` returns a :class:`~lakehouse.query.result.QueryResult` (Python values, what
``lakehouse sql`` prints); a statement that names no table runs without pyarrow.
See :mod:`lakehouse.query.execution` for how a query runs,
:mod:`lakehouse.query.analysis` for what is pushed down and
:mod:`lakehouse.query.planning` for how files are chosen and read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.query.errors import ForbiddenQueryError as ForbiddenQueryError
from lakehouse.query.errors import QueryError as QueryError
from lakehouse.query.errors import QueryExecutionError as QueryExecutionError
from lakehouse.query.errors import SqlSyntaxError as SqlSyntaxError
from lakehouse.query.errors import TableNotFoundError as TableNotFoundError
from lakehouse.query.errors import UnsupportedQueryError as UnsupportedQueryError
from lakehouse.query.result import QueryResult as QueryResult

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakehouse.query.execution import QueryPlan, QuerySession
    from lakehouse.session import Lakehouse


def session(
    lakehouse: Lakehouse,
    ref: str | None = None,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> QuerySession:
    """A :class:`~lakehouse.query.execution.QuerySession` on ``ref`` pinned to its current commit.

    ``ref`` defaults to the lakehouse's default reference (``NESSIE_REF``, else ``main``).
    With ``connection`` the session registers its views there (the caller owns it).
    """
    from lakehouse.query.execution import QuerySession

    label = ref or lakehouse.default_ref
    resolved = lakehouse.resolve(label)
    if resolved.reference is not None:
        pinned = f"{resolved.reference.name}@{resolved.hash}"
    else:
        pinned = f"@{resolved.hash}"
    return QuerySession(lambda: lakehouse.catalog(pinned), ref=label, connection=connection)


def plan(lakehouse: Lakehouse, query: str, ref: str | None = None) -> QueryPlan:
    """Check ``query`` and plan the scan of every table it reads on ``ref``."""
    return session(lakehouse, ref).plan(query)


def sql(lakehouse: Lakehouse, query: str, ref: str | None = None) -> pa.Table:
    """Run ``query`` over the tables of ``ref`` and return the result as an Arrow table."""
    return session(lakehouse, ref).execute(query)


def fetch(
    lakehouse: Lakehouse, query: str, ref: str | None = None, *, max_rows: int | None = None
) -> QueryResult:
    """Run ``query`` over the tables of ``ref`` and return its rows as Python values.

    The values, and so every printed form of them, are those of :func:`sql`'s Arrow
    table (see :mod:`lakehouse.query.result`). A statement that names no table
    (``SELECT 1``, ``FROM range(3)``) is checked, then run in a locked DuckDB connection
    that reads no file, without loading the catalog, PyIceberg, sqlglot or pyarrow; ``ref``
    is still resolved, so a bad one fails the same way. With ``max_rows`` only the first
    rows are held (:attr:`QueryResult.num_rows` still counts them all).
    """
    from lakehouse.query import sandbox

    if not sandbox.reads_no_table(query):
        return QueryResult.from_arrow(sql(lakehouse, query, ref), max_rows)
    lakehouse.resolve(ref or lakehouse.default_ref)
    import duckdb

    # the connection that just parsed the statement: locked, allowed no file, and opening
    # another DuckDB database would be most of the statement's time
    con = sandbox.parser()
    con.complete()  # the statement check leaves its last result open
    try:
        return QueryResult.from_duckdb(con, query, max_rows)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    except OverflowError as exc:  # DuckDB's infinite dates and timestamps
        raise QueryExecutionError(
            f"a value lies outside Python's dates and times ({exc}), as DuckDB's infinity "
            "does: cast it to VARCHAR to see it"
        ) from None
    except duckdb.Error as exc:
        from lakehouse.query.analysis import engine_message

        raise QueryExecutionError(engine_message(str(exc))) from exc
    finally:
        con.abort()  # a fetch cut short (Ctrl-C, an error) leaves nothing for the next use


__all__ = [
    "ForbiddenQueryError",
    "QueryError",
    "QueryExecutionError",
    "QueryResult",
    "SqlSyntaxError",
    "TableNotFoundError",
    "UnsupportedQueryError",
    "fetch",
    "plan",
    "session",
    "sql",
]
