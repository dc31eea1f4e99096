"""Property: a content merge adds exactly the two sides' changes, or says why it cannot.

Random appends, row deletes and compactions (overwrites) on two forks of one table. The
expected rows are computed independently in DuckDB from what each side did to the
ancestor's rows; a merge that refuses must name the source's removals or delete files.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
from collections import Counter

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from lakehouse.tables.merge import merge_tables

Op = tuple[str, int]
ops = st.lists(
    st.tuples(st.sampled_from(["append", "append", "delete", "compact"]), st.integers(0, 9)),
    max_size=4,
)


def rows(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def apply(table: Table, steps: list[Op], fresh: itertools.count[int]) -> None:
    for kind, n in steps:
        if kind == "append":
            table.append(rows([next(fresh) for _ in range(n % 3 + 1)]))
        elif kind == "delete":
            with warnings.catch_warnings():  # a delete may match nothing: that is a case too
                warnings.simplefilter("ignore", UserWarning)
                table.delete(f"id = {n if n < 5 else 95 + n}")  # an ancestor or appended row
        else:
            table.overwrite(table.scan().to_arrow())


def expected(ancestor: list[int], target: list[int], source: list[int]) -> list[int]:
    """ancestor + (target - ancestor) + (source - ancestor), minus what either deleted."""
    con = duckdb.connect()
    con.register("a", pa.table({"id": ancestor}))
    con.register("t", pa.table({"id": target}))
    con.register("s", pa.table({"id": source}))
    sql = """
        SELECT id FROM a WHERE id IN (SELECT id FROM t) AND id IN (SELECT id FROM s)
        UNION ALL SELECT id FROM t WHERE id NOT IN (SELECT id FROM a)
        UNION ALL SELECT id FROM s WHERE id NOT IN (SELECT id FROM a)
    """
    return sorted(r[0] for r in con.execute(sql).fetchall())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.integers(1, 5), target_ops=ops, source_ops=ops)
def test_merged_rows_are_the_ancestor_plus_both_sides_changes(
    base: int, target_ops: list[Op], source_ops: list[Op]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = SqlCatalog("p", uri=f"sqlite:///{tmp}/c.db", warehouse=f"file://{tmp}/wh")
        catalog.create_namespace("ns")
        target = catalog.create_table(
            "ns.t", schema=rows([1]).schema, properties={"format-version": "2"}
        )
        target.append(rows(list(range(base))))
        ancestor = target.metadata
        source = catalog.register_table("ns.s", target.metadata_location)
        fresh = itertools.count(100)
        apply(target, target_ops, fresh)
        apply(source, source_ops, fresh)
        target, source = target.refresh(), source.refresh()

        def read(t: Table) -> list[int]:
            return sorted(t.scan().to_arrow().column("id").to_pylist())

        a_rows = sorted(range(base))
        result = merge_tables(ancestor, target.metadata, source.metadata, target.io)
        source_removed = any(k in ("delete", "compact") for k, _ in source_ops)
        if result.metadata is None:
            assert result.conflict is not None
            assert source_removed, result.conflict
            assert "the source removed or rewrote" in result.conflict
            return
        merged = Table(target.name(), result.metadata, "", target.io, catalog)
        got = read(merged)
        assert Counter(got) == Counter(expected(a_rows, read(target), read(source)))
