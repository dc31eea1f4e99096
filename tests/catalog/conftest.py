"""Stores under test: every behaviour test runs against each VersionStore backend."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.catalog.store import VersionStore

NESSIE_URL_ENV = "LAKEHOUSE_TEST_NESSIE_URL"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.integration),
        "server",
        pytest.param("nessie", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStore]:
    """A fresh, empty versioned catalog on each backend.

    ``server``: our Nessie API v2 server (``lakehouse serve``) over a SQLite store, on a
    loopback port, spoken to by NessieStore. ``nessie``: the real Nessie server.
    """
    if request.param == "server":
        yield request.getfixturevalue("served_store")
        return
    if request.param == "nessie":
        yield request.getfixturevalue("fresh_nessie_store")
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/catalog.db"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    s = SqlStore(url)
    yield s
    s.close()


class WireLog(httpx.BaseTransport):
    """An HTTP transport that records every request a NessieStore sends (method, path, body)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str, object]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def posts(self, suffix: str) -> list[object]:
        """The bodies of the POSTs to paths ending with ``suffix`` (e.g. ``/history/merge``)."""
        return [b for m, p, b in self.requests if m == "POST" and p.endswith(suffix)]


@pytest.fixture
def wire_log() -> WireLog:
    """What the ``server`` and ``nessie`` stores sent (empty for the in-process stores)."""
    return WireLog()


@pytest.fixture
def served_store(tmp_path: Path, wire_log: WireLog) -> Iterator[VersionStore]:
    """A NessieStore talking HTTP to our own server (uvicorn thread) over a fresh SqlStore.

    The server serves the warehouse ``tmp_path/warehouse`` (Iceberg REST, and the
    ``contentMerge`` opt-in of merges); the client's requests are in ``wire_log``.
    """
    from lakehouse.catalog.nessie_store import NessieStore
    from lakehouse.server import ServerSettings
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings
    from lakehouse.storage.zones import Warehouse

    backing = SqlStore(f"sqlite:///{tmp_path}/served.db")
    iceberg = IcebergRestSettings(Warehouse.local(tmp_path / "warehouse"))
    server = make_server(
        backing, "127.0.0.1", 0, settings=ServerSettings(), log_level="warning", iceberg=iceberg
    )
    with serving(server) as port:
        client = NessieStore(f"http://127.0.0.1:{port}/api/v2", timeout=30, transport=wire_log)
        try:
            yield client
        finally:
            client.close()
            backing.close()


@pytest.fixture
def fresh_nessie_store(wire_log: WireLog) -> Iterator[VersionStore]:
    """A NessieStore on the shared test server (scripts/services/nessie.sh), emptied first.

    The server is shared, so each test holds an inter-process lock on it (safe under
    pytest-xdist) and starts from a clean repository: every reference except the
    default branch deleted, the default branch assigned back to the beginning
    ("no ancestor") hash. Old commits stay in the server's store, unreachable.
    """
    from lakehouse.catalog.nessie_store import NessieStore

    url = os.environ.get(NESSIE_URL_ENV)
    if not url:
        pytest.fail(
            f"{NESSIE_URL_ENV} is not set: run `make test-integration` "
            "(or `scripts/services/nessie.sh start` and export the URL it prints)",
            pytrace=False,
        )
    netloc = urlsplit(url).netloc.replace(":", "_")
    lock_path = Path(tempfile.gettempdir()) / f"lakehouse-test-nessie-{netloc}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _reset_nessie(url)
        store = NessieStore(url, timeout=30, transport=wire_log)
        try:
            yield store
        finally:
            store.close()


def _reset_nessie(url: str) -> None:
    """Delete every reference but the default branch and rewind that to the beginning."""
    import httpx

    with httpx.Client(
        base_url=url.rstrip("/") + "/", headers={"Nessie-Client-Spec": "2"}, timeout=30
    ) as client:
        config = client.get("config").raise_for_status().json()
        default = config["defaultBranch"]
        beginning = config["noAncestorHash"]
        token: str | None = None
        while True:
            page = client.get("trees", params={"page-token": token} if token else {})
            data = page.raise_for_status().json()
            for ref in data["references"]:
                path = quote(f"{ref['name']}@{ref['hash']}", safe="/@")
                if ref["name"] == default:
                    if ref["hash"] != beginning:
                        body = {"type": "BRANCH", "name": default, "hash": beginning}
                        client.put(f"trees/{path}", json=body).raise_for_status()
                else:
                    client.delete(f"trees/{path}").raise_for_status()
            token = data.get("token")
            if not data.get("hasMore") or not token:
                break


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which backend the ``store`` fixture is: sqlite, postgres, server or nessie.

    Tests of our extensions over Nessie (docs/compatibility.md) skip on ``nessie``.
    """
    return str(request.node.callspec.params["store"])
