"""A backup whose *destination* (a MinIO bucket/prefix) fails in the middle of the upload.

The lakehouse is embedded (catalog and warehouse on local disk); the backup destination is
``s3://iceberg-metadata/<prefix>/backups`` on the tier's MinIO, reached through a Toxiproxy
proxy (``LAKEHOUSE_S3__ENDPOINT`` points at the proxy), and every step goes through the CLI
as an operator runs it (``lakehouse backup create | list | verify``, in process). A first
backup is taken cleanly; new data lands (among it a data file of about 1.5 MB, stored as
one object); then the second backup meets a fault on the upload stream:

* ``reset`` — from the second object copied on, every upload connection is reset
  (``reset_peer`` on the upstream): the destination stays unreachable until the test heals
  it, so the failed backup cannot even clean up after itself;
* ``stall`` — from the second object on, uploads stop (``timeout`` on the upstream, each
  connection closed after a second): the S3 client's retries all stall;
* ``cut mid-object`` — every upload connection is closed after 256 KiB (``limit_data`` on
  the upstream): small objects get through, the large data file is cut part-way on every
  retry.

Each time: the backup exits 1 with one ``Error:`` line (no traceback) naming the
destination; ``backup list`` never shows the half backup as complete; ``backup verify`` of
the earlier backup stays clean (a failed upload never damaged a shared object); and once
the network heals, a rerun writes a backup that verifies and holds every file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.storage.objects import Storage
from tests.faults.arming import arm_on_call
from tests.faults.conftest import through
from tests.faults.toxiproxy import Proxy

pytestmark = pytest.mark.integration

runner = CliRunner()

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("blob", pa.binary())])


def blobs(first: int, n: int, size: int) -> pa.Table:
    """``n`` rows of ``size`` random (incompressible) bytes each."""
    return pa.Table.from_pylist(
        [{"id": first + i, "blob": os.urandom(size)} for i in range(n)], schema=SCHEMA
    )


#: ``(fault, starts at the n-th copy or None: from the start of the backup)``
FAULTS: dict[str, tuple[Callable[[Proxy], object], int | None]] = {
    "reset": (lambda p: p.reset_peer(stream="upstream"), 1),
    "stall": (lambda p: p.stall(stream="upstream", close_after_ms=1000), 1),
    "cut mid-object": (lambda p: p.cut_after(256 * 1024, stream="upstream"), None),
}


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok_json(*args: str) -> Any:
    result = run(*args, "--output", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def statuses(dest: str) -> dict[str, str]:
    return {b["backup_id"]: b["status"] for b in ok_json("backup", "list", dest)}


@pytest.fixture
def lakehouse(
    _isolate_lakehouse_config: Path,
    s3_settings: dict[str, str],
    s3_proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> Lakehouse:
    """An embedded lakehouse whose S3 settings (used only by backups) go through the proxy."""
    monkeypatch.setenv("LAKEHOUSE_S3__ENDPOINT", through(s3_settings["endpoint"], s3_proxy))
    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY_ID", s3_settings["access_key_id"])
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_ACCESS_KEY", s3_settings["secret_access_key"])
    lh = connect(_isolate_lakehouse_config, create=True)
    catalog = lh.catalog("main")
    catalog.create_namespace("bronze")
    catalog.create_table("bronze.blobs", SCHEMA).append(blobs(0, 20, 512))
    lh.table("bronze.blobs").append(blobs(100, 10, 512))
    lh.create_branch("dev")
    return lh


@pytest.mark.parametrize("fault", FAULTS)
def test_a_backup_whose_destination_fails_mid_upload_fails_in_one_line_and_a_rerun_verifies(
    lakehouse: Lakehouse,
    s3_proxy: Proxy,
    prefix: str,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = f"s3://iceberg-metadata/{prefix}/backups"
    earlier = ok_json("backup", "create", "--to", dest)["backup_id"]
    # new data: a large object to upload, and a second reference's history
    lakehouse.table("bronze.blobs").append(blobs(1000, 3000, 512))  # ~1.5 MB, incompressible
    lakehouse.table("bronze.blobs", "dev").append(blobs(5000, 5, 512))
    expected_rows = {"main": 3030, "dev": 35}

    inject, at_copy = FAULTS[fault]
    if at_copy is None:
        inject(s3_proxy)
        fired = [1]
    else:
        fired = arm_on_call(
            monkeypatch, Storage, "copy_hashed", lambda: inject(s3_proxy), skip=at_copy
        )
    failed = run("backup", "create", "--to", dest, "--workers", "1")
    s3_proxy.clear()
    assert fired, "the fault was never armed: the test proved nothing"

    # exit 1, the error in one line naming where the backup was going, no traceback; when
    # the destination is still down, what could not be cleaned up is a one-line warning each
    assert failed.exit_code == 1, (failed.stdout, failed.stderr, failed.exception)
    assert "Traceback" not in failed.stderr, failed.stderr
    *warnings, error = failed.stderr.splitlines()
    assert error.startswith("Error: ") and f"iceberg-metadata/{prefix}/backups" in error, error
    assert all(" WARNING lakehouse.ops.backup: could not remove" in w for w in warnings), warnings

    # the half backup is never listed as complete; the earlier one still verifies
    listed = statuses(dest)
    assert listed[earlier] == "complete"
    assert [b for b, status in listed.items() if status == "complete"] == [earlier], listed
    if at_copy is not None:  # the destination was still down: the half backup could not go
        (half,) = set(listed) - {earlier}
        assert listed[half] == "incomplete"
        refused = run("backup", "verify", dest, "--id", half)
        assert refused.exit_code == 1 and "incomplete" in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
    verified = ok_json("backup", "verify", dest, "--id", earlier)
    assert verified["ok"], verified

    # healed: a rerun completes a backup that verifies and holds every file
    done = ok_json("backup", "create", "--to", dest)
    assert done["copied_objects"] >= 1
    listed = statuses(dest)
    assert [b for b, status in listed.items() if status == "complete"] == [
        earlier,
        done["backup_id"],
    ], listed
    for backup_id in (earlier, done["backup_id"]):
        verified = ok_json("backup", "verify", dest, "--id", backup_id)
        assert verified["ok"], verified
    for ref, n in expected_rows.items():
        assert lakehouse.table("bronze.blobs", ref).scan().to_arrow().num_rows == n
