"""`lakehouse backup …`, `lakehouse catalog check`, `lakehouse dr …` through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from tests.ops.helpers import SCHEMA, rows

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--output", "json").stdout)


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Lakehouse:
    """A lakehouse at LAKEHOUSE_HOME with bronze.orders on main and dev."""
    lake = connect(_isolate_lakehouse_config, create=True)
    lake.catalog("main").create_namespace("bronze")
    table = lake.catalog("main").create_table("bronze.orders", SCHEMA)
    table.append(rows((1, "a")))
    lake.table("bronze.orders", "main").append(rows((2, "b")))
    lake.create_branch("dev")
    return lake


def test_backup_list_verify_restore(lh: Lakehouse, tmp_path: Path) -> None:
    home = lh.settings.home
    dest = str(tmp_path / "backups")
    created = ok_json("backup", "create", "--to", dest)
    assert created["references"] == 2 and created["copied_objects"] == created["objects"]
    again = ok("backup", "create", "--to", dest).stdout
    assert "written to" in again
    # the second backup stores nothing new: every object's bytes were already stored
    assert f"copied 0 (0 B), reused {created['objects']} (the same bytes already stored" in again
    listed = ok_json("backup", "list", dest)
    assert [b["status"] for b in listed] == ["complete", "complete"]
    assert "verified" in ok("backup", "verify", dest).stdout
    assert ok_json("backup", "verify", dest, "--id", created["backup_id"])["ok"]

    refused = run("backup", "restore", dest)
    one_line_error(refused, "not empty", "--erase")
    assert refused.stdout == ""

    lh.close()
    shutil.rmtree(home)
    out = ok("backup", "restore", dest, "--to", str(home)).stdout
    assert "every hash verified" in out and "ok" in out
    assert [b["name"] for b in ok_json("branch", "list")] == ["dev", "main"]


def test_verify_prints_problems_then_one_error_line(lh: Lakehouse, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    ok("backup", "create", "--to", str(dest))
    victim = next((dest / "objects").rglob("*"))
    while victim.is_dir():
        victim = next(victim.iterdir())
    victim.write_bytes(b"tampered")
    result = run("backup", "verify", str(dest))
    one_line_error(result, "does not verify")
    assert "objects/" in result.stdout


def test_restore_errors_are_one_line(tmp_path: Path) -> None:
    one_line_error(run("backup", "restore", str(tmp_path / "nothing")), "no backup at")
    one_line_error(run("backup", "verify", str(tmp_path)), "no backup at")
    one_line_error(run("backup", "list", str(tmp_path / "nope")), "no backup destination")


def test_catalog_check_and_repair(lh: Lakehouse) -> None:
    report = ok_json("catalog", "check")
    assert report["ok"] and report["tables_checked"] == 2
    table = lh.table("bronze.orders", "main")
    snapshot = table.snapshots()[-1]
    victim = next(
        e.data_file.file_path
        for m in snapshot.manifests(table.io)
        if m.added_snapshot_id == snapshot.snapshot_id
        for e in m.fetch_manifest_entry(table.io)
    )
    Path(victim.removeprefix("file://")).unlink()

    result = run("catalog", "check", "--ref", "main")
    line = one_line_error(result, "bronze.orders", "main", victim)
    assert "catalog check failed" in line
    assert "BROKEN" in result.stdout and victim in result.stdout

    repaired = run("catalog", "check", "--repair")
    one_line_error(repaired, "repaired")
    assert "new commit" in repaired.stdout
    assert ok_json("sql", "SELECT id FROM bronze.orders ORDER BY id", "--ref", "main") == [
        {"id": 1}
    ]


def test_dr_runbook(lh: Lakehouse, tmp_path: Path) -> None:
    home = lh.settings.home
    assert "paused for disaster recovery" in ok("dr", "pause", "--reason", "drill").stdout
    status = ok_json("dr", "status")
    assert status["pause"]["paused"] and status["pause"]["reason"] == "drill"
    assert [p["table"] for p in status["replay"]] == ["bronze.orders"]
    dest = str(tmp_path / "b")
    backup = ok_json("dr", "backup", "--to", dest)
    assert backup["paused"] is True
    assert "not paused" in ok("dr", "resume").stdout
    assert "catalog check passed" in ok("dr", "validate").stdout

    lh.close()
    shutil.rmtree(home)
    restored = ok_json("dr", "restore", dest, "--to", str(home))
    assert restored["pause"]["paused"]
    assert "lakehouse dr validate" in restored["pause"]["reason"]
    ok("dr", "validate")
    ok("dr", "resume")
    assert not ok_json("dr", "status")["pause"]["paused"]
