"""What a query reads: its statement kind, its tables, their columns and pushable predicates.

Three steps, each one conservative (when in doubt, read more, never less):

* :func:`check_statement` asks DuckDB's own parser whether the text is one read-only query
  (``SELECT``/``WITH``/``FROM``/``VALUES``/``DESCRIBE``/``SUMMARIZE``/``EXPLAIN`` of one,
  no table function that reads files, no function that reads settings: the read path's
  sandbox, :mod:`lakehouse.query.sandbox`); DuckDB is the authority on its dialect, so its
  verdict decides syntax errors.
* :func:`tables_read` lists the ``namespace.table`` names the query reads, from sqlglot's
  parse tree (and from DuckDB's serialized parse tree when sqlglot does not know a construct).
* :func:`pushdowns` qualifies every column with sqlglot (given the tables' Iceberg schemas)
  and, per table, collects the columns the query uses and the simple predicates of ``WHERE``
  clauses that only touch that table (``col <op> literal``, ``IN``, ``BETWEEN``,
  ``IS [NOT] NULL``, ``LIKE 'prefix%'``, boolean columns, and ``AND``/``OR`` of those), as
  PyIceberg expressions for scan planning. A predicate is pushed only where filtering the
  table first cannot change the result: not into the null-supplying side of an outer join,
  not through ``ASOF``/``POSITIONAL``/``SEMI``/``ANTI`` joins or samples, not as a range on
  floating-point columns (DuckDB orders NaN above every number; Iceberg's metrics do not
  count NaN in bounds), and only with literals that convert exactly to the column's type.
  A table read in several places gets the ``OR`` of what each place needs.

DuckDB still evaluates the whole query, so pushed predicates only prune files and rows
that cannot contribute.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lakehouse.query.sandbox import check_read_only, explained, parser

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.expressions.literals import Literal
    from pyiceberg.schema import Schema
    from pyiceberg.types import IcebergType, NestedField

logger = logging.getLogger(__name__)

#: The SQL dialect of queries and models.
DIALECT = "duckdb"

#: Namespaces DuckDB itself provides: names in them are left to DuckDB.
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})


@dataclass(frozen=True, order=True)
class TableName:
    """A two-part table name as a query writes it: ``namespace.table``."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        """``"bronze.orders"`` → ``TableName("bronze", "orders")``."""
        namespace, _, name = text.rpartition(".")
        if not namespace or not name:
            raise ValueError(f"not a table name {text!r}: use namespace.table")
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class Pushdown:
    """What a query needs from one table.

    ``row_filter`` is a PyIceberg expression implied by the query for every row it uses
    (``AlwaysTrue`` when nothing can be pushed); ``columns`` are the columns it uses
    (``None``: all of them); ``predicates`` is the SQL text of what was pushed.
    """

    row_filter: BooleanExpression
    columns: frozenset[str] | None
    predicates: tuple[str, ...] = ()

    @classmethod
    def everything(cls) -> Pushdown:
        """Read every row and column."""
        from pyiceberg.expressions import AlwaysTrue

        return cls(AlwaysTrue(), None)


def engine_message(message: str) -> str:
    """A DuckDB error on one line, whole but for the ``LINE n:`` excerpt and its caret.

    Keeps what follows the first line (``Candidate bindings: …``, ``Did you mean …``),
    which :func:`first_line` would drop.
    """
    kept: list[str] = []
    for line in str(message).splitlines():
        if line.startswith("LINE ") or (kept and line.strip() == "^"):
            break
        if line.strip():
            kept.append(" ".join(line.split()))
    return " ".join(kept)


def first_line(message: str) -> str:
    """The first non-empty line of an error message, whitespace collapsed."""
    for line in str(message).splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


# -- statement ----------------------------------------------------------------------------


def check_statement(sql: str) -> None:
    """Raise unless ``sql`` is exactly one read-only query DuckDB can parse.

    :class:`~lakehouse.query.errors.SqlSyntaxError` for text DuckDB cannot parse;
    :class:`~lakehouse.query.errors.UnsupportedQueryError` for no or several statements;
    :class:`~lakehouse.query.errors.ForbiddenQueryError` for a statement that is not a
    query, or a query using a construct the read path refuses (see
    :func:`lakehouse.query.sandbox.check_read_only`).
    """
    check_read_only(sql)


def strip_terminator(sql: str) -> str:
    """``sql`` without a trailing ``;`` (comments after it kept), so it can be nested."""
    from sqlglot import TokenType

    try:
        tokens = sqlglot.tokenize(sql, dialect=DIALECT)
    except SqlglotError:
        return sql
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        last = tokens.pop()
        sql = sql[: last.start] + " " + sql[last.end + 1 :]
    return sql.strip()


def parse(sql: str) -> exp.Expression | None:
    """sqlglot's parse tree of the single statement ``sql`` (``None`` if sqlglot cannot parse it).

    ``EXPLAIN [ANALYZE]`` is parsed as the query it explains.
    """
    text = _strip_explain(sql)
    try:
        statements = [s for s in sqlglot.parse(text, dialect=DIALECT) if s is not None]
    except SqlglotError as exc:
        logger.debug("sqlglot cannot parse the query (%s); DuckDB's parse tree is used", exc)
        return None
    if len(statements) != 1:
        return None
    statement = statements[0]
    if not isinstance(statement, exp.Expression) or isinstance(statement, exp.Command):
        return None
    return statement


def _strip_explain(sql: str) -> str:
    inner = explained(sql)
    return sql if inner is None else inner


# -- tables -------------------------------------------------------------------------------


def _table_name(node: exp.Table) -> TableName | None:
    """The two-part catalog name of a table node, or ``None`` (CTE, function, system schema)."""
    if not isinstance(node.this, exp.Identifier) or node.args.get("catalog") is not None:
        return None
    namespace, name = node.db, node.name
    if not namespace or not name or namespace.lower() in SYSTEM_SCHEMAS:
        return None
    return TableName(namespace, name)


def tables_read(sql: str, statement: exp.Expression | None = None) -> list[TableName]:
    """The ``namespace.table`` names ``sql`` reads, in order of first appearance.

    Pass ``statement`` when it is already parsed (see :func:`parse`). One-part names
    (CTEs, DuckDB's own objects), three-part names and system schemas are left out.
    """
    if statement is None:
        statement = parse(sql)
    if statement is None:
        return _duckdb_tables(sql)
    names: dict[TableName, None] = {}
    for node in statement.find_all(exp.Table):
        name = _table_name(node)
        if name is not None:
            names.setdefault(name)
    return list(names)


def _duckdb_tables(sql: str) -> list[TableName]:
    """Tables from DuckDB's serialized parse tree (for syntax sqlglot does not know)."""
    import duckdb

    try:
        row = parser().execute("SELECT json_serialize_sql(?)", [_strip_explain(sql)]).fetchone()
    except duckdb.Error as exc:
        logger.debug("DuckDB cannot serialize the query: %s", exc)
        return []
    if row is None:
        return []
    tree = json.loads(row[0])
    if tree.get("error"):
        return []
    names: dict[TableName, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "BASE_TABLE"
                and node.get("schema_name")
                and not node.get("catalog_name")
                and str(node["schema_name"]).lower() not in SYSTEM_SCHEMAS
            ):
                names.setdefault(TableName(str(node["schema_name"]), str(node["table_name"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree.get("statements", []))
    return list(names)


# -- pushdown -----------------------------------------------------------------------------


def pushdowns(
    statement: exp.Expression | None, schemas: Mapping[TableName, Schema]
) -> dict[TableName, Pushdown]:
    """Per table of ``schemas``: the columns and predicates the query needs (see the module)."""
    everything = {name: Pushdown.everything() for name in schemas}
    if statement is None or not schemas:
        return everything
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    by_lower = {(n.namespace.lower(), n.name.lower()): n for n in schemas}
    sg_schema: dict[str, dict[str, dict[str, str]]] = {}
    for name, schema in schemas.items():
        sg_schema.setdefault(name.namespace, {})[name.name] = {
            f.name: _sqlglot_type(f.field_type) for f in schema.fields
        }
    try:
        qualified = qualify(
            statement.copy(),
            schema=cast(dict[str, object], sg_schema),
            dialect=DIALECT,
            validate_qualify_columns=True,
        )
        scopes = traverse_scope(qualified)
    except Exception as exc:  # any failure means: read everything
        logger.debug("no pushdown: sqlglot cannot qualify the query (%s)", exc)
        return everything

    def resolve(node: exp.Table) -> TableName | None:
        name = _table_name(node)
        return None if name is None else by_lower.get((name.namespace.lower(), name.name.lower()))

    nodes = Counter(n for node in qualified.find_all(exp.Table) if (n := resolve(node)))
    covered: Counter[TableName] = Counter()
    aliases: dict[TableName, set[str]] = defaultdict(set)
    filters: dict[TableName, list[tuple[BooleanExpression, tuple[str, ...]] | None]] = defaultdict(
        list
    )
    for scope in scopes:
        select = scope.expression
        pushable = _pushable_aliases(select) if isinstance(select, exp.Select) else set()
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        conjuncts = list(_conjuncts(where.this)) if isinstance(where, exp.Where) else []
        for alias, source in scope.sources.items():
            if not isinstance(source, exp.Table):
                continue
            table = resolve(source)
            if table is None:
                continue
            covered[table] += 1
            aliases[table].add(alias)
            pushed: list[BooleanExpression] = []
            sql_texts: list[str] = []
            if alias in pushable and source.args.get("sample") is None:
                for conjunct in conjuncts:
                    used = list(conjunct.find_all(exp.Column))
                    if not used or any(c.table != alias for c in used):
                        continue
                    predicate = _bound(_predicate(conjunct, schemas[table]), schemas[table])
                    if predicate is not None:
                        pushed.append(predicate)
                        sql_texts.append(conjunct.sql(dialect=DIALECT))
            filters[table].append((_and(pushed), tuple(sql_texts)) if pushed else None)

    star = any(
        isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count)
        for node in qualified.find_all(exp.Star)
    )
    out: dict[TableName, Pushdown] = {}
    for name, schema in schemas.items():
        if covered[name] != nodes[name] or not filters[name]:
            out[name] = Pushdown.everything()
            continue
        columns = None if star else _columns(qualified, aliases[name], schema)
        parts = filters[name]
        if any(part is None for part in parts):
            out[name] = Pushdown(_always_true(), columns)
            continue
        exprs = [part[0] for part in parts if part is not None]
        texts = tuple(t for part in parts if part is not None for t in part[1])
        out[name] = Pushdown(_or(exprs), columns, tuple(dict.fromkeys(texts)))
    return out


def _columns(qualified: exp.Expression, aliases: set[str], schema: Schema) -> frozenset[str] | None:
    """Iceberg names of the columns the query uses through any of ``aliases``."""
    lower = {f.name.lower(): f.name for f in schema.fields}
    used = {
        lower[c.name.lower()]
        for c in qualified.find_all(exp.Column)
        if c.table in aliases and c.name.lower() in lower
    }
    if not used and schema.fields:  # count(*): one column keeps the row count
        used = {schema.fields[0].name}
    return frozenset(used)


def _pushable_aliases(select: exp.Select) -> set[str]:
    """Sources of ``select`` whose rows ``WHERE`` predicates may filter before the joins."""
    if select.args.get("sample") is not None:
        return set()
    from_ = select.args.get("from_")
    sources = [from_.this] if isinstance(from_, exp.From) else []
    nullable: set[str] = set()
    for join in select.args.get("joins") or []:
        side, kind = (join.side or "").upper(), (join.kind or "").upper()
        if join.args.get("method") or side in ("RIGHT", "FULL") or kind in ("SEMI", "ANTI"):
            return set()
        if side == "LEFT":
            nullable.add(join.this.alias_or_name)
        sources.append(join.this)
    return {s.alias_or_name for s in sources} - nullable


def _conjuncts(node: exp.Expression) -> Iterable[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _always_true() -> BooleanExpression:
    from pyiceberg.expressions import AlwaysTrue

    return AlwaysTrue()


def _and(parts: Sequence[BooleanExpression]) -> BooleanExpression:
    return parts[0] if len(parts) == 1 else iceberg_expression("And", *parts)


def _or(parts: Sequence[BooleanExpression]) -> BooleanExpression:
    return parts[0] if len(parts) == 1 else iceberg_expression("Or", *parts)


def _bound(expr: BooleanExpression | None, schema: Schema) -> BooleanExpression | None:
    """``expr`` if it binds to ``schema``; ``None`` (push nothing) otherwise."""
    if expr is None:
        return None
    from pyiceberg.expressions.visitors import bind

    try:
        bind(schema, expr, case_sensitive=True)
    except Exception as exc:  # not bound: not pushed
        logger.debug("not pushed (%s): %s", exc, expr)
        return None
    return expr


# -- predicates ---------------------------------------------------------------------------


def iceberg_expression(kind: str, *args: Any) -> BooleanExpression:
    """PyIceberg's expression ``kind`` (``"EqualTo"`` …) built from positional arguments.

    The expression classes are pydantic models whose generated signatures (keyword-only
    fields) do not match their real ``__init__``; calling them through here keeps mypy
    honest about everything else.
    """
    from pyiceberg import expressions

    factory: Callable[..., BooleanExpression] = getattr(expressions, kind)
    return factory(*args)


_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_FLIPPED: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
}


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _field(schema: Schema, column: exp.Column) -> NestedField | None:
    """The top-level field ``column`` names (case-insensitively, as DuckDB resolves)."""
    name = column.name.lower()
    matches = [f for f in schema.fields if f.name.lower() == name]
    return matches[0] if len(matches) == 1 else None


def _predicate(node: exp.Expression, schema: Schema) -> BooleanExpression | None:
    """A PyIceberg expression equivalent to (or implied by) ``node``, or ``None``."""

    node = _unwrap(node)
    if isinstance(node, exp.And):
        parts = [p for p in (_predicate(c, schema) for c in _conjuncts(node)) if p is not None]
        return _and(parts) if parts else None
    if isinstance(node, exp.Or):
        left, right = _predicate(node.this, schema), _predicate(node.expression, schema)
        return (
            iceberg_expression("Or", left, right)
            if left is not None and right is not None
            else None
        )
    if isinstance(node, tuple(_FLIPPED)):
        return _comparison(node, schema)
    if isinstance(node, exp.Between):
        return _between(node, schema)
    if isinstance(node, exp.In):
        return _in(node, schema, negated=False)
    if isinstance(node, exp.Is):
        column = _unwrap(node.this)
        if isinstance(column, exp.Column) and isinstance(node.expression, exp.Null):
            field = _field(schema, column)
            return iceberg_expression("IsNull", field.name) if field is not None else None
        return None
    if isinstance(node, exp.Like):
        return _starts_with(node, schema)
    if isinstance(node, exp.Column):
        return _boolean_column(node, schema, True)
    if isinstance(node, exp.Not):
        inner = _unwrap(node.this)
        if isinstance(inner, exp.Is):
            column = _unwrap(inner.this)
            if isinstance(column, exp.Column) and isinstance(inner.expression, exp.Null):
                field = _field(schema, column)
                return iceberg_expression("NotNull", field.name) if field is not None else None
            return None
        if isinstance(inner, exp.In):
            return _in(inner, schema, negated=True)
        if isinstance(inner, exp.Column):
            return _boolean_column(inner, schema, False)
    return None


def _boolean_column(column: exp.Column, schema: Schema, value: bool) -> BooleanExpression | None:
    from pyiceberg.expressions.literals import BooleanLiteral
    from pyiceberg.types import BooleanType

    field = _field(schema, column)
    if field is None or not isinstance(field.field_type, BooleanType):
        return None
    return iceberg_expression("EqualTo", field.name, BooleanLiteral(value))


def _comparison(node: exp.Expression, schema: Schema) -> BooleanExpression | None:

    left, right, kind = _unwrap(node.this), _unwrap(node.expression), type(node)
    if not isinstance(left, exp.Column):
        left, right, kind = right, left, _FLIPPED[kind]
    if not isinstance(left, exp.Column) or isinstance(right, exp.Column):
        return None
    field = _field(schema, left)
    if field is None:
        return None
    if issubclass(kind, _RANGE) and _is_floating(field.field_type):
        return None
    value = _literal(right, field.field_type)
    if value is None:
        return None
    names: dict[type[exp.Expression], str] = {
        exp.EQ: "EqualTo",
        exp.NEQ: "NotEqualTo",
        exp.GT: "GreaterThan",
        exp.GTE: "GreaterThanOrEqual",
        exp.LT: "LessThan",
        exp.LTE: "LessThanOrEqual",
    }
    return iceberg_expression(names[kind], field.name, value)


def _between(node: exp.Between, schema: Schema) -> BooleanExpression | None:

    column = _unwrap(node.this)
    if not isinstance(column, exp.Column) or node.args.get("symmetric"):
        return None
    field = _field(schema, column)
    if field is None or _is_floating(field.field_type):
        return None
    low = _literal(_unwrap(node.args["low"]), field.field_type)
    high = _literal(_unwrap(node.args["high"]), field.field_type)
    if low is None or high is None:
        return None
    return iceberg_expression(
        "And",
        iceberg_expression("GreaterThanOrEqual", field.name, low),
        iceberg_expression("LessThanOrEqual", field.name, high),
    )


def _in(node: exp.In, schema: Schema, *, negated: bool) -> BooleanExpression | None:

    column = _unwrap(node.this)
    if not isinstance(column, exp.Column) or node.args.get("query") or node.args.get("unnest"):
        return None
    field = _field(schema, column)
    items = [_unwrap(e) for e in node.expressions]
    if field is None or not items:
        return None
    if any(isinstance(item, exp.Null) for item in items):
        if negated:  # x NOT IN (…, NULL) is never true
            return None
        items = [item for item in items if not isinstance(item, exp.Null)]
        if not items:
            return None
    values = [_literal(item, field.field_type) for item in items]
    if any(v is None for v in values):
        return None
    literals = [v for v in values if v is not None]
    return iceberg_expression("NotIn" if negated else "In", field.name, literals)


def _starts_with(node: exp.Like, schema: Schema) -> BooleanExpression | None:
    from pyiceberg.expressions.literals import StringLiteral
    from pyiceberg.types import StringType

    column, pattern = _unwrap(node.this), _unwrap(node.expression)
    if not isinstance(column, exp.Column) or not _is_string_literal(pattern):
        return None
    field = _field(schema, column)
    if field is None or not isinstance(field.field_type, StringType):
        return None
    text = str(pattern.this)
    prefix = text.rstrip("%")
    if not prefix or prefix == text or "%" in prefix or "_" in prefix:
        return None
    return iceberg_expression("StartsWith", field.name, StringLiteral(prefix))


def _is_floating(kind: IcebergType) -> bool:
    from pyiceberg.types import DoubleType, FloatType

    return isinstance(kind, (FloatType, DoubleType))


def _is_string_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and bool(node.is_string)


def _literal_text(node: exp.Expression) -> tuple[str, bool] | None:
    """``(text, is_string)`` of a constant: a literal, a negated number or a typed string."""
    node = _unwrap(node)
    if isinstance(node, exp.Neg):
        inner = _unwrap(node.this)
        if isinstance(inner, exp.Literal) and not inner.is_string:
            return "-" + str(inner.this), False
        return None
    if isinstance(node, exp.Literal):
        return str(node.this), bool(node.is_string)
    if isinstance(node, exp.Cast) and isinstance(node.to, exp.DataType):
        inner = _unwrap(node.this)
        typed = node.to.is_type(
            exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ
        )
        if typed and isinstance(inner, exp.Literal) and inner.is_string:
            return str(inner.this), True
    return None


def _literal(node: exp.Expression, kind: IcebergType) -> Literal[Any] | None:
    """``node`` as an exact PyIceberg literal of the column type ``kind``, else ``None``."""
    from pyiceberg import types as t
    from pyiceberg.expressions import literals as lit

    node = _unwrap(node)
    if isinstance(node, exp.Boolean):
        return lit.BooleanLiteral(bool(node.this)) if isinstance(kind, t.BooleanType) else None
    constant = _literal_text(node)
    if constant is None:
        return None
    text, is_string = constant
    if isinstance(kind, (t.IntegerType, t.LongType)):
        number = _number(text, is_string)
        if number is None or number != number.to_integral_value():
            return None
        return lit.LongLiteral(int(number))
    if isinstance(kind, (t.FloatType, t.DoubleType)):
        number = _number(text, is_string)
        return lit.DoubleLiteral(float(number)) if number is not None else None
    if isinstance(kind, t.DecimalType):
        number = _number(text, is_string)
        if number is None:
            return None
        exponent = number.as_tuple().exponent
        if not isinstance(exponent, int) or -exponent > kind.scale:
            return None
        return lit.DecimalLiteral(number.quantize(Decimal(1).scaleb(-kind.scale)))
    if not is_string:
        return None
    if isinstance(kind, t.StringType):
        return lit.StringLiteral(text)
    if isinstance(kind, t.DateType):
        try:
            day = dt.date.fromisoformat(text.strip())
        except ValueError:
            return None
        return lit.DateLiteral((day - dt.date(1970, 1, 1)).days)
    if isinstance(kind, (t.TimestampType, t.TimestamptzType)):
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        if isinstance(kind, t.TimestampType):
            if moment.tzinfo is not None:
                return None
            moment = moment.replace(tzinfo=dt.UTC)
        elif moment.tzinfo is None:  # DuckDB reads it in the session time zone: UTC
            moment = moment.replace(tzinfo=dt.UTC)
        delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return lit.TimestampLiteral(micros)
    return None


def _number(text: str, is_string: bool) -> Decimal | None:
    if is_string:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# -- types ---------------------------------------------------------------------------------


def duckdb_type(kind: IcebergType) -> str | None:
    """DuckDB's name of a primitive Iceberg type (``None`` for nested and exotic types)."""
    from pyiceberg import types as t

    simple: dict[type[IcebergType], str] = {
        t.BooleanType: "BOOLEAN",
        t.IntegerType: "INTEGER",
        t.LongType: "BIGINT",
        t.FloatType: "FLOAT",
        t.DoubleType: "DOUBLE",
        t.DateType: "DATE",
        t.TimeType: "TIME",
        t.TimestampType: "TIMESTAMP",
        t.TimestamptzType: "TIMESTAMPTZ",
        t.TimestampNanoType: "TIMESTAMP_NS",
        t.StringType: "VARCHAR",
        t.UUIDType: "UUID",
        t.BinaryType: "BLOB",
    }
    if isinstance(kind, t.DecimalType):
        return f"DECIMAL({kind.precision},{kind.scale})"
    if isinstance(kind, t.FixedType):
        return "BLOB"
    return simple.get(type(kind))


def _sqlglot_type(kind: IcebergType) -> str:
    return duckdb_type(kind) or "VARCHAR"


__all__ = [
    "DIALECT",
    "Pushdown",
    "TableName",
    "check_statement",
    "duckdb_type",
    "engine_message",
    "first_line",
    "iceberg_expression",
    "parse",
    "pushdowns",
    "strip_terminator",
    "tables_read",
]
