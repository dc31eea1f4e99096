"""Appends whose data manifest is written before the commit lock (``tables/appends.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.manifest import read_manifest_list
from pyiceberg.table import Table

from lakehouse.tables.appends import prepare_append
from lakehouse.tables.manifests import read_manifest_list as read_list_fast
from tests.tables.conftest import make_rows

#: Merge small manifests after four, so a few appends exercise PyIceberg's merge rules.
MERGE_SOON = {"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "4"}


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def _manifest_shape(table: Table, snapshot_id: int) -> list[tuple[Any, ...]]:
    """What a snapshot's manifest list says, without paths and ids of its own."""
    snapshot = table.snapshot_by_id(snapshot_id)
    assert snapshot is not None
    return [
        (
            m.content,
            m.sequence_number,
            m.min_sequence_number,
            m.added_files_count,
            m.existing_files_count,
            m.deleted_files_count,
            m.added_rows_count,
            m.existing_rows_count,
            m.added_snapshot_id == snapshot_id,
        )
        for m in read_manifest_list(table.io.new_input(snapshot.manifest_list))
    ]


@pytest.mark.parametrize("merge", [MERGE_SOON, {"commit.manifest-merge.enabled": "false"}])
@pytest.mark.parametrize("evolve", [False, True], ids=["one spec", "two specs"])
def test_an_append_makes_the_snapshot_pyiceberg_would_make(
    new_table: Callable[..., Table], merge: dict[str, str], evolve: bool
) -> None:
    ours = new_table("ours", ids=[], properties=merge)
    theirs = new_table("theirs", ids=[], properties=merge)
    for i in range(5):
        # from the third on, manifests of two partition specs: the older spec's two are
        # merged though fewer than four in all (a bin without the new manifest)
        if evolve and i == 2:
            for table in (ours, theirs):
                with table.update_spec() as update:
                    update.add_identity("name")
        batch = make_rows([i * 10 + j for j in range(3)])
        ours.append(batch)  # manifest written before the lock, snapshot built under it
        with theirs.transaction() as tx:  # PyIceberg's own fast or merge append
            tx.append(batch)

    ours_chain = [e.snapshot_id for e in ours.history()]
    theirs_chain = [e.snapshot_id for e in theirs.history()]
    assert len(ours_chain) == len(theirs_chain) == 5
    for mine, other in zip(ours_chain, theirs_chain, strict=True):
        a, b = ours.snapshot_by_id(mine), theirs.snapshot_by_id(other)
        assert a is not None and b is not None
        assert a.sequence_number == b.sequence_number
        assert a.summary == b.summary  # operation, added-* and total-* alike
        assert _manifest_shape(ours, mine) == _manifest_shape(theirs, other)
    assert ours.scan().to_arrow().sort_by("id") == theirs.scan().to_arrow().sort_by("id")
    head = ours.current_snapshot()
    assert head is not None
    merged = merge["commit.manifest-merge.enabled"] == "true"
    assert (len(read_list_fast(ours.io, head.manifest_list)) < 5) == merged


def test_a_prepared_append_whose_snapshot_id_is_taken_stages_nothing(
    new_table: Callable[..., Table],
) -> None:
    table = new_table("t", ids=[1, 2])
    files = list(table.scan().plan_files())
    prepared = prepare_append(table.metadata, table.io, [task.file for task in files])
    assert prepared is not None
    table.append(make_rows([3]))  # another writer's append lands first ...
    table.append(make_rows([4]))
    table = table.refresh()
    landed = table.snapshots()[-2]
    prepared.snapshot_id = landed.snapshot_id  # ... with the id this one drew

    tx = table.transaction()
    assert not prepared.stage(tx, "main", {})
    assert tx._updates == ()
    prepared.discard()
    assert not _local(prepared.manifest.manifest_path).exists()


def test_an_append_to_a_table_dropped_meanwhile_leaves_no_manifest(
    lh: Any, new_table: Callable[..., Table]
) -> None:
    table = new_table("t", ids=[1])
    metadata_dir = _local(table.metadata.properties["write.metadata.path"])
    manifests_before = set(metadata_dir.glob("*-m*.avro"))
    lh.catalog("main").drop_table("s.t")

    with pytest.raises(Exception, match="does not exist"):
        table.append(make_rows([2]))

    assert set(metadata_dir.glob("*-m*.avro")) == manifests_before


def test_the_manifest_list_reader_reads_what_pyiceberg_reads(
    new_table: Callable[..., Table],
) -> None:
    table = new_table("t", ids=list(range(20)), batches=4, properties=MERGE_SOON)
    head = table.current_snapshot()
    assert head is not None
    theirs = list(read_manifest_list(table.io.new_input(head.manifest_list)))
    assert list(read_list_fast(table.io, head.manifest_list)) == theirs
    assert list(read_list_fast(table.io, head.manifest_list)) == theirs  # reader reused
