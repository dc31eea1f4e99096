"""Recovering from mistakes as a user types it: reset, revert, cherry-pick, merge
strategies, prune, and diff --rows, through the CLI and the Python API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.catalog.model import CommitMeta, ContentKey, Unchanged
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.errors import InvalidInputError
from lakehouse.pipelines.retention import RUN_STATUS, expire_failed_run_branches

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--output", "json").stdout)


def one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line, line


def ids(*values: int) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """The lakehouse the CLI opens, with bronze.orders (ids 1, 2, 3) on main."""
    with connect(create=True) as opened:
        catalog = opened.catalog("main")
        catalog.create_namespace("bronze")
        catalog.create_table("bronze.orders", schema=ids().schema).append(ids(1, 2, 3))
        yield opened


def append(lh: Lakehouse, branch: str, data: pa.Table, name: str = "bronze.orders") -> str:
    lh.table(name, branch).append(data)
    return lh.resolve(branch).hash


def count(lh: Lakehouse, ref: str, name: str = "bronze.orders") -> int:
    return len(lh.table(name, ref).scan().to_arrow())


# -- branch reset ------------------------------------------------------------------------


def test_branch_reset_moves_a_branch_back_and_prints_the_undo(lh: Lakehouse) -> None:
    good = lh.resolve("main").hash
    bad = append(lh, "main", ids(99))
    out = ok("branch", "reset", "main", "--to", good[:12]).stdout
    assert f"Reset branch 'main' to {good[:12]} (was {bad[:12]}" in out
    assert f"lakehouse branch reset main --to @{bad}" in out
    assert count(lh, "main") == 3
    ok("branch", "reset", "main", "--to", f"@{bad}")
    assert lh.resolve("main").hash == bad


def test_branch_reset_refuses_a_tag_and_a_stale_expected_hash(lh: Lakehouse) -> None:
    lh.create_tag("v1")
    seen = lh.resolve("main").hash
    head = append(lh, "main", ids(4))
    one_line_error(run("branch", "reset", "v1", "--to", "main"), "cannot write to tag 'v1'")
    one_line_error(
        run("branch", "reset", "main", "--to", "v1", "--expected-hash", seen),
        "not at the expected",
    )
    assert lh.resolve("main").hash == head and lh.resolve("v1").hash == seen


# -- revert ------------------------------------------------------------------------------


def test_revert_undoes_a_commit_on_a_branch(lh: Lakehouse) -> None:
    bad = append(lh, "main", ids(99))
    data = ok_json("revert", bad[:12], "--on", "main")
    assert data["branch"] == "main" and data["hash"] == lh.resolve("main").hash
    assert sorted(lh.table("bronze.orders", "main").scan().to_arrow()["id"].to_pylist()) == [
        1,
        2,
        3,
    ]
    assert lh.log("main", 1)[0].meta.message.startswith('Revert "')


def test_revert_conflicts_are_reported_per_key(lh: Lakehouse) -> None:
    bad = append(lh, "main", ids(99))
    head = append(lh, "main", ids(5))
    one_line_error(run("revert", bad), "revert of", "1 conflict(s)", "'bronze.orders'")
    assert lh.resolve("main").hash == head


# -- cherry-pick -------------------------------------------------------------------------


def test_cherry_pick_copies_commits_onto_a_branch(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.create_branch("hotfix")
    fix = append(lh, "hotfix", ids(7))
    ok("cherry-pick", fix[:12], "--onto", "dev")
    assert count(lh, "dev") == 4 and count(lh, "main") == 3
    assert lh.resolve("dev").hash != fix  # a new commit, not the same one


def test_cherry_pick_api_and_unknown_commit(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    fix = append(lh, "dev", ids(8))
    result = lh.cherry_pick([fix], "main")
    assert result.was_applied and count(lh, "main") == 4
    one_line_error(run("cherry-pick", "0123456789abcdef", "--onto", "main"))


def test_the_command_list_says_what_cherry_pick_does() -> None:
    listed = [line.split() for line in ok("--help").stdout.splitlines()]
    summary = next(" ".join(words[1:]) for words in listed if words[:1] == ["cherry-pick"])
    assert summary.startswith("Copy commits onto a branch"), summary


def test_branch_help_names_every_branch_command() -> None:
    text = " ".join(ok("branch", "--help").stdout.split())
    assert "Create, list, delete, reset, prune and approve branches." in text
    for command in ("create", "list", "delete", "reset", "prune", "approve"):
        assert f" {command} " in text


# -- merge --strategy --------------------------------------------------------------------


def diverge(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    append(lh, "dev", ids(10))
    append(lh, "main", ids(20))


@pytest.mark.parametrize(("strategy", "expected"), [("source-wins", 10), ("target-wins", 20)])
def test_merge_strategy_resolves_the_whole_merge(
    lh: Lakehouse, strategy: str, expected: int
) -> None:
    diverge(lh)
    # Both sides appended, so a content-aware merge would take both rows; a key-level
    # merge (Nessie's semantics) conflicts, and the strategy resolves that conflict.
    one_line_error(run("merge", "dev", "--into", "main", "--no-content-merge"), "conflict")
    ok("merge", "dev", "--into", "main", "--strategy", strategy)
    got = lh.table("bronze.orders", "main").scan().to_arrow()["id"].to_pylist()
    assert sorted(got) == sorted([1, 2, 3, expected])


def test_an_unknown_strategy_is_one_line_and_merges_nothing(lh: Lakehouse) -> None:
    diverge(lh)
    head = lh.resolve("main").hash
    one_line_error(run("merge", "dev", "--strategy", "ours"), "unknown merge strategy 'ours'")
    assert lh.resolve("main").hash == head


# -- branch prune ------------------------------------------------------------------------


def test_prune_by_pattern_with_dry_run(lh: Lakehouse) -> None:
    for name in ("run/shop/a", "run/shop/b", "feature"):
        lh.create_branch(name)
    out = ok("branch", "prune", "--pattern", "run/*", "--dry-run").stdout
    assert "Would delete branch 'run/shop/a'" in out and "feature" not in out
    assert len(lh.branches()) == 4
    one_line_error(
        run("branch", "prune", "--pattern", "run/*", "--older-than", "soon"), "invalid age 'soon'"
    )
    # every branch idle a day is rarely meant: it must be asked for with --pattern '*'
    one_line_error(run("branch", "prune", "--older-than", "0d"), "--older-than needs --pattern")
    assert len(lh.branches()) == 4
    assert ok_json("branch", "prune", "--pattern", "run/*", "--older-than", "7d")["branches"] == []
    data = ok_json("branch", "prune", "--pattern", "run/*")
    assert [b["name"] for b in data["branches"]] == ["run/shop/a", "run/shop/b"]
    assert [b.name for b in lh.branches()] == ["feature", "main"]


def record(lh: Lakehouse, branch: str, status: str | None) -> None:
    props = {RUN_STATUS: status} if status else {}
    lh.store.commit(
        branch, [Unchanged(ContentKey.parse("bronze.orders"))], CommitMeta("run", properties=props)
    )


def test_the_retention_policy_expires_only_failed_or_interrupted_runs(lh: Lakehouse) -> None:
    for name, status in [
        ("run/shop/failed", "failed"),
        ("run/shop/error", "error"),
        ("run/shop/kept", "success"),
        ("run/shop/interrupted", None),
    ]:
        lh.create_branch(name)
        record(lh, name, status)
    lh.create_branch("feature")
    record(lh, "feature", "failed")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    assert expire_failed_run_branches(lh, now=dt.datetime.now(dt.UTC)) == []
    assert expire_failed_run_branches(lh, days=0, now=later) == []
    expired = expire_failed_run_branches(lh, now=later)
    assert sorted(p.name for p in expired) == [
        "run/shop/error",
        "run/shop/failed",
        "run/shop/interrupted",
    ]
    assert [b.name for b in lh.branches()] == ["feature", "main", "run/shop/kept"]


def test_prune_without_options_applies_the_policy(
    lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    lh.create_branch("run/shop/young")
    record(lh, "run/shop/young", "failed")
    # younger than 7 days: kept, and the answer says why and how to see them
    assert ok("branch", "prune").stdout.splitlines() == [
        "No branch to prune: failed run branches are kept 7 day(s) "
        "(LAKEHOUSE_FAILED_RUN_RETENTION_DAYS); to see them all: "
        "lakehouse branch prune --pattern 'run/*' --older-than 0d --dry-run"
    ]
    listed = ok("branch", "prune", "--pattern", "run/*", "--older-than", "0d", "--dry-run")
    assert "Would delete branch 'run/shop/young'" in listed.stdout
    assert "run/shop/young" in [b.name for b in lh.branches()]
    monkeypatch.setenv("LAKEHOUSE_FAILED_RUN_RETENTION_DAYS", "-1")
    one_line_error(run("branch", "prune"), "LAKEHOUSE_FAILED_RUN_RETENTION_DAYS")


# -- diff --rows -------------------------------------------------------------------------


def test_diff_rows_counts_added_and_deleted_rows_per_table(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    append(lh, "dev", ids(4, 5))
    lh.table("bronze.orders", "dev").delete("id <= 3")  # drops the whole first file
    lh.catalog("dev").create_table("bronze.new", schema=ids().schema).append(ids(9))
    by_table = {d["table"]: d for d in ok_json("diff", "main", "dev", "--rows")}
    orders = by_table["bronze.orders"]
    assert (orders["rows_added"], orders["rows_deleted"]) == (2, 3)
    assert (orders["from_rows"], orders["to_rows"]) == (3, 2)
    assert by_table["bronze.new"]["rows_added"] == 1
    assert by_table["bronze.new"]["from_snapshot"] is None
    # the other direction undoes it
    back = {d["table"]: d for d in ok_json("diff", "dev", "main", "--rows")}
    assert (back["bronze.orders"]["rows_added"], back["bronze.orders"]["rows_deleted"]) == (3, 2)
    assert back["bronze.new"]["rows_deleted"] == 1
    # as text, every count right-aligned under its header, the last column too
    lines = ok("diff", "main", "dev", "--rows").stdout.splitlines()
    assert lines[0].endswith("ROWS BEFORE  ROWS AFTER")
    assert len({len(line) for line in lines}) == 1, lines


def test_diff_rows_counts_rows_a_copy_on_write_delete_rewrote(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.table("bronze.orders", "dev").delete("id = 1")  # rewrites 2, 3 into a new file
    [change] = lh.diff_rows("main", "dev")
    assert (change.added, change.deleted, change.to_rows) == (2, 3, 2)


def test_diff_rows_on_diverged_branches_counts_both_sides(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    append(lh, "dev", ids(10, 11))
    append(lh, "main", ids(20))
    [change] = lh.diff_rows("main", "dev")
    assert (change.added, change.deleted, change.from_rows, change.to_rows) == (2, 1, 4, 5)


def test_diff_rows_sample_shows_the_rows(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    append(lh, "dev", ids(4))
    lh.table("bronze.orders", "dev").delete("id = 2")
    [item] = ok_json("diff", "main", "dev", "--rows", "--sample", "5")
    assert item["sample_added"] == [{"id": 4}] and item["sample_deleted"] == [{"id": 2}]
    text = ok("diff", "main", "dev", "--rows", "--sample", "5").stdout
    assert "bronze.orders" in text and "ADDED" in text and "added (sample of 1)" in text


def test_plain_diff_is_unchanged_and_rows_of_nothing_says_so(lh: Lakehouse) -> None:
    assert ok_json("diff", "main", "main") == []
    assert "No table differs from main to main" in ok("diff", "main", "main", "--rows").stdout


# -- the same through the Python API ------------------------------------------------------


def test_python_api_reset_revert_merge_strategy_and_prune(lh: Lakehouse) -> None:
    good = lh.resolve("main").hash
    bad = append(lh, "main", ids(99))
    assert lh.reset_branch("main", good).hash == good
    lh.reset_branch("main", "@" + bad, expected_hash=good)
    reverted = lh.revert(bad, "main")
    assert reverted.branch.name == "main" and count(lh, "main") == 3
    diverge(lh)
    result = lh.merge("dev", "main", strategy="target-wins")
    assert result.was_successful and not result.was_applied  # main's version of every key
    assert 10 not in lh.table("bronze.orders").scan().to_arrow()["id"].to_pylist()
    lh.create_branch("run/x/1")
    assert [p.name for p in lh.prune_branches(pattern="run/*", dry_run=True)] == ["run/x/1"]
    assert [p.name for p in lh.prune_branches(pattern="run/*")] == ["run/x/1"]
    assert lh.prune_branches() == []  # the policy: nothing failed and old enough
    with pytest.raises(InvalidInputError, match="needs --pattern"):
        lh.prune_branches(older_than=dt.timedelta(0))  # every branch idle a moment: no
