"""``lakehouse run``: progress and summary, exit codes, JSON output, --ref, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.errors import CommitStateUnknownError
from lakehouse.pipelines.runner import RUN_RECORD
from lakehouse.storage.records import Records
from tests.pipelines.conftest import bronze, write_pipeline

runner = CliRunner()

YAML = """
name: shop
checks:
  - {model: silver.orders, type: not_null, columns: [id]}
  - {model: silver.orders, type: row_count, min: 100, severity: warn}
"""
MODELS = {"silver/orders.sql": "SELECT id, status FROM bronze.orders"}


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """The lakehouse the CLI opens (LAKEHOUSE_HOME), with bronze.orders on main."""
    with connect(create=True) as opened:
        bronze(
            opened,
            "bronze.orders",
            pa.table({"id": pa.array([1, 2], pa.int64()), "status": ["new", "paid"]}),
        )
        yield opened


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    """``./pipelines`` (the default --pipelines-dir) holding the shop pipeline."""
    write_pipeline(tmp_path / "pipelines", "shop", YAML, MODELS)
    return tmp_path / "pipelines"


def test_a_successful_run_exits_0_with_a_summary(lh: Lakehouse, pipelines: Path) -> None:
    result = run("run", "shop", "--run-id", "r1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ok    model   silver.orders  created: 2 row(s)" in out
    assert "warn  check   row_count(silver.orders: 100..)" in out
    assert "checks: 1 passed, 0 failed (blocking), 1 warning(s)" in out
    assert "Run r1 succeeded: audited on run/shop/r1, merged into main at" in out
    assert lh.catalog("main").table_exists("silver.orders")
    # the run shows in the log, with its properties in JSON
    log = json.loads(run("log", "-n", "1", "--output", "json").stdout)
    assert log[0]["properties"]["lakehouse.run.status"] == "success"
    assert log[0]["properties"]["lakehouse.run.id"] == "r1"
    assert "Run r1 of pipeline shop: success" in run("log", "-n", "1").stdout


def test_a_failed_check_exits_1_and_shows_samples(lh: Lakehouse, pipelines: Path) -> None:
    bronze(lh, "bronze.orders", pa.table({"id": pa.array([None], pa.int64()), "status": ["x"]}))
    main_before = lh.resolve("main").hash
    result = run("run", "shop", "--run-id", "bad", "--pipelines-dir", str(pipelines))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "FAIL  check   not_null(silver.orders: id)" in out
    assert "FAIL not_null(silver.orders: id) on silver.orders: 1 failing row(s)" in out
    assert "NULL" in out and "x" in out  # the sample row
    assert (
        "Run bad FAILED: 1 blocking check(s) failed; main unchanged; branch run/shop/bad kept"
        in out
    )
    assert lh.resolve("main").hash == main_before


def test_json_output_and_exit_code(lh: Lakehouse, pipelines: Path) -> None:
    bronze(lh, "bronze.orders", pa.table({"id": pa.array([None], pa.int64()), "status": ["x"]}))
    result = run("run", "shop", "--output", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and data["merged"] is False
    [failed] = [c for c in data["checks"] if c["status"] != "pass" and c["severity"] == "error"]
    assert failed["failing_rows"] == 1 and failed["sample"] == [{"id": None, "status": "x"}]


def test_ref_audits_on_a_child_branch_and_merges_into_the_ref(
    lh: Lakehouse, pipelines: Path
) -> None:
    lh.create_branch("feat")
    result = run("run", "shop", "--ref", "feat", "--run-id", "f1")
    assert result.exit_code == 0, result.output
    assert "Run f1 succeeded: audited on run/shop/f1, merged into feat at" in result.stdout
    assert not lh.catalog("main").table_exists("silver.orders")
    assert lh.catalog("feat").table_exists("silver.orders")


def test_a_failed_run_on_a_ref_leaves_it_unchanged(lh: Lakehouse, pipelines: Path) -> None:
    lh.create_branch("feat")
    bronze(
        lh, "bronze.orders", pa.table({"id": pa.array([None], pa.int64()), "status": ["x"]}), "feat"
    )
    before = lh.resolve("feat").hash
    result = run("run", "shop", "--ref", "feat", "--run-id", "f2")
    assert result.exit_code == 1, result.output
    assert "feat unchanged; branch run/shop/f2 kept" in result.stdout
    assert lh.resolve("feat").hash == before
    assert "run/shop/f2" in [b.name for b in lh.branches()]


def test_a_model_error_is_one_line_naming_the_model_file(lh: Lakehouse, tmp_path: Path) -> None:
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        "name: shop\n",
        {"silver/orders.sql": "SELECT nope FROM bronze.orders"},
    )
    result = run("run", "shop", "--run-id", "e")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: model silver.orders (")
    assert "silver/orders.sql" in line and "run branch 'run/shop/e' kept" in line
    assert "Traceback" not in result.stderr


def test_debug_shows_the_original_traceback(lh: Lakehouse, tmp_path: Path) -> None:
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        "name: shop\n",
        {"silver/orders.sql": "SELECT nope FROM bronze.orders"},
    )
    result = run("--debug", "run", "shop")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "BinderException" in result.stderr  # the user code's own error
    assert "ModelError" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("run", "nothere"), "Error: no pipeline 'nothere'"),
        (("run", "shop", "--ref", "v1"), "Error: cannot write to tag 'v1'"),
    ],
)
def test_usage_errors(lh: Lakehouse, pipelines: Path, args: tuple[str, ...], fragment: str) -> None:
    lh.create_tag("v1")
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(fragment), result.stderr


def test_a_publish_whose_outcome_stays_unknown_is_one_line_and_its_report_kept(
    lh: Lakehouse, pipelines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(*args: object, **kwargs: object) -> object:
        raise CommitStateUnknownError("merge into 'main': no answer came; it may or may not …")

    monkeypatch.setattr(Lakehouse, "merge", lost)
    result = run("run", "shop", "--run-id", "r1")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
    assert "may or may not" in errors[0] and "Traceback" not in result.output
    report = Records(lh.warehouse).read(RUN_RECORD, "r1")  # the console's run page
    assert report is not None and report["status"] == "error"
    assert "run the pipeline again" in report["error"]
