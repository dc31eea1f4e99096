"""The ambiguous commit: the catalog server applied a commit, the client never heard back.

Toxiproxy sits between the lakehouse (``NessieStore``) and the catalog server — our own
(`lakehouse serve` on PostgreSQL) and the real Nessie (shared: a proxy in front, a branch of
its own, never restarted). A toxic is armed just before the commit request leaves the client:

* ``reply lost`` — ``limit_data`` of 0 bytes on the downstream: the request arrives, the server
  commits, the connection closes before any byte of the answer;
* ``reply timeout`` — ``timeout`` on the downstream: the answer never comes, the client's read
  timeout (2 s here) expires;
* ``request cut`` — ``limit_data`` on the upstream after 60 bytes: the server gets half a
  request and commits nothing; the client cannot tell this from the first two.

Every one must surface as *unknown* (``CommitStateUnknownException`` / ``…Error``), never as a
failure the caller would clean up after or retry blindly: no file is deleted (``catalog check``
clean on the branch), no row is doubled, and what landed is exactly what the server applied.
Re-running an idempotent operation (ingestion) resolves the unknown outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitStateUnknownException

from lakehouse.client import Lakehouse
from lakehouse.errors import CommitStateUnknownError
from lakehouse.ingest import FolderSource, ingest
from lakehouse.ops import check
from tests.faults.arming import ArmedTransport, is_commit, is_merge
from tests.faults.conftest import host_port, through
from tests.faults.services import empty_branch, remote_lakehouse
from tests.faults.toxiproxy import Proxy

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def rows(*ids: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": f"n{i}"} for i in ids], schema=SCHEMA)


@dataclass
class Wired:
    """A lakehouse whose catalog traffic goes through ``proxy``; writes go to ``branch``."""

    lh: Lakehouse
    proxy: Proxy
    transport: ArmedTransport
    branch: str

    def arm(self, when: Callable[..., bool], fault: Callable[[Proxy], object]) -> None:
        self.transport.arm(when, lambda: fault(self.proxy))


FAULTS: dict[str, Callable[[Proxy], object]] = {
    "reply lost": lambda p: p.cut_after(0, stream="downstream"),
    "reply timeout": lambda p: p.stall(stream="downstream"),
    "request cut": lambda p: p.cut_after(60, stream="upstream"),
}
#: Whether the server received the whole request (and so applied the commit).
APPLIED = {"reply lost": True, "reply timeout": True, "request cut": False}


@pytest.fixture
def wired(catalog_api: str, proxy_to: Callable[[str], Proxy], tmp_path: Path) -> Iterator[Wired]:
    proxy = proxy_to(host_port(catalog_api))
    transport = ArmedTransport()
    lh = remote_lakehouse(
        through(catalog_api, proxy), tmp_path / "warehouse", transport=transport, timeout=2
    )
    branch = empty_branch(lh)
    try:
        yield Wired(lh, proxy, transport, branch)
    finally:
        proxy.clear()
        lh.delete_branch(branch)
        lh.close()


def commits_of(lh: Lakehouse, branch: str) -> list[str]:
    return [entry.meta.message for entry in lh.log(branch, limit=None)]


def ids(lh: Lakehouse, table: str, branch: str) -> list[int]:
    return sorted(lh.table(table, branch).scan().to_arrow().column("id").to_pylist())


def assert_check_clean(lh: Lakehouse, branch: str) -> None:
    report = check(lh, [branch])
    assert report.ok, [p for t in report.tables for p in t.problems]
    assert report.files_checked > 0


@pytest.mark.parametrize("fault", FAULTS)
def test_an_append_whose_commit_outcome_is_lost_is_unknown_and_lands_at_most_once(
    wired: Wired, fault: str
) -> None:
    lh, branch = wired.lh, wired.branch
    catalog = lh.catalog(branch)
    catalog.create_namespace("bronze")
    table = catalog.create_table("bronze.orders", SCHEMA)
    table.append(rows(1, 2, 3))
    before = commits_of(lh, branch)

    wired.arm(is_commit, FAULTS[fault])
    with pytest.raises(CommitStateUnknownException, match="outcome of the commit is unknown"):
        lh.table("bronze.orders", branch).append(rows(4, 5))
    assert wired.transport.fired, "the fault was never armed: the test proved nothing"
    wired.proxy.clear()

    after = commits_of(lh, branch)
    expected = [1, 2, 3, 4, 5] if APPLIED[fault] else [1, 2, 3]
    assert len(after) == len(before) + (1 if APPLIED[fault] else 0)  # applied once, or not at all
    assert ids(lh, "bronze.orders", branch) == expected  # nothing doubled, nothing half-applied
    assert_check_clean(lh, branch)  # the new metadata file was not deleted


@pytest.mark.parametrize("fault", ["reply lost", "request cut"])
def test_rerunning_an_ingestion_whose_commit_outcome_was_unknown_loads_every_file_once(
    wired: Wired, fault: str, tmp_path: Path
) -> None:
    lh, branch = wired.lh, wired.branch
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("id,name\n1,a\n2,b\n")
    source = FolderSource(name="shop", path=str(inbox), table="orders")
    ingest(lh, source, branch=branch)  # the table exists, with one batch
    (inbox / "b.csv").write_text("id,name\n3,c\n4,d\n")

    wired.arm(is_commit, FAULTS[fault])
    with pytest.raises(CommitStateUnknownException):
        ingest(lh, source, branch=branch)
    assert wired.transport.fired
    wired.proxy.clear()

    rerun = ingest(lh, source, branch=branch)  # the rerun finds out what landed
    loaded = sum(r.rows_loaded for r in rerun)
    assert loaded == (0 if APPLIED[fault] else 2)
    assert ids(lh, "bronze.orders", branch) == [1, 2, 3, 4]
    assert sum(r.rows_loaded for r in ingest(lh, source, branch=branch)) == 0
    assert_check_clean(lh, branch)


def test_a_merge_whose_reply_is_lost_is_unknown_and_a_rerun_finds_it_applied(
    wired: Wired,
) -> None:
    lh, branch = wired.lh, wired.branch
    catalog = lh.catalog(branch)
    catalog.create_namespace("silver")
    catalog.create_table("silver.sales", SCHEMA).append(rows(1, 2))
    audit = f"{branch}-audit"
    lh.create_branch(audit, branch)
    try:
        lh.table("silver.sales", audit).append(rows(3))
        wired.arm(is_merge, FAULTS["reply lost"])
        with pytest.raises(CommitStateUnknownError, match="may or may not have been applied"):
            lh.merge(audit, branch)
        wired.proxy.clear()
        assert ids(lh, "silver.sales", branch) == [1, 2, 3]
        # publishing again is harmless: nothing new to merge, nothing doubled
        lh.merge(audit, branch)
        assert ids(lh, "silver.sales", branch) == [1, 2, 3]
        assert_check_clean(lh, branch)
    finally:
        lh.delete_branch(audit)
