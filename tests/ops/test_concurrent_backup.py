"""A backup taken while another process keeps committing is consistent and restores."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.client import Lakehouse, connect
from lakehouse.ops import create_backup, restore_backup, verify_backup
from lakehouse.ops.backup import open_backup
from lakehouse.storage.objects import Storage
from tests.ops.helpers import snapshot_state

WRITER = r"""
import sys, time
from pathlib import Path
import pyarrow as pa
import lakehouse

home, stop = Path(sys.argv[1]), Path(sys.argv[2])
schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
n = 0
with lakehouse.connect(home) as lh:
    while not stop.exists():
        n += 1
        lh.table("bronze.orders", "main").append(
            pa.Table.from_pylist([{"id": 1000 + n, "name": f"w{n}"}], schema=schema)
        )
        if n % 3 == 0:
            lh.create_branch(f"w{n}", "main")
            lh.catalog(f"w{n}").create_table(f"silver.t{n}", schema).append(
                pa.Table.from_pylist([{"id": n, "name": "x"}], schema=schema)
            )
        if n % 5 == 0:
            lh.merge(f"w{n // 3 * 3}", "main")  # the newest branch made so far
        print(n, flush=True)
"""


def test_backup_while_another_process_commits_is_consistent_and_restores(
    rich_lakehouse: Lakehouse, home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    stop = tmp_path / "stop"
    dest = str(tmp_path / "backups")
    writer = subprocess.Popen(
        [sys.executable, str(script), str(home), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer is committing
        first = create_backup(rich_lakehouse, dest)
        second = create_backup(rich_lakehouse, dest)
    finally:
        stop.touch()
        _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    heads_now = {r.name: r.hash for r in rich_lakehouse.references()}

    for backup in (first, second):
        result = verify_backup(dest, backup_id=backup.backup_id)
        assert result.ok, result.summary()
    repo, _ = open_backup(Storage(), dest, second.backup_id)
    manifest = repo.load_manifest(second.backup_id)
    pinned = manifest.pinned_references()
    assert {r.name: r.hash for r in pinned} != heads_now  # the writer moved on after the pin
    expected = snapshot_state(rich_lakehouse, pinned)
    settings = rich_lakehouse.settings
    rich_lakehouse.close()
    shutil.rmtree(home)

    started = time.perf_counter()
    restored = restore_backup(dest, settings, backup_id=second.backup_id)
    assert restored.check.ok
    assert time.perf_counter() - started < 120
    with connect(home) as lh:
        assert snapshot_state(lh) == expected
