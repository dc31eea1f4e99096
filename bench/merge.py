"""Content-aware merges: one table with N snapshots on each side; M tables appended on both.

Run: ``.venv/bin/python bench/merge.py [--snapshots 1000] [--tables 100] [--repeat 5]``.
Each sample is a real merge into the branch ``into``, which is reset to ``main`` before
the sample (untimed): the whole content merge (store preview, metadata reads, manifest
diff, merged manifests and metadata written, the merge commit). The setup is the user's:
an embedded lakehouse (SQLite catalog, local files) and its server. Three sections, each
printing medians and ratios:

1. **In one process**, four ways interleaved round by round on one catalog:

   * ``embedded``: ``Lakehouse.merge`` on the embedded lakehouse (SQLite, in process);
   * ``key-level``: the same merge with ``content_merge=False`` (Nessie's merge, which
     finds the conflicts and commits nothing: the baseline);
   * ``server, client-side``: the catalog served by ``lakehouse serve`` (uvicorn thread,
     the same SQLite catalog and warehouse), a ``NessieStore`` computing the content merge
     itself (``on_server=False``: what a client does against the real Nessie);
   * ``server, server-side``: the same client sending one merge with ``contentMerge: true``.

   Before each sample the bench runs a full garbage collection, untimed. Without it, the
   full collection CPython runs about every second merge of the big table (each merge
   keeps tens of thousands of objects alive long enough to reach the oldest generation)
   lands on whichever way comes next, and costs it the time to traverse the whole heap
   (150,000-220,000 objects here, about 70 ms of CPU): the ``embedded`` way, run after
   the server ways, paid it in most rounds. Each sample's full-collection time is
   printed (``full GC``) so a way that triggers one itself is still charged for it.
2. **Back to back** (a long-lived process: the server, a notebook, an Airflow worker):
   ``embedded`` merges without collecting in between, so the full collections fall where
   they fall; the mean share of them is the cost such a process pays per merge.
3. **Fresh processes**: ``lakehouse merge SOURCE --into into`` end to end (imports, store,
   merge, report), against ``--no-content-merge`` in the same kind of process, and the
   first ``Lakehouse.merge`` of a fresh process timed alone (modules imported first): the
   cost of cold caches (commit history, manifests) without the imports. It runs after a
   full collection, untimed, as in section 1: the imports leave a full collection due
   (about 40 ms here) that falls on whatever runs next, while the merge's own objects
   trigger none. ``with the imports' full GC`` is the same without that collection.

Targets (issue 15): <= 200 ms for 1,000 snapshots a side, <= 2 s for 100 tables.
``--home DIR`` keeps the built catalog in DIR (built when DIR has none) so that an A/B
against another tree (``PYTHONPATH=<other>/src``) runs on the same catalog.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa


@contextmanager
def full_collections() -> Iterator[list[float]]:
    """Collect the seconds each full (generation 2) collection takes while inside."""
    spans: list[float] = []
    started = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] != 2:
            return
        if phase == "start":
            started = time.perf_counter()
        else:
            spans.append(time.perf_counter() - started)

    gc.callbacks.append(callback)
    try:
        yield spans
    finally:
        gc.callbacks.remove(callback)


class Sample:
    """One timed call: wall and CPU seconds (all threads of the process), full-GC seconds."""

    def __init__(self, fn: Callable[[], object], spans: list[float]) -> None:
        before = len(spans)
        cpu = time.process_time()
        start = time.perf_counter()
        fn()
        self.wall = time.perf_counter() - start
        self.cpu = time.process_time() - cpu
        self.gc = sum(spans[before:])
        self.collections = len(spans) - before


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path, help="keep (or reuse) the built catalog here")
    parser.add_argument("--first-merge", metavar="SOURCE", help=argparse.SUPPRESS)
    parser.add_argument("--no-collect", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_merge:  # a fresh process of section 3: print one merge's seconds
        print(first_merge(args.home, args.first_merge, collect=not args.no_collect))
        return
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.home:
        args.home.mkdir(parents=True, exist_ok=True)
        run(args, args.home)
    else:
        with tempfile.TemporaryDirectory(prefix="lakehouse-bench-merge-") as home:
            run(args, Path(home))
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


#: The branch every sample merges into, reset to ``main`` before each sample.
INTO = "into"


def reset(lh: Any) -> None:
    """Point ``into`` back at ``main``, undoing the last sample's merge (untimed)."""
    lh.reset_branch(INTO, "main")


def build(args: argparse.Namespace, home: Path) -> None:
    """The catalog: ``big`` and ``main`` appended N times to one table since they forked,
    ``many`` and ``main`` appended once to each of M tables."""
    from lakehouse.client import connect

    schema = pa.schema([pa.field("id", pa.int64())])
    batch = pa.table({"id": [1]}, schema)
    with connect(home, create=True) as lh:
        refs = {r.name for r in lh.store.list_references()}
        if "many" in refs:  # built by an earlier run with --home
            if INTO not in refs:
                lh.create_branch(INTO, "main")
            return
        catalog = lh.catalog("main")
        catalog.create_namespace("bronze")
        catalog.create_table("bronze.big", schema=schema).append(batch)
        for i in range(args.tables):
            catalog.create_table(f"bronze.t{i}", schema=schema).append(batch)
        lh.create_branch("big")
        lh.create_branch("many")
        for ref in ("main", "big"):
            big = lh.table("bronze.big", ref)
            for _ in range(args.snapshots):
                big.append(batch)
        for ref in ("main", "many"):
            for i in range(args.tables):
                lh.table(f"bronze.t{i}", ref).append(batch)
        lh.create_branch(INTO, "main")


def run(args: argparse.Namespace, home: Path) -> None:
    """Build the catalog in ``home`` and print the three sections."""
    os.environ["LAKEHOUSE_HOME"] = str(home)
    build(args, home)
    cases = (
        (f"1 table, {args.snapshots} snapshots on each side", "big", 0.2),
        (f"{args.tables} tables, appended on both sides", "many", 2.0),
    )
    in_one_process(args, home, cases)
    in_fresh_processes(args, home, cases)


def in_one_process(
    args: argparse.Namespace, home: Path, cases: tuple[tuple[str, str, float], ...]
) -> None:
    from lakehouse.catalog.content_merge import content_merge
    from lakehouse.catalog.nessie_store import NessieStore
    from lakehouse.client import connect
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    with connect(home) as lh:
        io = lh.settings.fileio_properties()
        server = make_server(
            lh.store,
            "127.0.0.1",
            0,
            log_level="warning",
            iceberg=IcebergRestSettings.from_settings(lh.settings),
        )
        with (
            serving(server) as port,
            NessieStore(f"http://127.0.0.1:{port}/api/v2") as remote,
            full_collections() as spans,
        ):
            assert isinstance(remote, NessieStore) and remote.offers_content_merge
            print("\n1. In one process, a full collection before each sample (untimed)")
            for what, source, target in cases:
                ways: dict[str, Callable[[], object]] = {
                    "embedded": lambda s=source: lh.merge(s, into=INTO),
                    "key-level": lambda s=source: lh.merge(
                        s, into=INTO, content_merge=False, raise_on_conflict=False
                    ),
                    "server, client-side": lambda s=source: content_merge(
                        remote, s, INTO, io_properties=io, on_server=False
                    ),
                    "server, server-side": lambda s=source: content_merge(
                        remote, s, INTO, io_properties=io
                    ),
                }
                for fn in ways.values():  # warm up: the first call imports and reads
                    reset(lh)
                    fn()
                samples: dict[str, list[Sample]] = {name: [] for name in ways}
                for _ in range(args.repeat):  # interleaved: load drifts hit every way alike
                    for name, fn in ways.items():
                        reset(lh)
                        gc.collect()
                        samples[name].append(Sample(fn, spans))
                report(what, target, samples, args.repeat)
                base = statistics.median(s.wall for s in samples["key-level"])
                side = {n: statistics.median(s.wall for s in samples[n]) for n in samples}
                ratio = side["server, server-side"] / side["server, client-side"]
                print(f"  server-side / client-side: {ratio:.2f}; key-level {ms(base)}")
            print("\n2. Back to back in one process (`embedded`, no collection in between)")
            for what, source, _ in cases:
                gc.collect()
                back = []
                for _ in range(args.repeat * 2):
                    reset(lh)
                    back.append(Sample(lambda s=source: lh.merge(s, into=INTO), spans))
                walls = [s.wall for s in back]
                cpus = [s.cpu for s in back]
                gcs = sum(s.gc for s in back)
                print(
                    f"  {what}: median {ms(statistics.median(walls))}, mean "
                    f"{ms(statistics.mean(walls))}; CPU median {ms(statistics.median(cpus))}, "
                    f"mean {ms(statistics.mean(cpus))}; {sum(s.collections for s in back)} full "
                    f"collections in {len(back)} merges, {ms(gcs / len(back))} of them per merge"
                )


def report(what: str, target: float, samples: dict[str, list[Sample]], repeat: int) -> None:
    print(f"{what} (median of {repeat}; target {target * 1000:.0f} ms):")
    base = statistics.median(s.wall for s in samples["key-level"])
    for name, taken in samples.items():
        wall = statistics.median(s.wall for s in taken)
        cpu = statistics.median(s.cpu for s in taken)
        verdict = "" if name == "key-level" else (" meets " if wall <= target else " MISSES")
        gcs = sum(s.collections for s in taken)
        print(
            f"  {name:<20} {ms(wall)}{verdict:7} ({wall / base:4.0f}x key-level)"
            f"  CPU {ms(cpu)}  full GC in samples: {gcs}"
            + (f" ({ms(sum(s.gc for s in taken) / gcs)} each)" if gcs else "")
        )


def first_merge(home: Path, source: str, *, collect: bool = True) -> str:
    """Wall and CPU seconds of the first ``Lakehouse.merge`` of this process into ``into``
    (modules imported first), space-separated.

    With ``collect``, a full collection runs first, untimed, as before each sample of
    section 1: the imports leave about 140,000 objects that CPython has not yet traversed
    in a full collection, and the next one, about 40 ms, falls on whatever runs next. The
    merge's own objects trigger none (checked with ``gc.callbacks``).
    """
    os.environ["LAKEHOUSE_HOME"] = str(home)
    # imported by the merge (the file IO when it opens the first metadata file): not timed
    import pyiceberg.io.pyarrow  # noqa: F401

    import lakehouse.tables.merge  # noqa: F401
    from lakehouse.client import connect

    with connect(home) as lh:
        lh.store.get_reference("main")  # the store is open: the database file is read
        if collect:
            gc.collect()
        cpu = time.process_time()
        start = time.perf_counter()
        lh.merge(source, into=INTO)
        return f"{time.perf_counter() - start} {time.process_time() - cpu}"


def children_cpu() -> float:
    """User + system seconds of this process's finished children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def in_fresh_processes(
    args: argparse.Namespace, home: Path, cases: tuple[tuple[str, str, float], ...]
) -> None:
    from lakehouse.client import connect

    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    cli = [sys.executable, "-m", "lakehouse.cli.main", "merge"]
    print("\n3. Fresh processes (one per sample, interleaved)")
    for what, source, _ in cases:
        ways: dict[str, Callable[[], object]] = {
            "lakehouse merge": lambda s=source: subprocess.run(
                [*cli, s, "--into", INTO], env=env, check=True, capture_output=True
            ),
            "  --no-content-merge": lambda s=source: subprocess.run(
                [*cli, s, "--into", INTO, "--no-content-merge"],
                env=env,
                capture_output=True,  # exit code 1: the merge reports the conflicts
            ),
        }
        walls: dict[str, list[float]] = {name: [] for name in ways}
        cpus: dict[str, list[float]] = {name: [] for name in ways}
        firsts: dict[str, list[tuple[float, float]]] = {"": [], "--no-collect": []}
        for _ in range(args.repeat):
            for name, fn in ways.items():
                with connect(home) as lh:
                    reset(lh)
                used = children_cpu()
                start = time.perf_counter()
                fn()
                walls[name].append(time.perf_counter() - start)
                cpus[name].append(children_cpu() - used)
            for flag, samples in firsts.items():
                with connect(home) as lh:
                    reset(lh)
                out = subprocess.run(
                    [sys.executable, __file__, "--home", str(home), "--first-merge", source]
                    + ([flag] if flag else []),
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                wall, cpu = out.stdout.split()
                samples.append((float(wall), float(cpu)))
        print(f"{what} (median of {args.repeat}; CPU: the process's user + system time):")
        base = statistics.median(walls["  --no-content-merge"])
        for name, taken in walls.items():
            med = statistics.median(taken)
            print(
                f"  {name:<28} {ms(med)}  ({med / base:.2f}x --no-content-merge)"
                f"  CPU {ms(statistics.median(cpus[name]))}"
            )
        for label, samples in (
            ("first Lakehouse.merge alone", firsts[""]),
            ("  with the imports' full GC", firsts["--no-collect"]),
        ):
            print(
                f"  {label:<28} {ms(statistics.median(w for w, _ in samples))}"
                f"                              CPU {ms(statistics.median(c for _, c in samples))}"
            )


if __name__ == "__main__":
    main()
