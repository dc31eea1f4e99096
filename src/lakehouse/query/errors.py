"""Errors of SQL over a reference, all under :class:`QueryError`.

The subtree (a branch of :class:`~lakehouse.errors.LakehouseError`)::

    QueryError                              a query could not be planned or run
    ├── SqlSyntaxError (ValueError)         the text is not valid SQL (DuckDB's dialect)
    ├── UnsupportedQueryError (ValueError)  no or several statements
    │   └── ForbiddenQueryError             not a read-only query: a statement (COPY, SET …),
    │                                       a table function (read_csv …) or a function
    │                                       (current_setting …) the read path refuses
    ├── TableNotFoundError (LookupError)    a table the query reads is not on the reference
    └── QueryExecutionError                 DuckDB refused or failed the query (binder, types …)

Every message is one line; the table and the reference are kept as attributes too.
"""

from __future__ import annotations

from lakehouse.errors import LakehouseError


class QueryError(LakehouseError):
    """A query could not be planned or run."""


class SqlSyntaxError(QueryError, ValueError):
    """The query text is not valid SQL in DuckDB's dialect."""


class UnsupportedQueryError(QueryError, ValueError):
    """The text holds several statements, or a statement that is not a query."""


class ForbiddenQueryError(UnsupportedQueryError):
    """The query holds a construct the sandboxed read path refuses (:mod:`lakehouse.query.sandbox`).

    ``construct`` names it as the message does: ``COPY``, ``EXPORT DATABASE``,
    ``table function read_csv``, ``function current_setting``, ``table '/etc/passwd'``.
    """

    def __init__(self, construct: str, message: str) -> None:
        self.construct = construct
        super().__init__(message)


class TableNotFoundError(QueryError, LookupError):
    """A table the query reads does not exist on the reference."""

    def __init__(self, table: str, ref: str) -> None:
        self.table = table
        self.ref = ref
        super().__init__(f"table '{table}' does not exist on '{ref}'")


class QueryExecutionError(QueryError):
    """DuckDB failed to bind or run the query."""


__all__ = [
    "ForbiddenQueryError",
    "QueryError",
    "QueryExecutionError",
    "SqlSyntaxError",
    "TableNotFoundError",
    "UnsupportedQueryError",
]
