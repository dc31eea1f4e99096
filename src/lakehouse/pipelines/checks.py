"""Data-quality checks: each check is a query whose rows are the failures.

==================  ====================================================================
type                fails for
==================  ====================================================================
``not_null``        rows where any of ``columns`` is NULL
``unique``          each combination of ``columns`` held by several rows (rows with a
                    NULL in the combination are not compared, as SQL's UNIQUE)
``accepted_values`` rows whose ``column`` is not NULL and not in ``values``
``relationships``   rows whose ``column`` is not NULL and has no ``to``.``field`` match
``row_count``       the table, when its row count is below ``min`` or above ``max``
``freshness``       the table, when ``max(column)`` is older than ``max_age`` (or NULL)
``sql``             every row the custom query returns
==================  ====================================================================

:func:`run_check` evaluates one check through an engine and returns a
:class:`CheckResult` with the number of failing rows and up to :data:`SAMPLE_ROWS` of
them (:func:`check_queries` lists the queries it runs). A check that cannot run at all
(a missing table or column) is reported with status ``error``; it blocks like a failure
when its severity is ``error``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.pipelines.config import (
    AcceptedValuesCheck,
    Check,
    FreshnessCheck,
    NotNullCheck,
    RelationshipsCheck,
    RowCountCheck,
    SqlCheck,
    UniqueCheck,
)
from lakehouse.query.output import jsonable

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.pipelines.engines.base import Engine

#: How many failing rows a result keeps.
SAMPLE_ROWS = 5
#: Name of the column holding the number of failing rows in a check's count query.
_COUNT = "__lakehouse_failing_rows"

CheckStatus = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    type: str
    #: The table the check is about (``None`` for custom SQL checks without ``model``).
    model: str | None
    severity: str
    #: ``pass``, ``fail`` (rows failed) or ``error`` (the check could not run).
    status: CheckStatus
    failing_rows: int = 0
    #: Up to :data:`SAMPLE_ROWS` failing rows.
    sample: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.status == "pass"

    @property
    def blocking(self) -> bool:
        """True when the check did not pass and its severity is ``error``."""
        return not self.passed and self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        """JSON form (sample values as JSON-able values)."""
        return {
            "name": self.name,
            "type": self.type,
            "model": self.model,
            "severity": self.severity,
            "status": self.status,
            "failing_rows": self.failing_rows,
            "sample": [{k: jsonable(v) for k, v in row.items()} for row in self.sample],
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }


def _q(name: str) -> str:
    from lakehouse.query.execution import quote_identifier

    return quote_identifier(name)


def _table(name: str) -> str:
    namespace, _, table = name.rpartition(".")
    return f"{_q(namespace)}.{_q(table)}"


def _value(value: str | int | float | bool) -> str:
    from lakehouse.query.execution import quote_string

    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote_string(value)


def failing_rows_sql(check: Check) -> str | None:
    """The query returning the failing rows of a row-level check (``None`` for the others)."""
    if isinstance(check, NotNullCheck):
        condition = " OR ".join(f"{_q(c)} IS NULL" for c in check.columns)
        return f"SELECT * FROM {_table(check.model)} WHERE {condition}"
    if isinstance(check, UniqueCheck):
        columns = ", ".join(_q(c) for c in check.columns)
        not_null = " AND ".join(f"{_q(c)} IS NOT NULL" for c in check.columns)
        return (
            f"SELECT {columns}, count(*) AS duplicates FROM {_table(check.model)} "
            f"WHERE {not_null} GROUP BY {columns} HAVING count(*) > 1 "
            f"ORDER BY duplicates DESC, {columns}"
        )
    if isinstance(check, AcceptedValuesCheck):
        values = ", ".join(_value(v) for v in check.values)
        column = _q(check.column)
        return (
            f"SELECT * FROM {_table(check.model)} "
            f"WHERE {column} IS NOT NULL AND {column} NOT IN ({values})"
        )
    if isinstance(check, RelationshipsCheck):
        return (
            f"SELECT c.* FROM {_table(check.model)} AS c "
            f"WHERE c.{_q(check.column)} IS NOT NULL AND NOT EXISTS ("
            f"SELECT 1 FROM {_table(check.to)} AS p "
            f"WHERE p.{_q(check.field)} = c.{_q(check.column)})"
        )
    if isinstance(check, SqlCheck):
        return check.sql
    return None


def check_queries(check: Check) -> list[str]:
    """The queries :func:`run_check` runs for ``check``, exactly as it passes them to the engine.

    A row-level check runs one more query, for its sample rows, only when rows fail (within
    the runner's batch both read the same commit; called alone, each reads the latest).

    The runner hands the audit's queries to :meth:`Engine.batch
    <lakehouse.pipelines.engines.base.Engine.batch>` before running the checks, so an
    engine can prepare them together (DuckDB: plan them all at one commit and run them in
    one sandboxed connection).
    """
    if isinstance(check, RowCountCheck):
        return [_row_count_sql(check)]
    if isinstance(check, FreshnessCheck):
        return [_freshness_sql(check)]
    sql = failing_rows_sql(check)
    assert sql is not None
    return [_failing_count_query(sql)]


def run_check(engine: Engine, check: Check, *, now: dt.datetime | None = None) -> CheckResult:
    """Evaluate ``check`` on the engine's branch."""
    from lakehouse.errors import LakehouseError

    started = time.perf_counter()
    base: dict[str, Any] = {
        "name": check.display_name,
        "type": check.type,
        "model": check.target,
        "severity": check.severity,
    }
    try:
        if isinstance(check, RowCountCheck):
            outcome = _row_count(engine, check)
        elif isinstance(check, FreshnessCheck):
            outcome = _freshness(engine, check, now or dt.datetime.now(dt.UTC))
        else:
            sql = failing_rows_sql(check)
            assert sql is not None
            outcome = _failing_rows(engine, sql)
    except (LakehouseError, ValueError, TypeError, ArithmeticError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return CheckResult(
            **base, status="error", message=message, seconds=time.perf_counter() - started
        )
    count, sample, message = outcome
    return CheckResult(
        **base,
        status="fail" if count else "pass",
        failing_rows=count,
        sample=sample,
        message=message,
        seconds=time.perf_counter() - started,
    )


def _failing_count_query(sql: str) -> str:
    """The number of rows ``sql`` returns (one row, one column).

    Counting lets DuckDB read only the columns the check's condition needs (a
    ``relationships`` check over a wide fact table reads its key column, not every column):
    the rows themselves are read only when some fail (:func:`_sample_query`).
    """
    return f"SELECT count(*) AS {_COUNT} FROM (\n{sql}\n) AS failing"


def _sample_query(sql: str) -> str:
    """Up to :data:`SAMPLE_ROWS` of the rows ``sql`` returns."""
    return f"SELECT * FROM (\n{sql}\n) AS failing LIMIT {SAMPLE_ROWS}"


def _failing_rows(engine: Engine, sql: str) -> tuple[int, list[dict[str, Any]], str]:
    count = int(engine.execute(_failing_count_query(sql)).column(0)[0].as_py() or 0)
    if not count:
        return 0, [], ""
    return count, _rows(engine.execute(_sample_query(sql))), f"{count} failing row(s)"


def _row_count_sql(check: RowCountCheck) -> str:
    return f"SELECT count(*) AS row_count FROM {_table(check.model)}"


def _row_count(engine: Engine, check: RowCountCheck) -> tuple[int, list[dict[str, Any]], str]:
    result = engine.execute(_row_count_sql(check))
    count = int(result.column(0)[0].as_py())
    low = check.min if check.min is not None else 0
    too_few = count < low
    too_many = check.max is not None and count > check.max
    if not (too_few or too_many):
        return 0, [], ""
    expected = (
        f"at least {check.min}" if check.max is None
        else f"at most {check.max}" if check.min is None
        else f"between {check.min} and {check.max}"
    )  # fmt: skip
    sample = [{"row_count": count, "min": check.min, "max": check.max}]
    return 1, sample, f"{count} row(s), expected {expected}"


def _freshness_sql(check: FreshnessCheck) -> str:
    return f"SELECT max({_q(check.column)}) AS latest FROM {_table(check.model)}"


def _freshness(
    engine: Engine, check: FreshnessCheck, now: dt.datetime
) -> tuple[int, list[dict[str, Any]], str]:
    result = engine.execute(_freshness_sql(check))
    latest = result.column(0)[0].as_py()
    limit = check.max_age
    if latest is None:
        sample = [{"latest": None, "max_age": str(limit)}]
        return 1, sample, f"no {check.column} value: the table is empty"
    if isinstance(latest, dt.datetime):
        moment = latest if latest.tzinfo is not None else latest.replace(tzinfo=dt.UTC)
    elif isinstance(latest, dt.date):
        moment = dt.datetime(latest.year, latest.month, latest.day, tzinfo=dt.UTC)
    else:
        raise TypeError(
            f"column {check.column} is not a date or timestamp ({type(latest).__name__})"
        )
    age = now - moment
    if age <= limit:
        return 0, [], ""
    sample = [{"latest": latest, "age": str(age).split(".")[0], "max_age": str(limit)}]
    return 1, sample, f"newest {check.column} is {_human(age)} old, more than {_human(limit)}"


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0", "")
    return f"{seconds}s"


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


__all__ = ["SAMPLE_ROWS", "CheckResult", "check_queries", "failing_rows_sql", "run_check"]
