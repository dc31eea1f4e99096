"""Model unit tests: fixture rows in, expected rows out, in DuckDB, without the catalog.

Next to a model file ``silver/orders.sql`` a file ``silver/orders.test.yaml`` holds its
tests::

    tests:
      - name: the newest version of a key wins
        given:                      # the rows of every table the model reads
          bronze.orders:
            - {o_orderkey: "1", o_totalprice: "10.50", _ingested_at: 2026-01-01T00:00:00}
            - {o_orderkey: "1", o_totalprice: "12.00", _ingested_at: 2026-01-02T00:00:00}
        expect:                     # the model's result rows (any order)
          - {o_orderkey: 1, o_totalprice: 12.00}

:func:`run_model_tests` runs each test in a fresh in-memory DuckDB connection: the
``given`` tables become tables of those names (column types inferred from the YAML
values, as Arrow infers them: strings, integers, floats, booleans, dates and timestamps),
the model's SELECT runs over them, and its rows are compared with ``expect``:

* only the columns ``expect`` names are compared (the result may have more);
* rows compare as a multiset (``ordered: true`` compares them in order);
* values compare as equal when they are equal, or numerically equal (``12.00`` and
  ``Decimal('12.00')``), or when the expected value is a string equal to the result's
  text (``"2026-01-01"`` for a date).

A ``given`` table may be an empty list only when ``columns:`` gives its column types
(``{columns: {o_orderkey: BIGINT}, rows: []}``). Every table the model reads must be
given. The test exercises the SELECT: for ``merge``/``incremental`` models that is the
batch that would be merged, not the merged table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.pipelines.definition import display_path
from lakehouse.pipelines.errors import PipelineConfigError

if TYPE_CHECKING:
    import duckdb

    from lakehouse.pipelines.definition import Model, Pipeline

#: Suffix of a model's test file (next to ``<table>.sql``).
TEST_SUFFIX = ".test.yaml"

CaseStatus = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class ModelTestResult:
    """The outcome of one test of one model."""

    model: str
    name: str
    status: CaseStatus
    #: Where the test is (``silver/orders.test.yaml#2``).
    where: str
    message: str = ""
    #: Expected rows the result lacks, and result rows nobody expected (compared columns).
    missing: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the result matched."""
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        from lakehouse.query.output import jsonable

        return {
            "model": self.model,
            "name": self.name,
            "status": self.status,
            "where": self.where,
            "message": self.message,
            "missing": [{k: jsonable(v) for k, v in r.items()} for r in self.missing],
            "unexpected": [{k: jsonable(v) for k, v in r.items()} for r in self.unexpected],
        }


@dataclass(frozen=True)
class _Case:
    name: str
    index: int
    given: Mapping[str, Any]
    expect: Sequence[Mapping[str, Any]]
    ordered: bool


def model_test_file(model: Model) -> Path:
    """The test file of ``model`` (which need not exist)."""
    return model.path.with_name(model.path.stem + TEST_SUFFIX)


def run_model_tests(pipeline: Pipeline, models: Sequence[str] = ()) -> list[ModelTestResult]:
    """Run the tests of every model of ``pipeline`` that has a test file (or of ``models``).

    Raises :class:`PipelineConfigError` for a malformed test file, naming it.
    """
    chosen = [pipeline.model(m) for m in models] if models else list(pipeline.models)
    results: list[ModelTestResult] = []
    for model in chosen:
        file = model_test_file(model)
        if not file.is_file():
            continue
        for case in _load_cases(file):
            results.append(_run_case(model, case, f"{display_path(file)}#{case.index + 1}"))
    return results


def _load_cases(file: Path) -> list[_Case]:
    import yaml

    shown = display_path(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PipelineConfigError(f"{shown}: invalid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineConfigError(f"{shown}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise PipelineConfigError(f"{shown}: expected a mapping with a list 'tests'")
    unknown = sorted(set(data) - {"tests"})
    if unknown:
        raise PipelineConfigError(f"{shown}: unknown key(s) {', '.join(unknown)} (only 'tests')")
    cases: list[_Case] = []
    for i, entry in enumerate(data["tests"]):
        where = f"{shown}: tests[{i}]"
        if not isinstance(entry, dict):
            raise PipelineConfigError(f"{where}: expected a mapping")
        extra = sorted(set(entry) - {"name", "given", "expect", "ordered"})
        if extra:
            raise PipelineConfigError(
                f"{where}: unknown key(s) {', '.join(extra)} (name, given, expect, ordered)"
            )
        given = entry.get("given")
        expect = entry.get("expect")
        if not isinstance(given, dict) or not given:
            raise PipelineConfigError(f"{where}: 'given' maps each table the model reads to rows")
        if not isinstance(expect, list) or not all(isinstance(r, dict) for r in expect):
            raise PipelineConfigError(f"{where}: 'expect' is a list of rows (mappings)")
        name = str(entry.get("name") or f"test {i + 1}")
        cases.append(_Case(name, i, given, expect, bool(entry.get("ordered", False))))
    return cases


def _run_case(model: Model, case: _Case, where: str) -> ModelTestResult:
    import duckdb

    from lakehouse.query.analysis import engine_message
    from lakehouse.query.execution import connect_duckdb

    def result(status: CaseStatus, message: str, **rows: list[dict[str, Any]]) -> ModelTestResult:
        return ModelTestResult(model.name, case.name, status, where, message, **rows)

    given = {name.lower(): name for name in case.given}
    missing_inputs = [r for r in dict.fromkeys(model.reads) if r.lower() not in given]
    if missing_inputs:
        return result(
            "error", f"no rows given for {', '.join(missing_inputs)} (the model reads it)"
        )
    con = connect_duckdb()
    try:
        for name, rows in case.given.items():
            problem = _create(con, name, rows)
            if problem:
                return result("error", f"given {name}: {problem}")
        try:
            relation = con.sql(model.sql)
            assert relation is not None
            actual: list[dict[str, Any]] = relation.to_arrow_table().to_pylist()
        except duckdb.Error as exc:
            return result("error", f"the model failed: {engine_message(str(exc))}")
    finally:
        con.close()
    columns = list(dict.fromkeys(k for row in case.expect for k in row))
    if actual and (absent := [c for c in columns if c not in actual[0]]):
        return result(
            "fail",
            f"the result has no column(s) {', '.join(absent)} (it has {', '.join(actual[0])})",
        )
    projected = [{c: row.get(c) for c in columns} for row in actual]
    missing, unexpected = _compare(projected, [dict(r) for r in case.expect], case.ordered)
    if not missing and not unexpected:
        return result("pass", f"{len(actual)} row(s) as expected")
    message = (
        f"expected {len(case.expect)} row(s), got {len(actual)}: "
        f"{len(missing)} expected row(s) missing, {len(unexpected)} unexpected"
    )
    return result("fail", message, missing=missing, unexpected=unexpected)


def _create(con: duckdb.DuckDBPyConnection, name: str, rows: Any) -> str | None:
    """Create table ``name`` holding ``rows``; a problem for people, or ``None``."""
    import duckdb
    import pyarrow as pa

    from lakehouse.query.execution import quote_identifier

    namespace, _, table = name.rpartition(".")
    if not namespace:
        return "name tables as namespace.table"
    types: Mapping[str, Any] = {}
    if isinstance(rows, dict):
        types = rows.get("columns") or {}
        rows = rows.get("rows", [])
        if not isinstance(types, dict):
            return "'columns' maps column names to SQL types"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "expected a list of rows (mappings), or {columns: …, rows: […]}"
    if not rows and not types:
        return "no rows and no 'columns': the table's columns are unknown"
    target = f"{quote_identifier(namespace)}.{quote_identifier(table)}"
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
        if types:
            columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in types.items())
            con.execute(f"CREATE TABLE {target} ({columns})")
        if rows:
            names = list(dict.fromkeys(k for row in rows for k in row))
            data = pa.Table.from_pylist([{c: row.get(c) for c in names} for row in rows])
            source = f"__lakehouse_given_{namespace}_{table}"
            con.register(source, data)
            listed = ", ".join(quote_identifier(c) for c in names)
            if types:
                con.execute(f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {source}")
            else:
                con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}")
            con.unregister(source)
    except (duckdb.Error, pa.ArrowException) as exc:
        return " ".join(str(exc).split())
    return None


def _compare(
    actual: list[dict[str, Any]], expected: list[dict[str, Any]], ordered: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(expected rows not found, result rows not expected)."""
    if ordered:
        missing = [e for a, e in zip(actual, expected, strict=False) if not _same_row(a, e)]
        unexpected = [a for a, e in zip(actual, expected, strict=False) if not _same_row(a, e)]
        missing += expected[len(actual) :]
        unexpected += actual[len(expected) :]
        return missing, unexpected
    left = list(actual)
    missing = []
    for row in expected:
        match = next((i for i, a in enumerate(left) if _same_row(a, row)), None)
        if match is None:
            missing.append(row)
        else:
            left.pop(match)
    return missing, left


def _same_row(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    return all(_same(actual.get(k), v) for k, v in expected.items())


def _same(actual: Any, expected: Any) -> bool:
    if actual == expected and type(actual) is not bool and type(expected) is not bool:
        return True
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if actual is None or expected is None:
        return False
    numbers = (int, float, Decimal)
    if isinstance(actual, numbers) and isinstance(expected, numbers):
        try:
            return Decimal(str(actual)) == Decimal(str(expected))
        except InvalidOperation:
            return False
    if isinstance(expected, str):
        return _text(actual) == expected
    return False


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


__all__ = ["TEST_SUFFIX", "ModelTestResult", "model_test_file", "run_model_tests"]
