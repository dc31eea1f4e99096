"""Row-level writes: upserts cost what they change, and deletes cost little to read.

Run: ``.venv/bin/python bench/upsert.py [--rows 1000000] [--big-rows 10000000]
[--rounds 7] [--only all|upsert|query] [--markdown docs/benchmarks.md]``

``--only upsert`` runs just the upserts vs appends (the first two cases), ``--only query``
just the read comparison (the last case) — quick to iterate on; their Markdown goes to the
same section, so write the full run's report, not theirs.

The rows each round writes are made before the rounds, so only the writes are timed.

Side by side in one run, on the embedded profile (SQLite catalog, local warehouse),
each table built by 10 appends as ingestion builds it:

* upsert of 10 rows (5 updates of random keys, 5 new keys) into a ``--rows`` table vs an
  append of 10 rows to an identical table (paired samples, alternating; 3 x ``--rounds``
  pairs, as a 10-row round is short and 7 pairs left the ratio's IQR at 3.5-7.7x); for
  information, again with the key columns and key indexes row-level writes keep in memory
  forgotten before each upsert (as the first upsert of a process);
* upsert of 100,000 rows (half updates, each to a value the key never had) vs an append of
  100,000 rows (both upsert cases also report process CPU time, all threads, paired the
  same way: on a loaded machine it moves less than wall time); again with the key columns
  and key indexes row-level writes keep in memory forgotten before each upsert (as the
  first upsert of a process: the key indexes are read from their files); for information,
  the same with 5 % of the updates identical to the rows they replace, the first such
  upsert into tables
  only appended to (it reads every file whole and writes its key index), and the same
  with key indexes off;
* upsert of 10 rows into a ``--big-rows`` table vs into a ``--rows`` table built the same
  way (and, for information, into the first table after its 100k-row upserts);
* ``SELECT count(*), sum(amount)`` over a table with 5 % of its rows position-deleted vs
  the same table compacted (the full read pairs rows with kept-rows masks; a query
  repeated finds its plan and view kept); again with the process's plan, manifest, delete
  file and mask caches emptied and its DuckDB connections closed before each query (the
  first query of a process); and with a pushed-down ``WHERE id >= 0`` (read through the hash
  anti-join, as every read was before the masks). Wall and CPU time (all threads of the
  process), paired.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from _common import (
    Report,
    Table,
    median,
    paired_ratio,
    ratio_iqr,
    replace_section,
    say,
    seconds,
    timed,
)

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.maintenance.compact import compact_table
from lakehouse.maintenance.policies import CompactionPolicy
from lakehouse.query import sandbox
from lakehouse.query.deletes import DELETE_FILES, KEEP_MASKS
from lakehouse.query.planning import MANIFEST_ENTRIES, SCAN_PLANS
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, delete_rows, upsert

try:
    from lakehouse.tables.files import forget_keys
except ImportError:  # a library from before the key columns were kept (A/B runs)

    def forget_keys() -> None:
        """Nothing to forget."""


try:
    from lakehouse.tables.keyindex import INDEX_PROPERTY, INDEX_SUFFIX, forget_indexes
except ImportError:  # a library from before key indexes (A/B runs)
    INDEX_PROPERTY, INDEX_SUFFIX = "lakehouse.upsert.key-index", ".keys.arrow"

    def forget_indexes() -> None:
        """Nothing to forget."""


SECTION = "## Row-level writes (merge-on-read upserts and deletes)"
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.float64())])


def rows(ids: list[int] | range, tag: str, suffix: str = "") -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"{tag}{i}{suffix}" for i in ids]),
            "amount": pa.array([i * 0.25 for i in ids], pa.float64()),
        },
        schema=SCHEMA,
    )


def build(lh: Lakehouse, name: str, n: int, properties: dict[str, str] | None = None) -> None:
    """``s.<name>`` with ids 0..n-1, written by 10 appends."""
    catalog = lh.catalog("main")
    props = {**DEFAULT_TABLE_PROPERTIES, **(properties or {})}
    table = catalog.create_table(f"s.{name}", schema=SCHEMA, properties=props)
    step = max(1, n // 10)
    for start in range(0, n, step):
        table.append(rows(range(start, min(n, start + step)), "v"))


def storage(home: Path, name: str) -> tuple[int, int]:
    """Bytes of the data files (any kind) and of the key indexes under ``s.<name>``'s folders."""
    data = index = 0
    for path in home.glob(f"warehouse/*/s/{name}_*/data/*"):
        if path.name.endswith(INDEX_SUFFIX):
            index += path.stat().st_size
        else:
            data += path.stat().st_size
    return data, index


class Keys:
    """Fresh keys for inserts and random existing keys for updates."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.next_new = n * 10
        #: what each key's name ends with now (:meth:`rows`; absent: ``""``, as built)
        self.suffix: dict[int, str] = {}
        self._batches = 0

    def rows(self, size: int, identical_share: float = 0.0) -> pa.Table:
        """A batch of upsert rows: half updates of random keys, half new keys.

        An update changes a name to another of the same kind ("v17" → "v17-b3"): inside
        the old files' min/max, so statistics cannot rule equality out. Each batch's
        suffix is its own, so an update never writes the value a key already has, except
        for ``identical_share`` of the updates, which write the row as it is.
        """
        suffix = f"-b{self._batches}"
        self._batches += 1
        ids = self.batch(size)
        same = int(size * 0.5 * identical_share)  # the first ids of a batch are updates
        names = []
        for j, i in enumerate(ids):
            end = self.suffix.get(i, "") if j < same else suffix
            self.suffix[i] = end
            names.append(f"v{i}{end}")
        return pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "name": pa.array(names),
                "amount": pa.array([i * 0.25 for i in ids], pa.float64()),
            },
            schema=SCHEMA,
        )

    def batch(self, size: int, update_share: float = 0.5) -> list[int]:
        updates = int(size * update_share)
        out = random.sample(range(self.n), updates)
        out += list(range(self.next_new, self.next_new + size - updates))
        self.next_new += size - updates
        return out


#: process CPU seconds of each call :func:`pair` timed, in the order timed (base, ours, ...)
CPU: list[float] = []


def pair(
    lh: Lakehouse, rounds: int, ours: Callable[[int], None], base: Callable[[int], None]
) -> tuple[list[float], list[float]]:
    """Wall seconds of ``base(i)`` and ``ours(i)``, alternating; CPU seconds go to :data:`CPU`."""
    a: list[float] = []
    b: list[float] = []
    CPU.clear()
    for i in range(rounds):
        for fn, out in ((base, a), (ours, b)):
            cpu = time.process_time()
            out.append(timed(lambda fn=fn, i=i: fn(i)))  # type: ignore[misc]
            CPU.append(time.process_time() - cpu)
    return a, b


def cpu_pairs() -> tuple[list[float], list[float]]:
    """The CPU seconds of the last :func:`pair` run: (base, ours)."""
    return CPU[0::2], CPU[1::2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--only",
        choices=("all", "upsert", "query"),
        default="all",
        help="run every case (default), only the upserts vs appends into one table (no "
        "big-table series, no read), or only the read of a position-deleted table",
    )
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, pyarrow {pa.__version__}; load average at start "
        f"{os.getloadavg()[0]:.1f}. Command: `python bench/upsert.py {' '.join(given)}`."
    )
    print(header)
    report = Report()
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-upsert-") as tmp:
        lh = lakehouse.connect(Path(tmp) / "home", create=True)
        catalog = lh.catalog("main")
        catalog.create_namespace("s")
        n = args.rows
        if args.only in ("all", "upsert"):
            say(f"building two {n:,}-row tables")
            build(lh, "target", n)
            build(lh, "appended", n)
            keys = Keys(n)

            # the rows of every round are made before the rounds: only the writes are timed
            def up(
                size: int,
                rounds: int,
                cold: bool = False,
                into: str | None = None,
                identical: float = 0.0,
            ) -> Callable[[int], None]:
                batches = [keys.rows(size, identical) for _ in range(rounds)]

                def run(i: int) -> None:
                    if cold:  # as the first upsert of a process: nothing kept in memory
                        forget_keys()
                        forget_indexes()
                    table = catalog.load_table(into.format(i) if into else "s.target")
                    upsert(table, batches[i], ["id"])

                return run

            def app(size: int, rounds: int) -> Callable[[int], None]:
                batches = []
                for i in range(rounds):
                    batches.append(rows(range(keys.next_new, keys.next_new + size), f"a{i}-"))
                    keys.next_new += size

                def run(i: int) -> None:
                    table = catalog.load_table("s.appended")
                    table.append(batches[i])

                return run

            big_rounds = max(5, args.rounds // 2)  # 3 swung the ratio by 2x between runs
            # a 10-row round takes ~50 ms: three times as many, as 7 left an IQR of 3.5-7.7x
            small_rounds = 3 * args.rounds
            results = Table(
                f"Upsert vs append ({n:,}-row table; 10 rows: {small_rounds} paired rounds, "
                f"100,000 rows: {big_rounds}; CPU: all threads of the process)",
                ["case", "append p50", "upsert p50", "upsert / append (median, IQR)",
                 "CPU append p50", "CPU upsert p50", "CPU upsert / append (median, IQR)"],
            )  # fmt: skip

            def cpu_columns() -> list[str]:
                base, ours = cpu_pairs()
                return [
                    seconds(median(base)), seconds(median(ours)),
                    ratio_iqr(paired_ratio(base, ours)),
                ]  # fmt: skip

            say("10-row upserts vs 10-row appends")
            a10, u10 = pair(lh, small_rounds, up(10, small_rounds), app(10, small_rounds))
            r10 = paired_ratio(a10, u10)
            results.rows.append(
                ["10 rows", seconds(median(a10)), seconds(median(u10)), ratio_iqr(r10),
                 *cpu_columns()]
            )  # fmt: skip
            say("10-row upserts with nothing kept in memory vs 10-row appends")
            ac10, uc10 = pair(lh, small_rounds, up(10, small_rounds, True), app(10, small_rounds))
            results.rows.append(
                ["10 rows, nothing kept in memory from earlier upserts (key columns decoded "
                 "from their files)", seconds(median(ac10)), seconds(median(uc10)),
                 ratio_iqr(paired_ratio(ac10, uc10)), *cpu_columns()]
            )  # fmt: skip
            say("100k-row upserts vs 100k-row appends")
            a100k, u100k = pair(lh, big_rounds, up(100_000, big_rounds), app(100_000, big_rounds))
            r100k = paired_ratio(a100k, u100k)
            results.rows.append(
                ["100,000 rows (50 % updates)", seconds(median(a100k)), seconds(median(u100k)),
                 ratio_iqr(r100k), *cpu_columns()]
            )  # fmt: skip
            say("100k-row upserts with nothing kept in memory vs 100k-row appends")
            ac, uc = pair(lh, big_rounds, up(100_000, big_rounds, True), app(100_000, big_rounds))
            cold = paired_ratio(ac, uc)
            results.rows.append(
                ["100,000 rows, nothing kept in memory from earlier upserts (key indexes read "
                 "from their files)", seconds(median(ac)), seconds(median(uc)),
                 ratio_iqr(paired_ratio(ac, uc)), *cpu_columns()]
            )  # fmt: skip
            say("the same, 5 % of the updates identical to the rows they replace")
            ai, ui = pair(
                lh, big_rounds, up(100_000, big_rounds, True, identical=0.05),
                app(100_000, big_rounds),
            )  # fmt: skip
            results.rows.append(
                ["the same, 5 % of the updates identical to the rows they replace (too few "
                 "per file to be worth reading to prove it: rewritten)", seconds(median(ai)),
                 seconds(median(ui)), ratio_iqr(paired_ratio(ai, ui)), *cpu_columns()]
            )  # fmt: skip
            say(f"building {big_rounds} tables of {n:,} rows without key indexes")
            for i in range(big_rounds):
                build(lh, f"unindexed{i}", n)
                build(lh, f"indexoff{i}", n, {INDEX_PROPERTY: "false"})
            say("first 100k-row upserts into tables only appended to (indexing their files)")
            af, uf = pair(
                lh, big_rounds, up(100_000, big_rounds, True, "s.unindexed{}"),
                app(100_000, big_rounds),
            )  # fmt: skip
            results.rows.append(
                ["100,000 rows, the first large upsert into a table only appended to "
                 "(it indexes the files it reads)", seconds(median(af)), seconds(median(uf)),
                 ratio_iqr(paired_ratio(af, uf)), *cpu_columns()]
            )  # fmt: skip
            say("the same with key indexes off")
            ao, uo = pair(
                lh, big_rounds, up(100_000, big_rounds, True, "s.indexoff{}"),
                app(100_000, big_rounds),
            )  # fmt: skip
            results.rows.append(
                [f"the same, key indexes off (`{INDEX_PROPERTY}=false`)", seconds(median(ao)),
                 seconds(median(uo)), ratio_iqr(paired_ratio(ao, uo)), *cpu_columns()]
            )  # fmt: skip
            report.add(results)
            data, index = storage(Path(tmp) / "home", "target")
            say(f"s.target: {data / 1e6:.1f} MB of data files, {index / 1e6:.1f} MB of key indexes")
            results.notes.append(
                f"After these upserts, `s.target`'s data folder holds {data / 1e6:.1f} MB of "
                f"Parquet files (data and delete files, live or not) and {index / 1e6:.1f} MB "
                f"of key indexes ({index / max(data, 1):.0%} of the Parquet bytes)."
            )
            report.check("upsert 10 rows vs append 10 rows", f"{r10[0]:.2f}x", "<= 3x", r10[0] <= 3)
            report.check(  # as a pipeline run's one upsert into the table: nothing kept
                "upsert 100k (50 % updates) vs append 100k, nothing kept in memory",
                f"{cold[0]:.2f}x",
                "<= 3x",
                cold[0] <= 3,
            )
            report.check(
                "the same, key columns kept from earlier upserts (CDC, a worker)",
                f"{r100k[0]:.2f}x",
                "<= 3x",
                r100k[0] <= 3,
            )

            if args.only == "all":
                say(f"building a {args.big_rows:,}-row table and a fresh {n:,}-row one")
                build(lh, "big", args.big_rows)
                build(lh, "small", n)
                big_keys = Keys(args.big_rows)
                small_keys = Keys(n)

                def up_into(name: str, into: Keys) -> Callable[[int], None]:
                    batches = [rows(into.batch(10), f"b{i}-") for i in range(args.rounds)]

                    def run(i: int) -> None:
                        table = catalog.load_table(f"s.{name}")
                        upsert(table, batches[i], ["id"])

                    return run

                say("10-row upserts into the big table vs a small one with the same history")
                into_big, into_small = up_into("big", big_keys), up_into("small", small_keys)
                small, big = pair(lh, args.rounds, into_big, into_small)  # (base, ours) times
                rbig = paired_ratio(small, big)
                say("10-row upserts into the table the 100k upserts wrote to vs the fresh one")
                fresh, busy = pair(
                    lh, args.rounds, up(10, args.rounds), up_into("small", small_keys)
                )
                rbusy = paired_ratio(fresh, busy)
                scale = Table(
                    "Upsert of 10 rows: big table vs small table (both built by 10 appends)",
                    ["table", "upsert p50", "ratio to the small table (median, IQR)"],
                )
                scale.rows.append([f"{n:,} rows", seconds(median(small)), "1"])
                scale.rows.append(
                    [f"{args.big_rows:,} rows", seconds(median(big)), ratio_iqr(rbig)]
                )
                scale.rows.append(
                    [f"{n:,} rows after the 100k upserts above", seconds(median(busy)),
                     ratio_iqr(rbusy) + " (to the fresh table in its own pairs)"]
                )  # fmt: skip
                report.add(scale)
                report.check(
                    f"upsert 10 rows into {args.big_rows:,} vs {n:,} rows",
                    f"{rbig[0]:.2f}x",
                    "<= 1.5x",
                    rbig[0] <= 1.5,
                )

        if args.only in ("all", "query"):
            say("query with 5 % of rows position-deleted vs compacted")
            build(lh, "deleted", n)
            build(lh, "compacted", n)
            gone = random.sample(range(n), n // 20)
            for name in ("deleted", "compacted"):
                delete_rows(catalog.load_table(f"s.{name}"), pa.table({"id": gone}), ["id"])
            compact_table(catalog.load_table("s.compacted"), CompactionPolicy(delete_ratio=0.0))
            query = "SELECT count(*), sum(amount) FROM s.{}"
            filtered = query + " WHERE id >= 0"  # pushed down: the anti-join, as every read before
            want = lh.sql(query.format("compacted")).to_pylist()
            assert lh.sql(query.format("deleted")).to_pylist() == want
            assert lh.sql(filtered.format("deleted")).to_pylist() == want

            def read(name: str, first: bool = False, sql: str = query) -> Callable[[], None]:
                def run() -> None:
                    if first:  # as the first query of a process: nothing read before is kept
                        MANIFEST_ENTRIES.clear()
                        SCAN_PLANS.clear()
                        DELETE_FILES.clear()
                        KEEP_MASKS.clear()
                        sandbox.close_cached()
                    lh.sql(sql.format(name))

                return run

            def both(fn: Callable[[], None]) -> tuple[float, float]:
                """Wall and CPU seconds (all threads of this process, DuckDB's too) of ``fn()``."""
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                return time.perf_counter() - wall, time.process_time() - cpu

            def paired(
                base: Callable[[], None], ours: Callable[[], None]
            ) -> tuple[list[float], list[float], list[float], list[float]]:
                bw: list[float] = []
                ow: list[float] = []
                bc: list[float] = []
                oc: list[float] = []
                for _ in range(args.rounds):
                    for fn, wall, cpu in ((base, bw, bc), (ours, ow, oc)):
                        w, c = both(fn)
                        wall.append(w)
                        cpu.append(c)
                return bw, ow, bc, oc

            cases = [
                ("", read("compacted"), read("deleted")),
                (", first read (no plan, manifest, delete file, mask or connection kept)",
                 read("compacted", True), read("deleted", True)),
                (", `WHERE id >= 0` (anti-join)",
                 read("compacted", sql=filtered), read("deleted", sql=filtered)),
            ]  # fmt: skip
            reads = Table(
                f"Query over {n:,} rows, 5 % position-deleted vs compacted "
                f"({args.rounds} paired rounds; CPU: all threads of the process)",
                ["table", "query p50", "ratio (median, IQR)", "CPU p50", "CPU ratio (median, IQR)"],
            )
            ratios: list[tuple[float, float, float]] = []
            for label, base, ours in cases:
                bw, ow, bc, oc = paired(base, ours)
                rw, rc = paired_ratio(bw, ow), paired_ratio(bc, oc)
                ratios.append(rw)
                reads.rows.append(
                    [f"compacted{label}", seconds(median(bw)), "1", seconds(median(bc)), "1"]
                )
                reads.rows.append(
                    [f"5 % deleted{label}", seconds(median(ow)), ratio_iqr(rw), seconds(median(oc)),
                     ratio_iqr(rc)]
                )  # fmt: skip
            rq = ratios[0]
            report.add(reads)
            report.check("query 5 % deleted vs compacted", f"{rq[0]:.2f}x", "<= 1.3x", rq[0] <= 1.3)
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
