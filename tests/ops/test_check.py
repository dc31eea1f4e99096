"""`catalog check` finds every missing or damaged file; `--repair` restores readability."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.catalog.model import ContentKey, IcebergTable
from lakehouse.client import Lakehouse, connect
from lakehouse.ops import check
from lakehouse.ops.check import MISSING, REPAIR_PROPERTY, SIZE_MISMATCH, UNREADABLE
from tests.ops.helpers import SCHEMA, rows


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


@pytest.fixture
def lh(home: Path) -> Lakehouse:
    """main: bronze.orders with three appends; dev branched after the second."""
    lake = connect(home, create=True)
    main = lake.catalog("main")
    main.create_namespace("bronze")
    orders = main.create_table("bronze.orders", SCHEMA)
    orders.append(rows((1, "a"), (2, "b")))
    orders = lake.table("bronze.orders", "main")
    orders.append(rows((3, "c")))
    lake.create_branch("dev", "main")
    lake.create_tag("v1", "main")
    lake.table("bronze.orders", "main").append(rows((4, "d")))
    return lake


def file_added_by(lh: Lakehouse, ref: str, n: int) -> str:
    """Data file added by the n-th snapshot (0-based) of bronze.orders on ref."""
    table = lh.table("bronze.orders", ref)
    snapshot = table.snapshots()[n]
    added = [
        e.data_file.file_path
        for m in snapshot.manifests(table.io)
        if m.added_snapshot_id == snapshot.snapshot_id
        for e in m.fetch_manifest_entry(table.io)
    ]
    assert len(added) == 1
    return added[0]


def test_a_healthy_lakehouse_checks_out(lh: Lakehouse) -> None:
    report = check(lh)
    assert report.ok
    assert sorted(report.references) == ["dev", "main", "v1"]
    assert {(t.ref, t.table) for t in report.tables} == {
        ("dev", "bronze.orders"),
        ("main", "bronze.orders"),
        ("v1", "bronze.orders"),
    }
    main = next(t for t in report.tables if t.ref == "main")
    assert main.snapshots == 3
    assert main.files == 1 + 3 + 3 + 3  # metadata, 3 manifest lists, 3 manifests, 3 data files
    # dev and v1 share an older metadata file and every other file with main: each looked up once
    assert report.files_checked == main.files + 1


def test_a_deleted_data_file_is_named_with_table_reference_and_file(lh: Lakehouse) -> None:
    victim = file_added_by(lh, "main", 1)  # shared by main, dev and v1
    local(victim).unlink()

    report = check(lh)
    assert not report.ok
    broken = {t.ref: t for t in report.tables if not t.ok}
    assert sorted(broken) == ["dev", "main", "v1"]
    for table in broken.values():
        assert table.table == "bronze.orders"
        (problem,) = table.problems
        assert problem.path == victim
        assert problem.problem == MISSING
        assert problem.kind == "data"
    assert not broken["main"].current_readable
    assert "bronze.orders" in report.summary() and victim in report.summary()


def test_only_the_asked_references_are_checked(lh: Lakehouse) -> None:
    local(file_added_by(lh, "main", 2)).unlink()  # only main has the third append
    assert not check(lh, ["main"]).ok
    only_dev = check(lh, ["dev", "v1"])
    assert only_dev.ok
    assert only_dev.references == ["dev", "v1"]


def test_repair_rolls_back_to_the_newest_complete_snapshot_on_a_new_commit(
    lh: Lakehouse,
) -> None:
    victim = file_added_by(lh, "main", 1)
    local(victim).unlink()
    head_before = lh.resolve("main").hash
    v1_before = lh.resolve("v1").hash

    report = check(lh, repair=True)

    main = next(t for t in report.tables if t.ref == "main")
    assert main.repair is not None and main.repair.repaired
    assert main.repair.commit is not None
    first = lh.table("bronze.orders", "v1").snapshots()[0].snapshot_id
    assert main.repair.to_snapshot == first
    # a new commit on main, saying why
    head = lh.log("main", 1)[0].meta
    assert head.hash == main.repair.commit and head.hash != head_before
    assert head.parent_hashes[0] == head_before
    assert "Repair table bronze.orders on main" in head.message
    assert victim in head.message
    assert head.properties[REPAIR_PROPERTY] == "rollback"
    # readable again, with the rows of the newest complete snapshot
    table = lh.table("bronze.orders", "main")
    assert sorted(r["id"] for r in table.scan().to_arrow().to_pylist()) == [1, 2]
    # the tag is read-only: reported, not repaired; nothing was deleted
    v1 = next(t for t in report.tables if t.ref == "v1")
    assert v1.repair is not None and not v1.repair.repaired
    assert "read-only" in v1.repair.message
    assert lh.resolve("v1").hash == v1_before
    after = check(lh, ["main"])
    (table_report,) = after.tables
    assert table_report.current_readable
    assert [p.path for p in table_report.problems] == [victim]  # history keeps naming it


def test_repair_without_a_complete_ancestor_changes_nothing(lh: Lakehouse) -> None:
    local(file_added_by(lh, "main", 0)).unlink()  # every snapshot needs it
    head = lh.resolve("main").hash
    report = check(lh, ["main"], repair=True)
    (table,) = report.tables
    assert table.repair is not None and not table.repair.repaired
    assert "no earlier snapshot" in table.repair.message
    assert lh.resolve("main").hash == head


def test_a_truncated_file_is_a_size_mismatch(lh: Lakehouse) -> None:
    victim = file_added_by(lh, "main", 2)
    data = local(victim).read_bytes()
    local(victim).write_bytes(data[: len(data) // 2])
    (table,) = check(lh, ["main"]).tables
    (problem,) = table.problems
    assert problem.problem == SIZE_MISMATCH
    assert problem.expected_size == len(data)
    assert problem.actual_size == len(data) // 2


def test_a_missing_manifest_breaks_the_snapshots_that_list_it(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    snapshot = table.snapshots()[2]
    manifest = next(
        m.manifest_path
        for m in snapshot.manifests(table.io)
        if m.added_snapshot_id == snapshot.snapshot_id
    )
    local(manifest).unlink()
    (report,) = check(lh, ["main"]).tables
    (problem,) = report.problems
    assert (problem.kind, problem.problem) == ("manifest", MISSING)
    assert report.broken_snapshots == [snapshot.snapshot_id]
    assert not report.current_readable


def test_a_damaged_manifest_is_unreadable(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    snapshot = table.current_snapshot()
    assert snapshot is not None
    manifest = snapshot.manifests(table.io)[0].manifest_path
    size = local(manifest).stat().st_size
    local(manifest).write_bytes(b"\0" * size)  # same size, garbage
    (report,) = check(lh, ["main"]).tables
    assert [p.problem for p in report.problems] == [UNREADABLE]


def test_a_missing_metadata_file_is_reported_and_not_repairable(lh: Lakehouse) -> None:
    content = lh.store.get_content("main", ContentKey.parse("bronze.orders"))
    assert isinstance(content, IcebergTable)
    local(content.metadata_location).unlink()
    report = check(lh, ["main"], repair=True)
    (table,) = report.tables
    assert table.problems[0].kind == "table-metadata"
    assert not table.current_readable
    assert table.repair is not None and "metadata file" in table.repair.message


def test_history_check_finds_files_only_old_commits_need(lh: Lakehouse) -> None:
    # an old metadata file that no reference's head uses any more
    table = lh.table("bronze.orders", "main")
    old = table.metadata.metadata_log[0].metadata_file
    local(old).unlink()
    assert check(lh).ok  # heads are fine
    report = check(lh, history=True)
    assert not report.ok
    assert [h.problem.path for h in report.history] == [old]
    assert report.history[0].table == "bronze.orders"


def test_a_missing_ingestion_checkpoint_is_reported(lh: Lakehouse, tmp_path: Path) -> None:
    from datetime import timedelta

    from lakehouse.ingest import FolderSource, ingest
    from lakehouse.ingest.bronze import CHECKPOINT_PROPERTY
    from lakehouse.maintenance import expire_snapshots
    from lakehouse.maintenance.policies import Policies

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = FolderSource.model_validate(
        {"name": "shop", "path": str(inbox), "table": "bronze.landed"}
    )
    for n in range(3):
        (inbox / f"landed_{n}.csv").write_text(f"id,amount\n{n},{n}.5\n")
        ingest(lh, source)
    policies = Policies().with_changes(snapshots={"keep_last": 1, "max_age": timedelta(0)})
    expire_snapshots(lh, "main", tables=["bronze.landed"], policies=policies)
    checkpoint = lh.table("bronze.landed", "main").properties[CHECKPOINT_PROPERTY]
    assert check(lh).ok and check(lh, history=True).ok

    local(checkpoint).unlink()
    current = check(lh)
    assert not current.ok
    assert [(p.kind, p.path) for t in current.tables for p in t.problems] == [
        ("ingest-checkpoint", checkpoint)
    ]
    report = check(lh, history=True)
    assert not report.ok
    assert [(h.table, h.problem.kind, h.problem.path) for h in report.history] == [
        ("bronze.landed", "ingest-checkpoint", checkpoint)
    ]
