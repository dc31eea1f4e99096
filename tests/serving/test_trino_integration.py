"""Trino 476 over the lakehouse: the SQL serving engine of the cluster profile, for real.

The lakehouse of these tests is the cluster profile's: our catalog store on a fresh
PostgreSQL database, tables in MinIO (``s3://{bucket}/trino-test-<id>``), the TPC-H
pipeline (scale factor 0.01) built by ``run_pipeline`` with DuckDB, and our catalog server
(``lakehouse serve``'s app, a thread on a free port) over the same store. Trino
(``scripts/services/trino.sh``, started for the session and stopped at its end unless it
was running before) gets one catalog per (API, reference), made with
:func:`lakehouse.serving.trino.create_catalog_sql`:

* ``rest``: our Iceberg REST API (``iceberg.catalog.type=rest``), on ``main`` and on a
  branch (``iceberg.rest-catalog.warehouse=<branch>|warehouse``);
* ``nessie``: our Nessie API v2 (``iceberg.catalog.type=nessie``), on ``main`` and on a
  branch (``iceberg.nessie-catalog.ref``).

Specification:

* Trino reads every gold table with the rows ``lakehouse sql`` reads, and a join across
  the silver tables in Trino gives the rows of the gold table the lakehouse built;
* a table Trino writes on ``main`` is read by ``lakehouse sql`` (the CLI);
* a table Trino writes on a branch is invisible on ``main`` — to Trino and to
  ``lakehouse sql`` — until ``lakehouse merge``, then both read it on ``main``;
* tables Trino creates through REST carry ``gc.enabled=false`` (through the Nessie API they
  do not: a strict xfail records it);
* a server that requires a bearer token serves catalogs that send it and refuses others.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trino", reason="the trino client (dev extra) is not installed")

import trino
from typer.testing import CliRunner

from lakehouse import tpch
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines import run_pipeline
from lakehouse.serving.trino import TrinoCatalogType, catalog_properties, create_catalog_sql
from tests.conftest import POSTGRES_URL_ENV, S3_ENV, new_database

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
TRINO_SH = REPO / "scripts" / "services" / "trino.sh"
PIPELINE_DIR = REPO / "pipelines" / "tpch"
SCALE_FACTOR = 0.01
GOLD = ("q1_pricing_summary", "q3_shipping_priority", "revenue_by_nation_month")
#: The gold model's query, in SQL both Trino and DuckDB accept (tables qualified per engine).
REVENUE_BY_NATION_MONTH = """
SELECT r.r_name AS region, n.n_name AS nation,
       CAST(DATE_TRUNC('month', o.o_orderdate) AS DATE) AS order_month,
       COUNT(DISTINCT o.o_orderkey) AS orders, COUNT(*) AS line_items,
       SUM(l.l_quantity) AS quantity, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
FROM {c}silver.lineitem AS l
JOIN {c}silver.orders AS o ON l.l_orderkey = o.o_orderkey
JOIN {c}silver.customer AS c ON o.o_custkey = c.c_custkey
JOIN {c}silver.nation AS n ON c.c_nationkey = n.n_nationkey
JOIN {c}silver.region AS r ON n.n_regionkey = r.r_regionkey
GROUP BY r.r_name, n.n_name, CAST(DATE_TRUNC('month', o.o_orderdate) AS DATE)
"""


def _need(*names: str) -> list[str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: run `make test-integration` (scripts/services/)",
            pytrace=False,
        )
    return [os.environ[n] for n in names]


# -- Trino: started for the session by scripts/services/trino.sh ------------------------------


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(TRINO_SH), *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def trino_url() -> Iterator[str]:
    """The coordinator URL; Trino is stopped at the end unless it was running before."""
    was_running = _script("status").returncode == 0
    started = _script("start")
    if started.returncode != 0:
        pytest.fail(f"scripts/services/trino.sh start failed:\n{started.stderr}", pytrace=False)
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        if not was_running:
            _script("stop")


# -- the lakehouse: cluster profile, TPC-H built, served -----------------------------------------


@dataclass
class Served:
    lh: Lakehouse
    cli_env: dict[str, str]
    cursor: Any
    #: Trino catalog names by (API, "main" | "branch").
    catalogs: dict[tuple[str, str], str]
    #: The branch of each API's branch catalog.
    branches: dict[str, str]

    def trino(self, query: str) -> list[list[Any]]:
        self.cursor.execute(query)
        rows: list[list[Any]] = self.cursor.fetchall()
        return rows

    def lakehouse_sql(self, query: str, ref: str = "main") -> Any:
        """``lakehouse sql QUERY --ref REF --output json`` (the CLI), parsed."""
        import json

        result = CliRunner().invoke(
            app, ["sql", query, "--ref", ref, "--output", "json"], env=self.cli_env
        )
        if result.exit_code != 0:
            raise AssertionError(f"lakehouse sql failed ({result.exit_code}): {result.output}")
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database for the module (dropped at the end)."""
    (url,) = _need(POSTGRES_URL_ENV)
    with new_database(url, f"lh_trino_{uuid.uuid4().hex[:8]}") as fresh:
        yield fresh


@pytest.fixture(scope="module")
def served(
    trino_url: str, postgres_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    from urllib.parse import urlsplit

    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    endpoint, access_key, secret_key = _need(*S3_ENV)
    s3 = {"endpoint": endpoint, "access_key_id": access_key, "secret_access_key": secret_key}
    run_id = uuid.uuid4().hex[:8]
    warehouse = f"s3://{{bucket}}/trino-test-{run_id}"
    home = tmp_path_factory.mktemp("trino") / "home"
    data = tpch.generate(SCALE_FACTOR).path
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPCH_DATA", str(data))
        lh = connect(
            postgres_database, profile="cluster", home=home, warehouse=warehouse, s3=s3,
            create=True,
        )  # fmt: skip
        result = run_pipeline(lh, PIPELINE_DIR, engine="duckdb")
    assert result.status == "success" and result.merged, result.error
    branches = {"rest": f"trino-rest-{run_id}", "nessie": f"trino-nessie-{run_id}"}
    for branch in branches.values():
        lh.create_branch(branch)
    cli_env = {
        "LAKEHOUSE_PROFILE": "cluster",
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_CATALOG__URI": postgres_database,
        "LAKEHOUSE_WAREHOUSE": warehouse,
        "LAKEHOUSE_S3__ENDPOINT": endpoint,
        "LAKEHOUSE_S3__ACCESS_KEY_ID": access_key,
        "LAKEHOUSE_S3__SECRET_ACCESS_KEY": secret_key,
    }

    iceberg = IcebergRestSettings.from_settings(lh.settings)
    server = make_server(lh.store, "127.0.0.1", 0, log_level="warning", iceberg=iceberg)
    parts = urlsplit(trino_url)
    with serving(server) as port:
        conn = trino.dbapi.connect(
            host=parts.hostname, port=parts.port, user="lakehouse-tests", http_scheme="http"
        )
        cursor = conn.cursor()
        catalogs: dict[tuple[str, str], str] = {}
        kinds: tuple[TrinoCatalogType, ...] = ("rest", "nessie")
        for kind in kinds:
            for which, ref in (("main", "main"), ("branch", branches[kind])):
                name = f"lh_{kind}_{which}_{run_id}"
                props = catalog_properties(
                    lh.settings, ref=ref, catalog_type=kind, server=f"http://127.0.0.1:{port}"
                )
                cursor.execute(create_catalog_sql(name, props))
                cursor.fetchall()
                catalogs[(kind, which)] = name
        try:
            yield Served(lh, cli_env, cursor, catalogs, branches)
        finally:
            for name in catalogs.values():
                cursor.execute(f"DROP CATALOG IF EXISTS {name}")
                cursor.fetchall()
            conn.close()
            lh.close()


# -- comparing rows from two engines ------------------------------------------------------------


def _key(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(
        (v is None, str(v) if not isinstance(v, (int, float, Decimal)) else v) for v in row
    )


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        return left is not None and right is not None and math.isclose(left, right, rel_tol=1e-9)
    return bool(left == right)  # Decimal('1.50') == Decimal('1.5'); dates compare as dates


def _assert_same_rows(trino_rows: list[list[Any]], ours: list[tuple[Any, ...]], what: str) -> None:
    theirs = sorted((tuple(r) for r in trino_rows), key=_key)
    mine = sorted(ours, key=_key)
    assert len(theirs) == len(mine) > 0, what
    for t, o in zip(theirs, mine, strict=True):
        assert len(t) == len(o), what
        assert all(_same(a, b) for a, b in zip(t, o, strict=True)), f"{what}: {t} != {o}"


def _lakehouse_rows(lh: Lakehouse, query: str, ref: str = "main") -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in lh.sql(query, ref).to_pylist()]


# -- reads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rest", "nessie"])
def test_trino_reads_every_gold_table_with_the_rows_lakehouse_sql_reads(
    served: Served, kind: str
) -> None:
    catalog = served.catalogs[(kind, "main")]
    tables = sorted(r[0] for r in served.trino(f"SHOW TABLES FROM {catalog}.gold"))
    assert tables == sorted(GOLD)
    for table in GOLD:
        columns = [r[0] for r in served.trino(f"DESCRIBE {catalog}.gold.{table}")]
        ours = served.lh.sql(f"SELECT * FROM gold.{table}", "main")
        assert columns == ours.column_names, table
        _assert_same_rows(
            served.trino(f"SELECT * FROM {catalog}.gold.{table}"),
            [tuple(r.values()) for r in ours.to_pylist()],
            f"{kind}: gold.{table}",
        )


def test_a_join_across_the_silver_tables_in_trino_gives_the_gold_table(served: Served) -> None:
    catalog = served.catalogs[("rest", "main")]
    trino_rows = served.trino(REVENUE_BY_NATION_MONTH.format(c=f"{catalog}."))
    gold = _lakehouse_rows(served.lh, "SELECT * FROM gold.revenue_by_nation_month")
    _assert_same_rows(trino_rows, gold, "revenue_by_nation_month rebuilt by Trino")
    # and the same join run by lakehouse sql agrees with both
    ours = _lakehouse_rows(served.lh, REVENUE_BY_NATION_MONTH.format(c=""))
    _assert_same_rows(trino_rows, ours, "the join in Trino and in lakehouse sql")


def test_trino_joins_gold_with_silver_tables_as_lakehouse_sql_does(served: Served) -> None:
    query = """
        SELECT g.region, COUNT(DISTINCT n.n_nationkey) AS nations, SUM(g.orders) AS orders
        FROM {c}gold.revenue_by_nation_month AS g
        JOIN {c}silver.nation AS n ON g.nation = n.n_name
        JOIN {c}silver.region AS r ON n.n_regionkey = r.r_regionkey AND r.r_name = g.region
        GROUP BY g.region
    """
    for kind in ("rest", "nessie"):
        catalog = served.catalogs[(kind, "main")]
        trino_rows = served.trino(query.format(c=f"{catalog}."))
        assert len(trino_rows) == 5  # the five TPC-H regions
        _assert_same_rows(trino_rows, _lakehouse_rows(served.lh, query.format(c="")), kind)


# -- writes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rest", "nessie"])
def test_a_table_trino_writes_on_main_is_read_by_lakehouse_sql(served: Served, kind: str) -> None:
    catalog = served.catalogs[(kind, "main")]
    schema = f"serving_{kind}"
    served.trino(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
    served.trino(
        f"CREATE TABLE {catalog}.{schema}.orders_per_status AS "
        f"SELECT o_orderstatus AS status, COUNT(*) AS orders "
        f"FROM {catalog}.silver.orders GROUP BY o_orderstatus"
    )
    served.trino(f"INSERT INTO {catalog}.{schema}.orders_per_status VALUES ('Z', 0)")

    rows = served.lakehouse_sql(
        f"SELECT status, orders FROM {schema}.orders_per_status ORDER BY status"
    )
    expected = served.lakehouse_sql(
        "SELECT o_orderstatus AS status, COUNT(*) AS orders FROM silver.orders "
        "GROUP BY o_orderstatus ORDER BY status"
    )
    assert rows == [*expected, {"status": "Z", "orders": 0}]
    assert sum(r["orders"] for r in rows) == 15000  # TPC-H SF 0.01 has 15 000 orders
    table = served.lh.table(f"{schema}.orders_per_status", "main")
    assert len(table.metadata.snapshots) == 2  # the CTAS and the INSERT: two Iceberg commits


@pytest.mark.parametrize("kind", ["rest", "nessie"])
def test_a_trino_write_on_a_branch_is_invisible_on_main_until_lakehouse_merge(
    served: Served, kind: str
) -> None:
    on_branch = served.catalogs[(kind, "branch")]
    on_main = served.catalogs[(kind, "main")]
    branch = served.branches[kind]
    schema = f"audit_{kind}"
    served.trino(f"CREATE SCHEMA {on_branch}.{schema}")
    served.trino(
        f"CREATE TABLE {on_branch}.{schema}.big_orders AS "
        f"SELECT o_orderkey, o_totalprice FROM {on_branch}.silver.orders "
        f"WHERE o_totalprice > 400000"
    )
    (count,) = served.trino(f"SELECT COUNT(*) FROM {on_branch}.{schema}.big_orders")[0]
    assert count > 0

    # on the branch: Trino and lakehouse sql see it; on main: neither does
    assert served.lakehouse_sql(f"SELECT COUNT(*) AS n FROM {schema}.big_orders", branch) == [
        {"n": count}
    ]
    assert schema not in [r[0] for r in served.trino(f"SHOW SCHEMAS FROM {on_main}")]
    with pytest.raises(trino.exceptions.TrinoUserError, match="does not exist"):
        served.trino(f"SELECT COUNT(*) FROM {on_main}.{schema}.big_orders")
    missing = CliRunner().invoke(
        app, ["sql", f"SELECT COUNT(*) FROM {schema}.big_orders"], env=served.cli_env
    )
    assert missing.exit_code == 1 and "big_orders" in missing.output

    merged = CliRunner().invoke(app, ["merge", branch, "--into", "main"], env=served.cli_env)
    assert merged.exit_code == 0, merged.output

    assert served.trino(f"SELECT COUNT(*) FROM {on_main}.{schema}.big_orders") == [[count]]
    assert served.lakehouse_sql(f"SELECT COUNT(*) AS n FROM {schema}.big_orders") == [{"n": count}]
    our_keys = served.lakehouse_sql(f"SELECT o_orderkey FROM {schema}.big_orders")
    trino_keys = served.trino(f"SELECT o_orderkey FROM {on_main}.{schema}.big_orders")
    assert sorted(r["o_orderkey"] for r in our_keys) == sorted(r[0] for r in trino_keys)


NESSIE_GC_GAP = (
    "over the Nessie API Trino writes the table metadata itself, without gc.enabled=false "
    "(our server only stores the metadata location): docs/operations.md says to write "
    "through the REST catalog"
)


@pytest.mark.parametrize(
    "kind",
    ["rest", pytest.param("nessie", marks=pytest.mark.xfail(strict=True, reason=NESSIE_GC_GAP))],
)
def test_tables_trino_creates_are_safe_for_branches_and_inside_the_warehouse(
    served: Served, kind: str
) -> None:
    from lakehouse.storage.zones import Warehouse

    catalog = served.catalogs[(kind, "main")]
    served.trino(f"CREATE SCHEMA IF NOT EXISTS {catalog}.serving_safety")
    served.trino(f"CREATE TABLE {catalog}.serving_safety.t_{kind} AS SELECT 1 AS x")
    metadata = served.lh.table(f"serving_safety.t_{kind}", "main").metadata
    assert metadata.properties.get("gc.enabled") == "false"
    assert metadata.properties.get("write.metadata.delete-after-commit.enabled", "false") == "false"
    buckets = Warehouse.from_uri(served.cli_env["LAKEHOUSE_WAREHOUSE"]).buckets.values()
    assert any(metadata.location.startswith(f"{uri}/") for uri in buckets), metadata.location


@pytest.mark.parametrize("kind", ["rest", "nessie"])
def test_a_server_that_requires_a_token_serves_trino_catalogs_that_send_it(
    served: Served, kind: TrinoCatalogType
) -> None:
    """As the Helm chart's catalogs with global.catalogAuth: the token as a bearer header."""
    from pydantic import SecretStr

    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings
    from lakehouse.server.settings import ServerSettings

    token = f"trino-{uuid.uuid4().hex}"
    catalog = served.lh.settings.catalog.model_copy(update={"token": SecretStr(token)})
    with_token = served.lh.settings.model_copy(update={"catalog": catalog})
    iceberg = IcebergRestSettings.from_settings(served.lh.settings)
    server = make_server(
        served.lh.store, "127.0.0.1", 0, settings=ServerSettings(token=SecretStr(token)),
        log_level="warning", iceberg=iceberg,
    )  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    names = (f"lh_{kind}_token_{suffix}", f"lh_{kind}_no_token_{suffix}")
    with serving(server) as port:
        url = f"http://127.0.0.1:{port}"
        good = catalog_properties(with_token, catalog_type=kind, server=url)
        bad = catalog_properties(served.lh.settings, catalog_type=kind, server=url)
        try:
            served.trino(create_catalog_sql(names[0], good))
            rows = served.trino(f"SELECT COUNT(*) FROM {names[0]}.gold.q1_pricing_summary")
            assert rows == [
                [len(_lakehouse_rows(served.lh, "SELECT * FROM gold.q1_pricing_summary"))]
            ]
            with pytest.raises(trino.exceptions.TrinoQueryError) as refused:
                served.trino(create_catalog_sql(names[1], bad))
                served.trino(f"SELECT COUNT(*) FROM {names[1]}.gold.q1_pricing_summary")
            assert re.search(r"401|[Uu]nauthori[sz]ed|NotAuthorized", str(refused.value)), (
                refused.value
            )
        finally:
            for name in names:
                served.trino(f"DROP CATALOG IF EXISTS {name}")
