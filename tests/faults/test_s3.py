"""Faults between the lakehouse and MinIO (S3) during ingestion, expiry + GC and backup.

The warehouse lives on MinIO behind a Toxiproxy proxy; the catalog is on PostgreSQL.
Each operation runs with every S3 connection reset (``reset_peer``) or every reply cut after
a few bytes (``limit_data``). Whatever happens — the operation fails with an error, or the
S3 client's own retries get it through — once the network heals a rerun completes, and:
no acknowledged row is lost or doubled, ``catalog check`` is clean, and GC deleted no file
a reference still needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings
from lakehouse.ingest import FolderSource, ingest
from lakehouse.maintenance import collect_garbage, expire_snapshots
from lakehouse.ops import check, create_backup, verify_backup
from tests.faults.conftest import through
from tests.faults.toxiproxy import Proxy

pytestmark = pytest.mark.integration

FAULTS: dict[str, Callable[[Proxy], object]] = {
    "reset": lambda p: p.reset_peer(stream="downstream"),
    "cut replies": lambda p: p.cut_after(200, stream="downstream"),
}


@pytest.fixture
def lakehouse(
    s3_settings: dict[str, str],
    s3_proxy: Proxy,
    prefix: str,
    fresh_postgres_url: str,
    tmp_path: Path,
) -> Iterator[Lakehouse]:
    settings = Settings(
        profile="cluster",
        home=tmp_path / "home",
        catalog={"uri": fresh_postgres_url},
        warehouse=f"s3://{{bucket}}/{prefix}",
        s3={**s3_settings, "endpoint": through(s3_settings["endpoint"], s3_proxy)},
    )
    with connect(settings=settings, create=True) as lh:
        yield lh


def ids(lh: Lakehouse) -> list[int]:
    return sorted(lh.table("bronze.orders").scan().to_arrow().column("id").to_pylist())


def assert_clean(lh: Lakehouse) -> None:
    report = check(lh)
    assert report.ok, [p for t in report.tables for p in t.problems]


def seed(lh: Lakehouse, inbox: Path) -> FolderSource:
    inbox.mkdir()
    (inbox / "a.csv").write_text("id,name\n1,a\n2,b\n")
    source = FolderSource(name="shop", path=str(inbox), table="orders")
    ingest(lh, source)
    (inbox / "b.csv").write_text("id,name\n3,c\n")
    ingest(lh, source)
    return source


def under_fault(proxy: Proxy, fault: str, operation: Callable[[], object]) -> str:
    """Run ``operation`` with ``fault`` on every S3 connection; how it ended."""
    FAULTS[fault](proxy)
    try:
        operation()
    except Exception as exc:  # any error is acceptable here; the invariants are checked after
        return type(exc).__name__
    finally:
        proxy.clear()
    return "completed"


@pytest.mark.parametrize("fault", FAULTS)
def test_ingestion_under_s3_faults_then_a_rerun_loads_each_file_once(
    lakehouse: Lakehouse, s3_proxy: Proxy, fault: str, tmp_path: Path
) -> None:
    source = seed(lakehouse, tmp_path / "inbox")
    (tmp_path / "inbox" / "c.csv").write_text("id,name\n4,d\n5,e\n")
    outcome = under_fault(s3_proxy, fault, lambda: ingest(lakehouse, source))
    assert outcome != "completed", "every S3 reply failed, yet the ingestion reported success"
    ingest(lakehouse, source)
    assert ids(lakehouse) == [1, 2, 3, 4, 5]
    assert sum(r.rows_loaded for r in ingest(lakehouse, source)) == 0
    assert_clean(lakehouse)


@pytest.mark.parametrize("fault", FAULTS)
def test_expiry_and_gc_under_s3_faults_delete_nothing_that_is_needed(
    lakehouse: Lakehouse, s3_proxy: Proxy, fault: str, tmp_path: Path
) -> None:
    seed(lakehouse, tmp_path / "inbox")

    def maintain() -> None:
        expire_snapshots(lakehouse)
        collect_garbage(lakehouse)

    outcome = under_fault(s3_proxy, fault, maintain)
    assert outcome != "completed"
    assert_clean(lakehouse)  # a GC whose walk or listing failed deleted nothing needed
    maintain()
    assert ids(lakehouse) == [1, 2, 3]
    assert_clean(lakehouse)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_backup_under_s3_faults_is_redone_and_verifies(
    lakehouse: Lakehouse, s3_proxy: Proxy, fault: str, tmp_path: Path
) -> None:
    seed(lakehouse, tmp_path / "inbox")
    dest = str(tmp_path / "backups")
    outcome = under_fault(s3_proxy, fault, lambda: create_backup(lakehouse, dest))
    assert outcome != "completed"
    create_backup(lakehouse, dest)
    assert verify_backup(dest, settings=lakehouse.settings).ok
    assert ids(lakehouse) == [1, 2, 3]
    assert_clean(lakehouse)
