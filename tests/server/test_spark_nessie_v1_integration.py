"""Iceberg's ``NessieCatalog`` in Spark on Nessie API v1, on our server and the real Nessie.

``client-api-version=1`` with ``uri=…/api/v1`` is how older Spark and Flink Nessie catalog
configurations (and Nessie's Spark SQL extensions by default) talk to Nessie. One Spark
process (``data/spark_nessie_v1_scenario.py``, Spark 4.1 with Iceberg 1.12 from
``scripts/services/spark.sh``) gets two catalogs per server, on ``main`` and on a branch;
it creates a namespace and a table and inserts on main, inserts on the branch (invisible
on main), merges the branch through ``/api/v1`` and reads main again, then drops what it
made. Our server (a thread over a fresh SQLite store) and the real Nessie
(``LAKEHOUSE_TEST_NESSIE_URL``, holding the shared server's test lock) must give the same
transcript.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.catalog.sql_store import SqlStore
from tests.server.helpers import shared_nessie_lock

pytest.importorskip("pyspark", reason="the spark extra is not installed")

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "data" / "spark_nessie_v1_scenario.py"
NESSIE_URL = os.environ.get("LAKEHOUSE_TEST_NESSIE_URL", "")


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root URL of our server over a fresh SQLite store."""
    from lakehouse.server.app import make_server, serving

    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('spark-v1')}/catalog.db")
    server = make_server(store, "127.0.0.1", 0, log_level="warning")
    try:
        with serving(server) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        store.close()


def spark_env() -> dict[str, str]:
    """``JAVA_HOME`` and the jars folder, as ``scripts/services/spark.sh env`` prints them."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services" / "spark.sh"), "env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def test_spark_nessie_catalog_on_api_v1_behaves_as_on_the_real_nessie(
    ours: str, tmp_path: Path
) -> None:
    if not NESSIE_URL:
        pytest.skip("LAKEHOUSE_TEST_NESSIE_URL unset (scripts/services/nessie.sh url prints it)")
    real = NESSIE_URL.rstrip("/").removesuffix("/api/v2")
    env = spark_env()
    servers = [
        f"ours={ours}={(tmp_path / 'ours').as_uri()}",
        f"real={real}={(tmp_path / 'real').as_uri()}",
    ]
    jars, suffix = env["LAKEHOUSE_SPARK__JARS_DIR"], uuid.uuid4().hex[:8]
    with shared_nessie_lock(NESSIE_URL):
        done = subprocess.run(
            [sys.executable, str(SCENARIO), jars, suffix, *servers],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "JAVA_HOME": env["JAVA_HOME"]},
        )
    assert done.returncode == 0, done.stderr[-4000:]
    transcripts = json.loads(done.stdout.strip().splitlines()[-1])
    steps = dict((step, value) for step, value in transcripts["ours"])
    assert steps["main"] == [[1, "a"], [2, "b"]]
    assert steps["dev"] == [[1, "a"], [2, "b"], [3, "c"]]
    assert steps["merge"] == [True, True]
    assert steps["main after merge"] == [[1, "a"], [2, "b"], [3, "c"]]
    assert transcripts["ours"] == transcripts["real"]
