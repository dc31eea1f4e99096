"""The server under test: the app over a fresh SqlStore on a temporary SQLite file.

``client`` drives the app in-process through httpx's ASGI transport (a blocking
portal runs the event loop, so tests stay synchronous). It sends
``Nessie-Client-Spec: 2`` unless a test overrides it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import ServerSettings, create_app
from tests.server.helpers import ApiClient


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path}/catalog.db")
    yield s
    s.close()


@pytest.fixture
def settings() -> ServerSettings:
    return ServerSettings()


@pytest.fixture
def app(store: SqlStore, settings: ServerSettings) -> FastAPI:
    return create_app(store, settings=settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[ApiClient]:
    with ApiClient(app) as c:
        yield c
