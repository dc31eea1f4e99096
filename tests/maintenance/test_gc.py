"""Garbage collection: mark across every reference, sweep only the unreachable and old."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse
from lakehouse.maintenance import (
    GCRefusedError,
    IncompleteWalkError,
    collect_garbage,
    compact,
    expire_snapshots,
)
from lakehouse.maintenance._common import ProgressEvent, utcnow
from lakehouse.maintenance.gc import GC_FOLDER, read_plan
from lakehouse.maintenance.policies import Policies
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, upsert
from lakehouse.tables.keyindex import indexed_file

from .conftest import (
    SCHEMA,
    aggressive,
    batch,
    exists,
    make_table,
    rows,
    table_files,
    warehouse_files,
)

TABLES = ("bronze.orders", "silver.customers")


def _history(lh: Lakehouse) -> None:
    """main with two tables, branch b and tag t on older states, then more work on main."""
    make_table(lh, "bronze.orders", 6)
    make_table(lh, "silver.customers", 4)
    lh.create_branch("b", "main")
    lh.branch("b").table("bronze.orders").append(batch(1000, 5, "b"))
    lh.create_tag("t", "main")
    orders = lh.table("bronze.orders")
    for i in range(6, 12):
        orders.append(batch(i * 10))
    orders.delete("id < 5")  # rewrites a data file: the old one leaves main
    customers = lh.table("silver.customers")
    customers.append(batch(500, 3))


def _state(lh: Lakehouse, ref: str) -> tuple[dict[str, list[tuple[int, str]]], set[str]]:
    data: dict[str, list[tuple[int, str]]] = {}
    files: set[str] = set()
    for name in TABLES:
        table = lh.table(name, ref)
        data[name] = rows(table)
        files |= table_files(table)
    return data, files


def test_branches_and_tags_survive_the_most_aggressive_maintenance_of_main(lh: Lakehouse) -> None:
    """The regression that matters: maintenance of main never breaks another reference."""
    _history(lh)
    before = {ref: _state(lh, ref) for ref in ("b", "t", "main")}
    policies = aggressive()
    compacted = compact(lh, "main", policies=policies)
    assert compacted.files_rewritten > 0
    expired = expire_snapshots(lh, "main", policies=policies)
    assert expired.expired > 0
    # the file the delete rewrote, old snapshots' manifests: garbage once main moved on
    result = collect_garbage(lh, policies=policies)
    assert result.deleted.files > 0
    assert not result.failed

    for ref in ("b", "t"):
        data, files = before[ref]
        assert _state(lh, ref)[0] == data, ref
        missing = sorted(f for f in files if not exists(f))
        assert not missing, (ref, missing[:5])
    assert _state(lh, "main")[0] == before["main"][0]
    # main's current files are all there, its old ones went (a later run finds nothing)
    assert all(exists(f) for f in _state(lh, "main")[1])
    assert collect_garbage(lh, policies=policies, dry_run=True).candidates.files == 0


def test_dry_run_deletes_nothing_and_reports(lh: Lakehouse) -> None:
    _history(lh)
    orphan = lh.warehouse.local_path("silver") / "orphan.parquet"
    orphan.write_bytes(b"not referenced")
    before = warehouse_files(lh)
    result = collect_garbage(lh, policies=aggressive(), dry_run=True)
    assert warehouse_files(lh) == before
    assert result.candidates.files > 0 and result.candidates.bytes > 0
    assert result.deleted.files == 0
    assert result.plan is None
    assert f"file://{orphan}" in result.samples or len(result.samples) == 10
    assert result.references.keys() == {"main", "b", "t"}
    assert json.loads(json.dumps(result.to_json()))["dry_run"] is True


def test_grace_period_keeps_young_unreachable_files(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 2)
    orphan = lh.warehouse.local_path("bronze") / "in-flight.parquet"
    orphan.write_bytes(b"being written")
    policies = aggressive(gc={"grace_period": timedelta(hours=1)})
    result = collect_garbage(lh, policies=policies)
    assert orphan.exists()
    assert result.young.files >= 1
    # a clock in the future does not shorten the grace period …
    collect_garbage(lh, policies=policies, now=utcnow() + timedelta(hours=2))
    assert orphan.exists()
    # … time passing does
    old = (utcnow() - timedelta(hours=2)).timestamp()
    os.utime(orphan, (old, old))
    later = collect_garbage(lh, policies=policies)
    assert not orphan.exists()
    assert later.deleted.files >= 1


def test_default_policies_keep_all_history(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 4)
    lh.table("bronze.orders").delete("id < 5")
    orphan = lh.warehouse.local_path("bronze") / "orphan.parquet"
    orphan.write_bytes(b"x")
    everything = warehouse_files(lh)
    result = collect_garbage(lh, policies=Policies().with_changes(gc={"grace_period": 0}))
    # only the orphan goes: every commit of main is history kept by default
    assert result.deleted.files == 1
    after = {f for f in warehouse_files(lh) if f"/{GC_FOLDER}/" not in f}
    assert after == everything - {f"file://{orphan}"}
    for back in range(6):
        lh.table("bronze.orders", f"main~{back}").scan().to_arrow()


def test_keep_commits_keeps_that_much_time_travel(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 6)
    policies = aggressive(gc={"references": [{"pattern": "main", "keep_commits": 3}]})
    expected = {back: rows(lh.table("bronze.orders", f"main~{back}")) for back in range(3)}
    result = collect_garbage(lh, policies=policies)
    assert result.deleted.files > 0
    for back, data in expected.items():
        assert rows(lh.table("bronze.orders", f"main~{back}")) == data
    with pytest.raises(OSError):
        lh.table("bronze.orders", "main~5")


def test_raw_and_excluded_paths_are_never_touched(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 2)
    landed = lh.warehouse.local_path("raw") / "src" / "file.csv"
    landed.parent.mkdir(parents=True)
    landed.write_text("a,b\n")
    keep = lh.warehouse.local_path("gold") / "keep" / "x.bin"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"x")
    gone = lh.warehouse.local_path("gold") / "other.bin"
    gone.write_bytes(b"y")
    policies = aggressive(gc={"exclude": ["_gc/*", "keep/*"]})
    result = collect_garbage(lh, policies=policies)
    assert landed.exists() and keep.exists() and not gone.exists()
    assert result.excluded.files >= 1
    # the deferred-delete lists are never swept either
    assert collect_garbage(lh, policies=policies).deleted.files == 0


def test_refuses_when_reachable_metadata_cannot_be_read(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    lh.create_tag("t", "main")
    lh.table("bronze.orders").append(batch(100))
    metadata = Path(lh.table("bronze.orders", "t").metadata_location.removeprefix("file://"))
    metadata.write_text("{ not json")
    orphan = lh.warehouse.local_path("bronze") / "orphan.parquet"
    orphan.write_bytes(b"x")
    before = warehouse_files(lh)
    with pytest.raises(IncompleteWalkError, match="could not be read"):
        collect_garbage(lh, policies=aggressive())
    assert warehouse_files(lh) == before


def test_refuses_when_disabled(lh: Lakehouse) -> None:
    with pytest.raises(GCRefusedError, match="disabled"):
        collect_garbage(lh, policies=aggressive(gc={"enabled": False}))


def test_files_deleted_by_an_earlier_shorter_retention_do_not_block_later_runs(
    lh: Lakehouse,
) -> None:
    make_table(lh, "bronze.orders", 4)
    collect_garbage(lh, policies=aggressive())
    # the old commits' metadata is gone now; keeping all history again is fine
    result = collect_garbage(lh, policies=Policies().with_changes(gc={"grace_period": 0}))
    assert result.missing == 0
    assert not result.failed


def test_a_reference_created_during_the_run_is_marked_before_anything_is_deleted(
    lh: Lakehouse,
) -> None:
    make_table(lh, "bronze.orders", 5)
    old = lh.resolve("main~3").hash
    expected = rows(lh.table("bronze.orders", "main~3"))

    def create_late_branch(event: ProgressEvent) -> None:
        if (
            event.step == "list"
            and event.done == 0
            and "late" not in {b.name for b in lh.branches()}
        ):
            lh.create_branch("late", "@" + old)

    result = collect_garbage(lh, policies=aggressive(), on_progress=create_late_branch)
    assert "late" in result.references
    assert rows(lh.table("bronze.orders", "late")) == expected
    assert all(exists(f) for f in table_files(lh.table("bronze.orders", "late")))


def test_the_deferred_delete_list_is_written_before_deleting(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    seen_plan: list[bool] = []
    folder = lh.warehouse.local_path("iceberg-metadata") / GC_FOLDER

    def check(event: ProgressEvent) -> None:
        if event.step == "sweep" and event.done == 1:
            seen_plan.append(any(folder.glob("*.jsonl")))

    result = collect_garbage(lh, policies=aggressive(), on_progress=check)
    assert seen_plan == [True]
    assert result.plan is not None
    header, paths = read_plan(Path(result.plan.removeprefix("file://")).read_bytes())
    assert header["run_id"] == result.run_id and header["count"] == len(paths)
    assert len(paths) == result.deleted.files
    # top-down: table metadata files before manifests before data files
    kinds = [0 if p.endswith(".metadata.json") else 1 if p.endswith(".avro") else 2 for p in paths]
    assert kinds == sorted(kinds)
    assert (folder / f"{result.run_id}.done.json").exists()


_KILLED_GC = textwrap.dedent(
    """
    import sys, time
    import lakehouse
    from lakehouse.maintenance import collect_garbage

    def slow(event):
        if event.step == "sweep" and event.done:
            print("deleted", event.done, flush=True)
            time.sleep(0.02)

    with lakehouse.connect(sys.argv[1]) as lh:
        collect_garbage(lh, on_progress=slow)
    print("finished", flush=True)
    """
)


def test_gc_killed_mid_sweep_then_rerun_deletes_nothing_live(lh: Lakehouse, tmp_path: Path) -> None:
    make_table(lh, "bronze.orders", 8)
    lh.create_branch("b", "main~4")
    make_table(lh, "silver.customers", 4)
    for i in range(150):
        (lh.warehouse.local_path("silver") / f"orphan-{i:03}.parquet").write_bytes(b"x" * 10)
    # the policies of the home are what the subprocess (and the re-run) use
    (lh.settings.home / "maintenance.yaml").write_text(
        "gc:\n  grace_period: 0s\n  references:\n    - {pattern: '*', keep_commits: 1}\n"
    )
    live: set[str] = set()
    for ref in ("main", "b"):
        for entry in lh.tables(ref):
            live |= table_files(lh.table(str(entry.key), ref))
    garbage = warehouse_files(lh) - live
    assert len(garbage) > 150

    script = tmp_path / "gc_child.py"
    script.write_text(_KILLED_GC)
    with subprocess.Popen(
        [sys.executable, str(script), str(lh.settings.home)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("deleted") and int(line.split()[1]) >= 40:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    remaining = warehouse_files(lh)
    assert live <= remaining, "a live file was deleted"
    assert len(garbage - remaining) >= 40, "the child did delete garbage before being killed"
    assert garbage & remaining, "the child was killed before it finished"
    plans = list((lh.warehouse.local_path("iceberg-metadata") / GC_FOLDER).glob("*.jsonl"))
    assert len(plans) == 1
    killed_run = plans[0].name.removesuffix(".jsonl")

    result = collect_garbage(lh)
    assert killed_run in result.resumed
    after = warehouse_files(lh)
    assert live <= after
    assert not (garbage & after), "garbage left behind"
    for ref in ("main", "b"):
        for entry in lh.tables(ref):
            lh.table(str(entry.key), ref).scan().to_arrow()
    done = lh.warehouse.local_path("iceberg-metadata") / GC_FOLDER / f"{killed_run}.done.json"
    assert json.loads(done.read_text())["finished_by"] == result.run_id


def test_a_key_index_lives_exactly_as_long_as_its_data_file(lh: Lakehouse) -> None:
    catalog = lh.catalog("main")
    table = catalog.create_table("silver.keyed", SCHEMA, properties=DEFAULT_TABLE_PROPERTIES)
    table.append(batch(0, 12_000))
    upsert(catalog.load_table("silver.keyed"), batch(0, 12_000, "u"), ["id"])
    indexes = {f for f in warehouse_files(lh) if indexed_file(f)}
    assert len(indexes) == 2  # the appended file's (read whole) and the upserted file's
    policies = aggressive()

    collect_garbage(lh, policies=policies)  # both data files are live: so are their indexes
    assert all(exists(f) for f in indexes)

    compact(lh, "main", policies=policies.with_changes(compaction={"delete_ratio": 0.0}))
    expire_snapshots(lh, "main", policies=policies)
    result = collect_garbage(lh, policies=policies)

    assert not any(exists(f) for f in indexes)  # their data files went: so did they
    assert not any(exists(indexed_file(f) or "") for f in indexes)
    assert result.missing == 0
    assert len(rows(catalog.load_table("silver.keyed"))) == 12_000
