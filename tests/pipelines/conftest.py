"""Fixtures of the pipeline tests: a fresh lakehouse, bronze tables and pipeline folders."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect


@pytest.fixture
def lh(tmp_path: Path) -> Iterator[Lakehouse]:
    """A new embedded lakehouse in ``tmp_path/home``."""
    with connect(tmp_path / "home", create=True) as opened:
        yield opened


def bronze(lh: Lakehouse, name: str, data: pa.Table, branch: str = "main") -> None:
    """Create (or append to) table ``name`` on ``branch``."""
    catalog = lh.catalog(branch)
    namespace = name.split(".")[0]
    if not catalog.namespace_exists(namespace):
        catalog.create_namespace(namespace)
    if catalog.table_exists(name):
        catalog.load_table(name).append(data)
    else:
        catalog.create_table(name, schema=data.schema).append(data)


def write_pipeline(
    root: Path, name: str, yaml: str, files: Mapping[str, str] | None = None
) -> Path:
    """Write ``root/name/pipeline.yaml`` and ``files`` (relative path → text); return the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(textwrap.dedent(yaml), encoding="utf-8")
    for relative, text in (files or {}).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def rows(lh: Lakehouse, sql: str, ref: str | None = None) -> list[dict[str, object]]:
    """The result of ``sql`` as a list of rows."""
    result: list[dict[str, object]] = lh.sql(sql, ref).to_pylist()
    return result
