"""Property: a content merge adds exactly the two sides' changes, or says why it cannot.

Random appends, copy-on-write deletes, merge-on-read upserts and row deletes (position
delete files, written by :func:`lakehouse.tables.upsert.upsert`) and compactions
(overwrites) on two forks of one table. The expected rows are computed independently in
DuckDB from what each side did to the ancestor's rows; a merge that refuses must name a
data file whose state on the three sides proves the reason (or, for a table upserts
keyed, a key both sides wrote).
"""

from __future__ import annotations

import itertools
import re
import tempfile
import warnings
from collections import Counter

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from lakehouse.tables import rowdelta
from lakehouse.tables.merge import merge_tables
from lakehouse.tables.upsert import SMALL_FILE_ROWS, delete_rows, upsert

Op = tuple[str, int]
KINDS = ["append", "append", "delete", "upsert", "upsert", "delete_rows", "compact"]
ops = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 9)), max_size=4)
source_changes = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 9)), min_size=1, max_size=4
)
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
Row = tuple[int, str]


def rows(pairs: list[Row]) -> pa.Table:
    return pa.table(
        {"id": pa.array([i for i, _ in pairs], pa.int64()), "v": [v for _, v in pairs]},
        schema=SCHEMA,
    )


def key(n: int) -> int:
    return n if n < 5 else 95 + n  # an ancestor row, or one a side appended


def apply(table: Table, steps: list[Op], fresh: itertools.count[int]) -> None:
    for kind, n in steps:
        if kind == "append":
            table.append(rows([(next(fresh), "new") for _ in range(n % 3 + 1)]))
        elif kind == "delete":  # copy-on-write (PyIceberg rewrites the data file)
            with warnings.catch_warnings():  # a delete may match nothing: that is a case too
                warnings.simplefilter("ignore", UserWarning)
                table.delete(f"id = {key(n)}")
        elif kind == "upsert":  # merge-on-read: a position delete file and a new data file
            upsert(table, rows([(key(n), f"u{next(fresh)}")]), ["id"])
            table = table.refresh()
        elif kind == "delete_rows":
            delete_rows(table, pa.table({"id": pa.array([key(n)], pa.int64())}), ["id"])
            table = table.refresh()
        else:  # compaction; of an empty table too, whose delete matches nothing
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table.overwrite(table.scan().to_arrow())
        table = table.refresh()


def expected(ancestor: list[Row], target: list[Row], source: list[Row]) -> list[Row]:
    """ancestor + (target - ancestor) + (source - ancestor), minus what either deleted."""
    con = duckdb.connect()
    for name, data in (("a", ancestor), ("t", target), ("s", source)):
        con.register(name, rows(data))
    sql = """
        SELECT id, v FROM a WHERE (id, v) IN (SELECT (id, v) FROM t)
                              AND (id, v) IN (SELECT (id, v) FROM s)
        UNION ALL SELECT id, v FROM t WHERE (id, v) NOT IN (SELECT (id, v) FROM a)
        UNION ALL SELECT id, v FROM s WHERE (id, v) NOT IN (SELECT (id, v) FROM a)
    """
    return sorted((int(r[0]), str(r[1])) for r in con.execute(sql).fetchall())


def read(table: Table) -> list[Row]:
    return sorted((r["id"], r["v"]) for r in table.scan().to_arrow().to_pylist())


def files(table: Table) -> dict[str, set[str]]:
    """Live data files and the delete files that apply to each."""
    return {
        t.file.file_path: {d.file_path for d in t.delete_files} for t in table.scan().plan_files()
    }


def added_ids(table: Table, before: dict[str, set[str]]) -> set[int]:
    """Ids in the data files ``table`` has that ``before`` did not (deletes not applied)."""
    import pyarrow.parquet as pq

    ids: set[int] = set()
    for path in set(files(table)) - set(before):
        with table.io.new_input(path).open() as f:
            ids.update(pq.read_table(f, columns=["id"]).column("id").to_pylist())
    return ids


def check_conflict(
    reason: str,
    a: dict[str, set[str]],
    t: dict[str, set[str]],
    s: dict[str, set[str]],
    written: tuple[set[int], set[int]] = (set(), set()),
) -> None:
    """The data file (or key) the reason names is in the state the reason says."""
    keyed = re.match(r"both sides wrote rows with key id=(\d+) ", reason)
    if keyed is not None:  # upserts record the key: a key in files both sides added
        assert all(int(keyed.group(1)) in side for side in written), reason
        return
    match = re.search(r"data file (\S+?)(?:,| \(|$)", reason)
    assert match is not None, reason
    path = match.group(1)
    assert path in a, reason  # every reason is about a data file of the ancestor
    if reason.startswith("the source deleted rows from data file"):
        assert path not in t and path in s and s[path] - a[path], reason
    elif reason.startswith("both sides removed or rewrote data file"):
        assert path not in t and path not in s, reason
    elif reason.startswith("the source rewrote or removed data file"):
        assert path not in s and path in t and t[path] - a[path], reason
    else:
        raise AssertionError(f"unexpected conflict: {reason}")


@pytest.mark.parametrize("scoped_files", [rowdelta.SCOPED_FILES_LIMIT, 0])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(base=st.integers(1, 5), target_ops=ops, source_ops=source_changes)
def test_merged_rows_are_the_ancestor_plus_both_sides_changes(
    monkeypatch: pytest.MonkeyPatch,
    scoped_files: int,
    base: int,
    target_ops: list[Op],
    source_ops: list[Op],
) -> None:
    # 0: every write's deletes in one delete file for all its data files (as large writes)
    monkeypatch.setattr(rowdelta, "SCOPED_FILES_LIMIT", scoped_files)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = SqlCatalog("p", uri=f"sqlite:///{tmp}/c.db", warehouse=f"file://{tmp}/wh")
        catalog.create_namespace("ns")
        target = catalog.create_table(
            "ns.t", schema=SCHEMA, properties={"format-version": "2", SMALL_FILE_ROWS: "0"}
        )
        target.append(rows([(i, "a") for i in range(base)]))
        ancestor = target.metadata
        ancestor_table = Table(
            target.name(), ancestor, target.metadata_location, target.io, catalog
        )
        source = catalog.register_table("ns.s", target.metadata_location)
        fresh = itertools.count(100)
        apply(target, target_ops, fresh)
        apply(source, source_ops, fresh)
        target, source = target.refresh(), source.refresh()

        result = merge_tables(ancestor, target.metadata, source.metadata, target.io)
        event(re.sub(r"\d+|data file \S+.*", "", result.description))  # coverage of the cases
        if result.metadata is None:
            assert result.conflict is not None
            before = files(ancestor_table)
            written = (added_ids(target, before), added_ids(source, before))
            check_conflict(result.conflict, before, files(target), files(source), written)
            return
        merged = Table(target.name(), result.metadata, "", target.io, catalog)
        want = expected(read(ancestor_table), read(target), read(source))
        assert Counter(read(merged)) == Counter(want), result.description
