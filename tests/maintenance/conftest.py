"""Fixtures for maintenance tests: an embedded lakehouse and small-file tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.table import Table

import lakehouse
from lakehouse.catalog.files import TableWalker
from lakehouse.catalog.model import ContentKey
from lakehouse.client import Lakehouse
from lakehouse.maintenance.policies import Policies
from lakehouse.storage.objects import canonical

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def batch(start: int, n: int = 10, tag: str = "x") -> pa.Table:
    """``n`` rows with ids ``start..start+n-1``."""
    return pa.Table.from_pylist(
        [{"id": i, "name": f"{tag}{i}"} for i in range(start, start + n)], schema=SCHEMA
    )


def rows(table: Table) -> list[tuple[int, str]]:
    """Every row of ``table``, sorted (duplicates kept)."""
    data = table.scan().to_arrow().select(["id", "name"]).to_pylist()
    return sorted((r["id"], r["name"]) for r in data)


def table_files(table: Table) -> set[str]:
    """Every file the table version references (metadata, lists, manifests, data)."""
    walker = TableWalker(table.io)
    key = ContentKey(tuple(table.name()))
    out = set()
    for tf in walker.table_files(key, "test", table.metadata_location):
        assert tf.error is None, tf.error
        out.add(canonical(tf.path))
    return out


def warehouse_files(lh: Lakehouse) -> set[str]:
    """Every file under the warehouse folders (canonical URIs)."""
    out = set()
    for bucket in lh.warehouse.buckets:
        root = lh.warehouse.local_path(bucket)
        for dirpath, _, names in os.walk(root):
            for name in names:
                out.add(canonical(str(Path(dirpath) / name)))
    return out


def exists(uri: str) -> bool:
    """True if the local file at canonical ``uri`` exists."""
    return Path(uri.removeprefix("file://")).exists()


def aggressive(**changes: Any) -> Policies:
    """The most aggressive policies: keep 1 snapshot and 1 commit, no grace, compact 2 files."""
    policies = Policies().with_changes(
        snapshots={"keep_last": 1, "max_age": timedelta(0)},
        compaction={"min_small_files": 2, "max_manifests": 1},
        gc={"grace_period": timedelta(0), "references": [{"pattern": "*", "keep_commits": 1}]},
    )
    return policies.with_changes(**changes) if changes else policies


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """An empty embedded lakehouse with namespaces bronze and silver on main."""
    with lakehouse.connect(_isolate_lakehouse_config, create=True) as house:
        catalog = house.catalog("main")
        catalog.create_namespace_if_not_exists("bronze")
        catalog.create_namespace_if_not_exists("silver")
        yield house


def make_table(lh: Lakehouse, name: str, appends: int, *, ref: str = "main", n: int = 10) -> Table:
    """Create ``name`` on ``ref`` with ``appends`` small appends of ``n`` rows each."""
    table = lh.catalog(ref).create_table(name, SCHEMA)
    for i in range(appends):
        table.append(batch(i * n, n, tag=name.rsplit(".", 1)[-1][:1]))
    return table
