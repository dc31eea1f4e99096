"""Faults between the lakehouse and MinIO (S3) during ingestion, expiry + GC and backup.

The warehouse lives on MinIO behind a Toxiproxy proxy; the catalog is on PostgreSQL.
Each operation runs with every S3 connection reset (``reset_peer``) or every reply cut after
a few bytes (``limit_data``), either from start to end or from a point in the middle
(:func:`tests.faults.arming.arm_on_call`): an ingestion after its raw files are landed, or
after its data files are written but before the table's new metadata file; GC after its
first delete; a backup after its first two copies. Whatever happens — the operation fails
with an error, or the S3 client's own retries get it through — once the network heals a
rerun completes, and: no acknowledged row is lost or doubled, ``catalog check`` is clean,
GC deleted no file a reference still needs and its next pass deletes what the first left,
and a failed backup is never listed as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings
from lakehouse.errors import StorageError
from lakehouse.ingest import FolderSource, bronze, ingest
from lakehouse.maintenance import collect_garbage, expire_snapshots
from lakehouse.maintenance.policies import Policies
from lakehouse.ops import check, create_backup, list_backups, verify_backup
from lakehouse.storage.objects import Storage
from tests.faults.arming import arm_on_call
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


# -- faults that start in the middle of an operation ------------------------------------------

#: Where an ingestion is when S3 starts failing: (owner, function) called at that moment.
INGEST_PHASES: dict[str, tuple[object, str]] = {
    # the data files are written (streamed before anything lands) and the raw files
    # landed; the manifests and the metadata file are not
    "after landing": (bronze, "finish_append"),
    # the data files and manifests are written; the new metadata file is not
    "before the metadata file": (RefCatalog, "_write_metadata"),
}


@pytest.mark.parametrize("phase", INGEST_PHASES)
def test_an_ingestion_whose_s3_fails_midway_leaves_nothing_half_done_and_a_rerun_loads_once(
    lakehouse: Lakehouse,
    s3_proxy: Proxy,
    phase: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = seed(lakehouse, tmp_path / "inbox")
    (tmp_path / "inbox" / "c.csv").write_text("id,name\n4,d\n5,e\n")
    owner, name = INGEST_PHASES[phase]
    fired = arm_on_call(monkeypatch, owner, name, lambda: s3_proxy.reset_peer())
    with pytest.raises((OSError, StorageError)):  # pyarrow's, or ours naming the file
        ingest(lakehouse, source)
    assert fired, "the fault was never armed: the test proved nothing"
    s3_proxy.clear()
    monkeypatch.undo()

    assert ids(lakehouse) == [1, 2, 3]  # nothing of the failed batch is visible
    assert_clean(lakehouse)
    assert sum(r.rows_loaded for r in ingest(lakehouse, source)) == 2
    assert ids(lakehouse) == [1, 2, 3, 4, 5]
    assert sum(r.rows_loaded for r in ingest(lakehouse, source)) == 0
    assert_clean(lakehouse)


def aggressive() -> Policies:
    """Keep one snapshot and one commit, no grace period: most files become garbage."""
    return Policies().with_changes(
        snapshots={"keep_last": 1, "max_age": timedelta(0)},
        gc={"grace_period": timedelta(0), "references": [{"pattern": "*", "keep_commits": 1}]},
    )


def test_gc_whose_s3_fails_after_its_first_delete_deletes_nothing_live_and_the_next_pass_finishes(
    lakehouse: Lakehouse, s3_proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = seed(lakehouse, tmp_path / "inbox")
    for i in range(3):  # more history, so more garbage once expired
        (tmp_path / "inbox" / f"more{i}.csv").write_text(f"id,name\n{10 + i},x\n")
        ingest(lakehouse, source)
    policies = aggressive()
    expire_snapshots(lakehouse, policies=policies)
    planned = collect_garbage(lakehouse, policies=policies, dry_run=True)
    assert planned.candidates.files >= 2, "no garbage to collect: the test would prove nothing"

    fired = arm_on_call(monkeypatch, Storage, "delete_file", lambda: s3_proxy.reset_peer(), skip=1)
    outcome = "completed"
    try:
        first = collect_garbage(lakehouse, policies=policies, workers=1)
        outcome = f"completed, {len(first.failed)} delete(s) failed"
    except Exception as exc:  # a failure here is fine; what it left is checked below
        outcome = type(exc).__name__
    assert fired, "the fault was never armed: the test proved nothing"
    s3_proxy.clear()
    monkeypatch.undo()
    assert outcome != "completed", "S3 failed mid-sweep, yet every delete was reported done"

    assert ids(lakehouse) == [1, 2, 3, 10, 11, 12]
    assert_clean(lakehouse)  # the deletes that went through took garbage only
    second = collect_garbage(lakehouse, policies=policies)
    assert not second.failed
    assert second.deleted.files >= 1  # the garbage the first pass left
    assert collect_garbage(lakehouse, policies=policies, dry_run=True).candidates.files == 0
    assert ids(lakehouse) == [1, 2, 3, 10, 11, 12]
    assert_clean(lakehouse)


def test_expiry_whose_s3_fails_between_two_tables_commits_neither_and_a_rerun_expires_both(
    lakehouse: Lakehouse, s3_proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(lakehouse, tmp_path / "inbox")
    (tmp_path / "crm").mkdir()
    customers = FolderSource(name="crm", path=str(tmp_path / "crm"), table="customers")
    for i in range(2):
        (tmp_path / "crm" / f"c{i}.csv").write_text(f"id,name\n{i},c{i}\n")
        ingest(lakehouse, customers)
    tables = ("bronze.orders", "bronze.customers")

    def snapshots() -> list[int]:
        return [len(lakehouse.table(t).snapshots()) for t in tables]

    before = snapshots()
    assert min(before) >= 2
    policies = aggressive()
    # the first table's new metadata file is written; the second one's write fails
    fired = arm_on_call(
        monkeypatch, RefCatalog, "_write_metadata", lambda: s3_proxy.reset_peer(), skip=1
    )
    with pytest.raises((OSError, StorageError)):
        expire_snapshots(lakehouse, policies=policies)
    assert fired, "the fault was never armed: the test proved nothing"
    s3_proxy.clear()
    monkeypatch.undo()

    assert snapshots() == before  # one catalog commit for all tables: none expired
    assert ids(lakehouse) == [1, 2, 3]
    assert_clean(lakehouse)
    assert not expire_snapshots(lakehouse, policies=policies).errors
    assert snapshots() == [1, 1]
    assert not collect_garbage(lakehouse, policies=policies).failed  # the orphan goes too
    assert ids(lakehouse) == [1, 2, 3]
    assert sorted(
        lakehouse.table("bronze.customers").scan().to_arrow().column("id").to_pylist()
    ) == [0, 1]
    assert_clean(lakehouse)


def test_a_backup_whose_s3_fails_midway_is_reported_failed_and_a_rerun_verifies(
    lakehouse: Lakehouse, s3_proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(lakehouse, tmp_path / "inbox")
    dest = str(tmp_path / "backups")
    fired = arm_on_call(monkeypatch, Storage, "copy_hashed", lambda: s3_proxy.reset_peer(), skip=2)
    with pytest.raises(StorageError, match="cannot copy"):  # reported, not hidden
        create_backup(lakehouse, dest, workers=1)
    assert fired, "the fault was never armed: the test proved nothing"
    s3_proxy.clear()
    monkeypatch.undo()
    # the failed backup is not one a restore could pick
    assert not [b for b in list_backups(dest) if b.complete]

    done = create_backup(lakehouse, dest)
    assert verify_backup(dest, backup_id=done.backup_id, settings=lakehouse.settings).ok
    assert [b.backup_id for b in list_backups(dest) if b.complete] == [done.backup_id]
    assert ids(lakehouse) == [1, 2, 3]
    assert_clean(lakehouse)
