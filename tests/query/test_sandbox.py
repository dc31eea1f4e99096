"""The SQL read path cannot write: hostile statements are refused in one line, nothing changes.

Two locks are specified here: the statement check on DuckDB's parse tree (each hostile
statement is refused naming its construct, before any table is loaded), and the locked
DuckDB connection (tested on its own, as if the check had let a statement through).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.query import ForbiddenQueryError, UnsupportedQueryError
from lakehouse.query import plan as plan_query
from lakehouse.query.execution import allowed_paths, connect_duckdb, register
from lakehouse.query.planning import plan_table
from lakehouse.query.sandbox import (
    borrowed,
    check_read_only,
    close_cached,
    explained,
    reads_no_table,
    spill_directory,
)
from lakehouse.query.sandbox import connect as locked_connection
from tests.query.conftest import make_table, orders

runner = CliRunner()


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """The CLI's lakehouse: silver.orders and silver.customers on main, a tag v1, a branch dev."""
    with connect(create=True) as opened:
        make_table(opened, "silver.orders", orders([1, 2, 3]))
        make_table(
            opened,
            "silver.customers",
            pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["ada", "bob"]}),
        )
        opened.create_tag("v1", "main")
        opened.create_branch("dev", "main")
        opened.table("silver.orders", "dev").append(orders([4], region="US"))
        yield opened


def data_file(lh: Lakehouse) -> Path:
    """A live data file of silver.orders on main."""
    table = lh.table("silver.orders")
    path = table.inspect.files().column("file_path").to_pylist()[0]
    return Path(path.removeprefix("file://"))


def files_under(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def catalog_state(lh: Lakehouse) -> object:
    """What ``lakehouse log -o json`` and the table lists show, on every reference."""
    return {
        ref.name: (
            [entry.hash for entry in lh.log(ref.name)],
            sorted(str(entry.key) for entry in lh.tables(ref.name)),
        )
        for ref in lh.references()
    }


OUT = "{root}/out.parquet"

#: (statement, what the refusal names). ``{root}``: a scratch folder, ``{data}``: a live
#: data file of silver.orders, ``{home}``: the lakehouse home.
HOSTILE: list[tuple[str, str]] = [
    # writes, the issue's own reproduction first
    (f"EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{OUT}'", "COPY"),
    (f"EXPLAIN COPY (SELECT 42 AS x) TO '{OUT}'", "COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1 AS id) TO '{data}' (FORMAT parquet)", "COPY"),
    ("COPY (SELECT 1 AS id) TO '{data}' (FORMAT parquet)", "COPY"),
    (f"COPY silver.orders TO '{OUT}' (FORMAT parquet)", "COPY"),
    ("COPY silver.orders FROM '/etc/passwd'", "COPY"),
    (f"/* x */ eXpLaIn -- y\n AnAlYzE cOpY (SELECT 1) TO '{OUT}'", "COPY"),
    (f"EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{OUT}'", "COPY"),
    ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "CREATE"),
    ("EXPLAIN SET enable_external_access = true", "SET"),
    ("EXPORT DATABASE '{root}/export'", "EXPORT DATABASE"),
    ("IMPORT DATABASE '{root}/export'", "IMPORT DATABASE"),
    ("ATTACH '{root}/new.db' AS evil", "ATTACH"),
    ("ATTACH ':memory:' AS m", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("CREATE TABLE t AS SELECT * FROM silver.orders", "CREATE"),
    ("CREATE TEMP TABLE t AS SELECT 1", "CREATE"),
    ("create or replace view silver.orders AS SELECT 1 AS id", "CREATE"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE"),
    ("INSERT INTO silver.orders VALUES (9, 'EU', 1.0)", "INSERT"),
    ("WITH a AS (SELECT 9, 'EU', 1.0) INSERT INTO silver.orders SELECT * FROM a", "INSERT"),
    ("EXPLAIN ANALYZE INSERT INTO silver.orders VALUES (9, 'EU', 1.0)", "INSERT"),
    ("UPDATE silver.orders SET amount = 0", "UPDATE"),
    ("DELETE FROM silver.orders", "DELETE"),
    ("ALTER TABLE silver.orders ADD COLUMN z INT", "ALTER"),
    ("DROP TABLE silver.orders", "DROP"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    # settings, extensions, procedures
    ("SET enable_external_access = true", "SET"),
    ("RESET lock_configuration", "RESET"),
    ("SET VARIABLE x = 1", "SET"),
    ("USE memory", "USE"),
    ("PRAGMA version", "PRAGMA"),
    ("CALL pragma_version()", "CALL"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("BEGIN TRANSACTION", "BEGIN"),
    # reads of paths and the network, and DuckDB's internals
    ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv"),
    (
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "table function read_csv_auto",
    ),
    ("SELECT * FROM read_parquet('{data}')", "table function read_parquet"),
    ("SELECT * FROM parquet_scan('{data}')", "table function parquet_scan"),
    ("SELECT * FROM parquet_metadata('{data}')", "table function parquet_metadata"),
    ("SELECT * FROM read_json('/etc/hostname')", "table function read_json"),
    ("SELECT * FROM read_json_auto('http://example.com/x.json')", "table function read_json_auto"),
    ("SELECT * FROM read_text('/etc/passwd')", "table function read_text"),
    ("SELECT * FROM read_blob('/etc/passwd')", "table function read_blob"),
    ("SELECT * FROM glob('/etc/*')", "table function glob"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "table function sniff_csv"),
    ("SELECT * FROM iceberg_scan('{home}')", "table function iceberg_scan"),
    ("SELECT * FROM delta_scan('s3://bucket/table')", "table function delta_scan"),
    ("SELECT * FROM query('SELECT 1')", "table function query"),
    ("SELECT * FROM query_table('silver.orders')", "table function query_table"),
    ("SELECT * FROM duckdb_settings()", "table function duckdb_settings"),
    (
        "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
        "table function json_execute_serialized_sql",
    ),
    ("SELECT * FROM '/etc/passwd'", "table '/etc/passwd'"),
    ("SELECT * FROM '{data}'", "looks like a file path"),
    ('SELECT * FROM "orders.csv"', "table 'orders.csv'"),
    ("SELECT current_setting('enable_external_access')", "function current_setting"),
    ("SELECT getenv('HOME')", "function getenv"),
    ("SELECT write_log('x')", "function write_log"),
    ("SELECT nextval('seq')", "function nextval"),
    # the same, wrapped: CTEs, subqueries, joins, EXPLAIN, DESCRIBE, case and comment tricks
    (
        "WITH p AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM p",
        "table function read_csv",
    ),
    (
        "WITH a AS (SELECT 1), "
        "b AS (SELECT * FROM (SELECT * FROM read_text('/etc/passwd'))) "
        "SELECT * FROM a, b",
        "table function read_text",
    ),
    (
        "SELECT * FROM silver.orders WHERE id IN (SELECT 1 FROM read_csv('/etc/passwd'))",
        "table function read_csv",
    ),
    (
        "SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n FROM silver.orders",
        "table function read_text",
    ),
    (
        "SELECT * FROM silver.orders o JOIN read_csv('/etc/passwd') p ON true",
        "table function read_csv",
    ),
    (
        "SELECT id FROM silver.orders UNION ALL SELECT 1 FROM glob('/*')",
        "table function glob",
    ),
    (
        "EXPLAIN ANALYZE SELECT * FROM read_csv('/etc/passwd')",
        "table function read_csv",
    ),
    (
        "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
        "table function read_csv",
    ),
    ("SUMMARIZE SELECT * FROM read_parquet('{data}')", "table function read_parquet"),
    ("select * from READ_CSV('/etc/passwd')", "table function read_csv"),
    (
        "SELECT * FROM /* a */ \"Read_Csv\" -- b\n ('/etc/passwd')",
        "table function read_csv",
    ),
    ("SELECT * FROM main.read_csv('/etc/passwd')", "table function read_csv"),
    (
        "SELECT id FROM silver.orders WHERE region = current_setting('TimeZone')",
        "function current_setting",
    ),
    (
        "SELECT [x FOR x IN [current_setting('allowed_paths')]] AS leak",
        "function current_setting",
    ),
]


def _fill(sql: str, lh: Lakehouse, root: Path) -> str:
    return sql.format(root=root.as_posix(), data=data_file(lh).as_posix(), home=lh.settings.home)


def test_the_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 40
    assert len({sql for sql, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("template", "construct"), HOSTILE, ids=[s for s, _ in HOSTILE])
def test_hostile_statement_is_refused_naming_it_and_changes_nothing(
    lh: Lakehouse, tmp_path: Path, template: str, construct: str
) -> None:
    root = tmp_path / "scratch"
    root.mkdir()
    sql = _fill(template, lh, root)
    files_before = files_under(tmp_path)
    catalog_before = catalog_state(lh)

    with pytest.raises(ForbiddenQueryError) as info:
        lh.sql(sql)

    message = str(info.value)
    assert construct in message
    assert "\n" not in message
    assert not any(root.iterdir()), "the scratch folder stays empty"
    assert files_under(tmp_path) == files_before
    assert catalog_state(lh) == catalog_before
    assert lh.sql("SELECT count(*) AS n FROM silver.orders").column("n").to_pylist() == [3]


def test_several_statements_are_refused_before_any_runs(lh: Lakehouse, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    for sql in (
        f"SELECT 1; COPY (SELECT 1) TO '{target}'",
        f"SELECT 1; ATTACH '{tmp_path / 'x.db'}'",
        "SELECT * FROM silver.orders;DROP TABLE silver.orders",
    ):
        with pytest.raises(UnsupportedQueryError, match="2 statements given"):
            lh.sql(sql)
    assert not target.exists() and not (tmp_path / "x.db").exists()
    assert lh.sql("SELECT count(*) AS n FROM silver.orders").column("n").to_pylist() == [3]


def test_the_issue_reproduction_fails_on_the_cli_and_the_catalog_stays_clean(
    lh: Lakehouse, tmp_path: Path
) -> None:
    data = data_file(lh)
    before = data.read_bytes()
    out = tmp_path / "x.parquet"
    for sql in (
        f"EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{out}'",
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS id) TO '{data}' (FORMAT parquet)",
    ):
        result = runner.invoke(app, ["sql", sql])
        assert result.exit_code == 1
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ")
        assert "not COPY" in result.stderr
    assert not out.exists()
    assert data.read_bytes() == before
    check = runner.invoke(app, ["catalog", "check"])
    assert check.exit_code == 0, check.output


# -- what still works ---------------------------------------------------------------------------


def test_a_join_across_tables_runs(lh: Lakehouse) -> None:
    rows = lh.sql(
        "SELECT o.id, c.name FROM silver.orders o JOIN silver.customers c ON c.id = o.id "
        "ORDER BY o.id"
    ).to_pylist()
    assert rows == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]


def test_time_travel_on_branches_and_tags_runs(lh: Lakehouse) -> None:
    def ids(ref: str) -> list[int]:
        return lh.sql("SELECT id FROM silver.orders ORDER BY id", ref).column("id").to_pylist()

    assert ids("dev") == [1, 2, 3, 4]
    assert ids("v1") == [1, 2, 3]
    assert ids("main") == [1, 2, 3]


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT * FROM silver.orders WHERE id = 1",
        "EXPLAIN ANALYZE SELECT count(*) FROM silver.orders",
        "EXPLAIN (SELECT id FROM silver.orders) UNION ALL (SELECT 1)",
        "/* why */ explain (format json) SELECT * FROM silver.customers",
        "DESCRIBE silver.orders",
        "SUMMARIZE SELECT amount FROM silver.orders",
        "WITH t AS (SELECT * FROM silver.orders) SELECT * FROM t, range(2) r, unnest([1, 2]) u",
        "FROM silver.orders SELECT region, sum(amount) GROUP BY ALL",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT * FROM generate_series(1, 3)",
    ],
)
def test_read_only_queries_still_run(lh: Lakehouse, sql: str) -> None:
    check_read_only(sql)
    assert lh.sql(sql).num_rows >= 1


@pytest.mark.parametrize(("template", "construct"), HOSTILE, ids=[s for s, _ in HOSTILE])
def test_the_no_table_shortcut_checks_every_statement_the_same(
    template: str, construct: str
) -> None:
    # reads_no_table is the statement check of a query with nothing to plan (SELECT 1):
    # every hostile statement is refused by it exactly as by check_read_only
    sql = template.format(root="/scratch", data="/scratch/data.parquet", home="/home")
    with pytest.raises(ForbiddenQueryError) as checked:
        check_read_only(sql)
    with pytest.raises(ForbiddenQueryError) as shortcut:
        reads_no_table(sql)
    assert str(shortcut.value) == str(checked.value)
    assert construct in str(shortcut.value)


@pytest.mark.parametrize(
    ("sql", "no_table"),
    [
        ("SELECT 1", True),
        ("select 1 + 1 AS two, 'x' AS s", True),
        ("SELECT * FROM range(3)", True),
        ("VALUES (1), (2)", True),
        ("EXPLAIN SELECT 1", True),
        ("SUMMARIZE SELECT 1", True),
        ("SELECT * FROM silver.orders", False),
        ("FROM silver.orders", False),
        ("SELECT (SELECT max(id) FROM silver.orders)", False),
        ("EXPLAIN ANALYZE SELECT count(*) FROM silver.orders", False),
        ("DESCRIBE silver.orders", False),
        ("SHOW TABLES", False),
        ("WITH a AS (SELECT 1) SELECT * FROM a", False),  # any name counts, a CTE's too
        ("SELECT * FROM orders", False),
    ],
)
def test_a_query_names_no_table_only_when_its_parse_tree_has_none(sql: str, no_table: bool) -> None:
    assert reads_no_table(sql) is no_table


def test_a_query_naming_no_table_runs_in_a_locked_connection(lh: Lakehouse) -> None:
    close_cached()
    assert lh.sql("SELECT 42 AS x").to_pylist() == [{"x": 42}]
    with borrowed() as con:  # the connection it ran in (kept for the same, empty, file set)
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (
            False,
        )
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")


def test_explained_finds_the_statement_under_explain() -> None:
    assert explained("SELECT 1") is None
    assert explained("EXPLAIN SELECT 1") == "SELECT 1"
    assert explained("-- c\nexplain /* d */ Analyse SELECT 2") == "SELECT 2"
    assert explained("EXPLAIN (FORMAT json, ANALYZE) COPY x TO 'y'") == "COPY x TO 'y'"
    assert explained("EXPLAIN (SELECT 1) UNION (SELECT 2)") == "(SELECT 1) UNION (SELECT 2)"
    assert explained("EXPLAIN ((SELECT 1))") == "((SELECT 1))"


# -- the locked connection, on its own ---------------------------------------------------------


def test_the_locked_connection_is_set_up_as_documented() -> None:
    con = connect_duckdb(["file:///lake/a.parquet"])
    try:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', "
                "'python_enable_replacements', 'autoload_known_extensions', "
                "'autoinstall_known_extensions', 'allowed_paths', 'allowed_directories', "
                "'enable_external_access', 'lock_configuration', 'temp_directory', "
                "'parquet_metadata_cache')"
            ).fetchall()
        )
    finally:
        con.close()
    assert not Path.cwd().joinpath(".tmp").exists()
    assert settings == {
        "TimeZone": "UTC",
        "python_enable_replacements": "false",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
        "allowed_paths": "[/lake/a.parquet]",
        "temp_directory": spill_directory(),
        # DuckDB may write only where it spills: this process's private folder
        "allowed_directories": f"[{spill_directory()}/]",
        "enable_external_access": "false",
        # footers of the (immutable) data files parsed once per connection
        "parquet_metadata_cache": "true",
        "lock_configuration": "true",
    }


def test_an_unordered_connection_differs_only_in_insertion_order_and_stays_locked() -> None:
    def settings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        try:
            return dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
        finally:
            con.close()

    ordered = settings(locked_connection())
    unordered = settings(locked_connection(ordered=False))
    assert ordered["preserve_insertion_order"] == "true"
    assert unordered.pop("preserve_insertion_order") == "false"
    ordered.pop("preserve_insertion_order")
    assert unordered == ordered
    con = locked_connection(ordered=False)
    try:
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("SET preserve_insertion_order = true")
    finally:
        con.close()


def test_the_locked_connection_reads_only_the_files_it_was_given(
    lh: Lakehouse, tmp_path: Path
) -> None:
    data = data_file(lh)
    other = tmp_path / "other.parquet"
    other.write_bytes(data.read_bytes())
    before = files_under(tmp_path)
    con = connect_duckdb([data.as_uri()])
    try:
        assert con.execute(f"SELECT count(*) FROM read_parquet('{data.as_uri()}')").fetchone()
        for sql in (
            f"SELECT * FROM read_parquet('{other.as_uri()}')",
            "SELECT * FROM read_csv('/etc/passwd')",
            f"COPY (SELECT 1 AS id) TO '{data}' (FORMAT parquet)",
            f"COPY (SELECT 1) TO '{tmp_path / 'new.csv'}'",
            f"ATTACH '{tmp_path / 'new.db'}'",
            "INSTALL httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        for setting in (
            "enable_external_access = true",
            "allowed_directories = ['/']",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="locked"):
                con.execute(f"SET {setting}")
    finally:
        con.close()
    assert files_under(tmp_path) == before


def test_the_locked_connection_keeps_temp_tables_arrow_and_registered_scans(
    lh: Lakehouse,
) -> None:
    from pyiceberg.expressions import AlwaysTrue

    con = connect_duckdb()
    try:
        con.register("result", pa.table({"id": [1, 5]}))
        con.execute("CREATE TEMP TABLE flagged AS SELECT *, id > 2 AS big FROM result")
        table = lh.table("silver.orders")
        # its files are not on the allow-list: the scan is read through PyIceberg instead
        register(con, plan_table(table, "silver.orders", AlwaysTrue()))
        rows = con.execute(
            "SELECT f.id, o.region FROM flagged f LEFT JOIN silver.orders o USING (id) "
            "ORDER BY f.id"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(1, "EU"), (5, None)]


def test_a_connection_is_reused_only_for_the_same_files_and_keeps_only_their_views(
    lh: Lakehouse,
) -> None:
    close_cached()
    sql = "SELECT o.id FROM silver.orders o JOIN silver.customers c USING (id)"
    assert lh.sql(sql).num_rows == 2
    files = allowed_paths(plan_query(lh, sql))
    assert len(files) == 2
    with borrowed(files) as first:  # the views of the query's tables, over these files
        views = first.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY 2"
        )
        assert views.fetchall() == [("silver", "customers"), ("silver", "orders")]
        dev_files = lh.table("silver.orders", "dev").inspect.files().column("file_path")
        (dev_only,) = set(dev_files.to_pylist()) - set(files)
        with pytest.raises(duckdb.PermissionException):
            first.execute(f"SELECT * FROM read_parquet('{dev_only}')")
    with borrowed(list(reversed(files))) as again:
        assert again is first
    with borrowed(files[:1]) as other:
        assert other is not first
    with pytest.raises(ZeroDivisionError), borrowed(files) as failed:
        raise ZeroDivisionError
    with borrowed(files) as fresh:  # the one whose use raised was closed, not kept
        assert fresh is not failed
    close_cached()
