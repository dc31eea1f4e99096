"""Benchmarks of the versioned catalog (DESIGN §3 cost rules) on SQLite and PostgreSQL.

Run from the repository root::

    .venv/bin/python bench/catalog.py [--quick] [--backends sqlite,postgres]
                                      [--postgres-url URL] [--markdown OUT.md]
                                      [--sections commits,merge,lookup,size,keys]
                                      [--strict] [--rebuild-fixtures]

Sections:

1. commit latency (p50/p99) and throughput with 1 writer and with 8 writer processes;
2. merge time for 1, 100 and 1000 changed tables;
3. contents lookup at the head with 10 vs 10,000 commits of history (warm and cold cache);
4. commit latency in a catalog of 100 vs 10,000 tables;
5. commit latency with 1, 10 and 100 changed keys.

Performance targets live here, never in the tests. The machine this runs on is noisy,
so every number is a median or percentile over many samples, and every ratio compares
two series measured interleaved (A, B, A, B, ...) in the same run.

Each scenario gets its own empty catalog: a SQLite file in a temporary folder, or a
scratch PostgreSQL database ``lh_bench_<random>_<scenario>`` created on the server at
``--postgres-url`` (default: ``scripts/services/postgres.sh url lakehouse``) and dropped
at the end. ``--quick`` is a smoke run (smaller sizes, under 30 s).

Section 3 needs a catalog with 10,000 commits: built through the public API on SQLite
(about a minute on 2 cores), copied row for row into PostgreSQL, and kept in
``$LAKEHOUSE_CACHE/bench`` (default ``~/.cache/lakehouse/bench``) under a key that
covers the source of the SQL store (``lakehouse.catalog.sql_store``, ``tree``, ``model``,
``merge``), so later runs reuse it until that code changes (``--rebuild-fixtures``
forces a rebuild).

``--markdown FILE`` writes the tables as the section "Versioned catalog (bench/catalog.py)"
of FILE (e.g. docs/benchmarks.md), replacing that section and keeping the others. Targets
missed are reported, not fatal (``--strict`` makes them exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing as mp
import os
import platform
import queue
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from _common import (  # bench/ is the script's folder
    Report,
    Table,
    git_revision,
    median,
    paired_ratio,
    percentile,
    ratio,
    ratio_iqr,
    replace_section,
    say,
)
from sqlalchemy.engine import make_url

from lakehouse.catalog.model import ContentKey, IcebergTable, Namespace, Put, ReferenceType
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.catalog.sql_store import metadata as catalog_schema
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import CommitConflictError, TransientCatalogError

REPO = Path(__file__).resolve().parent.parent
#: Worker processes are forked where possible: no re-import, so setup stays short.
MP: ForkContext | SpawnContext = (
    mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
)
NS = ContentKey.of("bench")

# -- sizes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (full run vs --quick)."""

    rounds: int  # section 1: rounds of (1 writer, N writers), samples pooled
    single_commits: int  # section 1: timed commits of the single writer per round
    multi_commits: int  # section 1: timed commits per writer with N writers per round
    writers: int
    merge_runs: dict[int, int]  # section 2: changed tables -> runs (each warm and cold)
    history_small: int  # section 3
    history_large: int
    lookups_warm: int
    lookups_cold: int
    catalog_small: int  # section 4
    catalog_large: int
    size_commits: int
    key_counts: tuple[int, ...]  # section 5
    key_rounds: int
    key_catalog: int
    blocks: int  # sections 3 and 4: fresh store instances (connections) per block


FULL = Sizes(
    rounds=2,
    single_commits=250,
    multi_commits=40,
    writers=8,
    merge_runs={1: 11, 100: 11, 1000: 5},
    history_small=10,
    history_large=10_000,
    lookups_warm=400,
    lookups_cold=60,
    catalog_small=100,
    catalog_large=10_000,
    size_commits=200,
    key_counts=(1, 10, 100),
    key_rounds=50,
    key_catalog=1000,
    blocks=5,
)
QUICK = Sizes(
    rounds=1,
    single_commits=30,
    multi_commits=6,
    writers=8,
    merge_runs={1: 2, 100: 2, 1000: 1},
    history_small=10,
    history_large=200,
    lookups_warm=60,
    lookups_cold=6,
    catalog_small=100,
    catalog_large=2000,
    size_commits=20,
    key_counts=(1, 10, 100),
    key_rounds=6,
    key_catalog=300,
    blocks=2,
)

# -- statistics and reporting -------------------------------------------------------------


def blocked_ratio(
    a: Sequence[float], b: Sequence[float], blocks: int
) -> tuple[float, float, float]:
    """Median over ``blocks`` equal blocks of their paired ratios, and the lowest and highest.

    Each block uses fresh store instances, so fresh connections (on PostgreSQL, fresh
    server processes): a block where the scheduler happens to favour one side cannot
    tip the result.
    """
    n = len(a) // blocks
    per = [paired_ratio(a[i * n : (i + 1) * n], b[i * n : (i + 1) * n])[0] for i in range(blocks)]
    return median(per), min(per), max(per)


def ratio_blocks(r: tuple[float, float, float]) -> str:
    """A blocked ratio with its range: ``1.02x (blocks 0.97-1.08)``."""
    return f"{ratio(r[0])} (blocks {r[1]:.2f}-{r[2]:.2f})"


def ms(seconds: float) -> str:
    """Seconds as milliseconds with 3 significant-ish digits."""
    v = seconds * 1000
    if v != v:  # NaN
        return "-"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:.0f}"


# -- backends -----------------------------------------------------------------------------


class Backend(Protocol):
    name: str
    #: section 3's catalogs, built ahead (history length -> URL)
    histories: dict[int, str]

    def new_url(self, label: str) -> str:
        """The URL of a new, empty catalog database for one scenario."""
        ...

    def settle(self, url: str) -> None:
        """Bring a freshly built catalog to a steady state before timing it."""
        ...

    def describe(self) -> str: ...

    def cleanup(self) -> None: ...


class SqliteBackend:
    name = "sqlite"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lh_bench_"))
        self.histories: dict[int, str] = {}

    def new_url(self, label: str) -> str:
        return f"sqlite:///{self.folder / label}.db"

    def settle(self, url: str) -> None:
        """Checkpoint the WAL into the database file."""
        with sqlite3.connect(make_url(url).database or "") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL), temporary files"

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresBackend:
    name = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = make_url(url)
        self.prefix = f"lh_bench_{secrets.token_hex(4)}"
        self.created: list[str] = []
        self.histories: dict[int, str] = {}
        self.admin = psycopg.connect(
            self._conninfo(self.url.database or "postgres"), autocommit=True
        )
        row = self.admin.execute("SHOW server_version").fetchone()
        self.version = str(row[0]) if row else "?"

    def _conninfo(self, database: str) -> str:
        url = self.url.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)

    def new_url(self, label: str) -> str:
        name = f"{self.prefix}_{label}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def settle(self, url: str) -> None:
        """VACUUM ANALYZE, so that autovacuum does not start in the middle of a measurement."""
        import psycopg

        database = make_url(url).database or ""
        with psycopg.connect(self._conninfo(database), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    def describe(self) -> str:
        return (
            f"PostgreSQL {self.version} at {self.url.host}:{self.url.port} "
            f"(scratch databases {self.prefix}_*)"
        )

    def cleanup(self) -> None:
        for name in self.created:
            try:
                self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # keep dropping the others
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        self.created.clear()
        self.admin.close()


def default_postgres_url() -> str:
    env = os.environ.get("LAKEHOUSE_BENCH_POSTGRES_URL")
    if env:
        return env
    script = REPO / "scripts" / "services" / "postgres.sh"
    out = subprocess.run(
        ["bash", str(script), "url", "lakehouse"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


# -- helpers ------------------------------------------------------------------------------


def table_key(name: str) -> ContentKey:
    return ContentKey.of("bench", name)


def iceberg(seq: int, content_id: str | None = None) -> IcebergTable:
    return IcebergTable(
        f"s3://iceberg-metadata/bench/{seq:08d}-{secrets.token_hex(4)}.metadata.json",
        snapshot_id=seq,
        id=content_id,
    )


def create_catalog(url: str, names: Sequence[str]) -> dict[str, str]:
    """Namespace ``bench`` plus a table per name (in commits of up to 2000); name -> id."""
    ids: dict[str, str] = {}
    with SqlStore(url) as store:
        store.commit("main", [Put(NS, Namespace(NS.elements))], "create namespace")
        for start in range(0, len(names), 2000):
            chunk = names[start : start + 2000]
            result = store.commit(
                "main", [Put(table_key(n), iceberg(0)) for n in chunk], "create tables"
            )
            ids.update({str(k.name): v for k, v in result.added_contents.items()})
    return ids


class Updater:
    """Commits updates of existing tables, carrying their content ids."""

    def __init__(self, store: VersionStore, ids: dict[str, str]) -> None:
        self.store = store
        self.ids = ids
        self.names = sorted(ids)
        self.seq = 0

    def ops(self, names: Sequence[str]) -> list[Put]:
        out = []
        for n in names:
            self.seq += 1
            out.append(Put(table_key(n), iceberg(self.seq, self.ids[n])))
        return out

    def commit(self, names: Sequence[str], branch: str = "main") -> float:
        """Commit updates of ``names``; return the latency in seconds."""
        ops = self.ops(names)
        t0 = time.perf_counter()
        self.store.commit(branch, ops, "update")
        return time.perf_counter() - t0


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Wall seconds per call of ``fn`` (mean over ``repeat`` calls in a row)."""
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


# -- 1. commit latency and throughput -----------------------------------------------------


WARMUP_COMMITS = 3


@dataclass
class WriterResult:
    writer: int
    latencies: list[float]
    cpu: list[float]  # client CPU seconds per commit (this process only)
    retries: int
    start: float
    end: float
    last: dict[str, int]  # table -> last snapshot id committed
    error: str | None = None


def _writer(
    url: str,
    writer: int,
    tables: list[tuple[str, str]],
    commits: int,
    seq_base: int,
    barrier: Barrier,
    results: Queue[WriterResult],
) -> None:
    """One writer process: its own SqlStore, its own tables, ``commits`` timed commits."""
    latencies: list[float] = []
    cpu: list[float] = []
    retries = 0
    last: dict[str, int] = {}
    start = end = 0.0
    try:
        with SqlStore(url) as store:
            seq = seq_base

            def one(i: int) -> float:
                nonlocal seq, retries
                name, content_id = tables[i % len(tables)]
                seq += 1
                op = Put(table_key(name), iceberg(seq, content_id))
                c0 = time.process_time()
                t0 = time.perf_counter()
                while True:
                    try:
                        store.commit("main", [op], f"writer {writer} commit {i}")
                        break
                    except (CommitConflictError, TransientCatalogError):
                        retries += 1
                        time.sleep(0.001)
                elapsed = time.perf_counter() - t0
                cpu.append(time.process_time() - c0)
                last[name] = seq
                return elapsed

            for i in range(WARMUP_COMMITS):  # connections, caches (not timed)
                one(i)
            cpu.clear()
            barrier.wait(timeout=300)
            start = time.monotonic()
            latencies = [one(i) for i in range(commits)]
            end = time.monotonic()
        results.put(WriterResult(writer, latencies, cpu, retries, start, end, last))
    except BaseException as exc:
        barrier.abort()
        error = f"{type(exc).__name__}: {exc}"
        results.put(WriterResult(writer, [], [], retries, 0, 0, {}, error))


@dataclass
class WriterRun:
    latencies: list[float]
    cpu: list[float]
    commits: int
    wall: float
    retries: int
    last: dict[str, int]


def run_writers(
    url: str, tables: list[list[tuple[str, str]]], commits: int, seq_base: int
) -> WriterRun:
    ctx = MP
    n = len(tables)
    barrier = ctx.Barrier(n + 1)
    results: Queue[WriterResult] = ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer,
            args=(url, w, tables[w], commits, seq_base + w * 100_000, barrier, results),
            daemon=True,
        )
        for w in range(n)
    ]
    for p in procs:
        p.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=300)  # if broken, a worker failed: its error is queued
        out: list[WriterResult] = []
        for _ in range(n):
            try:
                out.append(results.get(timeout=600))
            except queue.Empty:
                raise RuntimeError("a writer process did not report back") from None
        errors = [r.error for r in out if r.error]
        if errors:
            raise RuntimeError(f"writer failed: {errors[0]}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    last: dict[str, int] = {}
    for r in out:
        last.update(r.last)
    return WriterRun(
        latencies=[x for r in out for x in r.latencies],
        cpu=[x for r in out for x in r.cpu],
        commits=sum(len(r.latencies) for r in out),
        wall=max(r.end for r in out) - min(r.start for r in out),
        retries=sum(r.retries for r in out),
        last=last,
    )


def bench_commits(backend: Backend, sizes: Sizes, report: Report) -> None:
    say(f"{backend.name}: 1. commit latency, 1 vs {sizes.writers} writers")
    url = backend.new_url("commits")
    per_writer = 4
    names = [f"w{w}_t{j}" for w in range(sizes.writers) for j in range(per_writer)]
    ids = create_catalog(url, names)
    backend.settle(url)
    tables = [
        [(f"w{w}_t{j}", ids[f"w{w}_t{j}"]) for j in range(per_writer)] for w in range(sizes.writers)
    ]
    runs: dict[int, list[WriterRun]] = {1: [], sizes.writers: []}
    expected: dict[str, int] = {}
    seq = 0
    for _ in range(sizes.rounds):  # 1 writer and N writers alternate: side by side
        for n, commits in ((1, sizes.single_commits), (sizes.writers, sizes.multi_commits)):
            seq += 10_000_000
            run = run_writers(url, tables[:n], commits, seq)
            runs[n].append(run)
            expected.update(run.last)
    # nothing lost, nothing applied twice: every table holds its writer's last value
    with SqlStore(url) as store:
        found = store.get_contents("main", [table_key(n) for n in expected])
        wrong = [
            n
            for n, s in expected.items()
            if getattr(found.get(table_key(n)), "snapshot_id", None) != s
        ]
        if wrong:
            raise RuntimeError(f"lost updates on {wrong[:3]}")
        history = sum(1 for _ in store.iter_log("main", page_size=1000))
    total = sum(r.commits for rs in runs.values() for r in rs)
    made = 2 + total + sizes.rounds * WARMUP_COMMITS * (1 + sizes.writers)
    if history != made:
        raise RuntimeError(f"log has {history} commits, expected exactly {made}")

    table = Table(
        f"1. Commit latency and throughput ({backend.name})",
        [
            "writers",
            "commits",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "client CPU p50 ms",
            "commits/s",
            "retries",
            "target",
            "status",
        ],
    )
    rates: dict[int, float] = {}
    for n, rs in runs.items():
        lat = [x for r in rs for x in r.latencies]
        commits = sum(r.commits for r in rs)
        rate = commits / sum(r.wall for r in rs)
        rates[n] = rate
        target = status = ""
        if n == 1 and backend.name == "sqlite":
            c = report.check(
                "sqlite: commit p50, 1 writer",
                ms(median(lat)) + " ms",
                "≤ 5 ms",
                median(lat) <= 0.005,
            )
            target, status = "p50 ≤ 5 ms", c.status
        table.rows.append(
            [
                f"{n} process{'es' if n > 1 else ''}",
                str(commits),
                ms(median(lat)),
                ms(percentile(lat, 0.9)),
                ms(percentile(lat, 0.99)),
                ms(median([x for r in rs for x in r.cpu])),
                f"{rate:.0f}",
                str(sum(r.retries for r in rs)),
                target,
                status,
            ]
        )
    table.notes.append(
        f"Each commit is one Put updating an existing Iceberg table (own keys per writer) under "
        f"namespace 'bench'; {sizes.rounds} round(s) of 1 then {sizes.writers} writers, pooled. "
        f"Throughput {sizes.writers} vs 1 writer: {ratio(rates[sizes.writers] / rates[1])}."
    )
    table.notes.append(
        f"Checked afterwards: every table holds its last committed value, and the log holds "
        f"exactly the {history} commits made (timed, warm-up and setup): none lost or doubled. "
        "client CPU = CPU time of the committing process (excludes the database server)."
    )
    report.add(table)


# -- 2. merge time ------------------------------------------------------------------------


def bench_merge(backend: Backend, sizes: Sizes, report: Report) -> None:
    say(f"{backend.name}: 2. merge time")
    url = backend.new_url("merge")
    largest = max(sizes.merge_runs)
    names = [f"t{i:05d}" for i in range(largest)] + ["other"]
    ids = create_catalog(url, names)
    backend.settle(url)
    warm: dict[int, list[float]] = {n: [] for n in sizes.merge_runs}
    cold: dict[int, list[float]] = {n: [] for n in sizes.merge_runs}
    warm_cpu: dict[int, list[float]] = {n: [] for n in sizes.merge_runs}
    with SqlStore(url) as store:
        up = Updater(store, ids)

        def prepare(n: int, branch: str) -> None:
            store.create_reference(branch, ReferenceType.BRANCH, "main")
            changed = names[:n]
            for start in range(0, n, 500):
                up.commit(changed[start : start + 500], branch)
            up.commit(["other"])  # main moves on meanwhile: a real merge, not a fast-forward

        def merge(s: VersionStore, n: int, branch: str) -> tuple[float, float]:
            c0 = time.process_time()
            t0 = time.perf_counter()
            result = s.merge(branch, "main")
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if not result.was_applied or len(result.details) != n:
                raise RuntimeError(f"merge of {branch} did not apply {n} changes: {result}")
            return elapsed, cpu

        for r in range(max(sizes.merge_runs.values())):  # sizes interleaved per run
            for n, runs in sizes.merge_runs.items():
                if r >= runs:
                    continue
                prepare(n, f"m{n}-warm{r}")
                elapsed, cpu = merge(store, n, f"m{n}-warm{r}")
                warm[n].append(elapsed)
                warm_cpu[n].append(cpu)
                prepare(n, f"m{n}-cold{r}")
                with SqlStore(url) as fresh:
                    cold[n].append(merge(fresh, n, f"m{n}-cold{r}")[0])

    table = Table(
        f"2. Merge time ({backend.name})",
        [
            "changed tables",
            "runs",
            "warm median ms",
            "warm max ms",
            "warm client CPU ms",
            "cold median ms",
            "cold max ms",
            "target",
            "status",
        ],
    )
    for n in sizes.merge_runs:
        target = status = ""
        if n == 100:
            cw = report.check(
                f"{backend.name}: merge 100 changed tables (warm)",
                ms(median(warm[n])) + " ms",
                "≤ 100 ms",
                median(warm[n]) <= 0.100,
            )
            cc = report.check(
                f"{backend.name}: merge 100 changed tables (cold)",
                ms(median(cold[n])) + " ms",
                "≤ 100 ms",
                median(cold[n]) <= 0.100,
            )
            target, status = "≤ 100 ms", f"warm {cw.status}, cold {cc.status}"
        table.rows.append(
            [
                str(n),
                str(len(warm[n])),
                ms(median(warm[n])),
                ms(max(warm[n])),
                ms(median(warm_cpu[n])),
                ms(median(cold[n])),
                ms(max(cold[n])),
                target,
                status,
            ]
        )
    table.notes.append(
        f"Catalog of {len(names)} tables. Each run: branch from main, update N tables on the "
        "branch (commits of up to 500 changes), one unrelated commit on main, then time "
        "store.merge(branch, 'main') (one merge commit). warm = the long-lived store that "
        "made the commits; cold = a fresh SqlStore instance (empty caches, connection open). "
        "client CPU = CPU time of the merging process (median; excludes the database server)."
    )
    report.add(table)


# -- 3. contents lookup vs history length -------------------------------------------------


HISTORY_TABLES = 100


def history_names() -> list[str]:
    return [f"t{i:03d}" for i in range(HISTORY_TABLES)]


def build_history(url: str, history: int) -> float:
    """A catalog of HISTORY_TABLES tables whose main has ``history`` commits; seconds taken."""
    t0 = time.perf_counter()
    names = history_names()
    ids = create_catalog(url, names)  # 2 commits
    with SqlStore(url) as store:
        up = Updater(store, ids)
        for i in range(history - 2):
            up.commit([names[i % len(names)]])
    check_history(url, history)
    return time.perf_counter() - t0


def check_history(url: str, history: int) -> None:
    """Through the public API: ``history`` commits on main and every table present."""
    with SqlStore(url) as store:
        count = sum(1 for _ in store.iter_log("main", page_size=2000))
        found = store.get_contents("main", [table_key(n) for n in history_names()])
    if count != history or len(found) != HISTORY_TABLES:
        raise RuntimeError(f"{url}: {count} commits and {len(found)} tables, expected {history}")


def copy_catalog(source_url: str, target_url: str) -> int:
    """Copy every row of every catalog table from one database to another; rows copied.

    Setup only: it lets PostgreSQL get the history built through the public API on SQLite
    without paying for 10,000 more commits. The target's schema is made by SqlStore.
    """
    SqlStore(target_url).close()
    source, target = sa.create_engine(source_url), sa.create_engine(target_url)
    copied = 0
    try:
        with source.connect() as src, target.begin() as dst:
            for table in reversed(catalog_schema.sorted_tables):
                dst.execute(table.delete())
            for table in catalog_schema.sorted_tables:
                result = src.execute(sa.select(table))
                while chunk := result.fetchmany(2000):
                    dst.execute(table.insert(), [dict(row._mapping) for row in chunk])
                    copied += len(chunk)
    finally:
        source.dispose()
        target.dispose()
    return copied


#: Bump when the way section 3's catalogs are built changes (invalidates the fixture cache).
FIXTURE_VERSION = 1
#: The modules (of lakehouse.catalog) that decide what a built catalog contains.
FIXTURE_SOURCES = ("sql_store.py", "tree.py", "model.py", "merge.py")


def fixture_cache_dir() -> Path:
    base = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse"))
    return base.expanduser() / "bench"


def fixture_key(history: int) -> str:
    """Identifies a history catalog: its size, this builder, and the catalog's source code."""
    digest = hashlib.sha256(f"{FIXTURE_VERSION}:{HISTORY_TABLES}:{history}".encode())
    source_dir = Path(sys.modules[SqlStore.__module__].__file__ or ".").parent
    for name in FIXTURE_SOURCES:
        digest.update(name.encode())
        digest.update((source_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def sqlite_history(source: SqliteBackend, history: int, use_cache: bool) -> tuple[str, str]:
    """A SQLite catalog with ``history`` commits: (URL, how it was obtained).

    Built through the public API (slow: one commit at a time), or copied from the
    fixture cache, keyed by the catalog's source code, when an identical one was built
    before. Either way it is checked through the public API.
    """
    url = source.new_url(f"history{history}")
    path = Path(make_url(url).database or "")
    cached = fixture_cache_dir() / f"history-{history}-{fixture_key(history)}.db"
    if use_cache and cached.is_file():
        shutil.copyfile(cached, path)
        try:
            check_history(url, history)
            return url, f"reused from {cached}"
        except Exception:  # a damaged cache file: rebuild
            path.unlink()
            url = source.new_url(f"history{history}-rebuilt")
            path = Path(make_url(url).database or "")
    seconds = build_history(url, history)
    source.settle(url)
    how = f"built in {seconds:.1f} s"
    if use_cache and history >= 1000:
        cached.parent.mkdir(parents=True, exist_ok=True)
        for old in cached.parent.glob(f"history-{history}-*.db"):
            old.unlink()
        partial_file = cached.with_suffix(".partial")
        shutil.copyfile(path, partial_file)
        os.replace(partial_file, cached)
        how += f", cached as {cached.name} in the benchmark cache"
    return url, how


def prebuild_histories(backends: Sequence[Backend], sizes: Sizes, use_cache: bool) -> list[str]:
    """Section 3's catalogs for every backend, made before anything is measured.

    They are built through the public API on SQLite (or reused from the fixture
    cache); a PostgreSQL backend gets a row-for-row copy, checked through the public
    API. Returns a line per catalog saying how it was obtained.
    """
    sqlite_backend = next((b for b in backends if isinstance(b, SqliteBackend)), None)
    source = sqlite_backend or SqliteBackend()
    sources: dict[int, str] = {}
    notes: list[str] = []
    try:
        for h in (sizes.history_small, sizes.history_large):
            say(f"3. a SQLite catalog with {h:,} commits of history")
            sources[h], how = sqlite_history(source, h, use_cache)
            say(f"   {how}")
            notes.append(f"History catalog with {h:,} commits: {how}")
        for b in backends:
            if b is sqlite_backend:
                b.histories.update(sources)
                continue
            for h, src in sources.items():
                t0 = time.perf_counter()
                url = b.new_url(f"history{h}")
                rows = copy_catalog(src, url)
                check_history(url, h)
                b.settle(url)
                b.histories[h] = url
                say(f"   {b.name}: copied ({rows:,} rows) in {time.perf_counter() - t0:.1f} s")
    finally:
        if source is not sqlite_backend:
            source.cleanup()
    return notes


WARM_BATCH = 5  # warm lookups per sample


def bench_lookup(backend: Backend, sizes: Sizes, report: Report) -> None:
    say(f"{backend.name}: 3. contents lookup vs history length")
    names = history_names()
    tables = len(names)
    for h in (sizes.history_small, sizes.history_large):
        if h not in backend.histories:
            url = backend.new_url(f"history{h}")
            build_history(url, h)
            backend.settle(url)
            backend.histories[h] = url
    urls = {h: backend.histories[h] for h in (sizes.history_small, sizes.history_large)}
    small, large = sizes.history_small, sizes.history_large
    rng = random.Random(3)
    keys = [table_key(n) for n in names]

    # warm: a long-lived store per catalog, caches filled; fresh stores for each block
    warm: dict[int, list[float]] = {small: [], large: []}
    per_block = max(1, sizes.lookups_warm // sizes.blocks)
    for _ in range(sizes.blocks):
        stores: dict[int, VersionStore] = {h: SqlStore(u) for h, u in urls.items()}
        try:
            for s in stores.values():  # fills the caches: every node of the head tree
                for k in keys:
                    s.get_content("main", k)
            for i in range(per_block):
                key = rng.choice(keys)
                order = (small, large) if i % 2 == 0 else (large, small)
                for h in order:
                    s = stores[h]
                    warm[h].append(timed(partial(s.get_content, "main", key), WARM_BATCH))
        finally:
            for s in stores.values():
                s.close()

    # cold: a fresh SqlStore per lookup (timed: the first get_content only)
    cold: dict[int, list[float]] = {small: [], large: []}
    for i in range(sizes.lookups_cold):
        key = rng.choice(keys)
        order = (small, large) if i % 2 == 0 else (large, small)
        for h in order:
            with SqlStore(urls[h]) as s:
                cold[h].append(timed(partial(s.get_content, "main", key)))

    table = Table(
        f"3. Contents lookup at the head vs history length ({backend.name})",
        [
            "cache",
            f"{small} commits p50 ms",
            f"{large:,} commits p50 ms",
            f"{large:,} commits p90 ms",
            f"ratio {large:,}/{small}",
            "target",
            "status",
        ],
    )
    for label, data, per in (("warm", warm, WARM_BATCH), ("cold", cold, 1)):
        if label == "warm":
            r, lo, hi = blocked_ratio(data[small], data[large], sizes.blocks)
            shown = ratio_blocks((r, lo, hi))
        else:
            r, lo, hi = paired_ratio(data[small], data[large])
            shown = ratio_iqr((r, lo, hi))
        c = report.check(
            f"{backend.name}: lookup {label}, {large:,}/{small} commits",
            ratio(r),
            "≤ 1.2x",
            r <= 1.2,
        )
        table.rows.append(
            [
                f"{label} ({len(data[small]) * per} lookups)",
                ms(median(data[small])),
                ms(median(data[large])),
                ms(percentile(data[large], 0.9)),
                shown,
                "≤ 1.2x",
                c.status,
            ]
        )
    table.notes.append(
        f"Both catalogs hold the same {tables} tables; history = commits on main (each updating "
        "one table). store.get_content('main', key) for random keys, the two catalogs "
        f"interleaved; a warm sample is the mean of {WARM_BATCH} lookups in a row. Ratios are "
        "medians of the per-pair ratios of samples taken side by side; warm: median of "
        f"{sizes.blocks} blocks, each with fresh store instances (range shown); cold: over all "
        "pairs (IQR shown). cold = a fresh SqlStore instance per lookup (its connection already "
        "open, its node/commit caches empty). The catalogs are built before anything is timed, "
        "through the public API on SQLite (PostgreSQL gets a row-for-row copy), then settled "
        "(PostgreSQL: VACUUM ANALYZE; SQLite: WAL checkpoint)."
    )
    report.add(table)


# -- 4. commit cost vs catalog size -------------------------------------------------------


def bench_catalog_size(backend: Backend, sizes: Sizes, report: Report) -> None:
    small, large = sizes.catalog_small, sizes.catalog_large
    say(f"{backend.name}: 4. commit latency, {small:,} vs {large:,} tables")
    urls: dict[int, str] = {}
    updaters: dict[int, Updater] = {}
    for n in (small, large):
        urls[n] = backend.new_url(f"tables{n}")
        ids = create_catalog(urls[n], [f"t{i:05d}" for i in range(n)])
        backend.settle(urls[n])
        updaters[n] = Updater(SqlStore(urls[n]), ids)
        updaters[n].store.close()
    rng = random.Random(4)
    lat: dict[int, list[float]] = {small: [], large: []}
    per_block = max(1, sizes.size_commits // sizes.blocks)
    for _ in range(sizes.blocks):  # fresh store instances per block
        for n, up in updaters.items():
            up.store = SqlStore(urls[n])
        try:
            for up in updaters.values():  # warm-up: caches of the paths written
                for _ in range(5):
                    up.commit([rng.choice(up.names)])
            for i in range(per_block):
                order = (small, large) if i % 2 == 0 else (large, small)
                for n in order:
                    up = updaters[n]
                    lat[n].append(up.commit([rng.choice(up.names)]))
        finally:
            for up in updaters.values():
                up.store.close()

    r, lo, hi = blocked_ratio(lat[small], lat[large], sizes.blocks)
    c = report.check(
        f"{backend.name}: commit p50, {large:,}/{small:,} tables",
        ratio(r),
        "≈ 1 (≤ 1.5x, log growth)",
        r <= 1.5,
    )
    table = Table(
        f"4. Commit latency vs catalog size ({backend.name})",
        ["tables", "commits", "p50 ms", "p90 ms", "p99 ms", "ratio", "target", "status"],
    )
    for n in (small, large):
        last = n == large
        table.rows.append(
            [
                f"{n:,}",
                str(len(lat[n])),
                ms(median(lat[n])),
                ms(percentile(lat[n], 0.9)),
                ms(percentile(lat[n], 0.99)),
                ratio_blocks((r, lo, hi)) if last else "1.00x",
                "≈ 1 (≤ 1.5x)" if last else "",
                c.status if last else "",
            ]
        )
    table.notes.append(
        "Each commit updates one random existing table; the two catalogs interleaved; ratio = "
        f"median over {sizes.blocks} blocks (each with fresh store instances; range shown) of "
        "the median per-pair ratio. "
        "The 1.5x bound is this benchmark's reading of 'near 1, growth only logarithmic'."
    )
    report.add(table)


# -- 5. commit cost vs changed keys -------------------------------------------------------


def bench_changed_keys(backend: Backend, sizes: Sizes, report: Report) -> None:
    say(f"{backend.name}: 5. commit latency vs changed keys {sizes.key_counts}")
    url = backend.new_url("keys")
    ids = create_catalog(url, [f"t{i:05d}" for i in range(sizes.key_catalog)])
    backend.settle(url)
    rng = random.Random(5)
    lat: dict[int, list[float]] = {k: [] for k in sizes.key_counts}
    with SqlStore(url) as store:
        up = Updater(store, ids)
        for k in sizes.key_counts:  # warm-up
            for _ in range(3):
                up.commit(rng.sample(up.names, k))
        for i in range(sizes.key_rounds):
            order = sizes.key_counts if i % 2 == 0 else tuple(reversed(sizes.key_counts))
            for k in order:
                lat[k].append(up.commit(rng.sample(up.names, k)))
    first = sizes.key_counts[0]
    table = Table(
        f"5. Commit latency vs changed keys ({backend.name})",
        [
            "keys per commit",
            "commits",
            "p50 ms",
            "p90 ms",
            "ms per key",
            f"ratio vs {first}",
        ],
    )
    for k in sizes.key_counts:
        p50 = median(lat[k])
        table.rows.append(
            [
                str(k),
                str(len(lat[k])),
                ms(p50),
                ms(percentile(lat[k], 0.9)),
                ms(p50 / k),
                ratio_iqr(paired_ratio(lat[first], lat[k])),
            ]
        )
    table.notes.append(
        f"Catalog of {sizes.key_catalog:,} tables; each commit updates k distinct random "
        "tables; the sizes interleaved. Expected: cost grows with k (no target)."
    )
    report.add(table)


# -- main ---------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Backend, Sizes, Report], None]] = {
    "commits": bench_commits,
    "merge": bench_merge,
    "lookup": bench_lookup,
    "size": bench_catalog_size,
    "keys": bench_changed_keys,
}


SECTION = "## Versioned catalog (bench/catalog.py)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 30 s)")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument(
        "--postgres-url",
        help="server to create scratch databases on (default: $LAKEHOUSE_BENCH_POSTGRES_URL "
        "or `scripts/services/postgres.sh url lakehouse`)",
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument(
        "--markdown",
        type=Path,
        help=f"write the tables into this file as the section {SECTION!r} (replacing it)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--rebuild-fixtures",
        action="store_true",
        help="build the 10,000-commit history catalog again instead of reusing the cached one "
        "(kept under $LAKEHOUSE_CACHE/bench, keyed by the catalog's source code)",
    )
    args = parser.parse_args(argv)
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in args.backend_list:
        if b not in ("sqlite", "postgres"):
            parser.error(f"unknown backend {b!r}: use sqlite, postgres")
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    for s in args.section_list:
        if s not in SECTIONS:
            parser.error(f"unknown section {s!r}: use {', '.join(SECTIONS)}")
    return args


def open_backend(name: str, args: argparse.Namespace) -> Backend:
    if name == "sqlite":
        return SqliteBackend()
    url = args.postgres_url or default_postgres_url()
    try:
        return PostgresBackend(url)
    except Exception as exc:
        safe = make_url(url).render_as_string(hide_password=True)
        raise SystemExit(
            f"error: PostgreSQL at {safe} is not reachable ({exc}).\n"
            "Start it with `bash scripts/services/postgres.sh start`, pass --postgres-url, "
            "or run with --backends sqlite."
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    report = Report()
    started = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "bench/catalog.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()
    header = [
        f"Command: `.venv/bin/python {command.strip()}`",
        f"Date: {now}; revision {git_revision()}",
        f"Machine: {os.cpu_count()} cores, shared (noisy); {platform.platform()}; "
        f"Python {platform.python_version()}",
        f"Load average at start: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
    ]
    cores = os.cpu_count() or 1
    if load_before[0] > cores:
        header.append(
            f"Warning: the 1-minute load average ({load_before[0]:.1f}) exceeds the {cores} "
            "cores: other processes compete for the CPU and inflate absolute latencies."
        )
    print(f"Versioned catalog benchmark ({'quick' if args.quick else 'full'} run)")
    for line in header:
        print("  " + line)
    backends: list[Backend] = []
    try:
        for name in args.backend_list:
            backend = open_backend(name, args)
            backends.append(backend)
            header.append(f"{name}: {backend.describe()}")
            print(f"  {name}: {backend.describe()}", flush=True)
        if "lookup" in args.section_list:
            header += prebuild_histories(backends, sizes, use_cache=not args.rebuild_fixtures)
        for backend in backends:
            for section in args.section_list:
                t0 = time.perf_counter()
                SECTIONS[section](backend, sizes, report)
                say(f"{backend.name}: {section} took {time.perf_counter() - t0:.1f} s")
    finally:
        for backend in backends:
            backend.cleanup()
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - started
    header.append(
        f"Load average at end: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
        f"total time {elapsed:.0f} s"
    )
    summary = report.summary()
    print("\n" + summary.text())
    print(f"\nTotal time {elapsed:.1f} s")
    if args.markdown:
        body = report.markdown(SECTION, ["\n".join(f"- {h}" for h in header)])
        replace_section(args.markdown, SECTION, body)
        print(f"Markdown written to {args.markdown} (section {SECTION!r})")
    missed = [c for c in report.checks if not c.ok]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
