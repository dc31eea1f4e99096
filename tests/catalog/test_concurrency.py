"""Many processes committing to one branch: nothing lost, nothing applied twice.

8 processes x 200 commits against one branch, on SQLite (one file shared by all
processes) and on PostgreSQL (many connections); and 8 processes appending rows to one
Iceberg table through the catalog (queued on the table's commit lock, optimistic
underneath).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import NO_ANCESTOR, ContentKey, IcebergTable, Namespace, Put
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.errors import CommitConflictError
from lakehouse.storage import Warehouse

WRITERS = 8
COMMITS = 200
NS = ContentKey.of("bronze")
SHARED = ContentKey.of("bronze", "shared")


def _disjoint_writer(url: str, writer: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = SqlStore(url)
    acked = []
    for i in range(COMMITS):
        key = ContentKey.of("bronze", f"w{writer}_t{i}")
        result = store.commit(
            "main", [Put(key, IcebergTable(f"file:///m/{writer}/{i}.json"))], f"w{writer} c{i}"
        )
        acked.append(result.hash)
    out.put((writer, acked, 0))
    store.close()


def _same_key_writer(url: str, writer: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Read-modify-write of one shared key, retrying on conflict like any client."""
    store = SqlStore(url)
    acked = []
    conflicts = 0
    for i in range(COMMITS):
        while True:
            head = store.resolve("main").hash
            current = store.get_content(f"main@{head}", SHARED)
            assert isinstance(current, IcebergTable)
            new = IcebergTable(
                f"file:///m/shared/{writer}/{i}.json",
                snapshot_id=current.snapshot_id + 1,
                id=current.id,
            )
            try:
                result = store.commit(
                    "main", [Put(SHARED, new)], f"w{writer} c{i}", expected_hash=head
                )
            except CommitConflictError as exc:
                assert [str(c.key) for c in exc.conflicts] == ["bronze.shared"]
                conflicts += 1
                continue
            acked.append(result.hash)
            break
    out.put((writer, acked, conflicts))
    store.close()


def _run(url: str, target: object) -> tuple[dict[int, list[str]], int]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=target, args=(url, w, out)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return {w: acked for w, acked, _ in results}, sum(c for _, _, c in results)


def _assert_linear_history_holds_each_ack_once(
    store: SqlStore, acked: dict[int, list[str]]
) -> None:
    history = list(store.iter_log("main"))
    hashes = [e.hash for e in history]
    assert len(hashes) == len(set(hashes))
    every_ack = [h for hs in acked.values() for h in hs]
    assert len(every_ack) == WRITERS * COMMITS
    assert set(every_ack) <= set(hashes)
    # linear: each commit has exactly one parent, the next older commit in the log
    for newer, older in zip(history, [*history[1:], None], strict=True):
        expected_parent = older.hash if older is not None else NO_ANCESTOR
        assert newer.meta.parent_hashes == (expected_parent,)
    # per writer, acknowledged commits appear in the order they were made
    position = {h: i for i, h in enumerate(reversed(hashes))}
    for hs in acked.values():
        assert [position[h] for h in hs] == sorted(position[h] for h in hs)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_disjoint_keys_all_land_exactly_once_without_conflicts(url: str) -> None:
    store = SqlStore(url)
    store.commit("main", [Put(NS, Namespace(("bronze",)))], "namespace")
    acked, conflicts = _run(url, _disjoint_writer)
    assert conflicts == 0
    _assert_linear_history_holds_each_ack_once(store, acked)
    tables = [e for e in store.entries("main") if e.key != NS]
    assert len(tables) == WRITERS * COMMITS
    store.close()


def test_the_same_key_with_retries_loses_no_update(url: str) -> None:
    store = SqlStore(url)
    store.commit("main", [Put(NS, Namespace(("bronze",)))], "namespace")
    store.commit("main", [Put(SHARED, IcebergTable("file:///m/0.json", snapshot_id=0))], "seed")
    acked, conflicts = _run(url, _same_key_writer)
    _assert_linear_history_holds_each_ack_once(store, acked)
    final = store.get_content("main", SHARED)
    assert isinstance(final, IcebergTable)
    # every read-modify-write incremented the counter exactly once: no lost update
    assert final.snapshot_id == WRITERS * COMMITS
    assert conflicts > 0  # the writers really raced
    store.close()


# -- appends of many processes to one Iceberg table ---------------------------------------------

APPENDERS = 8
APPENDS = 8
TABLE = ("bronze", "events")
TABLE_KEY = ContentKey.of(*TABLE)
EVENTS = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("writer", pa.int32())])


def _appender(url: str, warehouse: str, writer: int, start: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Load the table, wait for the others, append one row at a time; report the snapshots."""
    store = SqlStore(url)
    table = RefCatalog("lakehouse", store, "main", Warehouse.local(Path(warehouse))).load_table(
        TABLE
    )
    start.wait()
    committed = []
    for i in range(APPENDS):
        table.append(pa.table({"id": [writer * 1000 + i], "writer": [writer]}, schema=EVENTS))
        snapshot = table.current_snapshot()  # the table holds the metadata its commit wrote
        assert snapshot is not None
        committed.append(snapshot.snapshot_id)
    out.put((writer, committed, 0))
    store.close()


def test_appends_of_many_processes_to_one_table_land_exactly_once(url: str, tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    store = SqlStore(url)
    main = RefCatalog("lakehouse", store, "main", warehouse)
    main.create_namespace("bronze")
    main.create_table(TABLE, EVENTS)
    commits_before = len(list(store.iter_log("main")))

    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = ctx.Barrier(APPENDERS)
    procs = [
        ctx.Process(target=_appender, args=(url, str(root), w, start, out))
        for w in range(APPENDERS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    table = main.load_table(TABLE)
    ids = table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
    expected = [w * 1000 + i for w in range(APPENDERS) for i in range(APPENDS)]
    assert sorted(ids) == expected  # none lost, none twice
    # one snapshot per append, in one chain, each the one its writer was told it committed
    chain = [entry.snapshot_id for entry in table.history()]
    assert len(chain) == len(set(chain)) == APPENDERS * APPENDS
    for parent, child in itertools.pairwise(chain):
        snapshot = table.snapshot_by_id(child)
        assert snapshot is not None and snapshot.parent_snapshot_id == parent
    assert sorted(s for _, committed, _ in results for s in committed) == sorted(chain)
    head = table.current_snapshot()
    assert head is not None and head.summary is not None
    assert head.summary["total-records"] == str(APPENDERS * APPENDS)
    # and one catalog commit per append
    assert len(list(store.iter_log("main"))) - commits_before == APPENDERS * APPENDS
    store.close()


@pytest.mark.integration
def test_postgres_commit_lock_waiters_queue_in_the_server_instead_of_polling(
    fresh_postgres_url: str,
) -> None:
    store = SqlStore(fresh_postgres_url)
    waiter = SqlStore(fresh_postgres_url)
    got: list[bool] = []
    try:
        with store.commit_lock("main", [TABLE_KEY], timeout=1) as held:
            assert held is True

            def wait_for_the_lock() -> None:
                with waiter.commit_lock("main", [TABLE_KEY], timeout=60) as second:
                    got.append(second)

            thread = threading.Thread(target=wait_for_the_lock)
            thread.start()
            # the waiter shows up as one ungranted advisory lock in the server's lock table
            deadline = time.monotonic() + 30
            with store.engine.connect() as conn:
                while True:
                    waiting = conn.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted"
                        )
                    ).scalar()
                    conn.rollback()
                    if waiting == 1:
                        break
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            assert not got
        thread.join(timeout=30)
        assert got == [True]  # woken when the holder unlocked, long before its 60 s
        with waiter.engine.connect() as conn:  # the lock wait left no lock_timeout behind
            assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "0"
    finally:
        store.close()
        waiter.close()
