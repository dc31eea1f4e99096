"""RefCatalog: PyIceberg tables living on branches of the versioned catalog.

``store`` comes from ``tests/catalog/conftest.py``: SQLite in the unit tier, PostgreSQL
in the integration tier.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    NoSuchViewError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.manifest import clear_manifest_cache
from pyiceberg.schema import Schema
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil
from pyiceberg.table.snapshots import Operation as SnapshotOperation
from pyiceberg.table.update import update_table_metadata
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion

from lakehouse.catalog.iceberg import (
    COMMIT_LOCK_TIMEOUT_MS,
    RefCatalog,
    _BoundedCache,
    _metadata_json,
    _parse_metadata,
)
from lakehouse.catalog.model import (
    CommitMeta,
    CommitResult,
    ContentKey,
    IcebergTable,
    IcebergView,
    Operation,
    Put,
    ReferenceType,
)
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import (
    CommitStateUnknownError,
    LocationNotAllowedError,
    ReadOnlyReferenceError,
)
from lakehouse.storage import Warehouse
from lakehouse.tables.metadata import apply_updates

ORDERS = ("bronze", "orders")
ORDERS_KEY = ContentKey.of(*ORDERS)
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def rows(*pairs: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": n} for i, n in pairs], schema=SCHEMA)


def read(table: Table) -> list[tuple[int, str]]:
    data = table.scan(selected_fields=("id", "name")).to_arrow().to_pylist()
    return sorted((r["id"], r["name"]) for r in data)


def local(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(unquote(parsed.path))


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse.local(tmp_path / "warehouse")
    wh.ensure_local_dirs()
    return wh


@pytest.fixture
def catalog(store: VersionStore, warehouse: Warehouse) -> Callable[..., RefCatalog]:
    def make(ref: str = "dev", **properties: str) -> RefCatalog:
        return RefCatalog("lakehouse", store, ref, warehouse, **properties)

    return make


@pytest.fixture
def main(catalog: Callable[..., RefCatalog]) -> RefCatalog:
    """`main` with the `bronze` namespace."""
    cat = catalog("main")
    cat.create_namespace("bronze")
    return cat


@pytest.fixture
def dev(main: RefCatalog, store: VersionStore, catalog: Callable[..., RefCatalog]) -> RefCatalog:
    """Branch `dev` forked from `main` after `bronze` was created."""
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    return catalog("dev")


def last_commit(store: VersionStore, ref: str = "dev") -> CommitMeta:
    return store.log(ref, limit=1).entries[0].meta


def table_content(store: VersionStore, ref: str, key: ContentKey = ORDERS_KEY) -> IcebergTable:
    content = store.get_content(ref, key)
    assert isinstance(content, IcebergTable)
    return content


# -- branches, merges, tags ---------------------------------------------------------------


def test_table_written_on_dev_is_invisible_on_main_until_merged(
    dev: RefCatalog, main: RefCatalog, store: VersionStore
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a"), (2, "b")))

    assert dev.table_exists(ORDERS)
    assert not main.table_exists(ORDERS)
    assert main.list_tables("bronze") == []
    with pytest.raises(NoSuchTableError, match=r"'bronze\.orders' does not exist on 'main'"):
        main.load_table(ORDERS)

    store.merge("dev", "main")

    assert main.list_tables("bronze") == [ORDERS]
    assert read(main.load_table(ORDERS)) == [(1, "a"), (2, "b")]


def test_after_merge_main_reads_exactly_the_rows_of_dev(
    dev: RefCatalog, main: RefCatalog, store: VersionStore
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a"), (2, "b"), (3, "c")))
    table.delete("id == 2")
    table.append(rows((4, "d")))
    store.merge("dev", "main")

    assert (
        read(main.load_table(ORDERS))
        == read(dev.load_table(ORDERS))
        == [
            (1, "a"),
            (3, "c"),
            (4, "d"),
        ]
    )
    assert table_content(store, "main") == table_content(store, "dev")


def test_a_tag_keeps_returning_old_rows_after_main_moves(
    main: RefCatalog, store: VersionStore, catalog: Callable[..., RefCatalog]
) -> None:
    table = main.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    store.create_reference("v1", ReferenceType.TAG, "main")
    table.append(rows((2, "b")))
    table.update_schema().add_column("extra", StringType()).commit()

    tagged = catalog("v1")
    assert read(tagged.load_table(ORDERS)) == [(1, "a")]
    assert [f.name for f in tagged.load_table(ORDERS).schema().fields] == ["id", "name"]
    assert read(main.load_table(ORDERS)) == [(1, "a"), (2, "b")]


def test_writes_to_a_tag_fail_with_read_only_reference_error(
    main: RefCatalog, store: VersionStore, catalog: Callable[..., RefCatalog]
) -> None:
    main.create_table(ORDERS, SCHEMA).append(rows((1, "a")))
    store.create_reference("v1", ReferenceType.TAG, "main")
    tagged = catalog("v1")
    head = store.resolve("main").hash

    table = tagged.load_table(ORDERS)
    data = local(table.metadata.properties["write.data.path"])
    files_before = set(data.rglob("*.parquet"))
    with pytest.raises(ReadOnlyReferenceError, match="tag 'v1'"):
        table.append(rows((2, "b")))
    assert set(data.rglob("*.parquet")) == files_before  # refused before writing anything
    metadata = local(table.metadata_location).parent
    metadata_before = set(metadata.iterdir())
    with pytest.raises(ReadOnlyReferenceError, match="tag 'v1'"):
        table.transaction().set_properties(owner="x").commit_transaction()
    assert set(metadata.iterdir()) == metadata_before
    with pytest.raises(ReadOnlyReferenceError):
        tagged.create_table(("bronze", "other"), SCHEMA)
    with pytest.raises(ReadOnlyReferenceError):
        tagged.create_namespace("silver")
    with pytest.raises(ReadOnlyReferenceError):
        tagged.drop_table(ORDERS)
    with pytest.raises(ReadOnlyReferenceError):
        tagged.rename_table(ORDERS, ("bronze", "renamed"))

    assert store.resolve("main").hash == head
    assert read(tagged.load_table(ORDERS)) == [(1, "a")]


def test_a_catalog_pinned_to_name_at_hash_reads_that_commit_and_refuses_writes(
    main: RefCatalog, store: VersionStore, catalog: Callable[..., RefCatalog]
) -> None:
    table = main.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    pinned_hash = store.resolve("main").hash
    table.append(rows((2, "b")))

    pinned = catalog(f"main@{pinned_hash}")
    assert pinned.is_read_only
    assert read(pinned.load_table(ORDERS)) == [(1, "a")]
    with pytest.raises(ReadOnlyReferenceError, match=f"main@{pinned_hash}"):
        pinned.load_table(ORDERS).append(rows((3, "c")))
    with pytest.raises(ReadOnlyReferenceError):
        catalog("main~1").create_namespace("silver")
    assert read(main.load_table(ORDERS)) == [(1, "a"), (2, "b")]


# -- every kind of write is one commit on the branch ------------------------------------------


def _append(t: Table) -> None:
    t.append(rows((9, "z")))


def _overwrite(t: Table) -> None:
    t.overwrite(rows((7, "x"), (8, "y")))


def _delete(t: Table) -> None:
    t.delete("id == 2")


def _upsert(t: Table) -> None:
    t.upsert(rows((1, "A"), (5, "e")), join_cols=["id"])


def _evolve_schema(t: Table) -> None:
    with t.update_schema() as update:
        update.add_column("amount", LongType())


def _evolve_partitioning(t: Table) -> None:
    with t.update_spec() as update:
        update.add_identity("name")


@pytest.mark.parametrize(
    ("change", "operation", "expected"),
    [
        (_append, "append", [(1, "a"), (2, "b"), (9, "z")]),
        (_overwrite, "overwrite", [(7, "x"), (8, "y")]),
        (_delete, "delete", [(1, "a")]),
        (_upsert, "overwrite", [(1, "A"), (2, "b"), (5, "e")]),
        (_evolve_schema, "update-schema", [(1, "a"), (2, "b")]),
        (_evolve_partitioning, "update-spec", [(1, "a"), (2, "b")]),
    ],
    ids=["append", "overwrite", "delete", "upsert", "schema-evolution", "partition-evolution"],
)
def test_every_table_change_is_one_commit_on_the_branch(
    dev: RefCatalog,
    store: VersionStore,
    change: Callable[[Table], None],
    operation: str,
    expected: list[tuple[int, str]],
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    table.append(rows((2, "b")))
    before = table_content(store, "dev")
    commits_before = len(list(store.iter_log("dev")))

    change(table)

    assert len(list(store.iter_log("dev"))) == commits_before + 1
    meta = last_commit(store)
    assert meta.message == "Update table bronze.orders"
    assert meta.properties["application"] == "lakehouse"
    assert meta.properties["iceberg.operation"] == operation
    after = table_content(store, "dev")
    assert after.id == before.id
    assert after.metadata_location == table.metadata_location != before.metadata_location
    reloaded = dev.load_table(ORDERS)
    assert after.snapshot_id == (reloaded.metadata.current_snapshot_id or -1)
    assert after.schema_id == reloaded.metadata.current_schema_id
    assert after.spec_id == reloaded.metadata.default_spec_id
    assert after.sort_order_id == reloaded.metadata.default_sort_order_id
    assert read(reloaded) == expected
    # main never saw any of it
    assert store.entries("main", prefix=ContentKey.of("bronze")) == []


def test_schema_and_partition_ids_are_recorded_in_the_content(
    dev: RefCatalog, store: VersionStore
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    created = table_content(store, "dev")
    assert (created.snapshot_id, created.schema_id, created.spec_id) == (-1, 0, 0)
    table.update_schema().add_column("amount", LongType()).commit()
    table.update_spec().add_identity("name").commit()
    table.append(
        pa.Table.from_pylist([{"id": 1, "name": "a", "amount": 3}]).cast(
            pa.schema([*SCHEMA, pa.field("amount", pa.int64())])
        )
    )
    content = table_content(store, "dev")
    assert content.schema_id == 1
    assert content.spec_id == 1
    assert content.snapshot_id == table.metadata.current_snapshot_id


# -- files, locations and safety properties ------------------------------------------------------


def test_data_files_live_in_the_zone_bucket_and_metadata_in_iceberg_metadata(
    dev: RefCatalog, warehouse: Warehouse
) -> None:
    dev.create_namespace("analytics")
    bronze = dev.create_table(ORDERS, SCHEMA)
    bronze.append(rows((1, "a")))
    other = dev.create_table(("analytics", "daily"), SCHEMA)
    other.append(rows((1, "a")))

    meta_root = local(warehouse.bucket_uri("iceberg-metadata"))
    for table, zone in ((bronze, "bronze"), (other, "silver")):
        zone_root = local(warehouse.bucket_uri(zone))
        data_files = [local(task.file.file_path) for task in table.scan().plan_files()]
        assert data_files
        for path in data_files:
            assert path.is_relative_to(zone_root), path
            assert path.exists()
        snapshot = table.current_snapshot()
        assert snapshot is not None
        metadata_files = [
            table.metadata_location,
            snapshot.manifest_list,
            *(m.manifest_path for m in snapshot.manifests(table.io)),
        ]
        for uri in metadata_files:
            assert local(uri).is_relative_to(meta_root), uri
            assert local(uri).exists()
    assert local(bronze.metadata_location).is_relative_to(meta_root / "bronze")
    assert local(other.metadata_location).is_relative_to(meta_root / "analytics")
    # the zone element is not repeated inside the zone bucket
    assert local(bronze.location()).parent == local(warehouse.bucket_uri("bronze"))


def test_an_explicit_location_moves_the_data_but_not_the_metadata(
    dev: RefCatalog, warehouse: Warehouse, tmp_path: Path
) -> None:
    elsewhere = local(warehouse.bucket_uri("gold")) / "elsewhere"
    table = dev.create_table(ORDERS, SCHEMA, location=f"file://{elsewhere.as_posix()}")
    table.append(rows((1, "a")))
    assert all(
        local(t.file.file_path).is_relative_to(elsewhere / "data")
        for t in table.scan().plan_files()
    )
    assert local(table.metadata_location).is_relative_to(
        local(warehouse.bucket_uri("iceberg-metadata"))
    )
    # a location outside the warehouse is refused
    with pytest.raises(LocationNotAllowedError, match="not allowed"):
        dev.create_table(("bronze", "t2"), SCHEMA, location=(tmp_path / "outside").as_uri())


def test_warehouse_maps_every_bucket_locally_or_to_s3(tmp_path: Path) -> None:
    local_wh = Warehouse.local(tmp_path / "wh")
    assert local_wh.bucket_uri("bronze") == f"file://{(tmp_path / 'wh' / 'bronze').as_posix()}"
    assert sorted(p.name for p in local_wh.ensure_local_dirs()) == sorted(
        ["raw", "bronze", "silver", "gold", "iceberg-metadata"]
    )
    s3 = Warehouse.from_uri("s3://{bucket}")
    assert s3.bucket_uri("iceberg-metadata") == "s3://iceberg-metadata"
    data, metadata = s3.table_locations(("gold", "sales"), "daily", suffix="abc123")
    assert data == "s3://gold/sales/daily_abc123/data"
    assert metadata == "s3://iceberg-metadata/gold/sales/daily_abc123/metadata"
    first = local_wh.table_locations(("marts",), "t")
    second = local_wh.table_locations(("marts",), "t")
    assert first != second
    assert first.data.startswith(local_wh.bucket_uri("silver") + "/marts/t_")


def test_tables_carry_gc_disabled_and_never_delete_metadata_after_commit(
    dev: RefCatalog,
) -> None:
    table = dev.create_table(ORDERS, SCHEMA, properties={"owner": "team-a"})
    props = table.properties
    assert props["gc.enabled"] == "false"
    assert props["write.metadata.delete-after-commit.enabled"] == "false"
    assert props["owner"] == "team-a"
    assert props["write.data.path"].startswith(table.location())
    assert "/iceberg-metadata/bronze/orders_" in props["write.metadata.path"]


def test_turning_on_gc_or_metadata_deletion_is_refused(dev: RefCatalog) -> None:
    with pytest.raises(ValueError, match=r"gc\.enabled"):
        dev.create_table(ORDERS, SCHEMA, properties={"gc.enabled": "true"})
    table = dev.create_table(ORDERS, SCHEMA)
    with pytest.raises(ValidationException, match="delete-after-commit"):
        table.transaction().set_properties(
            {"write.metadata.delete-after-commit.enabled": "true"}
        ).commit_transaction()
    with pytest.raises(ValidationException, match=r"gc\.enabled"):
        table.transaction().remove_properties("gc.enabled").commit_transaction()
    assert dev.load_table(ORDERS).properties["gc.enabled"] == "false"


def test_old_metadata_files_still_exist_after_many_commits(
    dev: RefCatalog, store: VersionStore
) -> None:
    table = dev.create_table(
        ORDERS, SCHEMA, properties={"write.metadata.previous-versions-max": "2"}
    )
    for i in range(12):
        table.append(rows((i, str(i))))
    table.overwrite(rows((100, "x")))

    locations = set()
    for entry in store.iter_log("dev", fetch_operations=True):
        for op in entry.operations or ():
            if isinstance(op, Put) and isinstance(op.content, IcebergTable):
                locations.add(op.content.metadata_location)
    assert len(locations) == 14
    for location in locations:
        assert local(location).exists(), location
    for logged in table.metadata.metadata_log:
        assert local(logged.metadata_file).exists()
    for snapshot in table.metadata.snapshots:
        assert local(snapshot.manifest_list).exists()


def test_table_created_again_after_drop_gets_new_folders(dev: RefCatalog) -> None:
    first = dev.create_table(ORDERS, SCHEMA)
    first.append(rows((1, "a")))
    dev.drop_table(ORDERS)
    second = dev.create_table(ORDERS, SCHEMA)
    assert second.location() != first.location()
    assert local(second.metadata_location).parent != local(first.metadata_location).parent
    assert local(first.metadata_location).exists()


def test_register_table_adds_the_safety_properties(
    dev: RefCatalog, store: VersionStore, warehouse: Warehouse, tmp_path: Path
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    def foreign_table(root: Path) -> Table:
        other = SqlCatalog(
            "outside", uri=f"sqlite:///{tmp_path}/{root.name}.db", warehouse=root.as_uri()
        )
        other.create_namespace("ns")
        created = other.create_table(("ns", "t"), SCHEMA)
        created.append(rows((1, "a")))
        other.close()
        return created

    # metadata outside the warehouse is never read
    outside = foreign_table(tmp_path / "outside")
    with pytest.raises(LocationNotAllowedError):
        dev.register_table(("bronze", "imported"), outside.metadata_location)
    # files copied into the warehouse (here: written there) can be registered
    foreign = foreign_table(local(warehouse.bucket_uri("bronze")) / "imported")

    registered = dev.register_table(("bronze", "imported"), foreign.metadata_location)

    assert registered.properties["gc.enabled"] == "false"
    assert registered.properties["write.metadata.delete-after-commit.enabled"] == "false"
    assert registered.metadata_location != foreign.metadata_location
    assert local(foreign.metadata_location).exists()
    assert read(dev.load_table(("bronze", "imported"))) == [(1, "a")]
    assert last_commit(store).message == "Register table bronze.imported"
    with pytest.raises(TableAlreadyExistsError):
        dev.register_table(("bronze", "imported"), foreign.metadata_location)


# -- rename, drop, namespaces ------------------------------------------------------------------


def test_rename_keeps_the_content_id_in_one_commit(dev: RefCatalog, store: VersionStore) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    content_id = table_content(store, "dev").id
    commits = len(list(store.iter_log("dev")))

    renamed = dev.rename_table(ORDERS, ("bronze", "orders_v2"))

    assert len(list(store.iter_log("dev"))) == commits + 1
    assert last_commit(store).message == "Rename table bronze.orders to bronze.orders_v2"
    assert table_content(store, "dev", ContentKey.of("bronze", "orders_v2")).id == content_id
    assert not dev.table_exists(ORDERS)
    assert read(renamed) == [(1, "a")]


def test_rename_to_an_existing_table_or_missing_namespace_fails(dev: RefCatalog) -> None:
    dev.create_table(ORDERS, SCHEMA)
    dev.create_table(("bronze", "other"), SCHEMA)
    with pytest.raises(TableAlreadyExistsError):
        dev.rename_table(ORDERS, ("bronze", "other"))
    with pytest.raises(NoSuchNamespaceError, match="'gold' does not exist on 'dev'"):
        dev.rename_table(ORDERS, ("gold", "orders"))
    with pytest.raises(NoSuchTableError):
        dev.rename_table(("bronze", "missing"), ("bronze", "x"))


def test_drop_removes_the_table_from_the_branch_only_and_keeps_its_files(
    main: RefCatalog, store: VersionStore, catalog: Callable[..., RefCatalog]
) -> None:
    table = main.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    dev = catalog("dev")

    dev.drop_table(ORDERS)

    assert not dev.table_exists(ORDERS)
    assert last_commit(store).message == "Drop table bronze.orders"
    assert read(main.load_table(ORDERS)) == [(1, "a")]
    with pytest.raises(NoSuchTableError):
        dev.drop_table(ORDERS)
    main.purge_table(ORDERS)
    assert local(table.metadata_location).exists()
    assert all(local(t.file.file_path).exists() for t in table.scan().plan_files())


def test_create_table_in_a_missing_namespace_raises_no_such_namespace(
    dev: RefCatalog, store: VersionStore
) -> None:
    head = store.resolve("dev").hash
    with pytest.raises(NoSuchNamespaceError, match="namespace 'silver' does not exist on 'dev'"):
        dev.create_table(("silver", "orders"), SCHEMA)
    with pytest.raises(NoSuchNamespaceError, match="namespace 'silver' does not exist on 'dev'"):
        dev.create_table_transaction(("silver", "orders"), SCHEMA).commit_transaction()
    assert store.resolve("dev").hash == head


def test_create_table_twice_raises_table_already_exists(dev: RefCatalog) -> None:
    dev.create_table(ORDERS, SCHEMA)
    with pytest.raises(TableAlreadyExistsError, match=r"'bronze\.orders' already exists on 'dev'"):
        dev.create_table(ORDERS, SCHEMA)
    with pytest.raises(TableAlreadyExistsError):
        dev.create_table_transaction(ORDERS, SCHEMA).commit_transaction()
    assert dev.create_table_if_not_exists(ORDERS, SCHEMA).name() == ORDERS


def test_create_table_transaction_commits_table_and_data_at_once(
    dev: RefCatalog, store: VersionStore
) -> None:
    commits = len(list(store.iter_log("dev")))
    with dev.create_table_transaction(ORDERS, SCHEMA) as tx:
        tx.append(rows((1, "a")))
    assert len(list(store.iter_log("dev"))) == commits + 1
    assert last_commit(store).message == "Create table bronze.orders"
    table = dev.load_table(ORDERS)
    assert read(table) == [(1, "a")]
    assert table.properties["gc.enabled"] == "false"


def test_namespaces_are_content_with_properties(dev: RefCatalog, store: VersionStore) -> None:
    dev.create_namespace("silver", {"owner": "team-a"})
    dev.create_namespace(("silver", "sales"))
    with pytest.raises(NamespaceAlreadyExistsError):
        dev.create_namespace("silver")
    with pytest.raises(NoSuchNamespaceError, match="namespace 'gold' does not exist on 'dev'"):
        dev.create_namespace(("gold", "x"))

    assert dev.list_namespaces() == [("bronze",), ("silver",)]
    assert dev.list_namespaces("silver") == [("silver", "sales")]
    assert dev.load_namespace_properties("silver") == {"owner": "team-a"}
    namespace_id = store.get_content("dev", ContentKey.of("silver")).id

    summary = dev.update_namespace_properties("silver", removals={"owner"}, updates={"tier": "1"})
    assert summary.removed == ["owner"] and summary.updated == ["tier"]
    assert dev.load_namespace_properties("silver") == {"tier": "1"}
    assert store.get_content("dev", ContentKey.of("silver")).id == namespace_id
    assert last_commit(store).message == "Update namespace silver properties"

    with pytest.raises(NamespaceNotEmptyError):
        dev.drop_namespace("silver")
    dev.drop_namespace(("silver", "sales"))
    dev.drop_namespace("silver")
    assert not dev.namespace_exists("silver")
    with pytest.raises(NoSuchNamespaceError):
        dev.list_tables("silver")
    with pytest.raises(NoSuchNamespaceError):
        dev.drop_namespace("silver")


def test_views_are_content_too(dev: RefCatalog, store: VersionStore) -> None:
    version = ViewVersion(
        version_id=1,
        schema_id=0,
        representations=[
            ViewRepresentation(
                SQLViewRepresentation(type="sql", sql="SELECT 1 AS id", dialect="duckdb")
            )
        ],
        default_namespace=("bronze",),
    )
    view = dev.create_view(("bronze", "v"), Schema(NestedField(1, "id", LongType())), version)
    assert dev.list_views("bronze") == [("bronze", "v")]
    assert dev.view_exists(("bronze", "v"))
    assert dev.list_tables("bronze") == []
    loaded = dev.load_view(("bronze", "v"))
    assert loaded.metadata == view.metadata
    content = store.get_content("dev", ContentKey.of("bronze", "v"))
    assert isinstance(content, IcebergView)
    assert "/iceberg-metadata/bronze/v_" in content.metadata_location

    dev.drop_view(("bronze", "v"))
    assert not dev.view_exists(("bronze", "v"))
    with pytest.raises(NoSuchViewError):
        dev.load_view(("bronze", "v"))


# -- concurrency --------------------------------------------------------------------------------


def test_two_concurrent_appenders_both_land_without_losing_rows(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA)
    per_writer = 6
    start = threading.Barrier(2)

    def writer(w: int) -> None:
        table = catalog("dev").load_table(ORDERS)
        start.wait()
        for i in range(per_writer):
            table.append(rows((w * 100 + i, f"w{w}")))

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(writer, w) for w in (1, 2)]:
            future.result()

    table = dev.load_table(ORDERS)
    expected = sorted((w * 100 + i, f"w{w}") for w in (1, 2) for i in range(per_writer))
    assert read(table) == expected
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["total-records"] == str(2 * per_writer)
    assert len(table.history()) == 2 * per_writer


def test_a_stale_fast_append_is_rebased_onto_the_concurrent_head(
    dev: RefCatalog, catalog: Callable[..., RefCatalog], store: VersionStore
) -> None:
    # No PyIceberg-level retries: the rebase must come from the catalog itself.
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    dev.load_table(ORDERS).append(rows((1, "a")))
    first = catalog("dev").load_table(ORDERS)
    second = catalog("dev").load_table(ORDERS)

    first.append(rows((2, "b"), (3, "c")))
    winner = first.current_snapshot()
    # a transaction built on the stale metadata (Table.append would start from the head)
    with second.transaction() as tx:
        tx.append(rows((4, "d")))

    table = dev.load_table(ORDERS)
    assert read(table) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    rebased = table.current_snapshot()
    assert rebased is not None and winner is not None and rebased.summary is not None
    assert rebased.parent_snapshot_id == winner.snapshot_id
    assert rebased.sequence_number == (winner.sequence_number or 0) + 1
    assert rebased.summary.operation == SnapshotOperation.APPEND
    assert rebased.summary["added-records"] == "1"
    assert rebased.summary["total-records"] == "4"
    assert rebased.summary["total-data-files"] == "3"
    for manifest in rebased.manifests(table.io):
        if manifest.added_snapshot_id == rebased.snapshot_id:
            assert manifest.sequence_number == rebased.sequence_number
    assert table_content(store, "dev").snapshot_id == rebased.snapshot_id
    assert second.metadata_location == table.metadata_location


def test_a_stale_append_racing_a_delete_keeps_both(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    dev.load_table(ORDERS).append(rows((1, "a")))
    dev.load_table(ORDERS).append(rows((2, "b")))
    stale = catalog("dev").load_table(ORDERS)

    dev.load_table(ORDERS).delete("id == 1")
    with stale.transaction() as tx:  # built on the stale metadata
        tx.append(rows((3, "c")))

    table = dev.load_table(ORDERS)
    assert read(table) == [(2, "b"), (3, "c")]
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["total-records"] == "2"
    assert snapshot.summary["total-data-files"] == "2"


def _metadata_files(table: Table) -> tuple[set[str], set[str]]:
    """Names of the table's manifest lists and manifests on disk."""
    folder = local(table.metadata.properties["write.metadata.path"])
    avro = {p.name for p in folder.glob("*.avro")}
    lists = {name for name in avro if name.startswith("snap-")}
    return lists, avro - lists


def test_a_rebase_reuses_the_writers_manifests_and_writes_one_manifest_list(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    dev.load_table(ORDERS).append(rows((1, "a")))
    stale = catalog("dev").load_table(ORDERS)
    dev.load_table(ORDERS).append(rows((2, "b")))
    lists_before, manifests_before = _metadata_files(stale)

    with stale.transaction() as tx:
        tx.append(rows((3, "c")))

    lists, manifests = _metadata_files(stale)
    assert len(manifests - manifests_before) == 1  # the writer's own, reused by the rebase
    assert len(lists - lists_before) == 2  # the writer's stale list and the rebased one
    clear_manifest_cache()  # read the committed list afresh: no stale sequence numbers
    table = catalog("dev").load_table(ORDERS)
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.sequence_number == 3
    [own] = [m for m in snapshot.manifests(table.io) if m.added_snapshot_id == snapshot.snapshot_id]
    assert own.manifest_path.rsplit("/", 1)[-1] in manifests - manifests_before
    assert own.sequence_number == own.min_sequence_number == 3
    assert [e.sequence_number for e in own.fetch_manifest_entry(table.io)] == [3]
    assert read(table) == [(1, "a"), (2, "b"), (3, "c")]


def test_append_on_a_stale_table_starts_from_the_head_instead_of_rebasing(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    stale = catalog("dev").load_table(ORDERS)
    dev.load_table(ORDERS).append(rows((1, "a")))
    lists_before, _ = _metadata_files(stale)

    stale.append(rows((2, "b")))

    lists, _ = _metadata_files(stale)
    assert len(lists - lists_before) == 1  # built on the head: nothing to rebase
    assert read(dev.load_table(ORDERS)) == [(1, "a"), (2, "b")]
    assert len(stale.history()) == 2


def test_an_append_writes_its_data_files_and_manifest_before_queueing_for_the_commit_lock(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/lock.db")
    cat = RefCatalog("lakehouse", store, "main", warehouse, **{COMMIT_LOCK_TIMEOUT_MS: "60000"})
    cat.create_namespace("bronze")
    table = cat.create_table(ORDERS, SCHEMA)
    data = local(table.metadata.properties["write.data.path"])
    meta = local(table.metadata.properties["write.metadata.path"])
    pool = ThreadPoolExecutor(1)
    with store.commit_lock("main", [ORDERS_KEY], timeout=5) as held:
        assert held  # another writer is committing to the table
        appending = pool.submit(table.append, rows((1, "a")))
        deadline = time.monotonic() + 60
        # the rows and the manifest naming them are written meanwhile …
        while not (list(data.rglob("*.parquet")) and list(meta.glob("*-m0.avro"))):
            assert time.monotonic() < deadline and not appending.done()
            time.sleep(0.01)
        assert not appending.done()  # … and only the snapshot waits for the lock
        assert not list(meta.glob("snap-*.avro"))
    appending.result(timeout=60)
    pool.shutdown()
    assert read(cat.load_table(ORDERS)) == [(1, "a")]
    assert len(cat.load_table(ORDERS).history()) == 1


def _resolves(store: VersionStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The references ``store`` is asked to resolve from now on, in order."""
    calls: list[object] = []
    resolve = store.resolve

    def counting(ref: Any = None) -> Any:
        calls.append(ref)
        return resolve(ref)

    monkeypatch.setattr(store, "resolve", counting)
    return calls


def test_an_append_resolves_its_branch_three_times(
    dev: RefCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # once to refuse a tag before writing, once for the head under the commit lock and
    # once more for the expected hash; contents at a resolved hash need no resolving
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((0, "x")))
    calls = _resolves(dev.store, monkeypatch)
    for i in range(1, 4):
        calls.clear()
        table.append(rows((i, "x")))
        assert calls == ["dev", "dev", "dev"]
    assert len(read(table)) == 4


def test_a_commit_resolves_its_branch_once(
    dev: RefCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # for the head it reads, which also refuses a tag (before any file is written)
    table = dev.create_table(ORDERS, SCHEMA)
    calls = _resolves(dev.store, monkeypatch)
    table.transaction().set_properties(owner="x").commit_transaction()
    assert calls == ["dev"]
    assert dev.load_table(ORDERS).properties["owner"] == "x"
    # and so do the catalog's other writes
    calls.clear()
    dev.create_namespace("silver")
    assert calls == ["dev"]
    calls.clear()
    dev.drop_table(ORDERS)
    assert calls == ["dev"]


def test_an_append_whose_table_changed_layout_meanwhile_writes_its_rows_again(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA)
    stale = catalog("dev").load_table(ORDERS)
    with dev.load_table(ORDERS).update_schema() as update:
        update.add_column("note", StringType())

    stale.append(rows((1, "a")))

    table = dev.load_table(ORDERS)
    assert read(table) == [(1, "a")]
    [task] = table.scan().plan_files()
    # written for the table's schema at commit time, not for the stale one it was loaded with
    assert "note" in pq.read_schema(local(task.file.file_path)).names
    assert [f.name for f in table.schema().fields] == ["id", "name", "note"]


def test_another_writers_metadata_is_parsed_reusing_the_entries_already_known(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    for i in range(3):
        table.append(rows((i, "x")))
    reader = catalog("dev")
    before = reader.load_table(ORDERS).metadata
    table.append(rows((9, "y")))  # another catalog writes the next metadata file

    after = reader.load_table(ORDERS)
    assert after.metadata == FromInputFile.table_metadata(
        after.io.new_input(after.metadata_location)
    )
    assert len(after.metadata.snapshots) == 4
    assert all(a is b for a, b in zip(after.metadata.snapshots, before.snapshots, strict=False))
    assert all(
        a is b for a, b in zip(after.metadata.snapshot_log, before.snapshot_log, strict=False)
    )
    assert after.metadata.snapshots[3] not in before.snapshots


def test_a_known_snapshot_id_with_other_content_is_parsed_afresh(dev: RefCatalog) -> None:
    # a rebase rewrites a snapshot under the same id: only equal JSON is reused (in
    # PyIceberg's layout, which another engine writes, entries are matched one by one)
    table = dev.create_table(ORDERS, SCHEMA)
    for i in range(2):
        table.append(rows((i, "x")))
    text = local(table.metadata_location).read_text()
    memos: _BoundedCache[Any] = _BoundedCache(4)
    first = _parse_metadata(json.dumps(json.loads(text)), memos)
    data = json.loads(text)
    data["snapshots"][-1]["manifest-list"] += ".rebased"
    data["snapshot-log"][-1]["timestamp-ms"] += 1

    second = _parse_metadata(json.dumps(data), memos)

    assert second.snapshots[0] is first.snapshots[0]
    assert second.snapshots[-1].manifest_list.endswith(".rebased")
    assert second.snapshot_log[-1].timestamp_ms == first.snapshot_log[-1].timestamp_ms + 1
    assert second == TableMetadataUtil.parse_raw(json.dumps(data))


def test_a_file_in_our_layout_is_parsed_from_where_the_known_json_ends(dev: RefCatalog) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    for i in range(3):
        table.append(rows((i, "x")))
    written = table.metadata
    text = local(table.metadata_location).read_text()
    memos: _BoundedCache[Any] = _BoundedCache(4)

    same = _parse_metadata(text, memos)  # what this process wrote: every object reused
    assert all(a is b for a, b in zip(same.snapshots, written.snapshots, strict=True))
    assert same == TableMetadataUtil.parse_raw(text)

    # a different last snapshot (a rebase) in the same layout: the known JSON is no
    # longer a prefix, so the file is parsed afresh
    last = written.snapshots[-1].manifest_list
    changed = text.replace(last, last + ".rebased")
    other = _parse_metadata(changed, memos)
    assert other.snapshots[-1].manifest_list == last + ".rebased"
    assert other == TableMetadataUtil.parse_raw(changed)
    assert other.snapshots[-1] is not written.snapshots[-1]


def _process_appender(home: str, writer: int, count: int, out: Any) -> None:
    import lakehouse

    with lakehouse.connect(Path(home)) as lh:
        table = lh.table("bronze.orders", "main")
        for i in range(count):
            table.append(rows((writer * 1000 + i, f"w{writer}")))
    out.put(writer)


def test_appends_from_several_processes_land_exactly_once(tmp_path: Path) -> None:
    import multiprocessing as mp

    import lakehouse

    home = tmp_path / "home"
    with lakehouse.connect(home, create=True) as lh:
        lh.catalog("main").create_namespace("bronze")
        lh.catalog("main").create_table(ORDERS, SCHEMA)
    writers, count = 4, 6
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_appender, args=(str(home), w, count, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    done = sorted(out.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert done == list(range(writers))

    with lakehouse.connect(home) as lh:
        table = lh.table("bronze.orders", "main")
        expected = sorted((w * 1000 + i, f"w{w}") for w in range(writers) for i in range(count))
        assert read(table) == expected  # none lost, none twice
        chain = [entry.snapshot_id for entry in table.history()]
        assert len(chain) == writers * count
        for parent, child in itertools.pairwise(chain):
            snapshot = table.snapshot_by_id(child)
            assert snapshot is not None and snapshot.parent_snapshot_id == parent
        head = table.current_snapshot()
        assert head is not None and head.summary is not None
        assert head.summary["total-records"] == str(writers * count)


def test_columns_of_distinct_values_are_written_without_a_dictionary_of_every_value(
    dev: RefCatalog,
) -> None:
    # 40,000 distinct ids and names: once a column chunk's dictionary reaches 64 KiB the
    # writer goes on without one, instead of keeping all 32,768 values of a row group
    ours = dev.create_table(ORDERS, SCHEMA)
    assert ours.metadata.properties["write.parquet.dict-size-bytes"] == "65536"
    whole = dev.create_table(
        ("bronze", "whole"), SCHEMA, properties={"write.parquet.dict-size-bytes": "2097152"}
    )
    data = rows(*((i, f"customer-{i:08d}") for i in range(40_000)))
    sizes = []
    for table in (ours, whole):
        table.append(data)
        sizes.append(sum(t.file.file_size_in_bytes for t in table.scan().plan_files()))
    assert sizes[0] < 0.85 * sizes[1]
    assert read(ours) == read(whole)


def test_tables_merge_small_manifests_on_append_unless_they_say_otherwise(
    dev: RefCatalog,
) -> None:
    merged = dev.create_table(ORDERS, SCHEMA)
    assert merged.metadata.properties["commit.manifest-merge.enabled"] == "true"
    fast = dev.create_table(
        ("bronze", "fast"), SCHEMA, properties={"commit.manifest-merge.enabled": "false"}
    )
    assert fast.metadata.properties["commit.manifest-merge.enabled"] == "false"
    for table in (merged, fast):
        with table.transaction() as tx:
            tx.set_properties({"commit.manifest.min-count-to-merge": "3"})
        for i in range(5):
            table.append(rows((i, "x")))
    merged_head, fast_head = merged.current_snapshot(), fast.current_snapshot()
    assert merged_head is not None and fast_head is not None
    assert len(fast_head.manifests(fast.io)) == 5
    assert len(merged_head.manifests(merged.io)) < 5
    assert read(merged) == read(fast) == [(i, "x") for i in range(5)]


def test_staged_and_committed_metadata_are_what_pyiceberg_computes(
    dev: RefCatalog,
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    base, location = table.metadata, table.metadata_location
    tx = table.transaction()
    tx.set_properties({"owner": "ops"})
    tx.append(rows((2, "b")))
    updates = tx._updates

    ours = apply_updates(base, updates, location)
    theirs = update_table_metadata(base, updates, metadata_location=location)
    assert ours.model_dump() == theirs.model_dump() | {"last-updated-ms": ours.last_updated_ms}
    assert tx.table_metadata is tx.table_metadata  # computed once while nothing changes
    assert tx.table_metadata.model_dump() == update_table_metadata(base, updates).model_dump()
    assert ours.snapshots[0] is base.snapshots[0]  # shared, not copied
    assert json.loads(_metadata_json(ours)) == json.loads(ours.model_dump_json())


def test_metadata_json_reuses_the_last_arrays_only_after_the_same_objects(
    dev: RefCatalog,
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    for i in range(4):
        table.append(rows((i, "a")))
    base = table.metadata

    def same(metadata: TableMetadata) -> None:
        assert json.loads(_metadata_json(metadata)) == json.loads(metadata.model_dump_json())

    same(base)  # the arrays of this version are kept
    last = base.snapshots[-1]
    added = last.model_copy(update={"snapshot_id": last.snapshot_id + 1})
    entry = base.snapshot_log[-1].model_copy(update={"snapshot_id": added.snapshot_id})
    grown = base.model_copy(
        update={
            "snapshots": [*base.snapshots, added],
            "snapshot_log": [*base.snapshot_log, entry],
        }
    )
    same(grown)  # the kept arrays and the new items
    expired = grown.model_copy(
        update={"snapshots": grown.snapshots[2:], "snapshot_log": grown.snapshot_log[2:]}
    )
    same(expired)  # the first items are gone: joined anew
    copied = base.model_copy(deep=True)  # equal objects, not the same ones
    same(copied)
    same(base)


def test_a_commit_keeps_the_metadata_it_wrote_instead_of_reading_it_back(
    dev: RefCatalog,
) -> None:
    table = dev.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))
    local(table.metadata_location).unlink()  # gone from disk: only the catalog's copy is left
    again = dev.load_table(ORDERS)
    assert again.metadata is table.metadata
    again.append(rows((2, "b")))
    assert read(dev.load_table(ORDERS)) == [(1, "a"), (2, "b")]


class _InterferingStore(SqlStore):
    """Runs ``interfere`` once, just before the next commit: a deterministic race."""

    interfere: Callable[[], None] | None = None

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        hook, self.interfere = self.interfere, None
        if hook is not None:
            hook()
        return super().commit(branch, operations, meta, expected_hash=expected_hash)


def test_a_store_conflict_on_the_table_is_reloaded_and_rebased(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = _InterferingStore(f"sqlite:///{tmp_path}/race.db")
    cat = RefCatalog("lakehouse", store, "main", warehouse)
    cat.create_namespace("bronze")
    table = cat.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    table.append(rows((1, "a")))
    other_namespace_commits: list[str] = []

    def concurrent_writer() -> None:
        cat.load_table(ORDERS).append(rows((2, "b")))
        cat.create_namespace("silver")
        other_namespace_commits.append(store.resolve("main").hash)

    store.interfere = concurrent_writer
    table.append(rows((3, "c")))  # read before the interference, committed after it

    assert read(cat.load_table(ORDERS)) == [(1, "a"), (2, "b"), (3, "c")]
    messages = [e.meta.message for e in store.iter_log("main")]
    assert messages[:4] == [
        "Update table bronze.orders",
        "Create namespace silver",
        "Update table bronze.orders",
        "Update table bronze.orders",
    ]
    assert store.log("main", limit=2).entries[1].hash == other_namespace_commits[0]
    store.close()


def test_a_change_to_another_key_does_not_make_a_commit_retry(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = _InterferingStore(f"sqlite:///{tmp_path}/race.db")
    cat = RefCatalog("lakehouse", store, "main", warehouse)
    cat.create_namespace("bronze")
    table = cat.create_table(ORDERS, SCHEMA)
    written: list[str] = []
    store.interfere = lambda: cat.create_namespace("silver")
    original = cat._write_metadata

    def spy(metadata: Any, io: Any, path: str) -> None:
        written.append(path)
        original(metadata, io, path)

    cat._write_metadata = spy  # type: ignore[method-assign,assignment]
    table.append(rows((1, "a")))
    assert len(written) == 1  # committed at the first attempt, with the stale expected hash
    assert table.metadata_location == written[0]


def test_racing_schema_changes_fail_clearly(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA)
    first = catalog("dev").load_table(ORDERS)
    second = catalog("dev").load_table(ORDERS)
    first.update_schema().add_column("a", StringType()).commit()
    with pytest.raises(CommitFailedException, match=r"table 'bronze.orders' on branch 'dev'"):
        second.update_schema().add_column("b", StringType()).commit()
    assert [f.name for f in dev.load_table(ORDERS).schema().fields] == ["id", "name", "a"]


def test_a_schema_change_with_append_racing_an_append_is_not_rebased(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    first = catalog("dev").load_table(ORDERS)
    second = catalog("dev").load_table(ORDERS)
    first.append(rows((1, "a")))

    wide = pa.schema([*SCHEMA, pa.field("extra", pa.string())])
    with (
        pytest.raises(CommitFailedException, match="not a fast append") as info,
        second.transaction() as tx,
    ):
        with tx.update_schema() as update:
            update.add_column("extra", StringType())
        tx.append(pa.Table.from_pylist([{"id": 2, "name": "b", "extra": "x"}], schema=wide))
    assert "'bronze.orders' on branch 'dev'" in str(info.value)
    assert read(dev.load_table(ORDERS)) == [(1, "a")]


def test_a_stale_overwrite_fails_clearly_instead_of_losing_rows(
    dev: RefCatalog, catalog: Callable[..., RefCatalog]
) -> None:
    dev.create_table(ORDERS, SCHEMA, properties={"commit.retry.num-retries": "0"})
    dev.load_table(ORDERS).append(rows((1, "a")))
    first = catalog("dev").load_table(ORDERS)
    second = catalog("dev").load_table(ORDERS)
    first.append(rows((2, "b")))
    with pytest.raises(CommitFailedException, match=r"'bronze\.orders' on branch 'dev'"):
        second.overwrite(rows((9, "z")))
    assert read(dev.load_table(ORDERS)) == [(1, "a"), (2, "b")]


class _LostResponseStore(SqlStore):
    """Commits, then reports that the outcome is unknown (a response lost on the wire)."""

    lose_next = False

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        result = super().commit(branch, operations, meta, expected_hash=expected_hash)
        if self.lose_next:
            self.lose_next = False
            raise CommitStateUnknownError("connection lost after sending the commit")
        return result


def test_an_unknown_commit_outcome_propagates_and_deletes_no_file(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = _LostResponseStore(f"sqlite:///{tmp_path}/lossy.db")
    cat = RefCatalog("lakehouse", store, "main", warehouse)
    cat.create_namespace("bronze")
    table = cat.create_table(ORDERS, SCHEMA)
    table.append(rows((1, "a")))

    store.lose_next = True
    with pytest.raises(CommitStateUnknownException, match="unknown"):
        table.append(rows((2, "b")))

    landed = cat.load_table(ORDERS)
    assert read(landed) == [(1, "a"), (2, "b")]
    snapshot = landed.current_snapshot()
    assert snapshot is not None
    assert local(snapshot.manifest_list).exists()
    assert all(local(m.manifest_path).exists() for m in snapshot.manifests(landed.io))
    store.close()


def test_list_views_is_empty_and_unknown_tables_are_reported(dev: RefCatalog) -> None:
    assert dev.list_views("bronze") == []
    assert not dev.view_exists(("bronze", "nothing"))
    with pytest.raises(NoSuchTableError, match=r"'bronze\.nothing' does not exist on 'dev'"):
        dev.load_table(("bronze", "nothing"))
    with pytest.raises(NoSuchTableError):
        dev.load_table("orders")
