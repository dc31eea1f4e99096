"""`catalog check --history` tells history collected by policy from files that went missing.

Garbage collection with a retention (``gc.references``) deletes the files of commits outside
it, after writing them to its deferred-delete list. Those files are *expired*: reported,
exit 0. A file missing without such a record is damage: exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from tests.ops.helpers import SCHEMA, rows

runner = CliRunner()

#: Keep one snapshot and one commit of history, no grace period: the most aggressive policy.
AGGRESSIVE = """
snapshots: {keep_last: 1, max_age: 0s}
gc:
  grace_period: 0s
  references: [{pattern: "*", keep_commits: 1}]
"""


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def check_json(*args: str) -> tuple[int, Any]:
    result = run("catalog", "check", *args, "--output", "json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Lakehouse:
    """bronze.orders on main with four appends, then expire + gc with the aggressive policy."""
    lake = connect(_isolate_lakehouse_config, create=True)
    main = lake.catalog("main")
    main.create_namespace("bronze")
    main.create_table("bronze.orders", SCHEMA).append(rows((1, "a")))
    for i in range(2, 5):
        lake.table("bronze.orders", "main").append(rows((i, "x")))
    policies = _isolate_lakehouse_config.parent / "policies.yaml"
    policies.write_text(AGGRESSIVE)
    assert run("maintenance", "expire", "--policies", str(policies)).exit_code == 0
    gc = run("maintenance", "gc", "--policies", str(policies), "--output", "json")
    assert gc.exit_code == 0, gc.stdout
    assert json.loads(gc.stdout)["deleted"]["files"] > 0
    return lake


def test_history_collected_by_policy_is_expired_not_damage(lh: Lakehouse) -> None:
    code, report = check_json("--history")

    assert code == 0, report
    assert report["ok"] is True
    assert report["history"] == []
    # the five older metadata files of main's history (create + 4 appends) were collected
    assert report["expired"] == len(report["expired_files"]) == 5
    assert {f["problem"] for f in report["expired_files"]} == {"missing"}
    assert all(f["expired_by"].startswith("gc-") for f in report["expired_files"])

    text = run("catalog", "check", "--history")
    assert text.exit_code == 0
    assert "5 file(s) of older history were deleted by garbage collection" in text.stdout
    assert "catalog check passed" in text.stdout


def test_a_live_file_deleted_by_hand_is_damage(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    victim = next(iter(table.inspect.files().column("file_path").to_pylist()))
    Path(victim.removeprefix("file://")).unlink()

    code, report = check_json("--history")

    assert code == 1
    assert report["ok"] is False
    bad = [p["path"] for t in report["tables"] for p in t["problems"]]
    assert bad == [victim]
    assert report["expired"] == 5  # the expired history is still told apart
    result = run("catalog", "check", "--history")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: catalog check failed")


def test_a_history_file_missing_without_a_gc_record_is_damage(lh: Lakehouse) -> None:
    # a newer commit whose metadata file then disappears by hand: not in any gc list
    lh.table("bronze.orders", "main").append(rows((9, "z")))
    lh.table("bronze.orders", "main").append(rows((10, "z")))
    table = lh.table("bronze.orders", "main")
    previous = table.metadata.metadata_log[-1].metadata_file
    Path(previous.removeprefix("file://")).unlink()

    code, report = check_json("--history")

    assert code == 1
    assert [h["path"] for h in report["history"]] == [previous]
    assert "expired_by" not in report["history"][0]
    assert report["expired"] == 5


def test_a_tampered_gc_list_explains_nothing(lh: Lakehouse) -> None:
    folder = Path(lh.warehouse.bucket_uri("iceberg-metadata").removeprefix("file://")) / "_gc"
    (plan,) = folder.glob("*.jsonl")
    lines = plan.read_text().splitlines()
    plan.write_text("\n".join([*lines[:-1], lines[-1].replace('"sha256": "', '"sha256": "0')]))

    code, report = check_json("--history")

    assert code == 1
    assert report["expired"] == 0
    assert len(report["history"]) == 5
