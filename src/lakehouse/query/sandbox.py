"""The sandbox of the SQL read path: what user SQL may say, and the DuckDB it runs in.

Every query that reaches DuckDB from a user — ``lakehouse sql``, ``Lakehouse.sql``,
:func:`lakehouse.query.sql`, pipeline models and SQL checks (they run through the same
:class:`~lakehouse.query.execution.QuerySession`) — passes two independent locks:

1. **The statement check** (:func:`check_read_only`), on DuckDB's own parse tree. An
   allow-list of statement kinds: one ``SELECT`` (with ``WITH``, ``FROM``-first,
   ``VALUES``, ``DESCRIBE``, ``SUMMARIZE``, ``SHOW``, set operations) or ``EXPLAIN
   [ANALYZE]`` of one — the explained statement is checked like the outer one, so
   ``EXPLAIN ANALYZE COPY …`` is refused as ``COPY``. Inside the query (CTEs, subqueries,
   joins, expressions) a table function must be one of :data:`ALLOWED_TABLE_FUNCTIONS`
   (``range``, ``unnest`` …: none reads a path or the network), no function in
   :data:`DENIED_FUNCTIONS` (settings, environment, logs, sequences) may be called, and a
   table name may not be a file path (DuckDB's replacement scans read ``FROM 'x.csv'``).
   A refusal is a :class:`~lakehouse.query.errors.ForbiddenQueryError` naming the
   construct, in one line.
2. **The locked connection** (:func:`connect`): an in-memory DuckDB database with
   ``enable_external_access=false`` and an allow-list (``allowed_paths``) of exactly the
   data and delete files of the planned scans, its spill folder a private one of the
   process (:func:`spill_directory`), extension auto-install and auto-load off,
   Python replacement scans off, then ``lock_configuration=true`` — no statement can
   change a setting afterwards. Even a statement the check let through by mistake can
   neither read another file nor write one, attach a database or install an extension.

Temporary tables, schemas and views in the in-memory database, and Arrow tables
registered from Python, still work: the engine's own merge code needs them.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lakehouse.query.errors import ForbiddenQueryError, SqlSyntaxError, UnsupportedQueryError

if TYPE_CHECKING:
    import duckdb

#: Table functions a query may call: they compute rows, none reads a path or the network.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree"}
)

#: Scalar functions a query may not call: they read settings, the environment or the logs,
#: or change state (sequences, the random seed), or run serialized SQL.
DENIED_FUNCTIONS = frozenset(
    {
        "current_setting",
        "getenv",
        "getvariable",
        "write_log",
        "json_execute_serialized_sql",
        "nextval",
        "currval",
        "setseed",
        "set_config",
    }
)

#: Statement kinds named by their first keyword(s) in refusals (DuckDB reports ``INSTALL``
#: as a ``LOAD`` statement, ``IMPORT DATABASE`` as ``PRAGMA``, ``CHECKPOINT`` as ``CALL``).
_KEYWORD_NAMES = {
    "export": "EXPORT DATABASE",
    "import": "IMPORT DATABASE",
}
_STATEMENT_KEYWORDS = frozenset(
    {
        "alter", "analyze", "attach", "begin", "call", "checkpoint", "commit", "copy",
        "create", "deallocate", "delete", "detach", "drop", "execute", "export",
        "force", "import", "insert", "install", "load", "merge", "pragma", "prepare",
        "reset", "rollback", "set", "truncate", "update", "use", "vacuum", "abort",
        "start", "end", "upsert", "comment", "pivot", "unpivot",
    }
)  # fmt: skip

_ALLOWED_HINT = (
    "only queries can run here (SELECT, WITH, VALUES, DESCRIBE, SUMMARIZE, "
    "EXPLAIN [ANALYZE] of a query)"
)

#: Words that open a query; ``EXPLAIN (`` followed by one explains a parenthesized query.
_QUERY_STARTS = frozenset({"select", "with", "from", "values", "table"})

#: A table name DuckDB would read as a file (replacement scan): a path or a file name.
_PATH_LIKE = re.compile(r"[/\\:]|\.[A-Za-z0-9]+$")


# -- connections ----------------------------------------------------------------------------


def connect(
    allowed_paths: Iterable[str] = (),
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    ordered: bool = True,
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection locked down for user SQL (see the module).

    ``allowed_paths`` are the only files it can read (the planned data and delete files,
    local paths or ``file:`` URIs); it can write none, except that DuckDB spills large
    intermediate results into ``temp_directory`` (default :func:`spill_directory`).
    ``memory_limit`` (DuckDB's, e.g. ``1GB``; default DuckDB's own) is set before the
    configuration is locked. Time zone UTC, no Python replacement scans, extensions
    neither installed nor loaded on demand, configuration locked.

    ``ordered=False`` turns DuckDB's ``preserve_insertion_order`` off: rows of a query
    without ``ORDER BY`` come in no particular order (as in Trino or Spark), and reads
    that pair a table's rows with kept-rows masks by position run one per thread
    (:func:`lakehouse.query.execution.unordered`) instead of one after the other.
    """
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "temp_directory": temp_directory or spill_directory(),
        "python_enable_replacements": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(":memory:", config=config)
    try:
        paths = sorted(dict.fromkeys(allowed_paths))
        if paths:
            con.execute("SET allowed_paths = ?", [paths])
        if not ordered:
            con.execute("SET preserve_insertion_order = false")
        # Parquet footers parsed once per connection (checked against each file's
        # modification time): a borrowed connection reads the same immutable files query
        # after query, and a table of many small files paid one footer parse per file
        con.execute(
            "SET TimeZone = 'UTC'; SET parquet_metadata_cache = true; "
            "SET enable_external_access = false; SET lock_configuration = true"
        )
    except BaseException:
        con.close()
        raise
    return con


_local = threading.local()
_spill_lock = threading.Lock()
_spill: list[str] = []


def spill_directory() -> str:
    """This process's private folder where locked connections spill (made once, removed at exit).

    DuckDB allows its connections to write their ``temp_directory`` even with external
    access off; left at its default that is ``.tmp`` in the working folder, which could be
    anywhere (a lakehouse home). A private folder (mode 0700) in the system's temporary
    folder is the only place a locked connection can write.
    """
    with _spill_lock:
        if not _spill:
            path = tempfile.mkdtemp(prefix="lakehouse-duckdb-spill-")
            atexit.register(shutil.rmtree, path, True)
            _spill.append(path)
        return _spill[0]


#: Locked connections kept per thread, by their set of allowed files.
CACHED_CONNECTIONS = 4


@contextmanager
def borrowed(
    allowed_paths: Iterable[str] = (), *, ordered: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked connection allowed exactly ``allowed_paths``, reused while the set repeats.

    Opening a DuckDB database is most of a small query's time, and a reused one keeps its
    cache of Parquet footers; so this thread keeps the last :data:`CACHED_CONNECTIONS`
    connections by their (frozen) set of allowed files. A query run again on the same
    snapshot finds its connection; one that reads other files gets a new one. The caller
    removes what it registered, except views over the connection's own files that it
    keeps for the next query (:class:`lakehouse.query.execution.KeptViews`); a connection
    whose use raised is closed, not kept, with all it held.
    ``ordered`` is :func:`connect`'s (connections are kept apart by it too).
    """
    key = (frozenset(allowed_paths), ordered)
    cache = _connections()
    con = cache.pop(key, None)
    if con is None:
        con = connect(key[0], ordered=ordered)
    try:
        yield con
    except BaseException:
        con.close()
        raise
    cache[key] = con
    while len(cache) > CACHED_CONNECTIONS:
        _, oldest = cache.popitem(last=False)
        oldest.close()


def close_cached() -> None:
    """Close this thread's cached connections (:func:`borrowed`)."""
    cache = _connections()
    while cache:
        _, con = cache.popitem()
        con.close()


def _connections() -> OrderedDict[tuple[frozenset[str], bool], duckdb.DuckDBPyConnection]:
    cache: OrderedDict[tuple[frozenset[str], bool], duckdb.DuckDBPyConnection] | None = getattr(
        _local, "connections", None
    )
    if cache is None:
        cache = OrderedDict()
        _local.connections = cache
    return cache


def parser() -> duckdb.DuckDBPyConnection:
    """This thread's locked connection for parsing (no file allowed); made once per thread."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "parser", None)
    if con is None:
        con = connect()
        _local.parser = con
    return con


# -- the statement check --------------------------------------------------------------------


def check_read_only(sql: str) -> None:
    """Raise unless ``sql`` is one read-only query (see the module for what that allows).

    :class:`~lakehouse.query.errors.SqlSyntaxError` for text DuckDB cannot parse,
    :class:`~lakehouse.query.errors.UnsupportedQueryError` for no or several statements,
    :class:`~lakehouse.query.errors.ForbiddenQueryError` naming the first forbidden
    construct found.
    """
    _checked_nodes(sql)


def reads_no_table(sql: str) -> bool:
    """Check ``sql`` as :func:`check_read_only` does; ``True`` if it names no table at all.

    No table means none in DuckDB's parse tree: no ``FROM name`` of any kind (one-part
    names, CTE references and system tables count as names), no ``DESCRIBE``/``SHOW`` of
    a name. ``SELECT 1`` or ``FROM range(3)`` read nothing of the lakehouse, so there is
    nothing to plan; they still run in a locked connection.
    """
    return not any(_names_table(node) for node in _checked_nodes(sql))


def _checked_nodes(sql: str) -> list[dict[str, Any]]:
    """The checked nodes of the parse tree of ``sql``'s query (raises at the first refused)."""
    nodes: list[dict[str, Any]] = []
    for node in _walk(_parse_tree(_one_statement(sql))):
        _check_node(node)
        nodes.append(node)
    return nodes


def _names_table(node: dict[str, Any]) -> bool:
    return node.get("type") == "BASE_TABLE" or bool(node.get("table_name"))


def explained(sql: str) -> str | None:
    """The statement ``EXPLAIN [ANALYZE] [(options)] …`` explains, or ``None`` if not one.

    Comments and letter case do not matter (DuckDB's tokenizer reads the text).
    """
    tokens = _tokens(sql)
    if not tokens or _word(sql, tokens[0]) != "explain":
        return None
    i = 1
    if i < len(tokens) and _word(sql, tokens[i]) in ("analyze", "analyse"):
        i += 1
    opens_query = i + 1 < len(tokens) and (
        sql[tokens[i + 1][0]] == "(" or _word(sql, tokens[i + 1]) in _QUERY_STARTS
    )
    if i < len(tokens) and sql[tokens[i][0]] == "(" and not opens_query:  # (options)
        depth = 0
        while i < len(tokens):
            char = sql[tokens[i][0]]
            depth += {"(": 1, ")": -1}.get(char, 0) if _is_operator(tokens[i]) else 0
            i += 1
            if depth == 0:
                break
    if i >= len(tokens):
        return ""
    return sql[tokens[i][0] :]


def _one_statement(sql: str) -> str:
    """The text of the single query ``sql`` holds (the explained one for ``EXPLAIN``)."""
    import duckdb

    con = parser()
    text = sql
    for _ in range(8):  # EXPLAIN EXPLAIN … is fine, but not forever
        try:
            statements = con.extract_statements(text)
        except duckdb.Error as exc:
            raise SqlSyntaxError(syntax_message(str(exc))) from None
        if not statements:
            if text is sql:
                raise UnsupportedQueryError("no SQL statement given")
            raise ForbiddenQueryError("EXPLAIN", "EXPLAIN of nothing: " + _ALLOWED_HINT)
        if len(statements) > 1:
            raise UnsupportedQueryError(
                f"{len(statements)} statements given; run one query at a time"
            )
        kind = statements[0].type
        if kind == duckdb.StatementType.SELECT:
            return text
        if kind == duckdb.StatementType.EXPLAIN:
            inner = explained(text)
            if inner is None:  # pragma: no cover - DuckDB said EXPLAIN, the tokens agree
                raise ForbiddenQueryError("EXPLAIN", "an EXPLAIN this check cannot read")
            text = inner
            continue
        construct = statement_name(text, str(getattr(kind, "name", kind)))
        raise ForbiddenQueryError(
            construct,
            f"{_ALLOWED_HINT}, not {construct}; tables change through pipelines or the Iceberg API",
        )
    raise ForbiddenQueryError("EXPLAIN", "EXPLAIN nested too deeply")


def statement_name(sql: str, kind: str) -> str:
    """How a refusal names a statement: its first keyword(s) as written, else DuckDB's kind."""
    tokens = _tokens(sql)
    word = _word(sql, tokens[0]) if tokens else ""
    if word in _KEYWORD_NAMES:
        return _KEYWORD_NAMES[word]
    if word in _STATEMENT_KEYWORDS:
        return word.upper()
    return kind.upper()


def syntax_message(message: str) -> str:
    """DuckDB's parser error as one line: ``SQL syntax error: … (line N)``."""
    lines = [line for line in message.splitlines() if line.strip()]
    head = " ".join(lines[0].split()).removeprefix("Parser Error: ") if lines else ""
    where = next((line.strip() for line in lines[1:] if line.strip().startswith("LINE ")), "")
    location = f" ({where.split(':', 1)[0].lower()})" if where else ""
    return f"SQL syntax error: {head}{location}"


def _parse_tree(sql: str) -> Any:
    """DuckDB's serialized parse tree of the ``SELECT`` ``sql``."""
    import duckdb

    try:
        row = parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    except duckdb.Error as exc:  # pragma: no cover - extract_statements parsed it already
        raise SqlSyntaxError(syntax_message(str(exc))) from None
    tree = json.loads(row[0]) if row is not None else {"error": True}
    if tree.get("error"):
        # DuckDB serializes every SELECT; one it cannot is not checked, so not run
        message = " ".join(str(tree.get("error_message", "")).split())
        raise ForbiddenQueryError("query", f"a query the read path cannot check ({message})")
    return tree.get("statements", [])


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _check_node(node: dict[str, Any]) -> None:
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = _function_name(function)
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise ForbiddenQueryError(
                f"table function {name}",
                f"table function {name} is not allowed here: queries read the lakehouse's "
                "tables (namespace.table), not files, URLs or DuckDB's internals",
            )
    elif node.get("class") == "FUNCTION" and kind == "FUNCTION":
        name = _function_name(node)
        if name in DENIED_FUNCTIONS or name.startswith(("read_", "parquet_", "pragma_")):
            raise ForbiddenQueryError(
                f"function {name}",
                f"function {name} is not allowed here: queries cannot read settings, the "
                "environment or files, nor change state",
            )
    elif kind in ("BASE_TABLE", "SHOW_REF"):
        parts = [str(node.get(k) or "") for k in ("catalog_name", "schema_name", "table_name")]
        shown = ".".join(p for p in parts if p)
        if any(_PATH_LIKE.search(p.strip('"')) for p in parts if p):
            raise ForbiddenQueryError(
                f"table '{shown}'",
                f"table '{shown}' looks like a file path: queries read the lakehouse's "
                "tables (namespace.table), not files",
            )


def _function_name(function: dict[str, Any]) -> str:
    return str(function.get("function_name") or "").lower()


def _tokens(sql: str) -> list[tuple[int, Any]]:
    """DuckDB's tokens of ``sql`` without comments: ``(offset, token type)``."""
    import duckdb

    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:  # pragma: no cover - the tokenizer reads any text
        return []
    return [t for t in tokens if t[1] != duckdb.token_type.comment]


def _is_operator(token: tuple[int, Any]) -> bool:
    import duckdb

    return bool(token[1] == duckdb.token_type.operator)


def _word(sql: str, token: tuple[int, Any]) -> str:
    match = re.match(r"[A-Za-z_]+", sql[token[0] :])
    return match.group(0).lower() if match else ""


__all__ = [
    "ALLOWED_TABLE_FUNCTIONS",
    "CACHED_CONNECTIONS",
    "DENIED_FUNCTIONS",
    "borrowed",
    "check_read_only",
    "close_cached",
    "connect",
    "explained",
    "parser",
    "reads_no_table",
    "spill_directory",
    "statement_name",
    "syntax_message",
]
