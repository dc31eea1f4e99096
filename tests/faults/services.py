"""The catalog server as a user runs it (`lakehouse serve`); lakehouses wired through proxies."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from lakehouse.catalog.model import Delete
from lakehouse.catalog.nessie_store import NessieStore
from lakehouse.client import Lakehouse
from lakehouse.config import Settings
from lakehouse.storage.zones import Warehouse


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _lakehouse_command() -> list[str]:
    script = Path(sys.executable).with_name("lakehouse")
    return [str(script)] if script.exists() else [shutil.which("lakehouse") or "lakehouse"]


@contextmanager
def serve_process(
    catalog_uri: str,
    home: Path,
    *,
    warehouse: Path | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `lakehouse serve [ARGS]` over ``catalog_uri`` on a free loopback port.

    Yields the server's base URL once ``/readyz`` answers, and its process; stops it with
    SIGTERM afterwards. ``env`` adds variables; the log is ``serve-<port>.log`` beside
    ``home``. Also used by ``tests/server/test_workers.py`` (``--workers``).
    """
    port = free_port()
    environ = {
        **os.environ,
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_CATALOG__URI": catalog_uri,
        "LAKEHOUSE_WAREHOUSE": str(warehouse or home / "warehouse"),
        **(env or {}),
    }
    log = home.parent / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    command = [*_lakehouse_command(), "serve", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"lakehouse serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"lakehouse serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def lakehouse_serve(
    catalog_uri: str, home: Path, *, warehouse: Path | None = None
) -> Iterator[str]:
    """Run `lakehouse serve` over ``catalog_uri`` on a free loopback port; yield its API v2 URL.

    ``warehouse`` (default: ``home/warehouse``) is where the tables' files live; the clients
    of the server must use the same one, as they do in production: the server reads the
    tables' metadata there for content merges, and refuses locations outside it.
    """
    with serve_process(catalog_uri, home, warehouse=warehouse) as (base, _):
        yield f"{base}/api/v2"


def remote_lakehouse(
    uri: str, warehouse: Path, *, transport: httpx.BaseTransport | None = None, timeout: float = 10
) -> Lakehouse:
    """A lakehouse whose catalog is the Nessie API at ``uri`` and whose files are local."""
    settings = Settings(
        home=warehouse.parent / "client-home", catalog={"uri": uri}, warehouse=str(warehouse)
    )
    store = NessieStore(uri, transport=transport, timeout=timeout)
    wh = Warehouse.from_uri(settings.warehouse_location)
    wh.ensure_local_dirs()
    return Lakehouse(store, wh, settings)


def empty_branch(lh: Lakehouse) -> str:
    """A new branch with no content, for one test.

    The real Nessie is shared with the rest of the integration tier: its ``main`` may hold
    tables of other tests, so a test on it works on a branch of its own, emptied first.
    """
    branch = f"faults-{uuid.uuid4().hex[:8]}"
    lh.create_branch(branch, lh.default_branch)
    leftovers = [Delete(entry.key) for entry in lh.store.entries(branch)]
    if leftovers:
        lh.store.commit(branch, leftovers, "faults: start from an empty branch")
    return branch
