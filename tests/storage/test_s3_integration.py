"""The cluster profile on real services: S3 (scripts/services/minio.sh) + PostgreSQL.

Tables, the ``raw`` landing and ``lakehouse sql`` on the five S3 buckets, the catalog on
PostgreSQL. Every listing goes through an S3 client built here from the test server's
settings, not through the lakehouse, so the files are checked where they really are.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

import lakehouse
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse
from lakehouse.ingest import FolderSource, ingest
from lakehouse.storage import BUCKETS

pytestmark = pytest.mark.integration

ROWS = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "customer": ["alice", "bob", "carol"],
        "amount": pa.array([10.5, 20.0, 7.25], pa.float64()),
    }
)
MORE = pa.table(
    {
        "id": pa.array([4], pa.int64()),
        "customer": ["dave"],
        "amount": pa.array([1.0], pa.float64()),
    }
)


@pytest.fixture
def s3(s3_settings: dict[str, str]) -> pafs.S3FileSystem:
    """An S3 client of our own for the test server (path-style, as MinIO serves buckets)."""
    return pafs.S3FileSystem(
        endpoint_override=s3_settings["endpoint"],
        access_key=s3_settings["access_key_id"],
        secret_key=s3_settings["secret_access_key"],
        region="us-east-1",
        force_virtual_addressing=False,
    )


@pytest.fixture
def cluster_env(fresh_postgres_url: str, s3_settings: dict[str, str]) -> dict[str, str]:
    """Environment selecting the cluster profile: PostgreSQL catalog, default S3 buckets."""
    return {
        "LAKEHOUSE_PROFILE": "cluster",
        "LAKEHOUSE_CATALOG__URI": fresh_postgres_url,
        "LAKEHOUSE_S3__ENDPOINT": s3_settings["endpoint"],
        "LAKEHOUSE_S3__ACCESS_KEY_ID": s3_settings["access_key_id"],
        "LAKEHOUSE_S3__SECRET_ACCESS_KEY": s3_settings["secret_access_key"],
    }


@pytest.fixture
def cleanup(s3: pafs.S3FileSystem) -> Iterator[list[str]]:
    """Prefixes (``bucket/key``) this test wrote; deleted afterwards (the buckets are shared)."""
    prefixes: list[str] = []
    yield prefixes
    for prefix in prefixes:
        with contextlib.suppress(FileNotFoundError):
            s3.delete_dir(prefix)


@pytest.fixture
def lh(
    cluster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cleanup: list[str]
) -> Iterator[Lakehouse]:
    """A cluster-profile lakehouse from the environment alone, as a deployment would get."""
    for name, value in cluster_env.items():
        monkeypatch.setenv(name, value)
    with lakehouse.connect(create=True) as lake:
        yield lake
        for entry in lake.tables("main"):
            table = lake.table(str(entry.key), "main")
            cleanup.append(strip_scheme(table.location()))
            cleanup.append(
                posixpath.dirname(posixpath.dirname(strip_scheme(table.metadata_location)))
            )


def strip_scheme(uri: str) -> str:
    assert uri.startswith("s3://"), uri
    return uri.removeprefix("s3://")


def files_under(s3: pafs.S3FileSystem, prefix: str) -> list[str]:
    """Every object below ``bucket/prefix``, as ``bucket/key``, sorted."""
    infos = s3.get_file_info(pafs.FileSelector(prefix, recursive=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def test_the_service_script_created_the_five_buckets(s3: pafs.S3FileSystem) -> None:
    buckets = {
        i.path
        for i in s3.get_file_info(pafs.FileSelector("/"))
        if i.type == pafs.FileType.Directory
    }
    assert set(BUCKETS) <= buckets


def test_tables_on_s3_and_postgres_branch_merge_and_read_back(
    lh: Lakehouse, cluster_env: dict[str, str], s3: pafs.S3FileSystem, tmp_path: Path
) -> None:
    assert lh.settings.profile == "cluster"
    assert lh.warehouse.bucket_uri("bronze") == "s3://bronze"
    main = lh.catalog("main")
    main.create_namespace("bronze")
    main.create_table("bronze.orders", schema=ROWS.schema).append(ROWS)

    dev = lh.branch("dev").create()
    dev.table("bronze.orders").append(MORE)
    assert lh.table("bronze.orders", "main").scan().to_arrow().num_rows == 3
    assert lh.table("bronze.orders", "dev").scan().to_arrow().num_rows == 4
    dev.merge_into("main")

    # A second connection (new catalog connection, new S3 clients) reads the merged state.
    with lakehouse.connect() as again:
        table = again.table("bronze.orders", "main")
        got = table.scan().to_arrow().sort_by("id")
        assert got.to_pylist() == pa.concat_tables([ROWS, MORE]).to_pylist()

    # Data in the bronze bucket, metadata in the iceberg-metadata bucket, nothing local.
    data_prefix = strip_scheme(table.location()) + "/data"
    assert data_prefix.startswith("bronze/orders_")
    metadata_prefix = posixpath.dirname(strip_scheme(table.metadata_location))
    assert metadata_prefix.startswith("iceberg-metadata/bronze/orders_")
    data_files = files_under(s3, data_prefix)
    metadata_files = files_under(s3, metadata_prefix)
    assert len(data_files) == 2 and all(f.endswith(".parquet") for f in data_files)
    assert sum(f.endswith(".metadata.json") for f in metadata_files) >= 3
    assert any(f.endswith(".avro") for f in metadata_files)
    assert strip_scheme(table.metadata_location) in metadata_files
    planned = {strip_scheme(t.file.file_path) for t in table.scan().plan_files()}
    assert planned == set(data_files)
    assert not (lh.settings.home / "warehouse").exists()
    assert not list(tmp_path.rglob("*.parquet"))


def test_csv_folder_lands_in_raw_on_s3_and_loads_bronze(
    lh: Lakehouse, s3: pafs.S3FileSystem, cleanup: list[str], tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "orders.csv").write_text("id,customer,amount\n1,alice,10.5\n2,bob,20.0\n")
    (inbox / "more.csv").write_text("id,customer,amount\n3,carol,7.25\n")
    source_name = f"shop_{uuid.uuid4().hex[:8]}"
    cleanup.append(f"raw/{source_name}")
    source = FolderSource.model_validate(
        {"name": source_name, "path": str(inbox), "table": "bronze.orders"}
    )

    [result] = ingest(lh, source)
    assert result.batch_id is not None
    assert result.rows_loaded == 3
    assert all(f.uri.startswith(f"s3://raw/{source_name}/") for f in result.landed)

    landed = files_under(s3, f"raw/{source_name}")
    batch = [f for f in landed if f"/{result.batch_id}/" in f]
    assert {posixpath.basename(f) for f in batch} == {"orders.csv", "more.csv", "_manifest.json"}
    with s3.open_input_stream(next(f for f in batch if f.endswith("orders.csv"))) as stream:
        assert stream.read() == (inbox / "orders.csv").read_bytes()
    with s3.open_input_stream(next(f for f in batch if f.endswith("_manifest.json"))) as stream:
        manifest = json.loads(stream.read())
    assert sorted(f["name"] for f in manifest["files"]) == ["more.csv", "orders.csv"]

    table = lh.table("bronze.orders", "main")
    assert strip_scheme(table.location()).startswith("bronze/orders_")
    rows = table.scan(selected_fields=("id", "customer")).to_arrow().sort_by("id").to_pylist()
    assert rows == [
        {"id": 1, "customer": "alice"},
        {"id": 2, "customer": "bob"},
        {"id": 3, "customer": "carol"},
    ]

    # Exactly once: a second run finds nothing new and lands nothing.
    [again] = ingest(lh, source)
    assert again.rows_loaded == 0 and again.batch_id is None
    assert files_under(s3, f"raw/{source_name}") == landed


def test_lakehouse_sql_over_an_s3_table(lh: Lakehouse, cluster_env: dict[str, str]) -> None:
    main = lh.catalog("main")
    main.create_namespace("silver")
    main.create_table("silver.orders", schema=ROWS.schema).append(ROWS)
    lh.branch("dev").create()
    lh.catalog("dev").load_table("silver.orders").append(MORE)

    query = "SELECT customer, amount FROM silver.orders WHERE amount > 8 ORDER BY id"
    result = CliRunner().invoke(app, ["sql", query, "-o", "json"], env=cluster_env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout) == [
        {"customer": "alice", "amount": 10.5},
        {"customer": "bob", "amount": 20.0},
    ]

    count = "SELECT count(*) AS n, sum(amount) AS total FROM silver.orders"
    result = CliRunner().invoke(app, ["sql", count, "--ref", "dev", "-o", "json"], env=cluster_env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout) == [{"n": 4, "total": 38.75}]
    assert lh.sql(count, "main").to_pylist() == [{"n": 3, "total": 37.75}]


def test_folder_source_on_the_same_s3_server_uses_the_warehouse_settings(
    lh: Lakehouse, s3: pafs.S3FileSystem, s3_settings: dict[str, str], cleanup: list[str]
) -> None:
    admin = pafs.S3FileSystem(
        endpoint_override=s3_settings["endpoint"],
        access_key=s3_settings["access_key_id"],
        secret_key=s3_settings["secret_access_key"],
        region="us-east-1",
        force_virtual_addressing=False,
        allow_bucket_creation=True,
    )
    inbox = f"lakehouse-test-inbox/{uuid.uuid4().hex[:8]}"
    admin.create_dir(inbox.split("/")[0])  # a bucket of its own, apart from the warehouse
    cleanup.append(inbox)
    with s3.open_output_stream(f"{inbox}/orders.csv") as out:
        out.write(b"id,customer,amount\n1,alice,10.5\n")
    source_name = f"exports_{uuid.uuid4().hex[:8]}"
    cleanup.append(f"raw/{source_name}")
    source = FolderSource.model_validate(
        {"name": source_name, "path": f"s3://{inbox}", "table": "bronze.exports"}
    )

    [result] = ingest(lh, source)

    assert result.rows_loaded == 1
    assert any(f.endswith("/orders.csv") for f in files_under(s3, f"raw/{source_name}"))
    assert lh.table("bronze.exports").scan().to_arrow().column("customer").to_pylist() == ["alice"]


def test_row_level_writes_on_s3_write_position_deletes_every_reader_applies(
    lh: Lakehouse, s3: pafs.S3FileSystem
) -> None:
    from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, upsert
    from lakehouse.tables.upsert import SMALL_FILE_ROWS

    main = lh.catalog("main")
    main.create_namespace("silver")
    # Positional deletes are what this checks, so small-file rewrites are off.
    properties = {**DEFAULT_TABLE_PROPERTIES, SMALL_FILE_ROWS: "0"}
    main.create_table("silver.accounts", schema=ROWS.schema, properties=properties).append(ROWS)
    changed = pa.table(
        {
            "id": pa.array([2, 4], pa.int64()),
            "customer": ["bob", "dave"],
            "amount": pa.array([99.0, 1.0], pa.float64()),
        }
    )

    result = upsert(
        main.load_table("silver.accounts"),
        changed,
        ["id"],
        delete_keys=pa.table({"id": pa.array([3], pa.int64())}),
    )

    assert (result.inserted, result.updated, result.deleted) == (1, 1, 1)
    table = lh.table("silver.accounts", "main")
    deletes = {d.file_path for t in table.scan().plan_files() for d in t.delete_files}
    assert len(deletes) == 1 and all(d.startswith("s3://silver/") for d in deletes)
    assert strip_scheme(next(iter(deletes))) in files_under(s3, strip_scheme(table.location()))
    expected = [(1, "alice", 10.5), (2, "bob", 99.0), (4, "dave", 1.0)]
    got = sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())
    assert got == expected
    sql = lh.sql("SELECT id, customer, amount FROM silver.accounts ORDER BY id").to_pylist()
    assert [tuple(r.values()) for r in sql] == expected


def test_key_indexes_on_s3_are_written_beside_the_data_and_read_back(
    lh: Lakehouse, s3: pafs.S3FileSystem
) -> None:
    from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, upsert
    from lakehouse.tables.keyindex import INDEX_SUFFIX, forget_indexes

    main = lh.catalog("main")
    main.create_namespace("silver")
    n = 12_000
    ids = pa.array(range(n), pa.int64())
    first = pa.table({"id": ids, "customer": [f"c{i}" for i in range(n)], "amount": ids})
    schema = pa.schema([("id", pa.int64()), ("customer", pa.string()), ("amount", pa.int64())])
    main.create_table("silver.big", schema=schema, properties=DEFAULT_TABLE_PROPERTIES).append(
        first.cast(schema)
    )
    changed = first.cast(schema).set_column(1, "customer", pa.array([f"d{i}" for i in range(n)]))

    result = upsert(main.load_table("silver.big"), changed, ["id"])

    assert result.updated == n
    table = lh.table("silver.big", "main")
    indexes = [
        f for f in files_under(s3, strip_scheme(table.location())) if f.endswith(INDEX_SUFFIX)
    ]
    assert len(indexes) == 2  # the appended file's (read whole) and the upserted one's
    forget_indexes()  # the next upsert reads them from S3
    again = upsert(table, changed, ["id"])
    assert (again.unchanged, again.snapshot_id) == (n, None)
    assert lh.sql("SELECT count(*) AS n FROM silver.big WHERE customer LIKE 'd%'").to_pylist() == [
        {"n": n}
    ]
