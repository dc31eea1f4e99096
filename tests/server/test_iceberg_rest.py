"""The Iceberg REST catalog under ``/iceberg``, driven by PyIceberg's own ``RestCatalog``.

The server runs under uvicorn on a free loopback port (with a bearer token, so auth is
exercised too); clients are real ``RestCatalog`` instances speaking HTTP, plus plain
httpx where PyIceberg has no client call (multi-table transactions, raw errors).
Branches, tags and merges go through the Nessie API v2 of the same server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    BadRequestError,
    CommitFailedException,
    ForbiddenError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.table import Table
from pyiceberg.types import LongType, StringType

from lakehouse.catalog.model import (
    CommitMeta,
    ContentKey,
    IcebergTable,
    Put,
    ReferenceType,
)
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import ServerSettings
from lakehouse.server.app import make_server, serving
from lakehouse.server.iceberg_rest import (
    IcebergRestSettings,
    parse_parent,
    parse_prefix,
)
from lakehouse.storage import Warehouse

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The real Nessie's answer to the Iceberg REST config request, recorded.
REAL_NESSIE_CONFIG = "data/nessie-0.99.0-iceberg-config-dev.json"
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
NO_RETRIES = {"commit.retry.num-retries": "0"}


def rows(*pairs: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": n} for i, n in pairs], schema=SCHEMA)


def read(table: Table) -> list[tuple[int, str]]:
    data = table.scan(selected_fields=("id", "name")).to_arrow().to_pylist()
    return sorted((r["id"], r["name"]) for r in data)


def local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@pytest.fixture
def warehouse_root(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture
def warehouse(warehouse_root: Path) -> Warehouse:
    wh = Warehouse.local(warehouse_root)
    wh.ensure_local_dirs()
    return wh


@pytest.fixture
def base_url(store: SqlStore, warehouse: Warehouse, warehouse_root: Path) -> Iterator[str]:
    """A uvicorn server (Nessie API v2 + Iceberg REST) on a free loopback port."""
    iceberg = IcebergRestSettings(warehouse, warehouse_location=str(warehouse_root))
    server = make_server(
        store,
        "127.0.0.1",
        0,
        settings=ServerSettings(token=TOKEN),
        log_level="warning",
        iceberg=iceberg,
    )
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def rest(base_url: str, warehouse_root: Path) -> Callable[..., RestCatalog]:
    """PyIceberg RestCatalogs against the server; ``ref`` becomes the prefix."""
    made: list[Catalog] = []

    def make(ref: str | None = None, **props: str) -> RestCatalog:
        if ref is not None:
            props["prefix"] = quote(ref, safe="@")
        catalog = load_catalog(
            "rest",
            type="rest",
            uri=f"{base_url}/iceberg/",
            warehouse=str(warehouse_root),
            token=TOKEN,
            **props,
        )
        assert isinstance(catalog, RestCatalog)
        made.append(catalog)
        return catalog

    return make


@pytest.fixture
def main(rest: Callable[..., RestCatalog]) -> RestCatalog:
    catalog = rest("main")
    catalog.create_namespace("bronze")
    return catalog


def nessie_head(http: httpx.Client, ref: str = "main") -> str:
    response = http.get(f"/api/v2/trees/{ref}")
    assert response.status_code == 200, response.text
    value: str = response.json()["reference"]["hash"]
    return value


def nessie_create(
    http: httpx.Client, name: str, kind: str = "BRANCH", source: str = "main"
) -> None:
    body = {"type": "BRANCH", "name": source, "hash": nessie_head(http, source)}
    response = http.post("/api/v2/trees", params={"name": name, "type": kind}, json=body)
    assert response.status_code == 200, response.text


def iceberg_error(response: httpx.Response, status: int, type_: str | None = None) -> str:
    """The message of an Iceberg REST error response, checked for status and shape."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["code"] == status
    if type_ is not None:
        assert error["type"] == type_
    assert isinstance(error["message"], str) and error["message"]
    message: str = error["message"]
    return message


# -- config, prefixes --------------------------------------------------------------------------


def test_config_gives_the_default_branch_as_prefix_and_the_endpoints(
    http: httpx.Client, warehouse_root: Path
) -> None:
    body = http.get("/iceberg/v1/config").json()
    assert body["defaults"]["prefix"] == "main"
    assert "POST /v1/{prefix}/transactions/commit" in body["endpoints"]
    assert "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}" in body["endpoints"]

    for_dev = http.get("/iceberg/dev/v1/config").json()
    assert for_dev["defaults"]["prefix"] == "dev"
    assert http.get("/iceberg/-/v1/config").json()["defaults"]["prefix"] == "main"
    feature = http.get("/iceberg/feature%2Fx/v1/config").json()["defaults"]["prefix"]
    assert unquote(feature) == "feature/x"

    message = iceberg_error(
        http.get("/iceberg/v1/config", params={"warehouse": "s3://someone-else"}), 400
    )
    assert "unknown warehouse" in message


def test_config_with_a_warehouse_gives_nessies_ref_and_warehouse_prefix(
    http: httpx.Client, warehouse_root: Path
) -> None:
    by_name = http.get("/iceberg/v1/config", params={"warehouse": "warehouse"}).json()
    assert by_name["defaults"]["prefix"] == "main%7Cwarehouse"
    by_location = http.get("/iceberg/dev/v1/config", params={"warehouse": str(warehouse_root)})
    assert unquote(by_location.json()["defaults"]["prefix"]) == f"dev|{warehouse_root}"

    # the prefix handed out is accepted back, with '|' encoded or not
    nessie_create(http, "dev")
    for prefix in (by_location.json()["defaults"]["prefix"], "dev%7Cwarehouse", "dev|warehouse"):
        listed = http.get(f"/iceberg/v1/{prefix}/namespaces")
        assert listed.status_code == 200, (prefix, listed.text)
    iceberg_error(http.get("/iceberg/v1/dev%7Celsewhere/namespaces"), 400)


def test_config_warehouse_may_name_an_existing_reference_for_clients_without_a_prefix(
    http: httpx.Client,
) -> None:
    """DuckDB's ATTACH sends only ``warehouse`` (and ignores the ``uri`` override)."""
    nessie_create(http, "dev")
    bare = http.get("/iceberg/v1/config", params={"warehouse": "dev"}).json()
    assert bare["defaults"]["prefix"] == "dev"
    assert bare["overrides"]["nessie.default-branch.name"] == "dev"
    with_warehouse = http.get("/iceberg/v1/config", params={"warehouse": "dev|warehouse"})
    assert unquote(with_warehouse.json()["defaults"]["prefix"]) == "dev|warehouse"
    for prefix in (bare["defaults"]["prefix"], with_warehouse.json()["defaults"]["prefix"]):
        assert http.get(f"/iceberg/v1/{prefix}/namespaces").status_code == 200

    # neither the warehouse nor an existing reference: 400, nothing guessed
    for value in ("nope", "dev|elsewhere", "nope|warehouse", "s3://someone-else"):
        message = iceberg_error(http.get("/iceberg/v1/config", params={"warehouse": value}), 400)
        assert "unknown warehouse" in message and "reference" in message
    # with a reference in the path the warehouse must be the warehouse
    iceberg_error(http.get("/iceberg/main/v1/config", params={"warehouse": "dev"}), 400)


def test_config_overrides_say_this_is_a_nessie_catalog_as_the_real_nessie_does(
    http: httpx.Client,
) -> None:
    base = str(http.base_url).rstrip("/")
    expected = {
        "nessie.is-nessie-catalog": "true",
        "nessie.prefix-pattern": "{ref}|{warehouse}",
        "nessie.default-branch.name": "main",
        "nessie.core-base-uri": f"{base}/api/",
        "nessie.iceberg-base-uri": f"{base}/iceberg/",
        "nessie.catalog-base-uri": f"{base}/catalog/v1/",
        "uri": f"{base}/iceberg/",
    }
    assert http.get("/iceberg/v1/config").json()["overrides"] == expected
    for_dev = http.get("/iceberg/dev/v1/config").json()["overrides"]
    assert for_dev == {**expected, "nessie.default-branch.name": "dev"}
    # the core base URI reaches the Nessie API of the same server
    core = http.get(f"{expected['nessie.core-base-uri']}v2/config")
    assert core.json()["defaultBranch"] == "main"


def test_config_served_matches_the_real_nessies_prefix_and_overrides(http: httpx.Client) -> None:
    """Key by key against a response recorded from the real Nessie 0.99.0 (tests/server/data)."""
    recorded = json.loads((Path(__file__).parent / REAL_NESSIE_CONFIG).read_text())["response"]
    base = str(http.base_url).rstrip("/")
    served = http.get("/iceberg/dev/v1/config", params={"warehouse": "warehouse"}).json()
    assert served["defaults"]["prefix"] == recorded["defaults"]["prefix"]
    expected = {
        k: v.replace("http://127.0.0.1:19320", base) for k, v in recorded["overrides"].items()
    }
    assert served["overrides"] == expected


def test_prefix_and_parent_parsing(warehouse: Warehouse) -> None:
    settings = IcebergRestSettings(warehouse)
    assert str(parse_prefix("main", "main", settings)) == "main"
    assert str(parse_prefix("-", "main", settings)) == "main"
    assert str(parse_prefix("", "main", settings)) == "main"
    assert str(parse_prefix("feature%2Fx", "main", settings)) == "feature/x"
    assert str(parse_prefix("feature%1Fx", "main", settings)) == "feature/x"  # Nessie's form
    assert str(parse_prefix("dev%7Cwarehouse", "main", settings)) == "dev"
    assert str(parse_prefix("main@1234abcd~2", "main", settings)) == "main@1234abcd~2"
    assert parse_parent("a\x1fb%2Fc") == ("a", "b/c")  # PyIceberg
    assert parse_parent("a%1Fb+c") == ("a", "b c")  # the Java client


@pytest.mark.parametrize(
    ("uri", "inside"),
    [
        ("{root}/bronze/orders_1/data", True),
        ("{root}/iceberg-metadata/bronze/t/metadata/00000-x.metadata.json", True),
        ("{root_path}/silver/t", True),  # a plain absolute path is a file location
        ("file://localhost{root_path}/gold/t", True),
        ("{root}/bronze", True),
        ("{root}/bronze2/t", True),  # under the warehouse root, outside the buckets
        ("{root}/ns/t/metadata/00001-x.metadata.json", True),  # Spark's warehouse=<root>
        ("{root}2/bronze/t", False),  # a sibling of the root that only shares a prefix
        ("{root}/bronze/../../../etc", False),
        ("{root}/bronze/t/../u", False),  # '..' is refused, not normalized
        ("{root}/bronze/%2e%2e/%2e%2e/etc", False),
        ("{root}/bronze/a%2F..%2F..%2Fetc", False),
        ("file:///etc/passwd", False),
        ("file:///etc", False),
        ("file://evil.example{root_path}/bronze/t", False),
        ("s3://bronze/t", False),
        ("relative/bronze/t", False),
        ("//evil/x", False),
        ("{root}/bronze/t?x=1", False),
        ("{root}/bronze/t#frag", False),
        ("{root}/bronze/t\\..\\..\\etc", False),
        ("{root}/bronze/t\n", False),
        ("", False),
    ],
)
def test_warehouse_contains(
    warehouse: Warehouse, warehouse_root: Path, uri: str, inside: bool
) -> None:
    root = warehouse.bucket_uri("bronze").rsplit("/", 1)[0]
    text = uri.format(root=root, root_path=warehouse_root.resolve().as_posix())
    assert warehouse.contains(text) is inside, text


def test_s3_warehouse_contains_its_buckets_only() -> None:
    wh = Warehouse.from_uri("s3://acme-{bucket}/lake")
    assert wh.contains("s3://acme-bronze/lake/orders/data/f.parquet")
    assert wh.contains("s3a://acme-bronze/lake/orders")  # Hadoop's scheme, same store
    assert not wh.contains("s3://acme-bronze/other/orders")
    assert not wh.contains("s3://acme-bronze-evil/lake/orders")
    assert not wh.contains("s3://user@acme-bronze/lake/orders")
    assert not wh.contains("gs://acme-bronze/lake/orders")


def test_s3_warehouse_under_one_root_contains_the_whole_root() -> None:
    wh = Warehouse.from_uri("s3://lake/prefix")
    assert wh.root == "s3://lake/prefix"
    assert wh.contains("s3://lake/prefix/bronze/orders/data/f.parquet")
    assert wh.contains("s3://lake/prefix/ns/t/metadata/00000-x.metadata.json")
    assert not wh.contains("s3://lake/prefix2/ns/t")
    assert not wh.contains("s3://lake/other/t")
    assert not wh.contains("s3://lake/prefix/ns/../../other")


# -- PyIceberg end to end ------------------------------------------------------------------------


def test_create_append_scan_and_evolve_schema(
    main: RestCatalog, store: SqlStore, warehouse: Warehouse
) -> None:
    table = main.create_table(("bronze", "orders"), SCHEMA, properties={"owner": "team-a"})
    assert table.properties["gc.enabled"] == "false"
    assert table.properties["write.metadata.delete-after-commit.enabled"] == "false"
    assert warehouse.contains(table.metadata_location)
    assert local(table.metadata_location).is_relative_to(
        local(warehouse.bucket_uri("iceberg-metadata"))
    )

    table.append(rows((1, "a"), (2, "b")))
    table.append(rows((3, "c")))
    assert read(main.load_table(("bronze", "orders"))) == [(1, "a"), (2, "b"), (3, "c")]

    with table.update_schema() as update:
        update.add_column("amount", LongType())
    table.append(
        pa.Table.from_pylist(
            [{"id": 4, "name": "d", "amount": 10}],
            schema=SCHEMA.append(pa.field("amount", pa.int64())),
        )
    )
    reloaded = main.load_table(("bronze", "orders"))
    assert [f.name for f in reloaded.schema().fields] == ["id", "name", "amount"]
    assert sorted(reloaded.scan().to_arrow().to_pylist(), key=lambda r: r["id"])[-1] == {
        "id": 4,
        "name": "d",
        "amount": 10,
    }

    assert main.list_tables("bronze") == [("bronze", "orders")]
    assert main.table_exists(("bronze", "orders"))
    assert not main.table_exists(("bronze", "missing"))
    assert main.namespace_exists("bronze") and not main.namespace_exists("silver")
    with pytest.raises(TableAlreadyExistsError):
        main.create_table(("bronze", "orders"), SCHEMA)
    with pytest.raises(NoSuchNamespaceError):
        main.create_table(("nowhere", "orders"), SCHEMA)
    with pytest.raises(NoSuchTableError):
        main.load_table(("bronze", "missing"))

    # every change is one commit on the branch, carrying the table's metadata location
    messages = [e.meta.message for e in store.log("main", limit=10).entries]
    assert messages[:5] == ["Update table bronze.orders"] * 4 + ["Create table bronze.orders"]
    content = store.get_content("main", ContentKey.of("bronze", "orders"))
    assert isinstance(content, IcebergTable)
    assert content.metadata_location == reloaded.metadata_location


def test_namespaces(main: RestCatalog) -> None:
    main.create_namespace(("bronze", "crm"), {"owner": "sales"})
    main.create_namespace("silver")
    assert sorted(main.list_namespaces()) == [("bronze",), ("silver",)]
    assert main.list_namespaces("bronze") == [("bronze", "crm")]
    assert main.load_namespace_properties(("bronze", "crm")) == {"owner": "sales"}
    summary = main.update_namespace_properties(
        ("bronze", "crm"), removals={"owner", "absent"}, updates={"tier": "1"}
    )
    assert summary.removed == ["owner"] and summary.updated == ["tier"]
    assert summary.missing == ["absent"]
    assert main.load_namespace_properties(("bronze", "crm")) == {"tier": "1"}
    with pytest.raises(NamespaceAlreadyExistsError):
        main.create_namespace("silver")
    with pytest.raises(NoSuchNamespaceError):
        main.list_namespaces("nowhere")
    with pytest.raises(NamespaceNotEmptyError):
        main.drop_namespace("bronze")
    main.drop_namespace(("bronze", "crm"))
    main.drop_namespace("silver")
    assert main.list_namespaces() == [("bronze",)]


def test_paging(main: RestCatalog, rest: Callable[..., RestCatalog]) -> None:
    for name in ("c", "a", "b", "d", "e"):
        main.create_table(("bronze", name), SCHEMA)
    paged = rest("main", **{"rest-page-size": "2"})
    assert paged.list_tables("bronze") == [("bronze", n) for n in "abcde"]


def test_stage_create_commits_only_with_the_transaction(main: RestCatalog) -> None:
    txn = main.create_table_transaction(("bronze", "staged"), SCHEMA)
    assert not main.table_exists(("bronze", "staged"))
    txn.append(rows((1, "a")))
    txn.commit_transaction()
    assert read(main.load_table(("bronze", "staged"))) == [(1, "a")]


def test_rename_and_drop_with_purge_keeps_every_file(main: RestCatalog, store: SqlStore) -> None:
    table = main.create_table(("bronze", "orders"), SCHEMA)
    table.append(rows((1, "a")))
    content_id = store.get_content("main", ContentKey.of("bronze", "orders")).id
    renamed = main.rename_table(("bronze", "orders"), ("bronze", "orders_v2"))
    assert read(renamed) == [(1, "a")]
    assert store.get_content("main", ContentKey.of("bronze", "orders_v2")).id == content_id
    files = [t.file.file_path for t in renamed.scan().plan_files()]

    main.purge_table(("bronze", "orders_v2"))  # purgeRequested=true: accepted, no file deleted

    assert not main.table_exists(("bronze", "orders_v2"))
    assert files and all(local(f).exists() for f in files)
    assert local(renamed.metadata_location).exists()


# -- concurrency -------------------------------------------------------------------------------


def test_a_stale_requirement_fails_with_409_commit_failed(
    main: RestCatalog, rest: Callable[..., RestCatalog], base_url: str
) -> None:
    main.create_table(("bronze", "orders"), SCHEMA, properties=NO_RETRIES)
    first = main.load_table(("bronze", "orders"))
    second = rest("main").load_table(("bronze", "orders"))

    first.append(rows((1, "a")))
    with pytest.raises(CommitFailedException, match=r"requirement|changed concurrently"):
        second.append(rows((2, "b")))  # asserts the snapshot `first` replaced
    with first.update_schema() as update:
        update.add_column("x", StringType())
    with pytest.raises(CommitFailedException), second.update_schema() as update:
        update.add_column("y", StringType())  # asserts the schema `first` replaced

    reloaded = main.load_table(("bronze", "orders"))
    assert read(reloaded) == [(1, "a")]
    assert [f.name for f in reloaded.schema().fields] == ["id", "name", "x"]
    metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
    assert 'lakehouse_catalog_conflicts_total{operation="iceberg-commit"}' in metrics


def test_concurrent_appends_from_many_clients_all_land(
    main: RestCatalog, rest: Callable[..., RestCatalog]
) -> None:
    main.create_table(("bronze", "orders"), SCHEMA)
    clients = [rest("main") for _ in range(4)]

    def append(i: int) -> None:
        table = clients[i].load_table(("bronze", "orders"))
        table.append(rows((i, str(i))))  # PyIceberg retries on 409 and rebuilds the append

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(append, range(4)))
    assert read(main.load_table(("bronze", "orders"))) == [(i, str(i)) for i in range(4)]


# -- branches and tags -------------------------------------------------------------------------


def test_a_table_on_dev_is_invisible_on_main_until_merged(
    main: RestCatalog, rest: Callable[..., RestCatalog], http: httpx.Client, base_url: str
) -> None:
    nessie_create(http, "dev")
    dev = rest("dev")
    dev.create_table(("bronze", "orders"), SCHEMA).append(rows((1, "a")))

    assert dev.table_exists(("bronze", "orders"))
    assert not main.table_exists(("bronze", "orders"))
    assert main.list_tables("bronze") == []

    merged = http.post(
        f"/api/v2/trees/main@{nessie_head(http)}/history/merge",
        json={"fromRefName": "dev", "fromHash": nessie_head(http, "dev")},
    )
    assert merged.status_code == 200, merged.text
    assert read(main.load_table(("bronze", "orders"))) == [(1, "a")]

    # Nessie's client form: the reference in the URI, the server redirects the base URI
    by_uri = load_catalog("by-uri", type="rest", uri=f"{base_url}/iceberg/dev", token=TOKEN)
    assert by_uri.properties["prefix"] == "dev"
    assert by_uri.properties["uri"] == f"{base_url}/iceberg/"
    assert read(by_uri.load_table(("bronze", "orders"))) == [(1, "a")]

    # a branch whose name has a '/' works in the prefix (percent-encoded)
    nessie_create(http, "feature/x")
    feature = rest("feature/x")
    assert feature.table_exists(("bronze", "orders"))
    feature.create_namespace("silver")
    assert not main.namespace_exists("silver")


def test_writes_on_a_tag_or_a_hash_are_refused_reads_work(
    main: RestCatalog, rest: Callable[..., RestCatalog], http: httpx.Client
) -> None:
    main.create_table(("bronze", "orders"), SCHEMA).append(rows((1, "a")))
    nessie_create(http, "v1", kind="TAG")
    pinned_hash = nessie_head(http)

    for ref in ("v1", f"main@{pinned_hash}"):
        pinned = rest(ref)
        table = pinned.load_table(("bronze", "orders"))
        assert read(table) == [(1, "a")]
        with pytest.raises(BadRequestError, match="only branches accept commits"):
            pinned.create_namespace("silver")
        with pytest.raises(BadRequestError, match="only branches accept commits"):
            table.append(rows((2, "b")))
        with pytest.raises(BadRequestError, match="only branches accept commits"):
            pinned.drop_table(("bronze", "orders"))

    main.load_table(("bronze", "orders")).append(rows((2, "b")))
    assert read(rest("v1").load_table(("bronze", "orders"))) == [(1, "a")]
    assert read(rest("main~1").load_table(("bronze", "orders"))) == [(1, "a")]
    message = iceberg_error(http.get("/iceberg/v1/nope/namespaces"), 404, "NotFoundException")
    assert "nope" in message


# -- multi-table transactions ---------------------------------------------------------------------


def _change(table: Table, properties: dict[str, str], *, stale: bool = False) -> dict[str, Any]:
    snapshot = table.metadata.current_snapshot_id
    return {
        "identifier": {"namespace": list(table.name()[:-1]), "name": table.name()[-1]},
        "requirements": [
            {"type": "assert-table-uuid", "uuid": str(table.metadata.table_uuid)},
            {
                "type": "assert-ref-snapshot-id",
                "ref": "main",
                "snapshot-id": (snapshot or 0) + 1 if stale else snapshot,
            },
        ],
        "updates": [{"action": "set-properties", "updates": properties}],
    }


def test_transactions_commit_is_one_atomic_catalog_commit(
    main: RestCatalog, http: httpx.Client, store: SqlStore
) -> None:
    orders = main.create_table(("bronze", "orders"), SCHEMA)
    orders.append(rows((1, "a")))
    customers = main.create_table(("bronze", "customers"), SCHEMA)
    head = nessie_head(http)

    # one requirement fails: neither table changes, nothing is committed
    body = {
        "table-changes": [
            _change(orders, {"batch": "1"}),
            _change(customers, {"batch": "1"}, stale=True),
        ]
    }
    failed = http.post("/iceberg/v1/main/transactions/commit", json=body)
    iceberg_error(failed, 409, "CommitFailedException")
    assert nessie_head(http) == head
    assert "batch" not in main.load_table(("bronze", "orders")).properties
    assert "batch" not in main.load_table(("bronze", "customers")).properties

    # all requirements hold: both tables change in exactly one commit
    body = {"table-changes": [_change(orders, {"batch": "2"}), _change(customers, {"batch": "2"})]}
    done = http.post("/iceberg/v1/main/transactions/commit", json=body)
    assert done.status_code == 204, done.text
    assert main.load_table(("bronze", "orders")).properties["batch"] == "2"
    assert main.load_table(("bronze", "customers")).properties["batch"] == "2"
    log = store.log("main", limit=2, fetch_operations=True).entries
    assert log[0].meta.parent_hashes[0] == head
    assert log[0].meta.message == "Update 2 tables: bronze.orders, bronze.customers"
    assert {op.key for op in log[0].operations or ()} == {
        ContentKey.of("bronze", "orders"),
        ContentKey.of("bronze", "customers"),
    }

    # a missing table fails the whole transaction too
    body = {
        "table-changes": [
            _change(main.load_table(("bronze", "orders")), {"batch": "3"}),
            {"identifier": {"namespace": ["bronze"], "name": "nope"}, "updates": []},
        ]
    }
    iceberg_error(http.post("/iceberg/v1/main/transactions/commit", json=body), 404)
    assert main.load_table(("bronze", "orders")).properties["batch"] == "2"
    # on a tag: refused
    nessie_create(http, "v1", kind="TAG")
    iceberg_error(http.post("/iceberg/v1/v1/transactions/commit", json=body), 400)


# -- locations ---------------------------------------------------------------------------------


def test_create_with_a_location_outside_the_warehouse_is_refused(
    main: RestCatalog, warehouse: Warehouse, warehouse_root: Path
) -> None:
    bronze = warehouse.bucket_uri("bronze")
    for location in (
        "file:///etc",
        f"{bronze}/../../../../etc",
        f"{bronze}/orders/../../escape",
        f"file://{warehouse_root.parent.as_posix()}/elsewhere",
        "s3://somebody-elses-bucket/orders",
    ):
        with pytest.raises(ForbiddenError, match="not allowed"):
            main.create_table(("bronze", "orders"), SCHEMA, location=location)
        with pytest.raises(ForbiddenError):
            main.create_table_transaction(("bronze", "orders"), SCHEMA, location=location)
    assert not main.table_exists(("bronze", "orders"))

    inside = main.create_table(("bronze", "orders"), SCHEMA, location=f"{bronze}/custom/orders")
    inside.append(rows((1, "a")))
    assert all(
        local(t.file.file_path).is_relative_to(local(bronze) / "custom" / "orders")
        for t in inside.scan().plan_files()
    )


def test_create_with_write_paths_outside_the_warehouse_is_refused_not_replaced(
    main: RestCatalog, tmp_path: Path, warehouse: Warehouse
) -> None:
    outside = (tmp_path / "evil").as_uri()
    for prop in ("write.data.path", "write.metadata.path"):
        with pytest.raises(ForbiddenError, match=prop.replace(".", r"\.")):
            main.create_table(("bronze", "orders"), SCHEMA, properties={prop: outside})
    assert not main.table_exists(("bronze", "orders"))

    # inside the warehouse they are kept as given
    moved = f"{warehouse.bucket_uri('gold')}/orders_files"
    table = main.create_table(
        ("bronze", "orders"), SCHEMA, properties={"write.data.path": f"{moved}/data"}
    )
    assert table.properties["write.data.path"] == f"{moved}/data"
    table.append(rows((1, "a")))
    assert all(
        local(t.file.file_path).is_relative_to(local(moved)) for t in table.scan().plan_files()
    )


def test_tables_under_the_warehouse_root_outside_the_buckets_are_served(
    main: RestCatalog, rest: Callable[..., RestCatalog], warehouse_root: Path
) -> None:
    """As Spark's NessieCatalog writes them with ``warehouse=<root>``: ``<root>/ns/t``."""
    at_root = warehouse_root.as_uri() + "/bronze/orders"
    props = {
        "write.data.path": f"{at_root}/data",
        "write.metadata.path": f"{at_root}/metadata",
        **NO_RETRIES,
    }
    table = main.create_table(("bronze", "orders"), SCHEMA, location=at_root, properties=props)
    table.append(rows((1, "a")))
    table.append(rows((2, "b")))
    assert local(table.metadata_location).is_relative_to(local(at_root))

    loaded = rest("main").load_table(("bronze", "orders"))
    assert read(loaded) == [(1, "a"), (2, "b")]
    # registered again under another name from its metadata file under the root
    again = main.register_table(("bronze", "orders_again"), table.metadata_location)
    assert read(again) == [(1, "a"), (2, "b")]
    # a sibling of the root is still outside
    with pytest.raises(ForbiddenError, match="not allowed"):
        main.create_table(
            ("bronze", "t2"), SCHEMA, location=warehouse_root.parent.as_uri() + "/warehouse2/t"
        )


def test_commits_moving_files_outside_the_warehouse_are_refused(
    main: RestCatalog, tmp_path: Path, warehouse: Warehouse, http: httpx.Client
) -> None:
    table = main.create_table(("bronze", "orders"), SCHEMA, properties=NO_RETRIES)
    outside = (tmp_path / "evil").as_uri()
    for prop in ("write.data.path", "write.metadata.path", "write.object-storage.path"):
        with pytest.raises(ForbiddenError, match=prop.replace(".", r"\.")):
            table.transaction().set_properties({prop: outside}).commit_transaction()
    # PyIceberg has no client call for set-location: send the update as a client would
    moved_out = http.post(
        "/iceberg/v1/main/namespaces/bronze/tables/orders",
        json={"updates": [{"action": "set-location", "location": outside}]},
    )
    assert "table location" in iceberg_error(moved_out, 403, "ForbiddenException")
    snapshot = {
        "snapshot-id": 4242,
        "sequence-number": 1,
        "timestamp-ms": int(time.time() * 1000),
        "manifest-list": "file:///etc/passwd",
        "summary": {"operation": "append"},
        "schema-id": 0,
    }
    foreign_list = http.post(
        "/iceberg/v1/main/namespaces/bronze/tables/orders",
        json={"updates": [{"action": "add-snapshot", "snapshot": snapshot}]},
    )
    assert "manifest list" in iceberg_error(foreign_list, 403, "ForbiddenException")
    # moving inside the warehouse is fine
    moved = f"{warehouse.bucket_uri('gold')}/orders_moved"
    table.transaction().set_properties({"write.data.path": f"{moved}/data"}).commit_transaction()
    table.append(rows((1, "a")))
    assert all(
        local(t.file.file_path).is_relative_to(local(moved)) for t in table.scan().plan_files()
    )


def test_register_reads_only_metadata_inside_the_warehouse(
    main: RestCatalog, tmp_path: Path, warehouse: Warehouse
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    def foreign_table(root: Path) -> Table:
        other = SqlCatalog(
            "other", uri=f"sqlite:///{tmp_path}/{root.name}.db", warehouse=root.as_uri()
        )
        other.create_namespace("ns")
        created = other.create_table(("ns", "t"), SCHEMA)
        created.append(rows((1, "a")))
        other.close()
        return created

    outside = foreign_table(tmp_path / "outside")
    for location in (
        outside.metadata_location,
        "file:///etc/passwd",
        f"{warehouse.bucket_uri('bronze')}/../../outside/ns/t/metadata/x.metadata.json",
        "http://169.254.169.254/latest/meta-data",
    ):
        with pytest.raises(ForbiddenError, match="not allowed"):
            main.register_table(("bronze", "imported"), location)
    assert not main.table_exists(("bronze", "imported"))

    copied = foreign_table(local(warehouse.bucket_uri("bronze")) / "imported")
    registered = main.register_table(("bronze", "imported"), copied.metadata_location)
    assert read(registered) == [(1, "a")]
    assert registered.properties["gc.enabled"] == "false"


def test_metadata_outside_the_warehouse_is_never_read(
    main: RestCatalog, store: SqlStore, http: httpx.Client
) -> None:
    """Content put through the Nessie API can name any location; /iceberg will not read it."""
    content = IcebergTable(metadata_location="file:///etc/passwd", snapshot_id=-1)
    store.commit("main", [Put(ContentKey.of("bronze", "evil"), content)], CommitMeta("put"))
    with pytest.raises(ForbiddenError, match="not allowed"):
        main.load_table(("bronze", "evil"))
    iceberg_error(http.get("/iceberg/v1/main/namespaces/bronze/tables/evil"), 403)


# -- wire details ------------------------------------------------------------------------------


def test_errors_have_the_iceberg_shape(
    http: httpx.Client, base_url: str, main: RestCatalog
) -> None:
    iceberg_error(
        http.get("/iceberg/v1/main/namespaces/bronze/tables/nope"), 404, "NoSuchTableException"
    )
    iceberg_error(http.get("/iceberg/v1/main/namespaces/nope"), 404, "NoSuchNamespaceException")
    iceberg_error(
        http.post("/iceberg/v1/main/namespaces", json={"namespace": ["bronze"]}),
        409,
        "AlreadyExistsException",
    )
    bad = http.post(
        "/iceberg/v1/main/namespaces",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert "JSON" in iceberg_error(bad, 400, "BadRequestException")
    iceberg_error(http.post("/iceberg/v1/main/namespaces", json={"namespace": []}), 400)
    iceberg_error(http.post("/iceberg/v1/main/namespaces/bronze/tables", json={"name": "t"}), 400)
    iceberg_error(
        http.post(
            "/iceberg/v1/main/namespaces/bronze/properties",
            json={"removals": ["a"], "updates": {"a": "1"}},
        ),
        422,
        "UnprocessableEntityException",
    )
    iceberg_error(
        http.get("/iceberg/v1/main/namespaces/bronze/views"), 404, "NoSuchEndpointException"
    )
    iceberg_error(http.put("/iceberg/v1/main/namespaces"), 405)
    iceberg_error(http.get("/iceberg/v1/main/namespaces", params={"pageSize": "0"}), 400)
    iceberg_error(
        httpx.get(f"{base_url}/iceberg/v1/config", timeout=10), 401, "NotAuthorizedException"
    )
    assert http.head("/iceberg/v1/main/namespaces/nope").status_code == 404
    assert http.head("/iceberg/v1/main/namespaces/bronze").status_code == 204
    assert (
        http.post("/iceberg/v1/main/namespaces/bronze/tables/t/metrics", json={}).status_code == 204
    )
    # the Nessie API keeps its own error shape
    assert http.get("/api/v2/trees/nope").json()["errorCode"] == "REFERENCE_NOT_FOUND"


def test_names_with_slashes_and_dots_round_trip(main: RestCatalog, store: SqlStore) -> None:
    main.create_namespace(("bronze", "a/b.c"))
    table = main.create_table(("bronze", "a/b.c", "x/y"), SCHEMA)
    table.append(rows((1, "a")))
    assert main.list_namespaces("bronze") == [("bronze", "a/b.c")]
    assert main.list_tables(("bronze", "a/b.c")) == [("bronze", "a/b.c", "x/y")]
    assert read(main.load_table(("bronze", "a/b.c", "x/y"))) == [(1, "a")]
    assert isinstance(
        store.get_content("main", ContentKey.of("bronze", "a/b.c", "x/y")), IcebergTable
    )


@pytest.mark.parametrize("name", ["..", ".", "../../evil", "a/../b"])
def test_names_with_dot_or_dot_dot_elements_are_refused_with_400(
    http: httpx.Client, main: RestCatalog, store: SqlStore, name: str
) -> None:
    assert ("bronze",) in main.list_namespaces()
    before = store.get_reference("main").hash
    created_ns = http.post("/iceberg/v1/main/namespaces", json={"namespace": ["bronze", name]})
    assert "'.' and '..' are not allowed" in iceberg_error(created_ns, 400)
    schema = {"type": "struct", "schema-id": 0, "fields": []}
    created = http.post(
        "/iceberg/v1/main/namespaces/bronze/tables", json={"name": name, "schema": schema}
    )
    assert "'.' and '..' are not allowed" in iceberg_error(created, 400)
    encoded = quote(name, safe="").replace(".", "%2E")  # as sent, not normalized away
    loaded = http.get(f"/iceberg/v1/main/namespaces/{encoded}/tables/t")
    iceberg_error(loaded, 400)
    assert store.get_reference("main").hash == before


def test_openapi_lists_the_iceberg_routes(http: httpx.Client, store: SqlStore) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "/iceberg/v1/{prefix}/transactions/commit" in paths
    assert "/iceberg/v1/{prefix}/namespaces/{namespace}/tables/{table}" in paths
    assert store.get_reference("main").type is ReferenceType.BRANCH


# -- lakehouse serve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "token", "content_merge"),
    [(signal.SIGINT, None, True), (signal.SIGTERM, "s3cret", False)],
)
def test_lakehouse_serve_starts_serves_both_apis_and_stops_cleanly(
    tmp_path: Path, stop: signal.Signals, token: str | None, content_merge: bool
) -> None:
    from lakehouse.client import connect

    home = tmp_path / "home"
    connect(home, create=True).close()
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    args = ["serve", "--port", "0", "--log-level", "warning"]
    headers: dict[str, str] = {}
    if token is not None:
        env["LH_TEST_SERVE_TOKEN"] = token
        args += ["--token-env", "LH_TEST_SERVE_TOKEN"]
        headers["Authorization"] = f"Bearer {token}"
    if not content_merge:
        args.append("--no-content-merge")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("Iceberg REST:") for line in lines):
            line = proc.stdout.readline()
            assert line, f"serve exited early: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line.strip())
        nessie_uri = next(line.split()[-1] for line in lines if line.startswith("Nessie API v2:"))
        iceberg_uri = lines[-1].split()[-1]
        assert nessie_uri.endswith("/api/v2") and iceberg_uri.endswith("/iceberg/")
        with httpx.Client(headers=headers, timeout=10) as client:
            nessie = client.get(f"{nessie_uri}/config").json()
            assert nessie["defaultBranch"] == "main"
            # the contentMerge opt-in of merges is offered unless --no-content-merge
            offered = nessie.get("additionalProperties", {}).get("lakehouse.content-merge")
            assert offered == ("1" if content_merge else None)
            config = client.get(f"{iceberg_uri}v1/config").json()
        assert config["defaults"]["prefix"] == "main"
        if token is not None:
            iceberg_error(httpx.get(f"{iceberg_uri}v1/config", timeout=10), 401)
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopped." in out


def test_lakehouse_serve_refuses_a_missing_token_variable(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lakehouse.cli.main import app
    from lakehouse.client import connect

    connect(tmp_path / "home", create=True).close()
    result = CliRunner().invoke(
        app,
        ["--home", str(tmp_path / "home"), "serve", "--token-env", "LH_TEST_UNSET_VARIABLE"],
    )
    assert result.exit_code == 1
    assert "LH_TEST_UNSET_VARIABLE is not set or empty" in result.stderr
