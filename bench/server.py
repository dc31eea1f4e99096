"""Commit throughput and latency over HTTP: our server vs the real Nessie server.

Run from the repository root (PostgreSQL from ``scripts/services/postgres.sh``; the
Nessie runner jar cached by ``scripts/services/nessie.sh``)::

    .venv/bin/python bench/server.py [--quick] [--targets ours-sqlite,ours-postgres,...]
                                     [--seconds S] [--rounds N] [--warmup S]
                                     [--markdown docs/benchmarks.md]

Four targets, all started by this script on free loopback ports and stopped at the end:

* ``ours-sqlite``: ``lakehouse serve`` on a fresh SQLite catalog;
* ``ours-postgres``: ``lakehouse serve`` on a scratch PostgreSQL database, once per
  ``--workers`` count (default ``1,2,4``: ``ours-postgres``, ``ours-postgres-w2``,
  ``ours-postgres-w4``, each ``lakehouse serve --workers N`` on its own database);
* ``nessie-inmemory``: the Nessie Quarkus runner jar (the version of nessie.sh), IN_MEMORY;
* ``nessie-jdbc``: the same jar with JDBC2 on a scratch database of the same PostgreSQL.

Every target gets the same client code (``httpx`` speaking Nessie API v2): each client
thread owns one table and commits a new metadata location for it, again and again, on a
branch of its own scenario, with its last known commit hash as the expected hash (keys
never collide, so no commit conflicts; Nessie and our server both accept a stale
expected hash when the commit's keys did not change since). Scenarios: 1 client and 8
concurrent clients, after an unmeasured warm-up of every target (JIT, pools). Each
(target, scenario) runs for ``--seconds`` per round; rounds go A, B, C, D, A, B, ... so
that machine noise hits every target alike. Reported: commits/s (the median of the
rounds' rates, and all rounds' commits over their wall time), p50/p99 commit latency, and
each target's median rate relative to ``nessie-jdbc``'s (the target: ours-postgres >=
1.0x), then a table of workers x commits/s against ``nessie-jdbc``, with the load
average before and after (the machines are shared: a load above the core count inflates
every latency). ``--markdown FILE`` replaces the section "Server (bench/server.py)" of
FILE (``--append-docs FILE`` appends it instead).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import git_revision, replace_section  # bench/ is the script's folder

ROOT = Path(__file__).resolve().parent.parent
NESSIE_VERSION = os.environ.get("LAKEHOUSE_NESSIE_VERSION", "0.99.0")
CACHE = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse")).resolve()
TARGETS = ("ours-sqlite", "ours-postgres", "nessie-inmemory", "nessie-jdbc")
BASELINE = "nessie-jdbc"
CLIENTS = (1, 8)
NO_ANCESTOR = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[Any], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited while starting; log {log}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} not ready within {timeout:.0f}s (log {log})")


@contextmanager
def running(cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(ready_url, process, 180, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


# -- PostgreSQL scratch databases ------------------------------------------------------


def postgres_url() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/services/postgres.sh"), "url", "lakehouse"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@contextmanager
def scratch_database(url: str, name: str) -> Iterator[str]:
    """``url`` with its database replaced by a new one called ``name`` (dropped after)."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- servers ---------------------------------------------------------------------------


@contextmanager
def ours(workdir: Path, catalog_uri: str | None, workers: int = 1) -> Iterator[str]:
    home = workdir / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["LAKEHOUSE_HOME"] = str(home)
    if catalog_uri:
        env["LAKEHOUSE_CATALOG__URI"] = catalog_uri
    lakehouse = [sys.executable, "-m", "lakehouse.cli"]
    subprocess.run([*lakehouse, "init"], env=env, check=True, capture_output=True)
    port = free_port()
    cmd = [*lakehouse, "serve", "--port", str(port), "--log-level", "warning"]
    cmd += ["--workers", str(workers)]
    base = f"http://127.0.0.1:{port}/api/v2"
    with running(cmd, env, f"{base}/config", workdir / "serve.log"):
        yield base


def find_java(minimum: int = 21) -> str:
    best, best_version = "", 0
    for java in sorted(Path("/usr/lib/jvm").glob("*/bin/java")) + sorted(
        Path("/opt").glob("*/bin/java")
    ):
        out = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"], capture_output=True, text=True
        ).stderr
        for line in out.splitlines():
            if "java.specification.version =" in line:
                version = int(line.split("=")[1].strip().removeprefix("1."))
                if version >= minimum and version > best_version:
                    best, best_version = str(java), version
    if not best:
        raise SystemExit(f"no Java {minimum}+ under /usr/lib/jvm or /opt (see nessie.sh)")
    return best


@contextmanager
def nessie(workdir: Path, jdbc_url: str | None) -> Iterator[str]:
    jar = CACHE / "nessie" / f"nessie-quarkus-{NESSIE_VERSION}-runner.jar"
    if not jar.exists():
        raise SystemExit(f"{jar} missing: run scripts/services/nessie.sh start once")
    port, mgmt = free_port(), free_port()
    props = [
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={port}",
        "-Dquarkus.management.host=127.0.0.1",
        f"-Dquarkus.management.port={mgmt}",
        "-Dquarkus.http.access-log.enabled=false",
        "-Dquarkus.log.file.enable=false",
        "-Dquarkus.log.level=WARN",
        "-Dnessie.server.authentication.enabled=false",
    ]
    env = dict(os.environ)
    if jdbc_url is None:
        props.append("-Dnessie.version.store.type=IN_MEMORY")
    else:
        # jdbc_url: postgresql+psycopg://user:password@host:port/db
        creds, _, hostdb = jdbc_url.split("://", 1)[1].rpartition("@")
        user, _, password = creds.partition(":")
        props += [
            "-Dnessie.version.store.type=JDBC2",
            "-Dnessie.version.store.persist.jdbc.datasource=postgresql",
            f"-Dquarkus.datasource.postgresql.jdbc.url=jdbc:postgresql://{hostdb}",
            f"-Dquarkus.datasource.postgresql.username={user}",
        ]
        env["QUARKUS_DATASOURCE_POSTGRESQL_PASSWORD"] = password
    cmd = [find_java(), "-Xms128m", "-Xmx1g", *props, "-jar", str(jar)]
    base = f"http://127.0.0.1:{port}/api/v2"
    with running(cmd, env, f"{base}/config", workdir / "nessie.log"):
        yield base


# -- the client ------------------------------------------------------------------------


def table(n: int, content_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "ICEBERG_TABLE",
        "metadataLocation": f"s3://bench/t/metadata/{n:08d}-{secrets.token_hex(4)}.json",
        "snapshotId": n,
        "schemaId": 0,
        "specId": 0,
        "sortOrderId": 0,
    }
    if content_id:
        body["id"] = content_id
    return body


def commit(
    http: httpx.Client, branch: str, expected: str, key: list[str], content: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "commitMeta": {"message": "bench"},
        "operations": [{"type": "PUT", "key": {"elements": key}, "content": content}],
    }
    response = http.post(f"trees/{branch}@{expected}/history/commit", json=body)
    if response.status_code != 200:
        if response.status_code == 409 and "retries" in response.text:
            raise GaveUpError(response.text[:300])
        raise RuntimeError(f"commit failed: {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


class GaveUpError(Exception):
    """The server gave up on a commit under contention (Nessie: "after N retries").

    Not a conflict of keys: the client sends the same commit again; the attempt's time
    counts in the commit's latency and the give-up is reported per target.
    """


def new_client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base + "/", headers={"Nessie-Client-Spec": "2"}, timeout=60)


def prepare(base: str, branch: str, clients: int) -> tuple[str, list[tuple[str, str]]]:
    """Branch ``branch`` with namespace ``bench`` and one table per client.

    Returns the branch head and ``(table name, content id)`` per client.
    """
    with new_client(base) as http:
        main = http.get("trees/main").raise_for_status().json()["reference"]
        created = http.post(
            "trees", params={"name": branch, "type": "BRANCH"}, json=main
        ).raise_for_status()
        head = created.json()["reference"]["hash"]
        if not http.get(f"trees/{branch}/contents/bench").is_success:
            ns = {"type": "NAMESPACE", "elements": ["bench"]}
            body = {
                "commitMeta": {"message": "namespace"},
                "operations": [{"type": "PUT", "key": {"elements": ["bench"]}, "content": ns}],
            }
            head = (
                http.post(f"trees/{branch}@{head}/history/commit", json=body)
                .raise_for_status()
                .json()["targetBranch"]["hash"]
            )
        tables = []
        for i in range(clients):
            name = f"t{i}"
            result = commit(http, branch, head, ["bench", name], table(0, None))
            head = result["targetBranch"]["hash"]
            tables.append((name, result["addedContents"][0]["contentId"]))
    return head, tables


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    #: commits/s of each round
    rates: list[float] = field(default_factory=list)
    #: commits the server gave up on under contention, sent again by the client
    gave_up: int = 0

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def commits(self) -> int:
        return len(self.latencies)


def run_scenario(base: str, branch: str, clients: int, seconds: float, sample: Sample) -> None:
    head, tables = prepare(base, branch, clients)
    barrier = threading.Barrier(clients + 1)
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    gave_up = [0] * clients
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        name, content_id = tables[i]
        expected = head
        try:
            with new_client(base) as http:
                barrier.wait()
                deadline = time.perf_counter() + seconds
                n = 1
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    while True:
                        try:
                            body = table(n, content_id)
                            result = commit(http, branch, expected, ["bench", name], body)
                            break
                        except GaveUpError:
                            gave_up[i] += 1
                    per_thread[i].append(time.perf_counter() - t0)
                    expected = result["targetBranch"]["hash"]
                    n += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()  # the main thread may still wait at the start line

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    # a client that failed before the start broke the barrier: its error is raised below
    with suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{branch}: {errors[0]}") from errors[0]
    sample.wall += wall
    sample.gave_up += sum(gave_up)
    sample.rates.append(sum(len(latencies) for latencies in per_thread) / wall)
    for latencies in per_thread:
        sample.latencies.extend(latencies)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s, 1 round")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seconds", type=float, help="per (target, scenario, round)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--warmup", type=float, help="unmeasured seconds per target first")
    parser.add_argument(
        "--workers", default="1,2,4", help="worker counts of ours-postgres (comma-separated)"
    )
    parser.add_argument("--markdown", type=Path, help="replace this file's Server section")
    parser.add_argument("--append-docs", type=Path, help="append the results to this file")
    args = parser.parse_args(argv)
    chosen = [t for t in args.targets.split(",") if t]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    try:
        worker_counts = sorted({int(w) for w in args.workers.split(",") if w})
    except ValueError:
        parser.error(f"--workers {args.workers!r}: comma-separated counts, e.g. 1,2,4")
    if not worker_counts or min(worker_counts) < 1:
        parser.error("--workers: counts of 1 or more")
    targets = []
    for t in chosen:
        targets += [postgres_target(w) for w in worker_counts] if t == "ours-postgres" else [t]
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rounds = args.rounds or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 8.0)

    samples = {(t, c): Sample() for t in targets for c in CLIENTS}
    load_before = os.getloadavg()
    run_id = secrets.token_hex(3)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lh-bench-")))
        needs_pg = {"ours-postgres", "nessie-jdbc"} & set(chosen)
        pg = postgres_url() if needs_pg else ""
        bases: dict[str, str] = {}
        for target in targets:
            progress(f"starting {target}")
            tdir = workdir / target
            tdir.mkdir()
            if target == "ours-sqlite":
                bases[target] = stack.enter_context(ours(tdir, None))
            elif target.startswith("ours-postgres"):
                workers = workers_of(target)
                name = f"lh_bench_srv_{run_id}_w{workers}"
                db = stack.enter_context(scratch_database(pg, name))
                bases[target] = stack.enter_context(ours(tdir, db, workers))
            elif target == "nessie-inmemory":
                bases[target] = stack.enter_context(nessie(tdir, None))
            else:
                db = stack.enter_context(scratch_database(pg, f"lh_bench_nessie_{run_id}"))
                bases[target] = stack.enter_context(nessie(tdir, db))
        for target in targets:  # JIT and connection pools warm, not measured
            progress(f"warm-up: {target}")
            run_scenario(bases[target], "bench-warmup", 2, warmup, Sample())
        for r in range(rounds):
            for clients in CLIENTS:
                for target in targets:
                    progress(f"round {r + 1}/{rounds}: {target}, {clients} client(s)")
                    branch = f"bench-{clients}c-r{r}"
                    run_scenario(bases[target], branch, clients, seconds, samples[target, clients])
        progress("stopping servers")

    load = (load_before, os.getloadavg())
    command = " ".join(["bench/server.py", *(argv if argv is not None else sys.argv[1:])])
    lines = report(samples, targets, seconds, rounds, load, command)
    print("\n".join(lines))
    if args.markdown:
        replace_section(args.markdown, lines[0], "\n".join(lines))
        progress(f"wrote section {lines[0]!r} of {args.markdown}")
    if args.append_docs:
        with args.append_docs.open("a", encoding="utf-8") as out:
            out.write("\n" + "\n".join(lines) + "\n")
        progress(f"appended to {args.append_docs}")
    return 0


def postgres_target(workers: int) -> str:
    """``ours-postgres`` for one worker, ``ours-postgres-wN`` for N."""
    return "ours-postgres" if workers == 1 else f"ours-postgres-w{workers}"


def workers_of(target: str) -> int:
    """The worker count of an ``ours-postgres…`` target."""
    return int(target.rsplit("-w", 1)[1]) if "-w" in target else 1


def report(
    samples: dict[tuple[str, int], Sample],
    targets: list[str],
    seconds: float,
    rounds: int,
    load: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    command: str = "bench/server.py",
) -> list[str]:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Server (bench/server.py)",
        "",
        f"{when}, revision {git_revision()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Nessie {NESSIE_VERSION}; {rounds} round(s) of "
        f"{seconds:g} s per target and scenario, interleaved. Commits over HTTP (Nessie API "
        "v2, same httpx client code for every target), one table per client, no conflicts. "
        f"Command: `.venv/bin/python {command}`.",
        "",
    ]
    if load is not None:
        before, after = (" ".join(f"{x:.2f}" for x in la) for la in load)
        lines += [f"Load average (1, 5, 15 min) before: {before}; after: {after}.", ""]
        if max(load[0][0], load[1][0]) > (os.cpu_count() or 1):
            lines += [
                "Warning: the load exceeded the cores: other processes competed for the CPU "
                "and inflated the latencies of every target (PostgreSQL round trips most).",
                "",
            ]
    lines += [
        f"| target | clients | commits | commits/s (median of rounds) | commits/s (all rounds) "
        f"| p50 ms | p99 ms | median vs {BASELINE} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clients in CLIENTS:
        base = samples.get((BASELINE, clients))
        base_rate = base.median_rate if base is not None else float("nan")
        for target in targets:
            s = samples[target, clients]
            rate = s.median_rate
            overall = s.commits / s.wall if s.wall else float("nan")
            vs = f"{rate / base_rate:.2f}x" if base_rate == base_rate and base_rate else "n/a"
            lines.append(
                f"| {target} | {clients} | {s.commits} | {rate:.1f} | {overall:.1f} | "
                f"{percentile(s.latencies, 0.5) * 1000:.1f} | "
                f"{percentile(s.latencies, 0.99) * 1000:.1f} | {vs} |"
            )
    gave_up = [
        f"{t} {c} client(s): {samples[t, c].gave_up}"
        for c in CLIENTS
        for t in targets
        if samples[t, c].gave_up
    ]
    if gave_up:
        lines += [
            "",
            "Commits the server gave up on under contention (HTTP 409 'after N retries'), "
            "sent again by the client and counted once, in the latency: "
            + "; ".join(gave_up)
            + ".",
        ]
    ours_targets = [t for t in targets if t.startswith("ours-postgres")]
    if ours_targets and BASELINE in targets:
        lines += [
            "",
            f"Workers x commits/s (median of rounds), `lakehouse serve --workers N` on "
            f"PostgreSQL vs {BASELINE} (Nessie JDBC2 on the same PostgreSQL):",
            "",
            "| workers | clients | ours commits/s | nessie-jdbc commits/s | ratio |",
            "|---|---|---|---|---|",
        ]
        verdicts = []
        for clients in CLIENTS:
            theirs = samples[BASELINE, clients].median_rate
            for target in ours_targets:
                mine = samples[target, clients].median_rate
                ratio = mine / theirs if theirs else float("nan")
                lines.append(
                    f"| {workers_of(target)} | {clients} | {mine:.1f} | {theirs:.1f} | "
                    f"{ratio:.2f}x |"
                )
                if target == "ours-postgres":
                    verdicts.append(
                        f"{clients} client(s): {ratio:.2f}x ({'met' if ratio >= 1 else 'missed'})"
                    )
        if verdicts:
            lines += [
                "",
                "Target ours-postgres >= nessie-jdbc commits/s: " + "; ".join(verdicts) + ".",
            ]
    return lines


if __name__ == "__main__":
    if shutil.which("java") is None and not Path("/usr/lib/jvm").exists():
        print("warning: no Java found; the nessie targets will fail", file=sys.stderr)
    raise SystemExit(main())
