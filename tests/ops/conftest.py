"""Fixtures of the ops tests (builders and comparisons live in ``helpers.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse
from tests.conftest import new_database
from tests.ops.helpers import build_rich_lakehouse


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def rich_lakehouse(home: Path) -> Iterator[Lakehouse]:
    lh = build_rich_lakehouse(home)
    yield lh
    lh.close()


@pytest.fixture
def second_postgres_url(postgres_url: str) -> Iterator[str]:
    """Another empty database: the disaster-recovery target."""
    with new_database(postgres_url, f"lh_restore_{uuid.uuid4().hex[:8]}") as fresh:
        yield fresh
