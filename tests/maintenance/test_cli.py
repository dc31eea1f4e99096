"""`lakehouse maintenance …` and `lakehouse branch approve`, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse

from .conftest import batch, make_table, rows, warehouse_files

runner = CliRunner()

AGGRESSIVE = """
snapshots: {keep_last: 1, max_age: 0s}
compaction: {min_small_files: 2, max_manifests: 1}
gc:
  grace_period: 0s
  references: [{pattern: "*", keep_commits: 1}]
"""


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok_json(*args: str) -> Any:
    result = run(*args, "--output", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_run_dry_run_then_for_real(lh: Lakehouse, tmp_path: Path) -> None:
    make_table(lh, "bronze.orders", 5)
    lh.create_branch("feature", "main")
    lh.branch("feature").table("bronze.orders").append(batch(800, 2))
    policies = tmp_path / "policies.yaml"
    policies.write_text(AGGRESSIVE)
    assert run("branch", "approve", "feature").exit_code == 0
    files = warehouse_files(lh)
    head = lh.resolve("main").hash

    report = ok_json("maintenance", "run", "--dry-run", "--policies", str(policies))
    assert report["dry_run"] is True and report["ok"] is True
    assert [b["state"] for b in report["merge"]["branches"]] == ["would-merge"]
    assert report["compact"][0]["files_rewritten"] == 5
    assert report["gc"]["candidates"]["files"] > 0
    assert lh.resolve("main").hash == head and warehouse_files(lh) == files

    expected = rows(lh.table("bronze.orders", "feature"))
    report = ok_json("maintenance", "run", "--policies", str(policies))
    assert report["ok"] is True
    assert report["merge"]["merged"] == 1
    assert report["gc"]["deleted"]["files"] > 0
    assert rows(lh.table("bronze.orders")) == expected


def test_each_command_with_text_output(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 4)
    (lh.settings.home / "maintenance.yaml").write_text(AGGRESSIVE)  # the home's policies
    compacted = run("maintenance", "compact", "--table", "bronze")
    assert compacted.exit_code == 0, compacted.stderr
    assert "Compaction on 'main': 4 data file(s) rewritten into 1" in compacted.stdout
    expired = run("maintenance", "expire", "--ref", "main")
    assert expired.exit_code == 0 and "Snapshot expiry on 'main': expired" in expired.stdout
    dry = run("maintenance", "gc", "--dry-run")
    assert dry.exit_code == 0 and "would delete:" in dry.stdout
    collected = run("maintenance", "gc")
    assert collected.exit_code == 0 and "deleted:" in collected.stdout
    assert "deferred-delete list" in collected.stdout


def test_errors_are_one_line(lh: Lakehouse, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("snapshots: {keep_lats: 1}\n")
    result = run("maintenance", "gc", "--policies", str(bad))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: ") and "keep_lats" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    lh.create_tag("t", "main")
    result = run("maintenance", "expire", "--ref", "t")
    assert result.exit_code == 1 and "cannot write to tag 't'" in result.stderr
    result = run("maintenance", "run", "--skip", "everything")
    assert result.exit_code == 1 and "unknown step" in result.stderr
    result = run("branch", "approve", "main")
    assert result.exit_code == 1 and "default branch" in result.stderr


def test_approve_json(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 1)
    lh.create_branch("dev", "main")
    data = ok_json("branch", "approve", "dev", "-m", "LGTM")
    assert data["branch"] == "dev" and data["commit"] == lh.resolve("dev").hash
    assert lh.log("dev", 1)[0].meta.message == "LGTM"


def test_the_compaction_summary_counts_dropped_and_trimmed_delete_files() -> None:
    from rich.console import Console

    from lakehouse.cli.maintenance import print_compact
    from lakehouse.maintenance.compact import CompactResult, TableCompaction

    out = Console(width=200, record=True)
    done = TableCompaction(
        "silver.t", 12, files_rewritten=3, delete_files_removed=2, delete_files_trimmed=1,
        files_written=1, attempts=1,
    )  # fmt: skip
    plain = TableCompaction("silver.u", 4, files_rewritten=4, files_written=1, attempts=1)
    print_compact(out, CompactResult("main", False, (done, plain)))
    text = out.export_text()
    assert "delete files" in text
    assert "2 dropped, 1 trimmed" in text.splitlines()[2]
    assert " - " in text.splitlines()[3]
