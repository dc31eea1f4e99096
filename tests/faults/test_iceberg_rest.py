"""The Iceberg REST path with faults: PyIceberg's ``RestCatalog`` → `lakehouse serve` → PostgreSQL.

A fault is armed just before the client's table commit
(``POST …/v1/{prefix}/namespaces/{ns}/tables/{table}``) leaves it:

* ``reply to the client lost`` — `lakehouse serve` runs as a user runs it (a subprocess, on
  PostgreSQL); PyIceberg's own ``RestCatalog`` talks to it through a Toxiproxy proxy. The
  server commits, the client's connection closes before any byte of the answer.
  PyIceberg 0.12 surfaces it as ``requests``' ``ConnectionError`` (it maps only
  500/502/504 answers to ``CommitStateUnknownException``); either way the
  client cannot tell and must not clean up. The commit landed exactly once, its files are
  all there, and the identical request sent again is refused with 409
  ``CommitFailedException`` (its requirement, the old snapshot, no longer holds): it cannot
  land a second time. An *application* retry is a new append: PyIceberg rebases an append
  that meets a 409 (``commit.retry.num-retries``, 4 by default), so the application first
  looks for its own idempotency key in the snapshot summaries — as Lakehouse's ingestion
  does — and, on a table with ``commit.retry.num-retries`` 0 (Lakehouse's ingestion
  tables), the stale ``append`` is refused too.
* ``server's database reply lost`` — the same server in the test's process, its SQL store on
  PostgreSQL behind a proxy: PostgreSQL commits the table commit, its answer to ``COMMIT``
  is lost. The server answers 500 ``CommitStateUnknownException`` (PyIceberg raises it), never
  a success it cannot vouch for nor a 409/503 that would say nothing landed; the commit
  landed once, and the server serves the next commit once the network is back.

After each: ``catalog check`` clean, no row doubled, what landed is what the answer allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import requests
from pyiceberg.catalog import load_catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
)
from requests.adapters import HTTPAdapter

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.client import Lakehouse
from lakehouse.config import Settings
from lakehouse.ops import check
from lakehouse.server import ServerSettings
from lakehouse.server.app import make_server, serving
from lakehouse.server.iceberg_rest import IcebergRestSettings
from lakehouse.storage import Warehouse
from tests.faults.arming import arm_before_commit
from tests.faults.conftest import host_port, through
from tests.faults.services import lakehouse_serve, remote_lakehouse
from tests.faults.toxiproxy import Proxy

pytestmark = pytest.mark.integration

#: PyIceberg's rebase of an append that met a 409 (0: refuse instead).
NO_REBASE = "commit.retry.num-retries"
#: The application's idempotency key, in the snapshot summary.
BATCH_KEY = "app.batch-id"
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def rows(*ids: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": f"n{i}"} for i in ids], schema=SCHEMA)


def is_table_commit(request: requests.PreparedRequest) -> bool:
    """PyIceberg's ``commit_table``: ``POST …/v1/{prefix}/namespaces/{ns}/tables/{table}``."""
    path = request.path_url.split("?", 1)[0]
    parts = path.rstrip("/").split("/")
    return request.method == "POST" and len(parts) >= 3 and parts[-2] == "tables"


@dataclass
class ArmedAdapter(HTTPAdapter):
    """A ``requests`` adapter that runs an action before the first matching request."""

    armed: list[tuple[Callable[[requests.PreparedRequest], bool], Callable[[], object]]] = field(
        default_factory=list
    )
    sent: list[requests.PreparedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        action = None
        with self._lock:
            for i, (when, armed) in enumerate(self.armed):
                if when(request):
                    del self.armed[i]
                    action = armed
                    break
        if action is not None:
            action()
            self.sent.append(request)
        return super().send(request, *args, **kwargs)


@dataclass
class Served:
    api_proxy: Proxy
    adapter: ArmedAdapter
    rest: RestCatalog
    lh: Lakehouse


@pytest.fixture
def served(
    fresh_postgres_url: str, proxy_to: Callable[[str], Proxy], tmp_path: Path
) -> Iterator[Served]:
    home = tmp_path / "server-home"
    with lakehouse_serve(fresh_postgres_url, home) as api:
        api_proxy = proxy_to(host_port(api))
        base = through(api, api_proxy).removesuffix("api/v2").rstrip("/")
        rest = load_catalog(
            "rest",
            type="rest",
            uri=f"{base}/iceberg/",
            prefix="main",
            warehouse=str(home / "warehouse"),
        )
        assert isinstance(rest, RestCatalog)
        adapter = ArmedAdapter()
        rest._session.mount(base, adapter)
        # the lakehouse's own view of the catalog, straight to the server (no proxy)
        lh = remote_lakehouse(api, home / "warehouse")
        try:
            yield Served(api_proxy, adapter, rest, lh)
        finally:
            api_proxy.clear()
            lh.close()


def ids(lh: Lakehouse) -> list[int]:
    return sorted(lh.table("bronze.orders", "main").scan().to_arrow().column("id").to_pylist())


@contextmanager
def connect_to(store: SqlStore, root: Path) -> Iterator[Lakehouse]:
    """The lakehouse of ``store`` and the local warehouse at ``root``."""
    settings = Settings(home=root.parent / "client-home", warehouse=str(root))
    yield Lakehouse(store, Warehouse.local(root), settings)


def assert_check_clean(lh: Lakehouse) -> None:
    report = check(lh, ["main"])
    assert report.ok, [p for t in report.tables for p in t.problems]
    assert report.files_checked > 0


def test_a_cut_reply_to_a_rest_commit_is_not_a_failure_and_a_retry_cannot_land_twice(
    served: Served,
) -> None:
    rest, lh = served.rest, served.lh
    rest.create_namespace("bronze")
    table = rest.create_table("bronze.orders", SCHEMA, properties={NO_REBASE: "0"})
    table.append(rows(1, 2))
    snapshots = len(lh.table("bronze.orders", "main").snapshots())

    served.adapter.armed.append((is_table_commit, lambda: served.api_proxy.cut_after(0)))
    with pytest.raises(requests.ConnectionError):
        table.append(rows(3, 4), snapshot_properties={BATCH_KEY: "batch-2"})
    assert served.adapter.sent, "the fault was never armed: the test proved nothing"
    served.api_proxy.clear()

    # the server applied it once; every file it points at exists
    assert ids(lh) == [1, 2, 3, 4]
    assert len(lh.table("bronze.orders", "main").snapshots()) == snapshots + 1
    assert_check_clean(lh)

    # the identical request again: its requirement (the old snapshot) no longer holds
    lost = served.adapter.sent[-1]
    assert isinstance(lost.body, bytes)
    with httpx.Client(timeout=30) as http:
        again = http.post(
            str(lost.url),
            content=lost.body,
            headers={"Content-Type": "application/json"},
        )
    assert again.status_code == 409, again.text
    assert again.json()["error"]["type"] == "CommitFailedException"
    # the append again on the table object it had (no rebase on this table): refused too
    with pytest.raises(CommitFailedException):
        table.append(rows(3, 4), snapshot_properties={BATCH_KEY: "batch-2"})
    assert ids(lh) == [1, 2, 3, 4]
    assert len(lh.table("bronze.orders", "main").snapshots()) == snapshots + 1
    # how an application resolves the unknown outcome: its key is in the history, done
    table.refresh()
    assert [s.summary.get(BATCH_KEY) for s in table.snapshots()].count("batch-2") == 1
    table.append(rows(5))
    assert ids(lh) == [1, 2, 3, 4, 5]
    assert_check_clean(lh)


@pytest.fixture
def in_process(
    fresh_postgres_url: str, proxy_to: Callable[[str], Proxy], tmp_path: Path
) -> Iterator[tuple[SqlStore, Proxy, RestCatalog, ArmedAdapter]]:
    """The same server in this process (its store's engine can be armed), PostgreSQL proxied."""
    pg_proxy = proxy_to(host_port(fresh_postgres_url))
    root = tmp_path / "warehouse"
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    store = SqlStore(through(fresh_postgres_url, pg_proxy))
    server = make_server(
        store,
        "127.0.0.1",
        0,
        settings=ServerSettings(),
        log_level="critical",
        iceberg=IcebergRestSettings(warehouse, warehouse_location=str(root)),
    )
    try:
        with serving(server) as port:
            base = f"http://127.0.0.1:{port}"
            rest = load_catalog(
                "rest", type="rest", uri=f"{base}/iceberg/", prefix="main", warehouse=str(root)
            )
            assert isinstance(rest, RestCatalog)
            adapter = ArmedAdapter()
            rest._session.mount(base, adapter)
            yield store, pg_proxy, rest, adapter
    finally:
        pg_proxy.clear()
        store.close()


def test_a_rest_commit_whose_database_reply_is_lost_is_commit_state_unknown_and_landed_once(
    in_process: tuple[SqlStore, Proxy, RestCatalog, ArmedAdapter], tmp_path: Path
) -> None:
    store, pg_proxy, rest, adapter = in_process
    rest.create_namespace("bronze")
    table = rest.create_table("bronze.orders", SCHEMA, properties={NO_REBASE: "0"})
    table.append(rows(1, 2))
    fired: list[list[int]] = []
    adapter.armed.append(
        (
            is_table_commit,
            lambda: fired.append(
                arm_before_commit(store.engine, lambda: pg_proxy.cut_after(0), writes_only=True)
            ),
        )
    )
    # PostgreSQL commits, the server never hears it: 500 CommitStateUnknownException
    with pytest.raises(CommitStateUnknownException, match="outcome"):
        table.append(rows(3, 4), snapshot_properties={BATCH_KEY: "batch-2"})
    assert fired and fired[0], "the fault was never armed: the test proved nothing"
    pg_proxy.clear()

    with connect_to(store, tmp_path / "warehouse") as lh:
        assert ids(lh) == [1, 2, 3, 4]  # landed, once; every file it points at exists
        assert_check_clean(lh)
        table.refresh()
        assert [s.summary.get(BATCH_KEY) for s in table.snapshots()].count("batch-2") == 1
        table.append(rows(5))  # the server serves commits again
        assert ids(lh) == [1, 2, 3, 4, 5]
        assert_check_clean(lh)
