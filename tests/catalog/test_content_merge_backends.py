"""Content merges on every store: SQLite, PostgreSQL, our server and the real Nessie.

In process (SQLite, PostgreSQL) and against the real Nessie the merge is computed on the
client from the three sides' table metadata and lands as one store merge with the
resolved content. Our server offers to run it itself (``contentMerge``, advertised in
``GET /api/v2/config``): there the client sends one merge request and reads no table.
Either way the result, the per-table report and the commit are the same; ``wire_log``
shows which path each HTTP store took.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.types import StringType

from lakehouse.catalog.content_merge import content_merge
from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import ContentKey, ReferenceType
from lakehouse.catalog.nessie_store import NessieStore
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import MergeConflictError
from lakehouse.storage.zones import Warehouse
from tests.catalog.conftest import WireLog

KEY = ContentKey.of("bronze", "orders")
MERGE = "/history/merge"


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def fork(store: VersionStore, root: Path) -> tuple[RefCatalog, RefCatalog]:
    """``bronze.orders`` (ids 1, 2) on ``main``, and branch ``dev`` forked from it."""
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    main = RefCatalog("lakehouse", store, "main", warehouse)
    main.create_namespace("bronze")
    main.create_table("bronze.orders", schema=rows(1).schema).append(rows(1, 2))
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    return main, RefCatalog("lakehouse", store, "dev", warehouse)


@pytest.fixture
def sides(store: VersionStore, tmp_path: Path) -> tuple[RefCatalog, RefCatalog]:
    """:func:`fork` in ``tmp_path/warehouse`` (the warehouse the ``server`` store serves)."""
    return fork(store, tmp_path / "warehouse")


def ids(catalog: RefCatalog) -> list[int]:
    table = catalog.load_table("bronze.orders")
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def appended_on_both_sides(main: RefCatalog, dev: RefCatalog) -> None:
    main.load_table("bronze.orders").append(rows(3))
    dev.load_table("bronze.orders").append(rows(4))


def schema_changed_on_both_sides(main: RefCatalog, dev: RefCatalog) -> None:
    for side, column in ((main, "a"), (dev, "b")):
        with side.load_table("bronze.orders").update_schema() as update:
            update.add_column(column, StringType())


def check_where_it_ran(store_kind: str, wire: WireLog, *, dry_run: bool = False) -> None:
    """Our server merged by content itself; the real Nessie left it to the client."""
    merges = wire.posts(MERGE)
    if store_kind == "server":
        # one request that opts in, and the client read no table content of its own
        assert len(merges) == 1 and isinstance(merges[0], dict)
        assert merges[0]["contentMerge"] is True and merges[0]["dryRun"] is dry_run
        assert wire.posts("/contents") == []
    elif store_kind == "nessie":
        # the preview, then (unless a dry run) the merge carrying the resolved content
        assert len(merges) == (1 if dry_run else 2)
        assert all(isinstance(b, dict) and "contentMerge" not in b for b in merges)
        assert len(wire.posts("/contents")) == 3  # ancestor, target, source
    else:
        assert wire.requests == []


def test_appends_and_a_new_column_on_the_branch_merge_over_appends_on_main(
    store: VersionStore, store_kind: str, wire_log: WireLog, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    main, dev = sides
    main.load_table("bronze.orders").append(rows(3))
    branch = dev.load_table("bronze.orders")
    with branch.update_schema() as update:
        update.add_column("channel", StringType())
    branch.append(pa.table({"id": pa.array([4], pa.int64()), "channel": ["web"]}))
    wire_log.requests.clear()
    result = content_merge(store, "dev", "main", io_properties={})
    check_where_it_ran(store_kind, wire_log)
    assert result.result.was_successful and [t.merged for t in result.tables] == [True]
    assert ids(main) == [1, 2, 3, 4]
    merged = main.load_table("bronze.orders")
    assert merged.schema().find_field("channel").field_type == StringType()
    head = store.log("main", limit=1).entries[0]
    assert len(head.meta.parent_hashes) == 2  # one merge commit, as any store merge
    assert result.result.resultant_target_hash == head.hash


def test_a_dry_run_reports_each_table_and_commits_nothing(
    store: VersionStore, store_kind: str, wire_log: WireLog, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    main, dev = sides
    appended_on_both_sides(main, dev)
    before = store.resolve("main").hash
    wire_log.requests.clear()
    result = content_merge(store, "dev", "main", io_properties={}, dry_run=True)
    check_where_it_ran(store_kind, wire_log, dry_run=True)
    [table] = result.tables
    assert table.key == KEY and table.merged
    assert table.description == (
        "merged by content (appends on the source (1 data file(s)) applied on top of the target)"
    )
    assert result.result.was_successful and not result.result.was_applied
    assert result.result.conflicts == []
    assert store.resolve("main").hash == before and ids(main) == [1, 2, 3]


def test_a_conflict_commits_nothing_on_any_store(
    store: VersionStore, store_kind: str, wire_log: WireLog, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    schema_changed_on_both_sides(*sides)
    before = store.resolve("main").hash
    wire_log.requests.clear()
    with pytest.raises(MergeConflictError, match="both sides changed the schema, differently"):
        content_merge(store, "dev", "main", io_properties={})
    assert store.resolve("main").hash == before
    if store_kind != "nessie":  # on Nessie the client stops after the preview
        check_where_it_ran(store_kind, wire_log, dry_run=False)


def test_a_conflict_comes_back_as_a_report_with_its_reason(
    store: VersionStore, sides: tuple[RefCatalog, RefCatalog]
) -> None:
    schema_changed_on_both_sides(*sides)
    before = store.resolve("main").hash
    result = content_merge(store, "dev", "main", io_properties={}, raise_on_conflict=False)
    [table] = result.tables
    assert table.key == KEY and not table.merged
    assert table.description.startswith("conflict: both sides changed the schema, differently")
    [conflict] = result.result.conflicts
    assert conflict.key == KEY and conflict.message == table.description
    assert not result.result.was_successful and not result.result.was_applied
    assert store.resolve("main").hash == before


@pytest.fixture
def server_without_content_merge(tmp_path: Path, wire_log: WireLog) -> Iterator[NessieStore]:
    """Our server with the opt-in switched off: it behaves as the real Nessie."""
    from lakehouse.server import ServerSettings
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    backing = SqlStore(f"sqlite:///{tmp_path}/served.db")
    server = make_server(
        backing,
        "127.0.0.1",
        0,
        settings=ServerSettings(content_merge=False),
        log_level="warning",
        iceberg=IcebergRestSettings(Warehouse.local(tmp_path / "warehouse")),
    )
    with serving(server) as port:
        client = NessieStore(f"http://127.0.0.1:{port}/api/v2", timeout=30, transport=wire_log)
        try:
            yield client
        finally:
            client.close()
            backing.close()


def test_a_server_that_does_not_offer_it_gets_the_merge_computed_on_the_client(
    server_without_content_merge: NessieStore, wire_log: WireLog, tmp_path: Path
) -> None:
    store = server_without_content_merge
    main, dev = fork(store, tmp_path / "warehouse")
    appended_on_both_sides(main, dev)
    assert not store.offers_content_merge
    wire_log.requests.clear()
    result = content_merge(store, "dev", "main", io_properties={})
    check_where_it_ran("nessie", wire_log)  # the real Nessie's path
    assert [t.merged for t in result.tables] == [True] and ids(main) == [1, 2, 3, 4]


def test_on_server_false_computes_the_merge_on_the_client_even_where_offered(
    served_store: VersionStore, wire_log: WireLog, tmp_path: Path
) -> None:
    main, dev = fork(served_store, tmp_path / "warehouse")
    appended_on_both_sides(main, dev)
    wire_log.requests.clear()
    result = content_merge(served_store, "dev", "main", io_properties={}, on_server=False)
    check_where_it_ran("nessie", wire_log)
    assert [t.merged for t in result.tables] == [True] and ids(main) == [1, 2, 3, 4]
