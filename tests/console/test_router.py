"""The console's pages render, agree with the CLI's JSON, and ask for sign-in when auth is on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr
from pyiceberg.types import StringType
from typer.testing import CliRunner

from lakehouse.cli.main import app as cli
from lakehouse.client import Lakehouse, connect
from lakehouse.console import WebConsole
from lakehouse.server.app import create_app
from lakehouse.server.settings import ServerSettings
from lakehouse.storage.records import Records
from tests.server.helpers import ApiClient

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """main with bronze.orders; ``dev`` from the first commit; both changed the table."""
    with connect(create=True) as opened:
        main = opened.catalog("main")
        main.create_namespace("bronze")
        main.create_table("bronze.orders", schema=ROWS.schema).append(ROWS)
        opened.create_branch("dev", "main")
        opened.table("bronze.orders", "main").append(ROWS.slice(0, 1))
        opened.table("bronze.orders", "dev").append(ROWS.slice(1, 2))
        yield opened


@pytest.fixture
def client(lh: Lakehouse) -> Iterator[ApiClient]:
    with ApiClient(create_app(lh.store, console=WebConsole(lh))) as opened:
        yield opened


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(cli, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_page_renders(client: ApiClient, lh: Lakehouse) -> None:
    head = lh.resolve("main").hash
    for url in (
        "/",
        "/ui/log?ref=dev",
        f"/ui/commit/{head}",
        "/ui/compare",
        "/ui/compare?base=main&head=dev",
        "/ui/tables",
        "/ui/table/bronze.orders?ref=dev",
        "/ui/runs",
        "/ui/operations",
        "/ui/sql",
        "/ui/sql?q=SELECT+count(*)+AS+n+FROM+bronze.orders",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<html" in response.text


def test_history_twin_is_the_cli_log(client: ApiClient) -> None:
    page = client.get("/ui/log?ref=dev&format=json").json()
    logged = cli_json("log", "--ref", "dev")
    assert isinstance(logged, list)
    assert [
        {k: v for k, v in c.items() if k not in ("operations", "merged")} for c in page["commits"]
    ] == logged
    assert any(op["key"] == "bronze.orders" for op in page["commits"][0]["operations"])


def test_references_show_ahead_and_behind_main(client: ApiClient) -> None:
    refs = {r["name"]: r for r in client.get("/?format=json").json()["references"]}
    assert (refs["dev"]["ahead"], refs["dev"]["behind"]) == (1, 1)
    assert refs["main"]["ahead"] is None


def test_compare_previews_the_merge_without_committing(client: ApiClient, lh: Lakehouse) -> None:
    before = lh.resolve("main").hash
    page = client.get("/ui/compare?base=main&head=dev&format=json").json()
    assert page["conflicts"] == []  # both sides only appended: the merge is by content
    assert page["merge"]["dry_run"] is True
    assert page["rows"] == cli_json("diff", "main", "dev", "--rows")
    assert "merge is clean" in client.get("/ui/compare?base=main&head=dev").text
    with lh.table("bronze.orders", "dev").update_schema(allow_incompatible_changes=True) as u:
        u.add_column("note", StringType(), required=True)  # main's new rows lack it: conflict
    page = client.get("/ui/compare?base=main&head=dev&format=json").json()
    assert page["conflicts"] == ["bronze.orders"]
    html = client.get("/ui/compare?base=main&head=dev").text
    assert "Merge would conflict on bronze.orders" in html
    assert lh.resolve("main").hash == before  # a dry run commits nothing


def test_table_page_is_table_show_plus_files_and_rows(client: ApiClient) -> None:
    page = client.get("/ui/table/bronze.orders?ref=dev&format=json").json()
    shown = cli_json("table", "show", "bronze.orders", "--ref", "dev")
    assert isinstance(shown, dict)
    assert {k: page[k] for k in shown} == shown
    assert sum(f["records"] for f in page["files"]) == 5
    assert len(page["sample"]) == 5


def test_sql_box_uses_the_sandboxed_read_path(client: ApiClient) -> None:
    page = client.get("/ui/sql?q=SELECT+count(*)+AS+n+FROM+bronze.orders&ref=dev&format=json")
    assert page.json()["rows"] == [{"n": 5}]
    refused = client.get("/ui/sql?q=DROP+TABLE+bronze.orders&format=json")
    assert refused.status_code == 400
    assert "error" in refused.json()


def test_sql_row_limit(client: ApiClient) -> None:
    page = client.get("/ui/sql?q=SELECT+*+FROM+bronze.orders&limit=2&format=json").json()
    assert (len(page["rows"]), page["total_rows"], page["truncated"]) == (2, 4, True)


def test_runs_and_operations_read_the_records(client: ApiClient, lh: Lakehouse) -> None:
    records = Records(lh.warehouse, lh.settings.fileio_properties())
    report = {
        "run_id": "20260101T000000Z-abc123",
        "pipeline": "p",
        "status": "failed",
        "branch": "run/p/20260101T000000Z-abc123",
        "branch_deleted": False,
        "seconds": 1.5,
        "started_at": "2026-01-01T00:00:00+00:00",
        "models": [],
        "checks": [
            {
                "name": "no_negative",
                "model": "bronze.orders",
                "severity": "error",
                "status": "fail",
                "failing_rows": 1,
                "sample": [{"id": -1}],
            }
        ],
    }
    records.write("pipeline-run", report["run_id"], report)
    assert client.get("/ui/runs?format=json").json()["runs"] == [report]
    html = client.get(f"/ui/runs/{report['run_id']}").text
    assert "no_negative" in html and "-1" in html
    assert client.get("/ui/runs/nope?format=json").status_code == 400
    ops = client.get("/ui/operations?format=json").json()
    assert ops["dr"]["paused"] is False and ops["maintenance"] is None


def test_with_a_token_the_console_asks_for_sign_in(lh: Lakehouse) -> None:
    token = ServerSettings(token=SecretStr("s3cret"))
    with ApiClient(create_app(lh.store, settings=token, console=WebConsole(lh))) as client:
        signing_in(client)


def signing_in(client: ApiClient) -> None:
    assert client.get("/").headers["location"].startswith("/ui/login")
    assert client.get("/ui/runs?format=json").status_code == 401
    bad = client.post("/ui/login", content="token=wrong", headers=FORM)
    assert bad.status_code == 401
    good = client.post("/ui/login", content="token=s3cret&next=/ui/runs", headers=FORM)
    assert good.headers["location"] == "/ui/runs"
    assert "s3cret" not in good.headers["set-cookie"]
    assert client.get("/ui/runs").status_code == 200
    assert client.get("/api/v2/trees").status_code == 401  # the cookie is not an API token
    client.get("/ui/logout")
    assert client.get("/ui/runs?format=json").status_code == 401
    bearer = {"authorization": "Bearer s3cret"}
    assert client.get("/?format=json", headers=bearer).status_code == 200


def test_api_docs_are_served_without_a_cdn(client: ApiClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        assert f"/docs-static/{asset}" in html
        assert client.get(f"/docs-static/{asset}").status_code == 200
