"""SQL over any reference of the versioned catalog: plan with Iceberg, read with DuckDB.

::

    import lakehouse
    from lakehouse import query

    with lakehouse.connect() as lh:
        rows = query.sql(lh, "SELECT o_orderstatus, count(*) FROM silver.orders GROUP BY 1")
        rows = query.sql(lh, "SELECT * FROM silver.orders", ref="dev")   # a branch, tag, hash
        plan = query.plan(lh, "SELECT * FROM gold.sales WHERE day = DATE '2024-01-01'")
        plan.tables["gold.sales"].data_files                               # after pruning

Every table of the reference is visible as ``namespace.table``; only the tables a query
reads are loaded. Queries are read-only and sandboxed: one ``SELECT`` (or ``EXPLAIN`` of
one) in a locked DuckDB connection that can read exactly the planned files and write
none (:mod:`lakehouse.query.sandbox`); anything else is a :class:`ForbiddenQueryError`.
A reference is resolved once per query, so all its tables are read at the same commit.
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


__all__ = [
    "ForbiddenQueryError",
    "QueryError",
    "QueryExecutionError",
    "SqlSyntaxError",
    "TableNotFoundError",
    "UnsupportedQueryError",
    "plan",
    "session",
    "sql",
]
