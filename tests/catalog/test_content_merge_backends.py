"""Content merges on every store: SQLite, PostgreSQL, our server and the real Nessie.

The merge is computed on the client from the three sides' table metadata and lands as
one store merge with the resolved content, so it must behave the same whichever
``VersionStore`` holds the branches (the real Nessie knows nothing of content merges).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.types import StringType

from lakehouse.catalog.content_merge import content_merge
from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import ContentKey, ReferenceType
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import MergeConflictError
from lakehouse.storage.zones import Warehouse

KEY = ContentKey.of("bronze", "orders")


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


@pytest.fixture
def sides(store: VersionStore, tmp_path: Path) -> tuple[RefCatalog, RefCatalog]:
    """``bronze.orders`` (ids 1, 2) on ``main``, and branch ``dev`` forked from it."""
    warehouse = Warehouse.local(tmp_path / "warehouse")
    warehouse.ensure_local_dirs()
    main = RefCatalog("lakehouse", store, "main", warehouse)
    main.create_namespace("bronze")
    main.create_table("bronze.orders", schema=rows(1).schema).append(rows(1, 2))
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    return main, RefCatalog("lakehouse", store, "dev", warehouse)


def ids(catalog: RefCatalog) -> list[int]:
    table = catalog.load_table("bronze.orders")
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def test_appends_and_a_new_column_on_the_branch_merge_over_appends_on_main(
    store: VersionStore, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    main, dev = sides
    main.load_table("bronze.orders").append(rows(3))
    branch = dev.load_table("bronze.orders")
    with branch.update_schema() as update:
        update.add_column("channel", StringType())
    branch.append(pa.table({"id": pa.array([4], pa.int64()), "channel": ["web"]}))
    result = content_merge(store, "dev", "main", io_properties={})
    assert result.result.was_successful and [t.merged for t in result.tables] == [True]
    assert ids(main) == [1, 2, 3, 4]
    merged = main.load_table("bronze.orders")
    assert merged.schema().find_field("channel").field_type == StringType()
    head = store.log("main", limit=1).entries[0]
    assert len(head.meta.parent_hashes) == 2  # one merge commit, as any store merge


def test_a_conflict_commits_nothing_on_any_store(
    store: VersionStore, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    main, dev = sides
    for side, column in ((main, "a"), (dev, "b")):
        with side.load_table("bronze.orders").update_schema() as update:
            update.add_column(column, StringType())
    before = store.resolve("main").hash
    with pytest.raises(MergeConflictError, match="both sides changed the schema, differently"):
        content_merge(store, "dev", "main", io_properties={})
    assert store.resolve("main").hash == before
