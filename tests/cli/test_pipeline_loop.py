"""The pipeline development loop as a user types it: new, test, plan, run --select.

Every test drives the ``lakehouse`` command (typer's CliRunner) in a fresh home and
working directory (the autouse fixture of tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import connect

runner = CliRunner()


def lakehouse(*args: str) -> Result:
    return runner.invoke(app, list(args))


def main_hash() -> str:
    with connect() as lh:
        return lh.resolve("main").hash


@pytest.fixture
def shop() -> Path:
    """A lakehouse with the scaffolded pipeline ``shop`` (not run yet)."""
    assert lakehouse("init").exit_code == 0
    created = lakehouse("pipeline", "new", "shop")
    assert created.exit_code == 0, created.output
    return Path("pipelines/shop")


@pytest.fixture
def shop_ran(shop: Path) -> Path:
    """The scaffolded pipeline after one successful run."""
    ran = lakehouse("run", "shop")
    assert ran.exit_code == 0, ran.output
    return shop


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# -- pipeline new ------------------------------------------------------------------------


def test_new_pipeline_writes_every_part_and_says_what_to_do_next(shop: Path) -> None:
    files = sorted(str(p.relative_to(shop)) for p in shop.rglob("*") if p.is_file())
    assert files == [
        "checks/shop_no_negative_amounts.sql",
        "data/orders.csv",
        "gold/shop_revenue_by_status.sql",
        "gold/shop_revenue_by_status.test.yaml",
        "pipeline.yaml",
        "silver/shop_orders.sql",
        "silver/shop_orders.test.yaml",
    ]


def test_the_new_pipeline_runs_and_publishes_its_gold_table(shop_ran: Path) -> None:
    with connect() as lh:
        gold = lh.sql("SELECT * FROM gold.shop_revenue_by_status ORDER BY status").to_pylist()
        silver = lh.sql("SELECT order_id, status FROM silver.shop_orders ORDER BY 1").to_pylist()
    # order 1 came twice (open, then shipped): the newest version won
    assert silver[0] == {"order_id": 1, "status": "shipped"}
    assert [(r["status"], r["orders"]) for r in gold] == [
        ("cancelled", 1),
        ("open", 2),
        ("shipped", 2),
    ]


def test_new_refuses_an_existing_folder_and_a_bad_name_changing_nothing(shop: Path) -> None:
    before = (shop / "pipeline.yaml").read_text(encoding="utf-8")
    again = lakehouse("pipeline", "new", "shop")
    assert again.exit_code == 1
    assert again.stderr.strip() == "Error: pipelines/shop exists already; choose another name"
    assert (shop / "pipeline.yaml").read_text(encoding="utf-8") == before
    bad = lakehouse("pipeline", "new", "Bad-Name")
    assert bad.exit_code == 1
    assert "invalid pipeline name 'Bad-Name'" in bad.stderr
    assert not Path("pipelines/Bad-Name").exists()


# -- test ----------------------------------------------------------------------------------


def test_model_tests_of_the_new_pipeline_pass_without_a_lakehouse(tmp_path: Path) -> None:
    assert lakehouse("pipeline", "new", "shop").exit_code == 0
    result = lakehouse("test", "shop")
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.stdout
    assert not (tmp_path / "lakehouse_home").exists()  # no catalog was touched


def test_a_failing_model_test_shows_the_rows_that_differ_and_exits_1(shop: Path) -> None:
    replace(
        shop / "gold/shop_revenue_by_status.test.yaml",
        "orders: 2, revenue: 15",
        "orders: 2, revenue: 16",
    )
    result = lakehouse("test", "shop")
    assert result.exit_code == 1
    assert "fail  gold.shop_revenue_by_status: revenue adds up per status" in result.stdout
    assert "missing: {'status': 'open', 'orders': 2, 'revenue': 16}" in result.stdout
    assert "unexpected: {'status': 'open', 'orders': 2, 'revenue':" in result.stdout
    assert "1 passed, 1 failed" in result.stdout


def test_model_tests_as_json_and_for_every_pipeline(shop: Path) -> None:
    result = lakehouse("test", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [t["model"] for t in data["tests"]] == [
        "silver.shop_orders",
        "gold.shop_revenue_by_status",
    ]


def test_a_model_test_that_misses_an_input_table_is_an_error(shop: Path) -> None:
    replace(shop / "gold/shop_revenue_by_status.test.yaml", "silver.shop_orders:", "silver.other:")
    result = lakehouse("test", "shop", "--model", "gold.shop_revenue_by_status")
    assert result.exit_code == 1
    assert "no rows given for silver.shop_orders (the model reads it)" in result.stdout


def test_a_malformed_test_file_is_one_line_naming_it(shop: Path) -> None:
    (shop / "silver/shop_orders.test.yaml").write_text("tests: {}\n", encoding="utf-8")
    result = lakehouse("test", "shop")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: pipelines/shop/silver/shop_orders.test.yaml: expected a mapping with a list 'tests'"
    )


# -- plan / run --dry-run --------------------------------------------------------------------


def test_plan_before_the_first_ingest_reads_bronze_schemas_from_the_source_files(
    shop: Path,
) -> None:
    before = main_hash()
    result = lakehouse("plan", "shop")
    assert result.exit_code == 0, result.output
    assert (
        "ok    model  silver.shop_orders  incremental; reads bronze.shop_orders "
        "(from its source's files)"
    ) in result.stdout
    assert "pipeline shop binds: 9 ok, 0 skipped, 0 error(s)" in result.stdout
    assert main_hash() == before
    assert not any(Path("lakehouse_home").rglob("*.csv"))  # nothing was landed


def test_plan_skips_what_reads_a_source_with_no_file_and_says_why(shop: Path) -> None:
    (shop / "data/orders.csv").unlink()
    replace(shop / "silver/shop_orders.sql", "CAST(amount AS", "CAST(amout AS")
    result = lakehouse("plan", "shop")
    assert result.exit_code == 0, result.output  # nothing could be bound, nothing failed
    assert (
        "skip  model  silver.shop_orders  bronze.shop_orders is not on main yet: ingestion "
        "creates it (source shop offers no file for it now)"
    ) in result.stdout


def test_a_broken_model_not_yet_on_the_ref_fails_once_and_skips_what_reads_it(
    shop: Path,
) -> None:
    replace(shop / "silver/shop_orders.sql", "CAST(amount AS", "CAST(amout AS")
    result = lakehouse("plan", "shop")
    assert result.exit_code == 1
    assert "pipeline shop does NOT bind: 2 ok, 6 skipped, 1 error(s)" in result.stdout
    assert (
        "skip  model  gold.shop_revenue_by_status  silver.shop_orders does not bind "
        "(see its error above)"
    ) in result.stdout


def test_plan_binds_every_model_and_check_and_writes_nothing(shop_ran: Path) -> None:
    before = main_hash()
    result = lakehouse("plan", "shop")
    assert result.exit_code == 0, result.output
    assert "pipeline shop binds: 9 ok, 0 skipped, 0 error(s)" in result.stdout
    assert main_hash() == before
    with connect() as lh:
        assert [b.name for b in lh.branches()] == ["main"]


def test_a_misspelled_column_fails_the_plan_with_model_file_line_and_column(
    shop_ran: Path,
) -> None:
    replace(shop_ran / "silver/shop_orders.sql", "CAST(amount AS", "CAST(amout AS")
    before = main_hash()
    result = lakehouse("plan", "shop")
    assert result.exit_code == 1
    line = next(s for s in result.stdout.splitlines() if "model  silver.shop_orders" in s)
    assert line.strip().startswith("error")
    assert 'Referenced column "amout" not found' in line
    assert 'Candidate bindings: "amount"' in line
    assert line.endswith("(pipelines/shop/silver/shop_orders.sql:8:10)")
    # what reads it is still bound, to the table as it is on main
    assert "ok    model  gold.shop_revenue_by_status" in result.stdout
    assert main_hash() == before


def test_a_misspelled_check_column_fails_the_plan_naming_the_check(shop_ran: Path) -> None:
    replace(
        shop_ran / "pipeline.yaml",
        "type: unique, columns: [order_id]",
        "type: unique, columns: [order_idd]",
    )
    result = lakehouse("run", "shop", "--dry-run", "-o", "json")
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    errors = [s for s in plan["steps"] if s["status"] == "error"]
    assert [(e["kind"], e["name"], e["where"]) for e in errors] == [
        ("check", "unique(silver.shop_orders: order_idd)", "pipeline.yaml checks[2]")
    ]
    assert 'Candidate bindings: "order_id"' in errors[0]["detail"]


def test_a_bad_delete_condition_and_a_missing_table_fail_the_plan(shop_ran: Path) -> None:
    replace(
        shop_ran / "pipeline.yaml",
        "unique_key: [order_id]}",
        "unique_key: [order_id], delete_condition: \"stat = 'x'\"}",
    )
    (shop_ran / "gold/shop_typo.sql").write_text(
        "SELECT * FROM silver.shop_order\n", encoding="utf-8"
    )
    result = lakehouse("plan", "shop")
    assert result.exit_code == 1
    assert "delete_condition \"stat = 'x'\"" in result.stdout
    assert "reads silver.shop_order, which is not on main" in result.stdout


# -- run --select ----------------------------------------------------------------------------


def test_run_select_model_plus_runs_it_and_its_dependents_without_ingesting(
    shop_ran: Path,
) -> None:
    (shop_ran / "data/orders.csv").unlink()  # no ingestion happens, so no source is needed
    result = lakehouse("run", "shop", "--select", "silver.shop_orders+", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [m["model"] for m in data["models"]] == [
        "silver.shop_orders",
        "gold.shop_revenue_by_status",
    ]
    # the checks about the selected models, the custom SQL check reading one included;
    # not the one about bronze (nothing was ingested)
    assert sorted(c["name"] for c in data["checks"]) == [
        "accepted_values(silver.shop_orders: status)",
        "not_null(silver.shop_orders: order_id, status, amount)",
        "row_count(gold.shop_revenue_by_status: 1..)",
        "shop_no_negative_amounts",
        "unique(silver.shop_orders: order_id)",
    ]


def test_run_select_one_model_runs_only_that_model(shop_ran: Path) -> None:
    result = lakehouse("run", "shop", "-s", "gold.shop_revenue_by_status", "-o", "json")
    assert result.exit_code == 0, result.output
    assert [m["model"] for m in json.loads(result.stdout)["models"]] == [
        "gold.shop_revenue_by_status"
    ]


def test_select_of_an_unknown_model_suggests_the_close_one(shop: Path) -> None:
    before = main_hash()
    result = lakehouse("run", "shop", "--select", "silver.shop_ordrs")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no model 'silver.shop_ordrs' in pipeline shop; did you mean silver.shop_orders?"
    )
    assert main_hash() == before
