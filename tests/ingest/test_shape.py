"""Ingestion refuses shapeless input: `lakehouse ingest folder` through typer's CliRunner.

A file read with the wrong delimiter, a file that shares no column with its bronze table,
or one that adds columns its source's schema policy does not allow is quarantined under
``raw/_rejected/`` with the reason; the command fails with one line; the catalog (its log
and its tables) is exactly as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok_json(*args: str) -> Any:
    result = run(*args, "--output", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def catalog_state() -> tuple[Any, Any]:
    """What a user can see of the catalog: the log of main and the table list."""
    return ok_json("log"), ok_json("table", "list")


def refused(inbox: Path, *fragments: str, options: tuple[str, ...] = ()) -> dict[str, Any]:
    """Ingest ``inbox``; assert a one-line refusal naming ``fragments`` and no catalog change.

    Returns the batch's ``reason.json`` under ``raw/_rejected/``.
    """
    before = catalog_state()
    result = run("ingest", "folder", str(inbox), "-t", "orders", "-s", "shop", *options)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in (*fragments, "_rejected"):
        assert fragment in lines[0], lines[0]
    assert catalog_state() == before
    (reason_file,) = rejected_root().glob("shop/*/reason.json")
    reason: dict[str, Any] = json.loads(reason_file.read_text())
    return reason


def rejected_root() -> Path:
    return Path(os.environ["LAKEHOUSE_HOME"]) / "warehouse" / "raw" / "_rejected"


@pytest.fixture
def home(_isolate_lakehouse_config: Path) -> Path:
    assert run("init").exit_code == 0
    return _isolate_lakehouse_config


@pytest.fixture
def inbox(home: Path, tmp_path: Path) -> Path:
    """bronze.orders loaded from orders.csv (id, name, amount); the file then leaves."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "orders.csv").write_text("id,name,amount\n1,a,2.5\n2,b,3.5\n")
    loaded = ok_json("ingest", "folder", str(folder), "-t", "orders", "-s", "shop")
    assert loaded["rows_loaded"] == 2
    (folder / "orders.csv").unlink()
    return folder


def columns() -> list[str]:
    return [c["name"] for c in ok_json("table", "show", "bronze.orders")["schema"]["fields"]]


def test_a_semicolon_file_read_with_commas_is_rejected_with_the_reason(inbox: Path) -> None:
    (inbox / "more.csv").write_text("id;name;amount\n3;c;4.5\n")

    reason = refused(inbox, "more.csv", "'id;name;amount'", "delimited by ';'")

    assert reason["reasons"] == [
        "more.csv has a single column 'id;name;amount' whose name contains ';': the file "
        "looks delimited by ';', not ',' (set the source's delimiter)"
    ]
    assert [f["name"] for f in reason["files"]] == ["more.csv"]
    assert columns()[:3] == ["id", "name", "amount"] and "id;name;amount" not in columns()


def test_a_wrong_delimiter_is_refused_for_a_new_table_too(home: Path, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id|name\n1|a\n")
    before = catalog_state()

    result = run("ingest", "folder", str(tmp_path), "-t", "fresh")

    assert result.exit_code == 1
    assert "delimited by '|'" in result.stderr
    assert catalog_state() == before
    assert "bronze.fresh" not in run("table", "list").stdout


def test_the_right_delimiter_loads_the_same_file(inbox: Path) -> None:
    (inbox / "more.csv").write_text("id;name;amount\n3;c;4.5\n")
    loaded = ok_json(
        "ingest", "folder", str(inbox), "-t", "orders", "-s", "shop", "--delimiter", ";"
    )
    assert loaded["rows_loaded"] == 1 and loaded["added_columns"] == []


def test_a_file_sharing_no_column_with_the_table_is_rejected(inbox: Path) -> None:
    (inbox / "other.jsonl").write_text('{"sku": "x", "price": 1}\n')

    reason = refused(inbox, "other.jsonl shares no column with bronze.orders")

    assert (
        "the file has 'sku', 'price'; the table has 'id', 'name', 'amount'"
        in (reason["reasons"][0])
    )


def test_one_shapeless_file_rejects_its_whole_batch(inbox: Path) -> None:
    (inbox / "good.csv").write_text("id,name,amount\n3,c,4.5\n")
    (inbox / "bad.csv").write_text("sku,price\nx,1\n")

    reason = refused(inbox, "bad.csv shares no column")

    assert sorted(f["name"] for f in reason["files"]) == ["bad.csv", "good.csv"]


def test_new_columns_need_a_share_of_the_table_columns_by_default(inbox: Path) -> None:
    (inbox / "thin.csv").write_text("id,channel\n3,web\n")  # 1 of 3 columns < 0.5

    refused(inbox, "would add column(s) 'channel'", "only 1 of the table's 3 column(s)")

    assert "channel" not in columns()


def test_new_columns_are_added_when_enough_columns_match(inbox: Path) -> None:
    (inbox / "wide.csv").write_text("id,name,channel\n3,c,web\n")  # 2 of 3 >= 0.5

    loaded = ok_json("ingest", "folder", str(inbox), "-t", "orders", "-s", "shop")

    assert loaded["added_columns"] == ["channel"]
    assert "channel" in columns()


def test_the_share_is_configurable(inbox: Path) -> None:
    (inbox / "wide.csv").write_text("id,name,channel\n3,c,web\n")

    refused(inbox, "only 2 of the table's 3", options=("--min-shared-columns", "1"))


def test_key_columns_decide_instead_of_the_share(inbox: Path) -> None:
    (inbox / "thin.csv").write_text("id,channel\n3,web\n")
    loaded = ok_json(
        "ingest", "folder", str(inbox), "-t", "orders", "-s", "shop", "--key-column", "id"
    )
    assert loaded["added_columns"] == ["channel"]

    (inbox / "keyless.csv").write_text("name,region\nz,eu\n")
    refused(inbox, "lacks the key column(s) 'id'", options=("--key-column", "id"))


def test_a_policy_without_new_columns_refuses_any(inbox: Path) -> None:
    (inbox / "wide.csv").write_text("id,name,amount,channel\n3,c,1.0,web\n")

    refused(inbox, "allows no new columns", options=("--new-columns", "reject"))


def test_a_file_with_fewer_columns_and_nothing_new_still_loads(inbox: Path) -> None:
    (inbox / "part.csv").write_text("id\n3\n")
    loaded = ok_json("ingest", "folder", str(inbox), "-t", "orders", "-s", "shop")
    assert loaded["rows_loaded"] == 1


def test_an_invalid_policy_is_a_config_error(inbox: Path) -> None:
    result = run("ingest", "folder", str(inbox), "-t", "orders", "--min-shared-columns", "1.5")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "min_shared_columns" in result.stderr
