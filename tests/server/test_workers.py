"""`lakehouse serve --workers N`: several processes, one port, nothing stale between them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from lakehouse.cli.main import app as cli
from lakehouse.errors import ConfigError
from lakehouse.server import ServerSettings
from lakehouse.server.oidc import OidcSettings
from lakehouse.server.workers import (
    CONSOLE_SECRET_ENV,
    SPEC_ENV,
    WorkerSpec,
    check_workers,
    create_app_from_env,
)
from tests.faults.services import serve_process

PG = "postgresql+psycopg://u:p@127.0.0.1:5432/db"


# -- what the parent hands down ---------------------------------------------------------


def test_the_spec_in_the_environment_carries_no_secret() -> None:
    settings = ServerSettings(
        token=SecretStr("t0p-s3cret"),
        oidc=OidcSettings(
            issuer="https://idp.example/realms/x",
            console_client_id="console",
            console_client_secret=SecretStr("client-s3cret"),
        ),
        authorization_rules={"all": "true"},
    )
    spec = WorkerSpec.of(settings, token_env="CATALOG_TOKEN", home="/h", log_format="json")
    text = spec.to_env()
    assert "t0p-s3cret" not in text and "client-s3cret" not in text
    env = {SPEC_ENV: text, "CATALOG_TOKEN": "t0p-s3cret", CONSOLE_SECRET_ENV: "client-s3cret"}
    rebuilt = WorkerSpec.from_env(env).server_settings(env)
    assert rebuilt == settings
    assert WorkerSpec.from_env(env).home == "/h"


def test_a_worker_without_its_token_variable_refuses_to_start() -> None:
    spec = WorkerSpec.of(ServerSettings(token=SecretStr("x")), token_env="CATALOG_TOKEN")
    with pytest.raises(ConfigError, match="CATALOG_TOKEN"):
        spec.server_settings({})


def test_a_token_not_from_a_variable_cannot_reach_workers() -> None:
    with pytest.raises(ConfigError, match="--token-env"):
        WorkerSpec.of(ServerSettings(token=SecretStr("x")), token_env=None)


def test_a_worker_without_a_spec_exits_with_uvicorns_startup_failure_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from uvicorn.config import STARTUP_FAILURE

    monkeypatch.delenv(SPEC_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        create_app_from_env()
    assert exited.value.code == STARTUP_FAILURE


# -- which catalogs may have several workers -------------------------------------------


@pytest.mark.parametrize("uri", ["sqlite:///catalog.db", "sqlite://"])
def test_sqlite_refuses_more_than_one_worker(uri: str) -> None:
    with pytest.raises(ConfigError, match=r"--workers 2 needs a PostgreSQL catalog: SQLite"):
        check_workers(2, uri)
    check_workers(1, uri)


def test_postgresql_takes_several_workers() -> None:
    check_workers(4, PG)


def test_the_cli_refuses_workers_on_the_embedded_store_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "lh"
    assert CliRunner().invoke(cli, ["--home", str(home), "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--home", str(home), "serve", "--workers", "2"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: --workers 2 needs a PostgreSQL catalog")
    assert "Traceback" not in result.output


# -- real processes on PostgreSQL ---------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _put_table(n: int, content_id: str | None = None) -> dict[str, object]:
    content: dict[str, object] = {
        "type": "ICEBERG_TABLE",
        "metadataLocation": f"s3://w/t/metadata/{n:05d}.json",
        "snapshotId": n,
        "schemaId": 0,
        "specId": 0,
        "sortOrderId": 0,
    }
    if content_id:
        content["id"] = content_id
    return content


def _commit(base: str, branch: str, expected: str, content: dict[str, object]) -> httpx.Response:
    body = {
        "commitMeta": {"message": "w"},
        "operations": [{"type": "PUT", "key": {"elements": ["t"]}, "content": content}],
    }
    # a new connection per request: the kernel may hand it to any worker
    return httpx.post(
        f"{base}/api/v2/trees/{branch}@{expected}/history/commit",
        json=body,
        headers={"Nessie-Client-Spec": "2"},
        timeout=30,
    )


def _commits_metric(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(r'^lakehouse_catalog_commits_total\{operation="commit"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.integration
def test_workers_share_one_catalog_with_nothing_stale_or_lost(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    with serve_process(
        fresh_postgres_url, tmp_path / "home", args=("--workers", "2"), timeout=120
    ) as (base, process):
        # two worker processes under the supervisor (plus multiprocessing's helper)
        assert len(_children(process.pid)) >= 2

        # read-your-writes whichever worker answers: every read sees the last commit
        head = httpx.get(f"{base}/api/v2/trees/main", timeout=10).json()["reference"]["hash"]
        content_id = None
        for n in range(30):
            committed = _commit(base, "main", head, _put_table(n, content_id))
            assert committed.status_code == 200, committed.text
            head = committed.json()["targetBranch"]["hash"]
            content_id = content_id or committed.json()["addedContents"][0]["contentId"]
            for _ in range(2):
                seen = httpx.get(f"{base}/api/v2/trees/main", timeout=10).json()
                assert seen["reference"]["hash"] == head
                location = httpx.get(f"{base}/api/v2/trees/main/contents/t", timeout=10).json()
                assert location["content"]["metadataLocation"].endswith(f"{n:05d}.json")

        # 8 writers, one expected hash, one key, across processes: exactly one lands
        outcomes: list[int] = []

        def race(i: int) -> None:
            outcomes.append(
                _commit(base, "main", head, _put_table(100 + i, content_id)).status_code
            )

        threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == [200] + [409] * 7
        log = httpx.get(f"{base}/api/v2/trees/main/history", timeout=10).json()
        assert len(log["logEntries"]) == 31

        # /metrics sums every worker, whichever answers the scrape
        assert {_commits_metric(base) for _ in range(6)} == {31.0}


@pytest.mark.integration
def test_a_worker_that_cannot_start_stops_the_server_with_an_error(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_CATALOG__URI": fresh_postgres_url,
        "LAKEHOUSE_WAREHOUSE": str(home / "warehouse"),
    }
    # workers told to read the token from a variable that is not set (a broken
    # deployment): each logs one line and exits; the supervisor stops instead of looping
    spec = WorkerSpec.of(ServerSettings(token=SecretStr("s3cret")), token_env="MISSING_TOKEN")
    code = (
        "import socket, sys\n"
        "from lakehouse.errors import ConfigError\n"
        "from lakehouse.cli.serve import WORKER_APP\n"
        "from lakehouse.server.workers import WorkerSpec, run_workers\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "try:\n"
        "    spec = WorkerSpec.model_validate_json(sys.argv[1])\n"
        "    run_workers(spec, s, 2, factory=WORKER_APP, log_level='critical')\n"
        "except ConfigError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, spec.to_env()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: a server worker failed to start" in done.stdout, done.stderr[-2000:]
    assert "server worker cannot start: --token-env MISSING_TOKEN" in done.stderr
