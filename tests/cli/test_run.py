"""``lakehouse run`` as a user meets it: Ctrl-C mid-run, a source folder that is not there.

The interrupt tests run the command as a process and send it SIGINT while it waits
on an HTTP source that answers only when the test is over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from tests.pipelines.conftest import write_pipeline

runner = CliRunner()


class Hanging:
    """An HTTP server whose every request waits until :meth:`release` (or 60 s)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.released = threading.Event()
        hanging = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hanging.requested.set()
                hanging.released.wait(60)
                body = b"id\n1\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/orders.csv"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def release(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging()
    server.thread.start()
    yield server
    server.release()


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """The lakehouse the CLI opens (LAKEHOUSE_HOME)."""
    with connect(create=True) as opened:
        yield opened


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(tmp_path: Path, hanging: Hanging, *args: str) -> subprocess.CompletedProcess[str]:
    """Start `lakehouse ARGS…`, wait until it asks the HTTP server, press Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell starts background jobs with SIGINT ignored, and Python then never turns
        # it into KeyboardInterrupt: give the child the default disposition, as a terminal
        preexec_fn=_default_sigint,
    )
    try:
        assert hanging.requested.wait(60), "the run never reached the HTTP source"
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def shop_with_customers(tmp_path: Path, *more_sources: str) -> None:
    """``pipelines/shop``: a folder source of ``customers.csv`` (2 rows), then ``more_sources``."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "customers.csv").write_text("id\n1\n2\n", encoding="utf-8")
    extra = "".join(f"\n          - {source}" for source in more_sources)
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        f"""
        name: shop
        sources:
          - name: files
            type: folder
            path: {landing}
            format: csv
            tables: [{{table: customers, pattern: "customers.csv"}}]{extra}
        """,
    )


def test_ctrl_c_before_any_commit_deletes_the_empty_run_branch(
    tmp_path: Path, lh: Lakehouse, hanging: Hanging
) -> None:
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        f"""
        name: shop
        sources:
          - {{name: web, type: http, url: "{hanging.url}", table: orders, format: csv}}
        """,
    )
    main_before = lh.resolve("main").hash
    done = interrupt(tmp_path, hanging, "run", "shop", "--run-id", "r1")
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "interrupted; main unchanged; run branch run/shop/r1 deleted (it held no commit)"
    )
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert [b.name for b in lh.branches()] == ["main"]
    assert lh.resolve("main").hash == main_before


def test_ctrl_c_after_a_commit_keeps_the_run_branch_and_says_so(
    tmp_path: Path, lh: Lakehouse, hanging: Hanging
) -> None:
    shop_with_customers(
        tmp_path, f'{{name: web, type: http, url: "{hanging.url}", table: orders, format: csv}}'
    )
    main_before = lh.resolve("main").hash
    done = interrupt(tmp_path, hanging, "run", "shop", "--run-id", "r2", "-o", "json")
    assert done.returncode == 130, done.stderr
    assert '"type": "Interrupted"' in done.stderr
    assert (
        "interrupted; main unchanged; run branch run/shop/r2 kept "
        "(lakehouse log --ref run/shop/r2)" in done.stderr
    )
    assert sorted(b.name for b in lh.branches()) == ["main", "run/shop/r2"]
    assert lh.resolve("run/shop/r2").hash != main_before
    assert lh.resolve("main").hash == main_before


def test_ctrl_c_in_any_other_command_exits_130_without_a_traceback(
    tmp_path: Path, lh: Lakehouse, hanging: Hanging
) -> None:
    done = interrupt(tmp_path, hanging, "ingest", "http", hanging.url, "--table", "orders")
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted\n"


# DuckDB notices a SIGINT while a query runs and raises its own error instead of
# KeyboardInterrupt ("Query interrupted"). When it notices depends on the query's plan, so
# these tests stand in for the query with a function that does exactly that, every time.


@pytest.fixture
def foreground() -> Iterator[None]:
    """Python's own SIGINT handler, as in a terminal's foreground job.

    A shell starts background jobs (CI, ``make test &``) with SIGINT ignored; the CLI keeps
    that choice, and a SIGINT would then never arrive.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _query_interrupted_by_ctrl_c(*args: object, **kwargs: object) -> NoReturn:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)  # Python runs the SIGINT handler here: KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("Query interrupted") from None
    raise AssertionError("no SIGINT arrived")


def test_ctrl_c_that_duckdb_reports_as_its_error_still_exits_130(
    lh: Lakehouse, monkeypatch: pytest.MonkeyPatch, foreground: None
) -> None:
    monkeypatch.setattr(Lakehouse, "fetch", _query_interrupted_by_ctrl_c)
    done = runner.invoke(app, ["sql", "SELECT count(*) FROM range(1000000000000)"])
    assert done.exit_code == 130, done.output
    assert done.stderr == "interrupted\n"


def test_ctrl_c_that_fails_a_model_is_an_interrupt_of_the_run(
    tmp_path: Path, lh: Lakehouse, monkeypatch: pytest.MonkeyPatch, foreground: None
) -> None:
    from lakehouse.pipelines.errors import ModelError

    def run(*args: object, **kwargs: object) -> NoReturn:
        try:
            _query_interrupted_by_ctrl_c()
        except RuntimeError as exc:  # as the runner's model error boundary wraps it
            raise ModelError("silver.slow", "silver/slow.sql", f"RuntimeError: {exc}") from exc

    write_pipeline(tmp_path / "pipelines", "shop", "name: shop\n")
    monkeypatch.setattr("lakehouse.pipelines.run_pipeline", run)
    monkeypatch.chdir(tmp_path)
    main_before = lh.resolve("main").hash
    done = runner.invoke(app, ["run", "shop", "--run-id", "r4"])
    assert done.exit_code == 130, done.output
    assert done.stderr.splitlines()[-1] == (
        "interrupted; main unchanged; run branch run/shop/r4 not created"
    )
    assert lh.resolve("main").hash == main_before


# -- a source folder that is not there -----------------------------------------------------


def test_missing_tpch_folder_says_how_to_make_the_data(tmp_path: Path, lh: Lakehouse) -> None:
    write_pipeline(
        tmp_path / "pipelines",
        "tpch",
        """
        name: tpch
        sources:
          - name: tpch
            type: folder
            path: ${TPCH_DATA:-data/tpch}
            format: csv
            tables: [{table: region, pattern: "region.csv"}]
        """,
    )
    result = runner.invoke(app, ["run", "tpch"])
    assert result.exit_code == 1
    line = result.stderr.splitlines()[-1]
    assert "data/tpch of source 'tpch' does not exist" in line
    assert "TPCH_DATA is not set" in line
    assert "export TPCH_DATA=$(" in line and "-m lakehouse.tpch -s 0.1)" in line


def test_missing_folder_names_the_unset_variable(tmp_path: Path, lh: Lakehouse) -> None:
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        """
        name: shop
        sources:
          - name: files
            type: folder
            path: ${SHOP_DATA:-incoming}
            format: csv
            tables: [{table: orders, pattern: "*.csv"}]
        """,
    )
    line = runner.invoke(app, ["run", "shop"]).stderr.splitlines()[-1]
    assert line.endswith("(SHOP_DATA not set: export SHOP_DATA=FOLDER)")


def test_missing_folder_with_its_variable_set_adds_no_hint(
    tmp_path: Path, lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DATA", str(tmp_path / "nowhere"))
    write_pipeline(
        tmp_path / "pipelines",
        "shop",
        """
        name: shop
        sources:
          - name: files
            type: folder
            path: ${SHOP_DATA:-incoming}
            format: csv
            tables: [{table: orders, pattern: "*.csv"}]
        """,
    )
    line = runner.invoke(app, ["run", "shop"]).stderr.splitlines()[-1]
    assert "nowhere of source 'files' does not exist" in line
    assert "not set" not in line


# -- a pipeline name that is not there ----------------------------------------------------


def test_misspelled_pipeline_name_suggests_the_pipelines_there(
    tmp_path: Path, lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("tpch", "shop"):
        write_pipeline(tmp_path / "pipelines", name, f"name: {name}\n")
    monkeypatch.chdir(tmp_path)
    misspelled = runner.invoke(app, ["run", "tpchh"])
    assert misspelled.exit_code == 1
    assert misspelled.stderr.splitlines() == [
        "Error: no pipeline 'tpchh': no tpchh/pipeline.yaml, pipelines/tpchh/pipeline.yaml "
        "(did you mean tpch?)"
    ]
    unknown = runner.invoke(app, ["plan", "warehouse"])
    assert unknown.stderr.rstrip().endswith("(pipelines in pipelines: shop, tpch)")


# -- stdout closed mid-run (`lakehouse run shop | head -1`) -------------------------------


def test_a_reader_that_goes_away_does_not_stop_the_run(tmp_path: Path, lh: Lakehouse) -> None:
    shop_with_customers(tmp_path)
    main_before = lh.resolve("main").hash
    process = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "run", "shop", "--run-id", "r5"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = process.stdout.readline()  # as `| head -1` does, then it exits
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert "run/shop/r5" in first
    assert stderr == ""
    assert lh.resolve("main").hash != main_before  # audited and published
    assert [b.name for b in lh.branches()] == ["main"]
