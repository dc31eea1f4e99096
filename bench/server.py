"""Commit and read throughput over HTTP: our server vs the real Nessie server.

Run from the repository root (PostgreSQL from ``scripts/services/postgres.sh``, MinIO from
``scripts/services/minio.sh`` for the real Nessie's Iceberg warehouse; the Nessie runner
jar cached by ``scripts/services/nessie.sh``)::

    .venv/bin/python bench/server.py [--quick] [--targets ours-postgres,nessie-jdbc,...]
                                     [--workers 1,2,4] [--seconds S] [--rounds N]
                                     [--warmup S] [--markdown docs/benchmarks.md]

The default run (``ours-postgres`` at 1, 2 and 4 workers and ``nessie-jdbc``, 3 rounds of
3 s) takes about three minutes. Targets, all started by this script on free loopback
ports and stopped at the end:

* ``ours-sqlite``: ``lakehouse serve`` on a fresh SQLite catalog;
* ``ours-postgres``: ``lakehouse serve`` on a scratch PostgreSQL database, once per
  ``--workers`` count (default ``1,2,4``: ``ours-postgres``, ``ours-postgres-w2``,
  ``ours-postgres-w4``, each ``lakehouse serve --workers N`` on its own database);
* ``nessie-inmemory``: the Nessie Quarkus runner jar (the version of nessie.sh), IN_MEMORY;
* ``nessie-jdbc``: the same jar with JDBC2 on a scratch database of the same PostgreSQL.

Every target gets the same client code (``httpx``), in four scenarios:

* ``commits``, 1 and 8 clients: each client thread owns one table and commits a new
  metadata location for it (Nessie API v2), again and again, all on one branch, with its
  last known commit hash as the expected hash (keys never collide, so no conflicts; both
  servers accept a stale expected hash when the commit's keys did not change since).
  The commits serialise on that branch's reference, so more workers cannot help here;
* ``branches``, 8 clients: the same, but each client on a branch of its own (no shared
  lock): what several pipelines writing at once look like;
* ``reads``, 8 clients: what a query engine asks per query, in a loop: the table's
  content at ``main`` (API v2 ``GET /trees/main/contents/bench.reads``) and the Iceberg
  REST ``loadTable`` of it (a real table made with Iceberg REST ``createTable``; ours keeps
  its metadata in the local warehouse, the real Nessie on a fresh MinIO prefix, removed
  at the end). Rates are requests/s.

After an unmeasured warm-up of every target (JIT, pools), each (target, scenario) runs for
``--seconds`` per round; rounds go A, B, C, D, A, B, ... so that machine noise hits every
target alike. Reported: operations/s (the median of the rounds' rates, and all rounds'
operations over their wall time), p50/p99 latency, each target's median rate relative to
``nessie-jdbc``'s, then a table of scenario x workers against ``nessie-jdbc``, with the
load average before and after (the machines are shared: a load above the core count
inflates every latency). ``--markdown FILE`` replaces the section "Server
(bench/server.py)" of FILE (``--append-docs FILE`` appends it instead).
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
#: (series, clients): commits to one shared branch, commits each to its own branch, reads
SCENARIOS = (("commits", 1), ("commits", 8), ("branches", 8), ("reads", 8))
UNIT = {"commits": "commits/s", "branches": "commits/s", "reads": "requests/s"}
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


@dataclass(frozen=True)
class S3:
    """Where the real Nessie keeps Iceberg metadata (its REST catalog writes and reads it)."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    prefix: str


def minio(prefix: str) -> S3:
    def script(what: str) -> str:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts/services/minio.sh"), what],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    return S3(script("url"), script("access-key"), script("secret-key"), "iceberg-metadata", prefix)


@contextmanager
def s3_prefix_removed(s3: S3) -> Iterator[None]:
    """Remove the warehouse prefix the bench's Nessie wrote, at the end."""
    from pyarrow.fs import FileType, S3FileSystem

    try:
        yield
    finally:
        fs = S3FileSystem(
            endpoint_override=s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            region="us-east-1",
        )
        path = f"{s3.bucket}/{s3.prefix}"
        if fs.get_file_info(path).type != FileType.NotFound:
            fs.delete_dir(path)


@contextmanager
def nessie(workdir: Path, jdbc_url: str | None, s3: S3 | None = None) -> Iterator[str]:
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
    if s3 is not None:  # the Iceberg REST catalog needs a warehouse (reads series)
        options = "-Dnessie.catalog.service.s3.default-options"
        props += [
            "-Dnessie.catalog.default-warehouse=warehouse",
            f"-Dnessie.catalog.warehouses.warehouse.location=s3://{s3.bucket}/{s3.prefix}/",
            f"{options}.endpoint={s3.endpoint}/",
            f"{options}.path-style-access=true",
            f"{options}.region=us-east-1",
            f"{options}.request-signing-enabled=false",
            f"{options}.access-key=urn:nessie-secret:quarkus:lakehousebench.s3",
        ]
        env["LAKEHOUSEBENCH_S3_NAME"] = s3.access_key  # not on the command line
        env["LAKEHOUSEBENCH_S3_SECRET"] = s3.secret_key
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


def own_branches(base: str, branch: str, head: str, clients: int) -> list[tuple[str, str]]:
    """One branch per client, ``branch-c<i>`` from ``head``: (name, head) per client."""
    out = []
    with new_client(base) as http:
        for i in range(clients):
            ref = {"type": "BRANCH", "name": branch, "hash": head}
            name = f"{branch}-c{i}"
            created = http.post("trees", params={"name": name, "type": "BRANCH"}, json=ref)
            out.append((name, created.raise_for_status().json()["reference"]["hash"]))
    return out


def run_scenario(
    base: str, branch: str, clients: int, seconds: float, sample: Sample, own: bool = False
) -> None:
    """``clients`` threads commit for ``seconds``: to ``branch``, or each to its own (``own``)."""
    head, tables = prepare(base, branch, clients)
    branches = own_branches(base, branch, head, clients) if own else [(branch, head)] * clients

    def client(i: int, http: httpx.Client, deadline: float, latencies: list[float]) -> int:
        name, content_id = tables[i]
        ref, expected = branches[i]
        gave_up, n = 0, 1
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            while True:
                try:
                    result = commit(http, ref, expected, ["bench", name], table(n, content_id))
                    break
                except GaveUpError:
                    gave_up += 1
            latencies.append(time.perf_counter() - t0)
            expected = result["targetBranch"]["hash"]
            n += 1
        return gave_up

    run_clients(base, branch, clients, seconds, sample, client)


#: The table the reads series loads: namespace ``bench``, table ``reads`` on ``main``.
READ_TABLE = ("bench", "reads")
READ_SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "required": False, "type": "long"},
        {"id": 2, "name": "name", "required": False, "type": "string"},
    ],
}


def iceberg_base(base: str) -> str:
    """The Iceberg REST base of a server whose Nessie API v2 is at ``base``, on ``main``."""
    return base.removesuffix("/api/v2") + "/iceberg/v1/main"


def prepare_reads(base: str) -> None:
    """Namespace ``bench`` (API v2) and table ``bench.reads`` (Iceberg REST) on ``main``."""
    ns, name = READ_TABLE
    with new_client(base) as http:
        head = http.get("trees/main").raise_for_status().json()["reference"]["hash"]
        if not http.get(f"trees/main/contents/{ns}").is_success:
            body = {
                "commitMeta": {"message": "namespace"},
                "operations": [
                    {
                        "type": "PUT",
                        "key": {"elements": [ns]},
                        "content": {"type": "NAMESPACE", "elements": [ns]},
                    }
                ],
            }
            http.post(f"trees/main@{head}/history/commit", json=body).raise_for_status()
        response = http.post(
            f"{iceberg_base(base)}/namespaces/{ns}/tables",
            json={"name": name, "schema": READ_SCHEMA, "stage-create": False},
        )
        if response.status_code != 200:
            raise RuntimeError(f"create table: {response.status_code} {response.text[:300]}")


def run_reads(base: str, clients: int, seconds: float, sample: Sample) -> None:
    """``clients`` threads each loop over what a query engine asks per query.

    Per query: the table's content at ``main`` (API v2 ``/trees/main/contents/bench.reads``)
    and Iceberg REST ``loadTable`` of it. Each request is one sample (latency, count).
    """
    ns, name = READ_TABLE
    content = f"trees/main/contents/{ns}.{name}"
    load = f"{iceberg_base(base)}/namespaces/{ns}/tables/{name}"

    def client(i: int, http: httpx.Client, deadline: float, latencies: list[float]) -> int:
        while time.perf_counter() < deadline:
            for url in (content, load):
                t0 = time.perf_counter()
                response = http.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
                latencies.append(time.perf_counter() - t0)
        return 0

    run_clients(base, "reads", clients, seconds, sample, client)


def run_clients(
    base: str,
    label: str,
    clients: int,
    seconds: float,
    sample: Sample,
    client: Any,
) -> None:
    """Run ``client(i, http, deadline, latencies) -> gave_up`` on ``clients`` threads at once.

    Adds the round's rate (operations over the wall time) and latencies to ``sample``.
    """
    barrier = threading.Barrier(clients + 1)
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    gave_up = [0] * clients
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with new_client(base) as http:
                barrier.wait()
                deadline = time.perf_counter() + seconds
                gave_up[i] = client(i, http, deadline, per_thread[i])
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
        raise RuntimeError(f"{label}: {errors[0]}") from errors[0]
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
    parser.add_argument("--targets", default="ours-postgres,nessie-jdbc")
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
    seconds = args.seconds or 3.0
    rounds = args.rounds or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 3.0)

    samples = {(t, sc): Sample() for t in targets for sc in SCENARIOS}
    load_before = os.getloadavg()
    run_id = secrets.token_hex(3)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lh-bench-")))
        needs_pg = {"ours-postgres", "nessie-jdbc"} & set(chosen)
        pg = postgres_url() if needs_pg else ""
        s3 = None
        if {"nessie-inmemory", "nessie-jdbc"} & set(chosen):
            s3 = minio(f"bench-server-{run_id}")
            stack.enter_context(s3_prefix_removed(s3))
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
                bases[target] = stack.enter_context(nessie(tdir, None, s3))
            else:
                db = stack.enter_context(scratch_database(pg, f"lh_bench_nessie_{run_id}"))
                bases[target] = stack.enter_context(nessie(tdir, db, s3))
            prepare_reads(bases[target])
        for target in targets:  # JIT and connection pools warm, not measured
            progress(f"warm-up: {target}")
            run_scenario(bases[target], "bench-warmup", 2, warmup / 2, Sample())
            run_reads(bases[target], 2, warmup / 2, Sample())
        for r in range(rounds):
            for series, clients in SCENARIOS:
                for target in targets:
                    progress(f"round {r + 1}/{rounds}: {target}, {series}, {clients} client(s)")
                    sample = samples[target, (series, clients)]
                    base, branch = bases[target], f"bench-{series}-{clients}c-r{r}"
                    if series == "reads":
                        run_reads(base, clients, seconds, sample)
                    else:
                        run_scenario(base, branch, clients, seconds, sample, series == "branches")
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


SERIES_TEXT = {
    "commits": "commits, all clients to one branch (they serialise on its reference)",
    "branches": "commits, each client to its own branch (no shared lock)",
    "reads": "reads, per query: API v2 content at main + Iceberg REST loadTable",
}


def report(
    samples: dict[tuple[str, tuple[str, int]], Sample],
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
        f"{seconds:g} s per target and scenario, interleaved. Same httpx client code for "
        "every target. Series: "
        + "; ".join(f"`{k}` = {v}" for k, v in SERIES_TEXT.items())
        + f". Command: `.venv/bin/python {command}`.",
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
        f"| series | target | clients | operations | per s (median of rounds) | per s (all "
        f"rounds) | p50 ms | p99 ms | median vs {BASELINE} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        series, clients = scenario
        base = samples.get((BASELINE, scenario))
        base_rate = base.median_rate if base is not None else float("nan")
        for target in targets:
            s = samples[target, scenario]
            rate = s.median_rate
            overall = s.commits / s.wall if s.wall else float("nan")
            vs = f"{rate / base_rate:.2f}x" if base_rate == base_rate and base_rate else "n/a"
            lines.append(
                f"| {series} | {target} | {clients} | {s.commits} | {rate:.1f} | {overall:.1f} | "
                f"{percentile(s.latencies, 0.5) * 1000:.1f} | "
                f"{percentile(s.latencies, 0.99) * 1000:.1f} | {vs} |"
            )
    gave_up = [
        f"{t} {sc[0]} {sc[1]} client(s): {samples[t, sc].gave_up}"
        for sc in SCENARIOS
        for t in targets
        if samples[t, sc].gave_up
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
            f"Workers (`lakehouse serve --workers N` on PostgreSQL) vs {BASELINE} (Nessie "
            "JDBC2 on the same PostgreSQL), medians of rounds:",
            "",
            "| series | clients | unit | "
            + " | ".join(f"{workers_of(t)} worker(s)" for t in ours_targets)
            + f" | {BASELINE} | "
            + " | ".join(f"ratio {workers_of(t)}w" for t in ours_targets)
            + " |",
            "|---" * (4 + 2 * len(ours_targets)) + "|",
        ]
        for scenario in SCENARIOS:
            series, clients = scenario
            theirs = samples[BASELINE, scenario].median_rate
            mine = [samples[t, scenario].median_rate for t in ours_targets]
            ratios = [m / theirs if theirs else float("nan") for m in mine]
            lines.append(
                f"| {series} | {clients} | {UNIT[series]} | "
                + " | ".join(f"{m:.1f}" for m in mine)
                + f" | {theirs:.1f} | "
                + " | ".join(f"{r:.2f}x" for r in ratios)
                + " |"
            )
    return lines


if __name__ == "__main__":
    if shutil.which("java") is None and not Path("/usr/lib/jvm").exists():
        print("warning: no Java found; the nessie targets will fail", file=sys.stderr)
    raise SystemExit(main())
