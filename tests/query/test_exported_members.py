"""The public surface of `lakehouse.query` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.query


def test_all_is_pinned() -> None:
    assert lakehouse.query.__all__ == [
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
    for name in lakehouse.query.__all__:
        assert hasattr(lakehouse.query, name), name


def test_errors_are_lakehouse_errors() -> None:
    from lakehouse.errors import LakehouseError

    assert issubclass(lakehouse.query.QueryError, LakehouseError)
    assert issubclass(lakehouse.query.SqlSyntaxError, ValueError)
    assert issubclass(lakehouse.query.TableNotFoundError, LookupError)
    assert issubclass(lakehouse.query.ForbiddenQueryError, lakehouse.query.UnsupportedQueryError)
