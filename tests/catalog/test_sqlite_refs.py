"""Reading a reference's head from an embedded catalog with sqlite3: the store's answer, or none.

:func:`reference_head` is a shortcut past SQLAlchemy for commands that only resolve a
name; it must agree with :class:`SqlStore` on every branch and tag and answer ``None``
(ask the store) whenever it is not sure.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lakehouse.catalog.model import ContentKey, Namespace, Put, ReferenceType
from lakehouse.catalog.sql_store import SCHEMA_VERSION, SqlStore
from lakehouse.catalog.sqlite_refs import reference_head

NS = ContentKey.of("bronze")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A catalog with main (one commit), branch dev and tag v1."""
    path = tmp_path / "catalog.db"
    store = SqlStore(f"sqlite:///{path}")
    try:
        store.commit("main", [Put(NS, Namespace(NS.elements))], "namespace")
        store.create_reference("dev", ReferenceType.BRANCH)
        store.create_reference("v1", ReferenceType.TAG)
        store.commit("dev", [Put(ContentKey.of("silver"), Namespace(("silver",)))], "dev only")
    finally:
        store.close()
    return path


def test_every_reference_reads_as_the_store_has_it(database: Path) -> None:
    store = SqlStore(f"sqlite:///{database}")
    try:
        references = store.list_references()
    finally:
        store.close()
    assert {r.name for r in references} == {"main", "dev", "v1"}
    for ref in references:
        assert reference_head(database, ref.name) == (ref.type, ref.hash)


@pytest.mark.parametrize("spec", ["nope", "Main", "main~1", "main^1", "@0000", ""])
def test_a_name_that_is_not_a_reference_is_left_to_the_store(database: Path, spec: str) -> None:
    assert reference_head(database, spec) is None


def test_another_schema_version_is_left_to_the_store(database: Path) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute(
            "UPDATE lh_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    assert reference_head(database, "main") is None


def test_a_file_that_is_no_catalog_is_left_to_the_store_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert reference_head(missing, "main") is None
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert reference_head(empty, "main") is None
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert reference_head(folder, "main") is None


def test_reading_writes_nothing(database: Path) -> None:
    before = database.read_bytes()
    assert reference_head(database, "main") is not None
    assert database.read_bytes() == before
