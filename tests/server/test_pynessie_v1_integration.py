"""pynessie, a third-party Nessie API v1 client, against ``lakehouse serve`` and the real Nessie.

pynessie 0.67.0 speaks only ``/api/v1``. It runs in its own test-only venv
(``scripts/tools/pynessie.sh``, path in ``LAKEHOUSE_TEST_PYNESSIE_PYTHON``) as a
subprocess: ``data/pynessie_v1_scenario.py`` creates branches and a tag, commits a
namespace and a table, reads contents, keys, the log and a diff, merges, cherry-picks,
and provokes Nessie's errors (unknown reference or key, existing branch, stale hashes),
which pynessie maps to its exception types by ``errorCode``. The same scenario runs
against our server (a thread over a fresh SQLite store) and against the real Nessie
(``LAKEHOUSE_TEST_NESSIE_URL``, on branches of its own, holding the shared server's test
lock); the transcripts must be equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse.catalog.sql_store import SqlStore
from tests.server.helpers import shared_nessie_lock

pytestmark = pytest.mark.integration

PYNESSIE_PYTHON = os.environ.get("LAKEHOUSE_TEST_PYNESSIE_PYTHON", "")
NESSIE_URL = os.environ.get("LAKEHOUSE_TEST_NESSIE_URL", "")
SCENARIO = Path(__file__).parent / "data" / "pynessie_v1_scenario.py"


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``/api/v1`` of our server over a fresh SQLite store."""
    if not PYNESSIE_PYTHON:
        pytest.skip("LAKEHOUSE_TEST_PYNESSIE_PYTHON unset (scripts/tools/pynessie.sh prints it)")
    from lakehouse.server.app import make_server, serving

    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('pynessie')}/catalog.db")
    server = make_server(store, "127.0.0.1", 0, log_level="warning")
    try:
        with serving(server) as port:
            yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        store.close()


def run_scenario(endpoint: str) -> list[list[Any]]:
    suffix = uuid.uuid4().hex[:8]
    done = subprocess.run(
        [PYNESSIE_PYTHON, str(SCENARIO), endpoint, suffix],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    steps: list[list[Any]] = json.loads(done.stdout)
    return steps


def test_pynessie_works_against_our_server(ours: str) -> None:
    steps = dict((step, value) for step, value in run_scenario(ours))
    assert steps["default branch"] == "main"
    assert steps["keys"] == [[["ns"], "NAMESPACE"], [["ns", "t"], "ICEBERG_TABLE"]]
    assert steps["log"] == [["H2", "add ns.t", "ann"]]
    assert steps["diff"] == [[["ns", "t"], 1, 2]]
    assert steps["merge"] == [True, True, 1]
    assert steps["content after merge"] == 2
    assert steps["cherry-pick"] == [True, True]
    assert steps["content at tag"] == steps["content at hash"] == 1
    assert steps["unknown reference"] == ["NessieReferenceNotFoundException", 404]
    assert steps["unknown key"] == ["NessieContentNotFoundException", 404]
    assert steps["existing branch"] == ["NessieReferenceAlreadyExistsException", 409]
    assert steps["stale commit"] == ["NessieReferenceConflictException", 409]
    assert steps["deleted branch"] == ["NessieReferenceNotFoundException", 404]


def test_pynessie_sees_the_same_behaviour_as_on_the_real_nessie(ours: str) -> None:
    if not NESSIE_URL:
        pytest.skip("LAKEHOUSE_TEST_NESSIE_URL unset (scripts/services/nessie.sh url prints it)")
    real = NESSIE_URL.rstrip("/").removesuffix("/api/v2") + "/api/v1"
    with shared_nessie_lock(NESSIE_URL):
        on_nessie = run_scenario(real)
    assert run_scenario(ours) == on_nessie
