"""SqlStore's schema migrations: a catalog created by an older Lakehouse upgrades in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakehouse.catalog.model import ContentKey, IcebergTable, Namespace, Put, ReferenceType
from lakehouse.catalog.sql_store import SCHEMA_VERSION, SqlStore
from lakehouse.errors import InvalidInputError

NS = ContentKey.of("bronze")
T1 = ContentKey.of("bronze", "orders")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/catalog.db"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


def _schema_1_catalog(url: str) -> tuple[str, str]:
    """A catalog as Lakehouse with schema 1 left it: main and dev with commits.

    Schema 2 only added tables, so dropping them (and writing version 1) gives exactly
    the database a schema-1 Lakehouse wrote.
    """
    store = SqlStore(url)
    store.commit("main", [Put(NS, Namespace(NS.elements))], "namespace")
    store.create_reference("dev", ReferenceType.BRANCH)
    dev = store.commit("dev", [Put(T1, IcebergTable("file:///m/1.json"))], "t1").hash
    main = store.get_reference("main").hash
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE lh_ref_log"))
        conn.execute(sa.text("DROP TABLE lh_repo_config"))
        conn.execute(sa.text("UPDATE lh_meta SET value = '1' WHERE key = 'schema_version'"))
    store.close()
    return main, dev


def test_a_schema_1_catalog_upgrades_in_place(url: str) -> None:
    assert SCHEMA_VERSION == 2
    main, dev = _schema_1_catalog(url)
    store = SqlStore(url)
    try:
        with store.engine.connect() as conn:
            version = conn.execute(
                sa.text("SELECT value FROM lh_meta WHERE key = 'schema_version'")
            ).scalar()
        assert version == "2"
        assert store.get_reference("dev").hash == dev
        # each reference's log starts at its head at the upgrade
        history = store.reference_history("dev")
        assert history.current.hash == dev and history.previous == ()
        after = store.commit("dev", [Put(T1, store.get_content("dev", T1))], "again").hash
        assert [s.hash for s in store.reference_history("dev").previous] == [dev]
        assert store.reference_history("dev").current.hash == after
        assert store.reference_history("main").current.hash == main
        assert store.repository_config(["GARBAGE_COLLECTOR"]) == []
    finally:
        store.close()
    SqlStore(url).close()  # opening an up-to-date catalog again changes nothing


def test_a_newer_schema_is_refused(url: str) -> None:
    SqlStore(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE lh_meta SET value = '99' WHERE key = 'schema_version'"))
        with pytest.raises(InvalidInputError, match="newer than this Lakehouse supports"):
            SqlStore(url, engine=engine)  # our engine: disposed below, though the store fails
    finally:
        engine.dispose()
