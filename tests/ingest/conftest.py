"""Fixtures of the ingestion tests: a fresh embedded lakehouse and an inbox folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakehouse
from lakehouse.client import Lakehouse


@pytest.fixture
def lh(tmp_path: Path) -> Iterator[Lakehouse]:
    """An embedded lakehouse in ``tmp_path/home`` (SQLite catalog, local warehouse)."""
    with lakehouse.connect(tmp_path / "home", create=True) as lake:
        yield lake


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An empty folder that sources read from."""
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def raw_root(lh: Lakehouse) -> Path:
    """The local folder of the ``raw`` bucket."""
    return lh.warehouse.local_path("raw")


def raw_files(lh: Lakehouse) -> list[str]:
    """Every file in the ``raw`` bucket, relative, sorted."""
    root = raw_root(lh)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def manifests(lh: Lakehouse) -> list[dict[str, Any]]:
    """Every landing manifest in ``raw``, oldest batch first."""
    found = sorted(raw_root(lh).glob("*/*/*/*/*/_manifest.json"), key=lambda p: p.parent.name)
    return [json.loads(p.read_text()) for p in found]


def rows(lh: Lakehouse, table: str, ref: str = "main", *columns: str) -> list[tuple[Any, ...]]:
    """The rows of ``table`` on ``ref`` (data columns only unless named), sorted."""
    data = lh.table(table, ref).scan().to_arrow()
    names = list(columns) or [c for c in data.column_names if not c.startswith("_")]
    return sorted(zip(*(data.column(n).to_pylist() for n in names), strict=True), key=repr)
