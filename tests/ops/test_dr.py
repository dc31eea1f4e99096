"""The DR runbook: a pause flag every process sees, and where to replay from after a restore."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lakehouse.catalog.model import NO_ANCESTOR
from lakehouse.client import Lakehouse, connect
from lakehouse.ops import (
    PausedError,
    create_backup,
    ensure_not_paused,
    pause,
    pause_state,
    replay_points,
    restore_backup,
    resume,
)
from lakehouse.ops.dr import OPS_BRANCH, SUMMARY_KAFKA_OFFSETS, parse_kafka_offsets
from tests.ops.helpers import SCHEMA, rows


@pytest.fixture
def lh(home: Path) -> Lakehouse:
    lake = connect(home, create=True, author="ops")
    lake.catalog("main").create_namespace("bronze")
    lake.catalog("main").create_table("bronze.orders", SCHEMA).append(rows((1, "a")))
    return lake


def test_pause_is_seen_by_every_process_and_resume_lifts_it(lh: Lakehouse, home: Path) -> None:
    ensure_not_paused(lh)  # not paused: no ops branch yet
    state, changed = pause(lh, "region eu-west-1 is down")
    assert changed and state.paused

    with connect(home) as other:  # another process sees the same catalog
        with pytest.raises(PausedError, match="region eu-west-1 is down") as err:
            ensure_not_paused(other, "ingestion of orders")
        assert "lakehouse dr resume" in str(err.value)
        assert "ingestion of orders cannot start" in str(err.value)
        assert pause_state(other.store).by == "ops"

    again, changed = pause(lh, "twice")
    assert not changed and again.reason == "region eu-west-1 is down"
    state, changed = resume(lh)
    assert changed and not state.paused
    ensure_not_paused(lh)
    assert not resume(lh)[1]
    # the history of pauses is the ops branch's log
    messages = [e.meta.message for e in lh.log(OPS_BRANCH)]
    assert messages == ["DR: resume", "DR: pause (region eu-west-1 is down)"]


def test_the_ops_branch_holds_no_table(lh: Lakehouse) -> None:
    pause(lh)
    log = lh.log(OPS_BRANCH, None)
    assert log[-1].meta.parent_hashes == (NO_ANCESTOR,)  # forked from the empty catalog
    assert lh.tables(OPS_BRANCH) == []


def test_the_pause_flag_travels_with_a_backup(lh: Lakehouse, home: Path, tmp_path: Path) -> None:
    pause(lh, "taking the DR backup")
    dest = str(tmp_path / "b")
    create_backup(lh, dest)
    settings = lh.settings
    lh.close()
    shutil.rmtree(home)
    restore_backup(dest, settings)
    with connect(home) as restored:
        assert pause_state(restored.store).reason == "taking the DR backup"


def test_replay_points_read_kafka_offsets_recorded_in_snapshots(lh: Lakehouse) -> None:
    cat = lh.catalog("main")
    events = cat.create_table("bronze.events", SCHEMA)
    events.append(
        rows((1, "a")),
        snapshot_properties={SUMMARY_KAFKA_OFFSETS: json.dumps({"events": {"0": 10, "1": 7}})},
    )
    events = lh.table("bronze.events", "main")
    events.append(
        rows((2, "b")),
        snapshot_properties={SUMMARY_KAFKA_OFFSETS: json.dumps({"events": {"0": 15}})},
    )
    points = {p.table: p for p in replay_points(lh)}
    assert points["bronze.events"].kafka_offsets == {"events": {0: 15, 1: 7}}
    assert points["bronze.events"].action == "replay Kafka from events[0]@15, events[1]@7"
    assert points["bronze.orders"].kafka_offsets == {}
    assert "re-run" in points["bronze.orders"].action


def test_malformed_offsets_are_ignored() -> None:
    assert parse_kafka_offsets("not json") == {}
    assert parse_kafka_offsets(None) == {}
    assert parse_kafka_offsets('{"t": {"3": 4}}') == {"t": {3: 4}}


def test_ingestion_pipelines_and_maintenance_refuse_to_start_while_paused(
    lh: Lakehouse, tmp_path: Path
) -> None:
    from lakehouse.ingest import FolderSource, ingest
    from lakehouse.maintenance import collect_garbage, compact, expire_snapshots
    from lakehouse.pipelines import run_pipeline

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "orders.csv").write_text("id,name\n2,b\n")
    pipeline = tmp_path / "pipelines" / "p"
    (pipeline / "silver").mkdir(parents=True)
    (pipeline / "pipeline.yaml").write_text("name: p\n")
    (pipeline / "silver" / "x.sql").write_text("SELECT * FROM bronze.orders\n")
    pause(lh, "drill")
    before = {r.name: r.hash for r in lh.references()}
    jobs = [
        lambda: ingest(lh, FolderSource(name="inbox", path=str(inbox), table="bronze.inbox")),
        lambda: run_pipeline(lh, pipeline),
        lambda: compact(lh, "main"),
        lambda: expire_snapshots(lh, "main"),
        lambda: collect_garbage(lh),
    ]
    for job in jobs:
        with pytest.raises(PausedError, match="drill"):
            job()
    assert {r.name: r.hash for r in lh.references()} == before
    # a dry run writes nothing, so it may look around during recovery
    assert compact(lh, "main", dry_run=True) is not None
    resume(lh)
    assert ingest(lh, FolderSource(name="inbox", path=str(inbox), table="bronze.inbox"))
