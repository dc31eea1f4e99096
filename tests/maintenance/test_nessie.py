"""Maintenance over the real Nessie server (integration tier): same behaviour as on SqlStore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.catalog.store import VersionStore
from lakehouse.client import Lakehouse
from lakehouse.config import load_settings
from lakehouse.maintenance import (
    approve_branch,
    collect_garbage,
    compact,
    expire_snapshots,
    merge_approved_branches,
)
from lakehouse.maintenance.policies import Policies
from lakehouse.storage.zones import Warehouse
from tests.catalog.conftest import fresh_nessie_store, wire_log  # noqa: F401  (fixtures)

from .conftest import aggressive, batch, exists, make_table, rows, table_files

pytestmark = pytest.mark.integration


@pytest.fixture
def nessie_lh(fresh_nessie_store: VersionStore, tmp_path: Path) -> Iterator[Lakehouse]:  # noqa: F811
    settings = load_settings(home=tmp_path / "home", warehouse=str(tmp_path / "warehouse"))
    warehouse = Warehouse.from_uri(settings.warehouse_location)
    warehouse.ensure_local_dirs()
    house = Lakehouse(fresh_nessie_store, warehouse, settings)
    catalog = house.catalog("main")
    catalog.create_namespace_if_not_exists("bronze")
    yield house


def test_gc_keeps_what_a_branch_and_a_tag_reach(nessie_lh: Lakehouse) -> None:
    lh = nessie_lh
    make_table(lh, "bronze.orders", 4)
    lh.create_branch("b", "main")
    lh.create_tag("t", "main")
    for i in range(4, 8):
        lh.table("bronze.orders").append(batch(i * 10))
    kept = {
        ref: (rows(lh.table("bronze.orders", ref)), table_files(lh.table("bronze.orders", ref)))
        for ref in ("b", "t")
    }
    policies = aggressive()
    compact(lh, policies=policies)
    expire_snapshots(lh, policies=policies)
    result = collect_garbage(lh, policies=policies)
    assert result.deleted.files > 0
    for ref, (data, files) in kept.items():
        assert rows(lh.table("bronze.orders", ref)) == data
        assert all(exists(f) for f in files), ref


def test_approval_and_merge(nessie_lh: Lakehouse) -> None:
    lh = nessie_lh
    make_table(lh, "bronze.orders", 2)
    lh.create_branch("feature", "main")
    lh.branch("feature").table("bronze.orders").append(batch(500, 3))
    expected = rows(lh.table("bronze.orders", "feature"))
    approve_branch(lh, "feature")
    result = merge_approved_branches(lh, policies=Policies())
    assert [b.state for b in result.branches] == ["merged"]
    assert rows(lh.table("bronze.orders")) == expected
