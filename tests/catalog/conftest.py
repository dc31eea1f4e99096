"""Stores under test: every behaviour test runs against each VersionStore backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.catalog.store import VersionStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStore]:
    """A fresh, empty versioned catalog on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/catalog.db"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    s = SqlStore(url)
    yield s
    s.close()
