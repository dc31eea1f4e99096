"""Property: any sequence of row-level writes and maintenance reads back as a plain table.

Random appends, upserts, deletes, compactions and snapshot expiries run on a table on
``main`` (and, in the second property, on a branch that is then merged); after every
step the table — read by PyIceberg and by the lakehouse's own DuckDB path — holds exactly
the rows a plain DuckDB table given the same changes holds.
"""

from __future__ import annotations

import importlib
import itertools
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.maintenance.compact import compact_table
from lakehouse.maintenance.expire import expire_snapshots
from lakehouse.maintenance.policies import CompactionPolicy, Policies
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, delete_rows, upsert
from lakehouse.tables.upsert import SMALL_FILE_ROWS
from tests.tables.conftest import SCHEMA

ids = st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12, unique=True)
step = st.one_of(
    st.tuples(st.just("append"), ids),
    st.tuples(st.just("upsert"), ids),
    st.tuples(st.just("delete"), ids),
    st.tuples(st.just("compact"), st.just([])),
    st.tuples(st.just("expire"), st.just([])),
    st.tuples(st.just("same"), ids),
)
_tag = itertools.count()


class Expected:
    """The same changes applied to a plain DuckDB table (the oracle)."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute("CREATE TABLE t (id BIGINT, name VARCHAR, amount DOUBLE)")

    def apply(self, op: str, rows: pa.Table) -> None:
        self.con.register("r", rows)
        if op in ("upsert", "delete"):
            self.con.execute("DELETE FROM t WHERE id IN (SELECT id FROM r)")
        if op in ("append", "upsert"):
            self.con.execute("INSERT INTO t SELECT id, name, amount FROM r")
        self.con.unregister("r")

    def rows(self) -> list[tuple[Any, ...]]:
        return self.con.sql("SELECT id, name, amount FROM t ORDER BY ALL").fetchall()


def _rows(ids_: list[int]) -> pa.Table:
    tag = f"t{next(_tag)}-"
    return pa.Table.from_pylist(
        [{"id": i, "name": f"{tag}{i}", "amount": float(i)} for i in ids_], schema=SCHEMA
    )


def _apply(lh: Lakehouse, ref: str, op: str, ids_: list[int], expected: Expected) -> None:
    catalog = lh.catalog(ref)
    table = catalog.load_table("s.t")
    rows = _rows(ids_)
    if op == "append":
        # only new keys: an append of an existing key would be a duplicate by design
        present = {r[0] for r in expected.rows()}
        rows = rows.filter(pa.array([i not in present for i in ids_]))
        if rows.num_rows:
            table.append(rows)
    elif op == "upsert":
        upsert(table, rows, ["id"], branch="main", reload=lambda: catalog.load_table("s.t"))
    elif op == "same":  # the rows the table holds for these keys, upserted again as they are
        present = {r[0]: r for r in expected.rows()}
        rows = pa.Table.from_pylist(
            [
                dict(zip(("id", "name", "amount"), present[i], strict=True))
                for i in ids_
                if i in present
            ],
            schema=SCHEMA,
        )
        result = upsert(table, rows, ["id"])
        assert (result.unchanged, result.snapshot_id) == (rows.num_rows, None)
        return
    elif op == "delete":
        delete_rows(table, rows.select(["id"]), ["id"])
    elif op == "compact":
        compact_table(table, CompactionPolicy(min_small_files=2, delete_ratio=0.0))
    elif op == "expire":
        policies = Policies.model_validate({"snapshots": {"keep_last": 2, "max_age": "0s"}})
        expire_snapshots(lh, ref, policies=policies)
    expected.apply(op, rows)


def _check(lh: Lakehouse, ref: str, expected: Expected) -> None:
    want = expected.rows()
    table = lh.catalog(ref).load_table("s.t")
    got = sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())
    assert got == want
    sql = lh.sql("SELECT id, name, amount FROM s.t ORDER BY ALL", ref=ref)
    assert [tuple(r.values()) for r in sql.to_pylist()] == want


def _lakehouse(folder: str, properties: dict[str, str] | None = None) -> Lakehouse:
    lh = lakehouse.connect(Path(folder) / "home", create=True)
    catalog = lh.catalog("main")
    catalog.create_namespace("s")
    props = {**DEFAULT_TABLE_PROPERTIES, **(properties or {})}
    catalog.create_table("s.t", schema=SCHEMA, properties=props)
    return lh


def _run_on_main(
    steps: list[tuple[str, list[int]]], properties: dict[str, str] | None = None
) -> None:
    """Apply ``steps`` to a new table on main, checking it against the oracle after each."""
    with tempfile.TemporaryDirectory() as folder:
        lh = _lakehouse(folder, properties)
        expected = Expected()
        for op, ids_ in steps:
            _apply(lh, "main", op, ids_, expected)
            _check(lh, "main", expected)


#: How a row-level write goes about it, set per run (module attributes and table properties).
PATHS: dict[str, tuple[list[tuple[str, str, int]], dict[str, str]]] = {
    "as-configured": ([], {}),
    # every file indexed and every upsert looked up as a large one: through the key indexes
    "key-indexes": (
        [
            ("lakehouse.tables.keyindex", "MIN_ROWS", 1),
            ("lakehouse.tables.upsert", "IN_PRUNING_LIMIT", 0),
        ],
        {},
    ),
    # every write's deletes in one delete file for all its data files, earlier ones folded
    # as a binary counter; no small file rewritten, so writes delete from many data files
    "shared-delete-files": (
        [("lakehouse.tables.rowdelta", "SCOPED_FILES_LIMIT", 0)],
        {SMALL_FILE_ROWS: "0"},
    ),
}


@pytest.mark.parametrize("path", list(PATHS))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(step, min_size=1, max_size=8))
# one sequence always run: writes to the same data files, each a little larger, so delete
# files fold (a binary counter on the shared path), then read back after a compaction
@example(
    [
        ("append", list(range(12))),
        ("upsert", [0]),
        ("delete", [1]),
        ("upsert", [2, 3]),
        ("upsert", [4, 5, 6, 7]),
        ("compact", []),
        ("upsert", [8, 9]),
    ]
)
# and one where a later, larger write deletes from only one of two data files a shared
# delete file names: that file must stay
@example(
    [
        ("append", list(range(12))),
        ("append", list(range(20, 32))),
        ("upsert", [0, 20]),
        ("upsert", [1, 2, 3]),
    ]
)
def test_row_level_writes_read_back_as_a_plain_table(
    monkeypatch: pytest.MonkeyPatch, path: str, steps: list[tuple[str, list[int]]]
) -> None:
    settings_, properties = PATHS[path]
    for module, name, value in settings_:
        monkeypatch.setattr(importlib.import_module(module), name, value)
    _run_on_main(steps, properties)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(step, min_size=1, max_size=4), st.lists(step, min_size=1, max_size=4))
def test_row_level_writes_on_a_branch_merge_into_main(
    before: list[tuple[str, list[int]]], on_branch: list[tuple[str, list[int]]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lh = _lakehouse(folder)
        expected = Expected()
        for op, ids_ in before:
            _apply(lh, "main", op, ids_, expected)
        lh.create_branch("dev", "main")
        for op, ids_ in on_branch:
            _apply(lh, "dev", op, ids_, expected)
            _check(lh, "dev", expected)
        lh.merge("dev", "main")
        _check(lh, "main", expected)
