"""The `lakehouse` command, through typer's CliRunner (plus one subprocess smoke test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lakehouse.catalog.model import ContentKey, IcebergTable, Namespace, Put
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process."""
    return runner.invoke(app, list(args), env=env)


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke and assert success."""
    result = run(*args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    """Invoke with --output json after the subcommand and parse stdout."""
    return json.loads(ok(*args, "--output", "json", env=env).stdout)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit code 1, nothing on stdout, exactly one `Error: …` line on stderr."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def home(_isolate_lakehouse_config: Path) -> Path:
    """An initialized lakehouse home (LAKEHOUSE_HOME points at it)."""
    ok("init")
    return _isolate_lakehouse_config


@pytest.fixture
def lh(home: Path) -> Iterator[Lakehouse]:
    """A client on the same home, for arranging state and checking effects."""
    with connect(home) as lakehouse:
        yield lakehouse


def put_namespace(lh: Lakehouse, branch: str, name: str) -> str:
    """Commit a namespace on ``branch``; return the new head hash."""
    key = ContentKey.of(name)
    return lh.store.commit(branch, [Put(key, Namespace(key.elements))], f"add {name}").hash


def put_table(lh: Lakehouse, branch: str, key: str, location: str) -> str:
    """Commit (create or update) a table pointer on ``branch``; return the new head hash."""
    content_key = ContentKey.parse(key)
    found = lh.store.get_contents(branch, [content_key])
    old = found.get(content_key)
    content = IcebergTable(location, snapshot_id=1, id=old.id if old else None)
    return lh.store.commit(branch, [Put(content_key, content)], f"write {key}").hash


def references(lh: Lakehouse) -> list[tuple[str, str, str]]:
    return [(r.type.value, r.name, r.hash) for r in lh.references()]


# -- basics ------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = ok("--help")
    for command in ("init", "status", "branch", "tag", "log", "diff", "merge", "table"):
        assert command in result.stdout
    assert "--from" in ok("branch", "create", "--help").stdout
    assert "--ref" in ok("tag", "create", "--help").stdout


def test_a_mistyped_command_gets_the_names_of_commands_not_built_yet() -> None:
    result = run("brnch", "list")
    assert result.exit_code == 2
    assert "No such command 'brnch'. Did you mean 'branch'?" in result.stderr


def test_version() -> None:
    from lakehouse import __version__

    assert ok("--version").stdout.strip() == f"lakehouse {__version__}"


def test_init_creates_home_buckets_and_catalog(_isolate_lakehouse_config: Path) -> None:
    home = _isolate_lakehouse_config
    data = ok_json("init")
    assert (home / "catalog.db").is_file()
    for bucket in ("raw", "bronze", "silver", "gold", "iceberg-metadata"):
        assert (home / "warehouse" / bucket).is_dir()
    assert data["home"] == str(home)
    assert data["default_branch"] == "main"
    assert set(data["buckets"]) == {"raw", "bronze", "silver", "gold", "iceberg-metadata"}
    # Re-running keeps the catalog.
    with connect(home) as lakehouse:
        put_namespace(lakehouse, "main", "bronze")
    ok("init")
    with connect(home) as lakehouse:
        assert lakehouse.log()[0].meta.message == "add bronze"


def test_home_option_wins_over_env(tmp_path: Path) -> None:
    other = tmp_path / "other"
    ok("--home", str(other), "init")
    assert (other / "catalog.db").is_file()
    assert not (tmp_path / "lakehouse_home").exists()


def test_commands_before_init_say_how_to_fix_it() -> None:
    assert_one_line_error(run("branch", "list"), "lakehouse init")
    assert_one_line_error(run("log"), "lakehouse init")


def test_status(home: Path) -> None:
    data = ok_json("status")
    assert data["ref"] == "main"
    assert data["branches"] == 1
    assert data["tags"] == 0
    assert data["catalog"] == f"sqlite:///{home}/catalog.db"
    assert "catalog:" in ok("status").stdout


# -- branches and tags -------------------------------------------------------------------


def test_branch_create_list_delete(lh: Lakehouse) -> None:
    main_hash = put_namespace(lh, "main", "bronze")
    created = ok_json("branch", "create", "feature/foo", "--from", "main")
    assert created == {"type": "BRANCH", "name": "feature/foo", "hash": main_hash}

    listed = ok_json("branch", "list")
    assert [(b["name"], b["hash"]) for b in listed] == [
        ("feature/foo", main_hash),
        ("main", main_hash),
    ]
    text = ok("branch", "list").stdout
    assert "feature/foo" in text and main_hash[:12] in text

    assert "Deleted branch 'feature/foo'" in ok("branch", "delete", "feature/foo").stdout
    assert [b.name for b in lh.branches()] == ["main"]


def test_branch_create_from_an_older_commit(lh: Lakehouse) -> None:
    first = put_namespace(lh, "main", "bronze")
    put_namespace(lh, "main", "silver")
    assert ok_json("branch", "create", "old", "--from", f"main@{first}")["hash"] == first
    assert ok_json("branch", "create", "older", "--ref", "main~1")["hash"] == first


def test_branch_create_defaults_to_nessie_ref(lh: Lakehouse) -> None:
    ok("branch", "create", "dev")
    dev_hash = put_namespace(lh, "dev", "bronze")
    created = ok_json("branch", "create", "feature", env={"NESSIE_REF": "dev"})
    assert created["hash"] == dev_hash


def test_tag_create_list_delete(lh: Lakehouse) -> None:
    main_hash = put_namespace(lh, "main", "bronze")
    text = ok("tag", "create", "prod-20260101", "--ref", "main").stdout
    assert "Created tag 'prod-20260101'" in text
    assert ok_json("tag", "list") == [{"type": "TAG", "name": "prod-20260101", "hash": main_hash}]
    assert ok_json("branch", "list")[0]["name"] == "main"  # tags are not branches
    ok("tag", "delete", "prod-20260101")
    assert lh.tags() == []


def test_output_format_before_or_after_the_command_and_from_env(home: Path) -> None:
    before = json.loads(ok("--output", "json", "branch", "list").stdout)
    after = json.loads(ok("branch", "list", "-o", "json").stdout)
    from_env = json.loads(ok("branch", "list", env={"LAKEHOUSE_OUTPUT": "json"}).stdout)
    assert before == after == from_env
    # The command's own option wins over the global one.
    assert not ok("--output", "json", "branch", "list", "--output", "text").stdout.startswith("[")


# -- log, diff, merge --------------------------------------------------------------------


def test_log_json_parses(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    put_namespace(lh, "main", "silver")
    entries = ok_json("log")
    assert [e["message"] for e in entries[:2]] == ["add silver", "add bronze"]
    assert all(len(e["hash"]) == 64 for e in entries)
    assert len(ok_json("log", "-n", "1")) == 1
    text = ok("log").stdout
    assert "add silver" in text and entries[0]["hash"][:12] in text


def test_log_and_reads_follow_ref_option_and_nessie_ref(lh: Lakehouse) -> None:
    ok("branch", "create", "dev")
    put_namespace(lh, "dev", "bronze")
    assert ok_json("log", "--ref", "dev")[0]["message"] == "add bronze"
    assert ok_json("log", env={"NESSIE_REF": "dev"})[0]["message"] == "add bronze"
    assert ok_json("--ref", "dev", "log")[0]["message"] == "add bronze"
    # An explicit --ref wins over NESSIE_REF.
    main_log = ok_json("log", "--ref", "main", env={"NESSIE_REF": "dev"})
    assert "add bronze" not in [e["message"] for e in main_log]


def test_diff(lh: Lakehouse) -> None:
    ok("branch", "create", "dev")
    put_namespace(lh, "dev", "bronze")
    entries = ok_json("diff", "main", "dev")
    assert [(e["key"], e["from"], e["to"]["type"]) for e in entries] == [
        ("bronze", None, "NAMESPACE")
    ]
    assert "+ bronze" in ok("diff", "main", "dev").stdout
    assert ok_json("diff", "dev", "dev") == []


def test_merge(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    ok("branch", "create", "dev")
    put_table(lh, "dev", "bronze.orders", "file:///m/1.json")

    dry = ok_json("merge", "dev", "--dry-run")
    assert dry["applied"] is False
    assert [k["key"] for k in dry["keys"]] == ["bronze.orders"]
    assert ok_json("diff", "main", "dev") != []  # nothing happened

    merged = ok_json("merge", "dev", "--into", "main")
    assert merged["applied"] is True
    head = lh.resolve("main").hash
    assert merged["target_hash_after"] == head
    assert ok_json("diff", "main", "dev") == []
    assert len(ok_json("log")[0]["parentCommitHashes"]) == 2
    assert "Nothing to merge" in ok("merge", "dev").stdout


def test_merge_conflict_changes_nothing_and_force_key_resolves_it(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    put_table(lh, "main", "bronze.orders", "file:///m/1.json")
    ok("branch", "create", "dev")
    put_table(lh, "dev", "bronze.orders", "file:///dev/2.json")
    put_table(lh, "main", "bronze.orders", "file:///main/2.json")
    before = references(lh)

    assert_one_line_error(run("merge", "dev"), "conflict", "bronze.orders")
    assert references(lh) == before

    dry = run("merge", "dev", "--dry-run", "-o", "json")
    assert dry.exit_code == 1
    assert json.loads(dry.stdout)["keys"][0]["conflict"] is not None
    assert json.loads(dry.stderr)["error"]["type"] == "MergeConflictError"  # -o json: JSON
    assert references(lh) == before

    ok("merge", "dev", "--force-key", "bronze.orders")
    table = lh.store.get_content("main", ContentKey.parse("bronze.orders"))
    assert isinstance(table, IcebergTable)
    assert table.metadata_location == "file:///dev/2.json"


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["branch", "create", "bad..name"], ["invalid reference name"]),
        (["tag", "create", "1-starts-with-digit", "--ref", "main"], ["invalid reference name"]),
        (["branch", "create", "x", "--from", "nope"], ["'nope'"]),
        (["log", "--ref", "nope"], ["'nope'"]),
        (["diff", "main", "nope"], ["'nope'"]),
        (["merge", "nope"], ["'nope'"]),
        (["branch", "delete", "main"], ["main"]),
        (["branch", "delete", "nope"], ["nope"]),
        (["branch", "create", "main"], ["already exists"]),
        (["branch", "delete", "release-1"], ["release-1"]),
        (["tag", "delete", "main"], ["main"]),
        (["merge", "dev", "--into", "release-1"], ["tag", "release-1"]),
        (["merge", "dev", "--into", "nope"], ["nope"]),
        (["merge", "dev", "--force-key", ""], ["empty content key"]),
        (["table", "show", "bronze.nope"], ["bronze.nope"]),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    lh: Lakehouse, args: list[str], fragments: list[str]
) -> None:
    put_namespace(lh, "main", "bronze")
    ok("branch", "create", "dev")
    put_namespace(lh, "dev", "silver")
    ok("tag", "create", "release-1", "--ref", "main")
    before = references(lh)
    assert_one_line_error(run(*args), *fragments)
    assert references(lh) == before


def test_debug_shows_the_traceback(home: Path) -> None:
    result = run("--debug", "log", "--ref", "nope")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: ")


def test_invalid_settings_are_one_line_errors(home: Path) -> None:
    assert_one_line_error(run("status", env={"LAKEHOUSE_PROFILE": "laptop"}), "LAKEHOUSE_PROFILE")


# -- tables ------------------------------------------------------------------------------


@pytest.fixture
def orders(lh: Lakehouse) -> Lakehouse:
    """bronze.orders with one append on main, and a second one on branch dev."""
    pa = pytest.importorskip("pyarrow")
    catalog = lh.catalog("main")
    catalog.create_namespace("bronze")
    rows = pa.table({"id": pa.array([1, 2], pa.int64()), "amount": pa.array([1.5, 2.5])})
    table = catalog.create_table("bronze.orders", schema=rows.schema)
    table.append(rows)
    lh.create_branch("dev")
    lh.branch("dev").table("bronze.orders").append(rows)
    return lh


def test_table_list(orders: Lakehouse) -> None:
    listed = ok_json("table", "list")
    assert [(t["name"], t["type"]) for t in listed] == [("bronze.orders", "ICEBERG_TABLE")]
    assert ok_json("table", "list", "--namespace", "silver") == []
    assert "bronze.orders" in ok("table", "list", "--ref", "dev").stdout


def test_table_show(orders: Lakehouse) -> None:
    shown = ok_json("table", "show", "bronze.orders")
    assert shown["name"] == "bronze.orders"
    assert [f["name"] for f in shown["schema"]["fields"]] == ["id", "amount"]
    assert shown["current_snapshot"]["summary"]["total-records"] == "2"
    assert shown["metadata_location"].endswith(".metadata.json")
    dev = ok_json("table", "show", "bronze.orders", "--ref", "dev")
    assert dev["current_snapshot"]["summary"]["total-records"] == "4"
    text = ok("table", "show", "bronze.orders").stdout
    assert "schema" in text and "amount" in text and "partition spec" in text


def test_table_history(orders: Lakehouse) -> None:
    assert len(ok_json("table", "history", "bronze.orders")) == 1
    dev = ok_json("table", "history", "bronze.orders", "--ref", "dev")
    assert len(dev) == 2
    assert dev[0]["current"] is True
    assert dev[0]["parent_snapshot_id"] == dev[1]["snapshot_id"]
    assert "append" in ok("table", "history", "bronze.orders", "-r", "dev").stdout


def test_unknown_table_is_a_one_line_error(orders: Lakehouse) -> None:
    assert_one_line_error(run("table", "show", "bronze.nope"))
    assert_one_line_error(run("table", "history", "silver.nope", "--ref", "dev"))


# -- as a process ------------------------------------------------------------------------


def test_console_script_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "LAKEHOUSE_HOME": str(tmp_path / "proc")}
    cmd = [sys.executable, "-m", "lakehouse.cli"]
    subprocess.run([*cmd, "init"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [*cmd, "branch", "list", "-o", "json"], env=env, check=True, capture_output=True, text=True
    )
    assert [b["name"] for b in json.loads(out.stdout)] == ["main"]
    failed = subprocess.run(
        [*cmd, "branch", "delete", "main"], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("Error: ")


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from lakehouse.cli.main import app; "
        "heavy = [m for m in ('pyiceberg', 'pyarrow', 'sqlalchemy', 'pydantic', 'rich') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_merge_of_appends_on_both_sides_merges_by_content_unless_told_not_to(
    lh: Lakehouse,
) -> None:
    import pyarrow as pa

    catalog = lh.catalog("main")
    catalog.create_namespace("bronze")
    schema = pa.schema([pa.field("id", pa.int64())])
    catalog.create_table("bronze.orders", schema=schema).append(pa.table({"id": [1]}, schema))
    ok("branch", "create", "dev")
    lh.table("bronze.orders", "main").append(pa.table({"id": [2]}, schema))
    lh.table("bronze.orders", "dev").append(pa.table({"id": [3]}, schema))

    refused = run("merge", "dev", "--no-content-merge")
    assert_one_line_error(refused, "bronze.orders")
    dry = ok("merge", "dev", "--dry-run")
    assert "bronze.orders  merged by content (appends on the source" in dry.stdout
    [key] = ok_json("merge", "dev", "--dry-run")["keys"]
    assert key["resolution"].startswith("merged by content (")
    assert ok_json("merge", "dev")["applied"] is True
    got = lh.table("bronze.orders", "main").scan().to_arrow().column("id").to_pylist()
    assert sorted(got) == [1, 2, 3]


def test_usage_lines_name_arguments_once_and_in_capitals() -> None:
    """typer marks required arguments `{X}`, optional ones `[X]` and repeated ones `X...`."""
    assert "lakehouse cherry-pick [OPTIONS] {COMMIT}...\n" in ok("cherry-pick", "--help").stdout
    assert "lakehouse test [OPTIONS] [PIPELINE]\n" in ok("test", "--help").stdout
    assert "lakehouse pipeline new [OPTIONS] {NAME}\n" in ok("pipeline", "new", "--help").stdout
    assert "lakehouse sql [OPTIONS] [QUERY]\n" in ok("sql", "--help").stdout
