"""Incremental-model state in snapshot summaries, and the property expiry folds it into."""

from __future__ import annotations

import json

from pyiceberg.table.snapshots import Operation, Snapshot, Summary

from lakehouse.catalog.incremental import (
    SUMMARY_MARKER,
    fold_state,
    has_state,
    state_of_snapshots,
    summary_properties,
)


def snapshot(snapshot_id: int, **props: str) -> Snapshot:
    return Snapshot(
        snapshot_id=snapshot_id,
        sequence_number=snapshot_id,
        timestamp_ms=snapshot_id,
        manifest_list=f"snap-{snapshot_id}.avro",
        summary=Summary(Operation.APPEND, **props),
    )


def test_a_write_records_its_mode_and_each_source_snapshot() -> None:
    props = summary_properties("incremental", {"bronze.b": 2, "bronze.a": 1})
    assert props == {
        SUMMARY_MARKER: "incremental",
        "lakehouse.incremental.bronze.a": "1",
        "lakehouse.incremental.bronze.b": "2",
    }


def test_the_newest_snapshot_with_a_record_wins_and_a_reset_records_nothing() -> None:
    older = snapshot(1, **summary_properties("full", {"bronze.a": 10}))
    other = snapshot(2)  # a compaction, a user's write: no record
    reset = snapshot(3, **summary_properties("reset", {}))
    assert not has_state(other) and has_state(reset)
    state = state_of_snapshots([other, older])
    assert state is not None and state.sources == {"bronze.a": 10} and state.snapshot_id == 1
    assert state.since("BRONZE.A") == 10 and state.since("bronze.b") is None
    newest = state_of_snapshots([reset, other, older])
    assert newest is not None and newest.sources == {}
    assert state_of_snapshots([other]) is None


def test_expiry_folds_the_newest_record_of_what_it_cuts_off() -> None:
    cut_off = [snapshot(2), snapshot(1, **summary_properties("full", {"bronze.a": 10}))]
    folded = fold_state(cut_off, previous=None)
    assert folded is not None
    assert json.loads(folded) == {"snapshot_id": 1, "sources": {"bronze.a": 10}}
    assert fold_state(cut_off, previous=folded) is None  # unchanged: nothing to write
    assert fold_state([snapshot(4)], previous=folded) is None  # nothing recorded there
