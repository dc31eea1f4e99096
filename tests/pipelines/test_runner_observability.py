"""A pipeline run records its metrics and puts its run id and ref on every log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse import observability
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines import ModelError, run_pipeline
from tests.metrics_helpers import fresh_metrics, sample
from tests.pipelines.conftest import write_pipeline

__all__ = ["fresh_metrics"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")

FEED = """
name: feed
sources:
  - name: shop
    type: folder
    path: ${SHOP_DATA}
    format: csv
    tables: [{table: orders, pattern: "orders*.csv"}]
checks:
  - {model: silver.orders, type: not_null, columns: [id]}
  - {model: silver.orders, type: row_count, min: 1}
  - {model: silver.orders, type: row_count, min: 1000, severity: warn}
"""
MODELS = {"silver/orders.sql": "SELECT id, status, amount FROM bronze.orders"}
CSV = "id,status,amount\n1,new,2.5\n2,paid,4\n"


@pytest.fixture
def feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline ingesting ``orders*.csv`` of ``SHOP_DATA`` into bronze.orders."""
    data = tmp_path / "landing"
    data.mkdir()
    (data / "orders1.csv").write_text(CSV, encoding="utf-8")
    monkeypatch.setenv("SHOP_DATA", str(data))
    return write_pipeline(tmp_path, "feed", FEED, MODELS)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """JSON logs from INFO up, captured; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    observability.configure_logging("json", "INFO", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_run_records_ingestion_model_times_checks_and_its_outcome(
    lh: Lakehouse, feed: Path
) -> None:
    result = run_pipeline(lh, feed, run_id="m1")
    assert result.ok

    shop = {"source": "shop", "table": "bronze.orders"}
    assert sample("lakehouse_ingest_rows_total", **shop) == 2
    assert sample("lakehouse_ingest_files_total", **shop) == 1
    assert sample("lakehouse_ingest_bytes_total", **shop) == len(CSV)
    assert sample("lakehouse_ingest_last_success_timestamp_seconds", **shop) is not None

    feed_run = {"pipeline": "feed"}
    assert sample("lakehouse_pipeline_runs_total", **feed_run, status="success") == 1
    assert sample("lakehouse_pipeline_run_duration_seconds_count", **feed_run) == 1
    seconds = sample("lakehouse_pipeline_run_duration_seconds_sum", **feed_run)
    assert seconds == pytest.approx(result.seconds)
    model = {"pipeline": "feed", "model": "silver.orders"}
    assert sample("lakehouse_pipeline_model_duration_seconds_count", **model) == 1
    assert sample("lakehouse_pipeline_model_duration_seconds_sum", **model) == pytest.approx(
        result.models[0].seconds
    )
    checks = {"pipeline": "feed"}
    assert sample("lakehouse_pipeline_checks_total", **checks, severity="error", result="pass") == 2
    assert sample("lakehouse_pipeline_checks_total", **checks, severity="warn", result="fail") == 1
    assert sample("lakehouse_pipeline_failed_blocking_checks", **checks) == 0


def test_a_failing_blocking_check_is_counted_and_shown_until_a_clean_run(
    lh: Lakehouse, feed: Path
) -> None:
    (Path(feed.parent / "landing") / "orders2.csv").write_text(
        "id,status,amount\n,new,1\n", encoding="utf-8"
    )
    failed = run_pipeline(lh, feed, run_id="m1")
    assert failed.status == "failed"
    assert sample("lakehouse_pipeline_runs_total", pipeline="feed", status="failed") == 1
    fail = {"pipeline": "feed", "severity": "error", "result": "fail"}
    assert sample("lakehouse_pipeline_checks_total", **fail) == 1
    assert sample("lakehouse_pipeline_failed_blocking_checks", pipeline="feed") == 1
    assert sample("lakehouse_pipeline_last_run_timestamp_seconds", pipeline="feed", status="failed")


def test_every_log_line_of_a_run_carries_its_run_id_ref_and_principal(
    tmp_path: Path, feed: Path, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_AUTHOR", "wendy")
    with connect(tmp_path / "home", create=True) as lh:
        result = run_pipeline(lh, feed, run_id="r7")
        logging.getLogger("lakehouse.test").info("after the run")

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    during = lines[:-1]
    assert len(during) >= 5  # start, ingest, model, checks, publish, end
    loggers = {line["logger"] for line in during}
    assert "lakehouse.pipelines.runner" in loggers
    for line in during:
        assert line["run_id"] == "r7", line
        assert line["ref"] == result.branch == "run/feed/r7", line
        assert line["pipeline"] == "feed" and line["principal"] == "wendy", line
        assert line["level"] in ("INFO", "WARNING") and line["time"].endswith("Z")
    messages = [line["message"] for line in during]
    assert any(m.startswith("model silver.orders: ok in") for m in messages)
    assert messages[-1].startswith("run r7 ended: success")
    # the context ends with the run
    assert lines[-1]["message"] == "after the run" and "run_id" not in lines[-1]


def test_a_run_that_fails_to_load_a_model_still_logs_with_its_context(
    lh: Lakehouse, tmp_path: Path, log_lines: io.StringIO
) -> None:
    folder = write_pipeline(
        tmp_path, "broken", "name: broken\n", {"silver/x.sql": "SELECT * FROM bronze.nothing"}
    )
    with pytest.raises(ModelError, match=r"silver\.x"):
        run_pipeline(lh, folder, run_id="b1")
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines and all(line["run_id"] == "b1" for line in lines)
    assert sample("lakehouse_pipeline_runs_total", pipeline="broken", status="error") == 1
    # an error before the audit says nothing about the checks
    assert sample("lakehouse_pipeline_failed_blocking_checks", pipeline="broken") is None


def test_lakehouse_run_logs_json_lines_with_the_run_id_on_stderr(
    feed: Path, log_lines: io.StringIO
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    args = ["--log-format", "json", "--log-level", "info", "run", str(feed), "-o", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    ours = [line for line in lines if line["logger"].startswith("lakehouse.pipelines")]
    assert len(ours) >= 5
    assert all(line["run_id"] == run_id and line["ref"] == f"run/feed/{run_id}" for line in ours)
