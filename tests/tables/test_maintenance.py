"""Day-2 operations know delete files: GC keeps what references need; check and backup see them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from pyiceberg.table import Table

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.maintenance._common import utcnow
from lakehouse.maintenance.expire import expire_snapshots
from lakehouse.maintenance.gc import collect_garbage
from lakehouse.maintenance.policies import Policies
from lakehouse.ops.backup import create_backup, verify_backup
from lakehouse.ops.check import check
from lakehouse.ops.restore import restore_backup
from lakehouse.tables import delete_rows, upsert
from tests.tables.conftest import content, keys, make_rows

NewTable = Callable[..., Table]


def aggressive() -> Policies:
    """Keep one snapshot and one commit, no grace period."""
    return Policies().with_changes(
        snapshots={"keep_last": 1, "max_age": timedelta(0)},
        gc={"grace_period": timedelta(0), "references": [{"pattern": "*", "keep_commits": 1}]},
    )


def delete_file_paths(table: Table) -> list[str]:
    return sorted({d.file_path for task in table.scan().plan_files() for d in task.delete_files})


def local(uri: str) -> Path:
    return Path(urlparse(uri).path)


def test_gc_keeps_the_delete_files_a_branch_needs_and_collects_the_rest(
    lh: Lakehouse, new_table: NewTable
) -> None:
    table = new_table(ids=list(range(20)))
    lh.create_branch("dev", "main")
    dev = lh.catalog("dev")
    delete_rows(dev.load_table("s.t"), keys([1, 2]), ["id"], branch="main")
    upsert(dev.load_table("s.t"), make_rows([3], tag="dev"), ["id"])
    needed = delete_file_paths(dev.load_table("s.t"))
    # main deletes rows too, then rewrites them away again: its old delete file is garbage
    delete_rows(table, keys([5]), ["id"])
    main_old = delete_file_paths(lh.catalog("main").load_table("s.t"))
    upsert(lh.catalog("main").load_table("s.t"), make_rows([5, 6], tag="main"), ["id"])
    # the snapshot that folded it still lists it as DELETED (as in Iceberg); the next
    # row delta carries only live delete entries
    upsert(lh.catalog("main").load_table("s.t"), make_rows([7], tag="main"), ["id"])

    expire_snapshots(lh, "main", policies=aggressive())
    expire_snapshots(lh, "dev", policies=aggressive())
    result = collect_garbage(lh, policies=aggressive(), now=utcnow() + timedelta(hours=2))

    assert result.deleted.files > 0
    assert all(local(p).exists() for p in needed)
    assert not any(local(p).exists() for p in main_old), "the folded delete file was collected"
    rows = content(lh.catalog("dev").load_table("s.t"))
    assert 1 not in rows and 2 not in rows and rows[3] == ("dev3", 1.5)
    assert check(lh).ok


def test_catalog_check_reports_a_missing_delete_file(lh: Lakehouse, new_table: NewTable) -> None:
    table = new_table(ids=list(range(10)))
    delete_rows(table, keys([1]), ["id"])
    (path,) = delete_file_paths(lh.catalog("main").load_table("s.t"))
    assert check(lh).ok

    local(path).unlink()

    report = check(lh)
    assert not report.ok
    assert any(path in str(problem) for t in report.tables for problem in t.problems)


def test_backup_and_restore_carry_the_delete_files(
    lh: Lakehouse, new_table: NewTable, tmp_path: Path
) -> None:
    table = new_table(ids=list(range(10)))
    upsert(table, make_rows([4], tag="new"), ["id"], delete_keys=keys([7]))
    before = content(lh.catalog("main").load_table("s.t"))
    settings = lh.settings
    dest = tmp_path / "backups"

    create_backup(lh, str(dest))
    assert verify_backup(str(dest)).ok
    lh.close()
    shutil.rmtree(settings.home)

    restored = restore_backup(str(dest), settings)
    assert restored.check.ok
    with lakehouse.connect(settings.home) as again:
        assert content(again.catalog("main").load_table("s.t")) == before
        answer = again.sql("SELECT count(*) AS n FROM s.t").to_pylist()
        assert answer == [{"n": 9}]
