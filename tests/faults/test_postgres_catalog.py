"""Faults between the lakehouse and PostgreSQL, the SQL catalog store, during ingestion.

Toxiproxy sits between the SQL store and PostgreSQL. A toxic is armed just before the
store's write transaction sends ``COMMIT`` (:func:`tests.faults.arming.arm_before_commit`):

* ``reply lost`` — ``limit_data`` of 0 bytes downstream: PostgreSQL commits, the client never
  hears it: the store must report an unknown outcome (``CommitStateUnknownError``), never a
  failure, and delete nothing;
* ``reset`` — ``reset_peer`` on the upstream: the connection is reset as ``COMMIT`` leaves, so
  PostgreSQL rolls the transaction back; the client cannot tell, so it is unknown too.

Either way a rerun of the ingestion resolves the outcome: each file lands exactly once and
``catalog check`` is clean.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pyiceberg.exceptions import CommitStateUnknownException

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.client import connect
from lakehouse.ingest import FolderSource, ingest
from lakehouse.ops import check
from tests.faults.arming import arm_before_commit
from tests.faults.conftest import host_port, through
from tests.faults.toxiproxy import Proxy

pytestmark = pytest.mark.integration

FAULTS: dict[str, Callable[[Proxy], object]] = {
    "reply lost": lambda p: p.cut_after(0, stream="downstream"),
    "reset": lambda p: p.reset_peer(stream="upstream"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_an_ingestion_whose_catalog_commit_is_cut_is_resolved_by_a_rerun(
    fault: str, fresh_postgres_url: str, proxy_to: Callable[[str], Proxy], tmp_path: Path
) -> None:
    proxy = proxy_to(host_port(fresh_postgres_url.replace("postgresql+psycopg", "postgresql")))
    url = through(fresh_postgres_url, proxy)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("id,name\n1,a\n2,b\n")
    source = FolderSource(name="shop", path=str(inbox), table="orders")
    with connect(url, create=True, warehouse=str(tmp_path / "warehouse")) as lh:
        ingest(lh, source)
        (inbox / "b.csv").write_text("id,name\n3,c\n4,d\n")
        assert isinstance(lh.store, SqlStore)
        fired = arm_before_commit(lh.store.engine, lambda: FAULTS[fault](proxy))
        with pytest.raises(CommitStateUnknownException, match="outcome of the commit is unknown"):
            ingest(lh, source)
        assert fired, "the fault was never armed: the test proved nothing"
        proxy.clear()

    with connect(url, warehouse=str(tmp_path / "warehouse")) as lh:
        rerun = ingest(lh, source)
        assert sum(r.rows_loaded for r in rerun) in (0, 2)
        got = sorted(lh.table("bronze.orders").scan().to_arrow().column("id").to_pylist())
        assert got == [1, 2, 3, 4]  # every acknowledged row, each once
        assert sum(r.rows_loaded for r in ingest(lh, source)) == 0
        report = check(lh)
        assert report.ok, [p for t in report.tables for p in t.problems]
