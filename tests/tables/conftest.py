"""Fixtures for row-level write tests: an embedded lakehouse and a keyed table."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.table import Table

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("amount", pa.float64()),
    ]
)


def make_rows(ids: list[int], tag: str = "v") -> pa.Table:
    """Rows ``{id, name: f"{tag}{id}", amount: id / 2}``."""
    return pa.Table.from_pylist(
        [{"id": i, "name": f"{tag}{i}", "amount": i / 2} for i in ids], schema=SCHEMA
    )


def keys(ids: list[int]) -> pa.Table:
    """A one-column ``id`` table."""
    return pa.table({"id": pa.array(ids, pa.int64())})


def content(table: Table) -> dict[int, tuple[str | None, float | None]]:
    """The table's rows through PyIceberg's reader, by id (asserting ids are unique)."""
    data = table.scan().to_arrow().to_pylist()
    out = {r["id"]: (r["name"], r["amount"]) for r in data}
    assert len(out) == len(data), "a key is in the table twice"
    return out


@pytest.fixture
def lh(tmp_path: Path) -> Lakehouse:
    """A fresh embedded lakehouse with namespace ``s``."""
    lake = lakehouse.connect(tmp_path / "home", create=True)
    lake.catalog("main").create_namespace("s")
    return lake


@pytest.fixture
def new_table(lh: Lakehouse) -> Callable[..., Table]:
    """Create ``s.<name>`` on main with the lakehouse's default properties and first rows."""

    def make(
        name: str = "t",
        ids: list[int] | None = None,
        properties: dict[str, str] | None = None,
        batches: int = 1,
    ) -> Table:
        catalog = lh.catalog("main")
        props = {**DEFAULT_TABLE_PROPERTIES, **(properties or {})}
        table = catalog.create_table(f"s.{name}", schema=SCHEMA, properties=props)
        ids = list(range(100)) if ids is None else ids
        step = max(1, -(-len(ids) // batches))
        for start in range(0, len(ids), step):
            table.append(make_rows(ids[start : start + step]))
        return catalog.load_table(f"s.{name}")

    return make


@pytest.fixture
def decoded_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The value columns upserts read to compare rows, one list per read (spied on)."""
    module = importlib.import_module("lakehouse.tables.upsert")
    decoded: list[list[str]] = []
    reader = module.read_columns

    def spy(*args: Any, **kwargs: Any) -> pa.Table:
        decoded.append(args[3])
        return reader(*args, **kwargs)

    monkeypatch.setattr(module, "read_columns", spy)
    return decoded
