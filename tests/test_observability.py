"""Publishing metrics (textfile, Pushgateway) and configuring logs (text, JSON, context)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from lakehouse import observability
from lakehouse.cli.main import app
from lakehouse.client import connect
from lakehouse.config import load_settings
from lakehouse.errors import ConfigError
from tests.metrics_helpers import fresh_metrics, sample

__all__ = ["fresh_metrics"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def one_run(pipeline: str = "tpch", status: str = "success", seconds: float = 3.0) -> None:
    observability.record_pipeline_run(pipeline, status, seconds, [("error", "pass")])


# -- textfile --------------------------------------------------------------------------------


def test_the_textfile_parses_and_accumulates_counters_across_processes(tmp_path: Path) -> None:
    one_run(seconds=3.0)
    observability.record_backup("file:///b", size=10, copied=10, seconds=1.0)
    path = observability.write_textfile(tmp_path)
    assert path == tmp_path / observability.TEXTFILE_NAME

    observability.reset_metrics()  # a second process: a run, no backup
    one_run(seconds=20.0)
    observability.write_textfile(tmp_path)

    text = path.read_text(encoding="utf-8")
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["lakehouse_pipeline_runs"] == "counter"
    assert families["lakehouse_pipeline_run_duration_seconds"] == "histogram"
    run = {"pipeline": "tpch"}
    assert sample("lakehouse_pipeline_runs_total", text, **run, status="success") == 2
    assert sample("lakehouse_pipeline_run_duration_seconds_sum", text, **run) == 23.0
    assert sample("lakehouse_pipeline_run_duration_seconds_bucket", text, **run, le="5.0") == 1
    assert sample("lakehouse_pipeline_run_duration_seconds_bucket", text, **run, le="+Inf") == 2
    # a gauge keeps the newest value; the family the second process lacked is kept
    assert sample("lakehouse_backup_bytes", text, destination="file:///b") == 10
    assert not any(name.endswith("_created") for name in families)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_process_that_publishes_twice_adds_its_counters_once(tmp_path: Path) -> None:
    one_run()
    observability.write_textfile(tmp_path)
    one_run()
    observability.write_textfile(tmp_path)
    text = (tmp_path / observability.TEXTFILE_NAME).read_text(encoding="utf-8")
    assert sample("lakehouse_pipeline_runs_total", text, pipeline="tpch", status="success") == 2


def test_closing_a_lakehouse_publishes_once_where_the_settings_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    monkeypatch.setenv("LAKEHOUSE_METRICS__TEXTFILE_DIR", str(prom))
    with connect(tmp_path / "home", create=True):
        pass
    assert not (prom / observability.TEXTFILE_NAME).exists()  # nothing recorded: no file
    with connect(tmp_path / "home"):
        one_run()
    assert not observability.pending()
    text = (prom / observability.TEXTFILE_NAME).read_text(encoding="utf-8")
    assert sample("lakehouse_pipeline_runs_total", text, pipeline="tpch", status="success") == 1


def test_a_textfile_folder_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LAKEHOUSE_METRICS__TEXTFILE_DIR"):
        load_settings(metrics={"textfile_dir": str(tmp_path / "missing")})


def test_a_failing_destination_is_a_warning_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    settings = load_settings(metrics={"textfile_dir": str(prom)})
    prom.rmdir()  # gone after the settings were read
    one_run()
    with caplog.at_level(logging.WARNING, "lakehouse.observability"):
        observability.publish_metrics(settings)
    assert "could not write metrics" in caplog.text


# -- Pushgateway ------------------------------------------------------------------------------


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return None


def test_push_posts_only_the_recorded_families_under_job_and_instance() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        one_run()
        url = f"http://127.0.0.1:{server.server_port}"
        settings = load_settings(metrics={"pushgateway_url": url, "job": "nightly"})
        observability.publish_metrics(settings)
    finally:
        server.shutdown()
        server.server_close()
    [(method, path, body)] = _Gateway.received
    assert method == "POST" and path.startswith("/metrics/job/nightly/instance/")
    assert sample("lakehouse_pipeline_runs_total", body, pipeline="tpch", status="success") == 1
    assert "lakehouse_backup_bytes" not in body  # not recorded: not replaced on the gateway


# -- logs -------------------------------------------------------------------------------------


def test_json_lines_carry_the_bound_context_and_extra_fields(restore_logging: None) -> None:
    stream = io.StringIO()
    observability.configure_logging("json", "info", stream=stream)
    log = logging.getLogger("lakehouse.example")
    with observability.log_context(run_id="r1", ref="run/x/r1", principal=None):
        log.info("loaded %d rows", 3, extra={"table": "bronze.orders"})
        with observability.log_context(ref="main"):
            log.warning("inner")
    log.info("outside")
    log.debug("below the level")
    first, inner, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "loaded 3 rows" and first["level"] == "INFO"
    assert (first["run_id"], first["ref"], first["table"]) == ("r1", "run/x/r1", "bronze.orders")
    assert "principal" not in first  # None is not bound
    assert (inner["run_id"], inner["ref"]) == ("r1", "main")
    assert "run_id" not in outside and "ref" not in outside


def test_text_lines_show_the_context_and_exceptions(restore_logging: None) -> None:
    stream = io.StringIO()
    observability.configure_logging("text", "WARNING", stream=stream)
    with observability.log_context(run_id="r2"):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("lakehouse.x").exception("failed")
    text = stream.getvalue()
    assert " ERROR lakehouse.x run_id=r2: failed" in text
    assert "ValueError: boom" in text


def test_configuring_again_replaces_the_handler(restore_logging: None) -> None:
    observability.configure_logging("text", "INFO")
    observability.configure_logging("json", "INFO")
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, logging.Formatter)]
    assert sum(isinstance(h.formatter, observability.JsonFormatter) for h in ours) == 1
    assert observability.logging_configured()
    with pytest.raises(ValueError, match="invalid log level"):
        observability.configure_logging("json", "loud")


def test_the_cli_refuses_a_bad_log_setting_in_one_line(restore_logging: None) -> None:
    result = CliRunner().invoke(app, ["status"], env={"LAKEHOUSE_LOG_FORMAT": "xml"})
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: invalid log format 'xml'")
    assert "Traceback" not in result.stderr


WRITER = """
import sys
from lakehouse import observability
observability.record_pipeline_run("tpch", "success", 1.0)
observability.write_textfile(sys.argv[1])
"""


def test_concurrent_processes_lose_no_count(tmp_path: Path) -> None:
    """The lock: processes writing the file at the same time all get counted."""
    import subprocess
    import sys

    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)]) for _ in range(3)]
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0]
    text = (tmp_path / observability.TEXTFILE_NAME).read_text(encoding="utf-8")
    assert sample("lakehouse_pipeline_runs_total", text, pipeline="tpch", status="success") == 3


def test_an_unreadable_textfile_is_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / observability.TEXTFILE_NAME).write_text("this is not { the format\n")
    one_run()
    with caplog.at_level(logging.WARNING, "lakehouse.observability"):
        observability.write_textfile(tmp_path)
    assert "cannot be read" in caplog.text
    text = (tmp_path / observability.TEXTFILE_NAME).read_text(encoding="utf-8")
    assert sample("lakehouse_pipeline_runs_total", text, pipeline="tpch", status="success") == 1


def test_the_public_surface_is_deliberate() -> None:
    assert set(observability.__all__) == {
        "ContextFilter", "JsonFormatter", "LOG_LEVELS", "LogFormat", "PlatformMetrics",
        "TEXTFILE_NAME", "add_log_context_provider", "bind_log_context", "configure_logging",
        "current_log_context", "log_context", "logging_configured", "merge_exposition",
        "metric_names", "metrics", "pending", "publish_metrics", "push", "record_backup",
        "record_backup_verify", "record_cdc_lag", "record_compaction", "record_expiry",
        "record_gc", "record_gc_failure", "record_ingest", "record_model",
        "record_pipeline_run", "recorded_text", "render", "reset_metrics",
        "scoped_log_context", "write_textfile",
    }  # fmt: skip
    assert all(hasattr(observability, name) for name in observability.__all__)
    names = observability.metric_names()
    assert "lakehouse_pipeline_runs_total" in names
    assert "lakehouse_pipeline_run_duration_seconds_bucket" in names
    assert "lakehouse_backup_bytes" in names
