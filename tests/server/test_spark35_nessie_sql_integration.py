"""Nessie's Spark SQL extensions (Spark 3.5) on our server and on the real Nessie.

``CREATE BRANCH``, ``USE REFERENCE``, ``SHOW REFERENCE``, ``SHOW LOG``, ``LIST
REFERENCES``, ``MERGE BRANCH`` and ``DROP BRANCH`` of
``org.projectnessie.spark.extensions.NessieSparkSessionExtensions``, with Iceberg's SQL
extensions, on three catalogs per server:

* ``v1``: Iceberg's ``NessieCatalog`` on ``…/api/v1`` at the extensions' default client
  API version (1);
* ``v2``: ``NessieCatalog`` on ``…/api/v2`` with ``client-api-version=2``;
* ``rest``: Iceberg's REST catalog on ``…/iceberg/`` (the extensions find the Nessie API
  through the ``nessie.*`` overrides of ``/iceberg/v1/config``).

One Spark process (``data/spark35_nessie_sql_scenario.py``) runs in the test-only venv of
``scripts/tools/spark35.sh`` (pyspark 3.5 with ``iceberg-spark-runtime-3.5_2.12``,
``nessie-spark-extensions-3.5_2.12`` and ``iceberg-aws-bundle``; its python in
``LAKEHOUSE_TEST_SPARK35_PYTHON``). It writes a table on main, branches, writes on the
branch (main unchanged), merges, and prints one transcript per catalog.

* Ours: a thread over an embedded lakehouse (its REST catalog writes into the lakehouse's
  warehouse), all three catalogs.
* The shared real Nessie (``LAKEHOUSE_TEST_NESSIE_URL``, under its test lock): ``v1`` and
  ``v2``. It serves ``/iceberg`` only with a warehouse configured, so for ``rest`` the
  module starts a real Nessie of its own (``helpers.private_nessie``) whose warehouse is
  a fresh prefix of the MinIO bucket ``iceberg-metadata`` (``LAKEHOUSE_TEST_S3_*``;
  removed at the end), request signing off and Spark given the S3 credentials.

Hashes are compared inside the scenario, not printed; the transcripts of the same catalog
kind must be equal on both servers, except for the server-written commit messages of the
REST catalog (``docs/compatibility.md``, client matrix).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from lakehouse.client import connect
from tests.server.helpers import private_nessie, shared_nessie_lock

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "data" / "spark35_nessie_sql_scenario.py"
SPARK35_PYTHON = os.environ.get("LAKEHOUSE_TEST_SPARK35_PYTHON", "")
NESSIE_URL = os.environ.get("LAKEHOUSE_TEST_NESSIE_URL", "")
S3_ENDPOINT = os.environ.get("LAKEHOUSE_TEST_S3_ENDPOINT", "")
S3_ACCESS_KEY = os.environ.get("LAKEHOUSE_TEST_S3_ACCESS_KEY", "")
S3_SECRET_KEY = os.environ.get("LAKEHOUSE_TEST_S3_SECRET_KEY", "")
S3_BUCKET = "iceberg-metadata"
KINDS = ("v1", "v2", "rest")
#: The step whose value the server writes for REST commits (ours and Nessie's differ).
MESSAGES = "show log: messages since the fork"


def spark35_env() -> dict[str, str]:
    """``JARS_DIR`` and ``JAVA_HOME`` as ``scripts/tools/spark35.sh env`` prints them."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tools" / "spark35.sh"), "env"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The scenario's transcripts: ``ours_<kind>`` for every kind, ``real_<kind>`` if configured.

    The run's random name suffix is replaced by ``{suffix}`` in every value.
    """
    if not SPARK35_PYTHON:
        pytest.skip("LAKEHOUSE_TEST_SPARK35_PYTHON unset (scripts/tools/spark35.sh prints it)")
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    folder = tmp_path_factory.mktemp("spark35")
    env = spark35_env()
    lh = connect(folder / "home", create=True)
    iceberg = IcebergRestSettings.from_settings(lh.settings)
    server = make_server(lh.store, "127.0.0.1", 0, log_level="warning", iceberg=iceberg)
    with ExitStack() as stack:
        stack.callback(lh.close)
        port = stack.enter_context(serving(server))
        targets = [
            f"ours_{kind}={kind}=http://127.0.0.1:{port}={(folder / kind).as_uri()}"
            for kind in KINDS
        ]
        if NESSIE_URL:
            real = NESSIE_URL.rstrip("/").removesuffix("/api/v2")
            targets += [
                f"real_{kind}={kind}={real}={(folder / f'real-{kind}').as_uri()}"
                for kind in ("v1", "v2")
            ]
        if S3_ENDPOINT:
            real_rest = stack.enter_context(real_nessie_on_minio(folder / "nessie", stack))
            credentials = {"s3.access-key-id": S3_ACCESS_KEY, "s3.secret-access-key": S3_SECRET_KEY}
            targets.append(f"real_rest=rest={real_rest}=-={json.dumps(credentials)}")
        if NESSIE_URL:
            stack.enter_context(shared_nessie_lock(NESSIE_URL))
        suffix = uuid.uuid4().hex[:8]
        done = subprocess.run(
            [SPARK35_PYTHON, str(SCENARIO), env["JARS_DIR"], suffix, *targets],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "JAVA_HOME": env["JAVA_HOME"]},
        )
        assert done.returncode == 0, done.stderr[-4000:]
        last = done.stdout.strip().splitlines()[-1]
        out: dict[str, Any] = json.loads(last.replace(suffix, "{suffix}"))
        yield out


@contextmanager
def real_nessie_on_minio(folder: Path, stack: ExitStack) -> Iterator[str]:
    """A real Nessie whose Iceberg warehouse is a fresh prefix on MinIO (removed after)."""
    from pyarrow.fs import FileType, S3FileSystem

    prefix = f"spark35-{uuid.uuid4().hex[:8]}"
    properties = f"""\
nessie.catalog.default-warehouse=warehouse
nessie.catalog.warehouses.warehouse.location=s3://{S3_BUCKET}/{prefix}/
nessie.catalog.service.s3.default-options.endpoint={S3_ENDPOINT}/
nessie.catalog.service.s3.default-options.path-style-access=true
nessie.catalog.service.s3.default-options.region=us-east-1
nessie.catalog.service.s3.default-options.request-signing-enabled=false
nessie.catalog.service.s3.default-options.access-key=urn:nessie-secret:quarkus:lakehouse.s3
lakehouse.s3.name={S3_ACCESS_KEY}
lakehouse.s3.secret={S3_SECRET_KEY}
"""
    s3 = S3FileSystem(
        endpoint_override=S3_ENDPOINT,
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        region="us-east-1",
    )

    def remove_warehouse() -> None:
        if s3.get_file_info(f"{S3_BUCKET}/{prefix}").type != FileType.NotFound:
            s3.delete_dir(f"{S3_BUCKET}/{prefix}")

    stack.callback(remove_warehouse)
    with private_nessie(folder, properties) as url:
        yield url


def expected(kind: str) -> dict[str, Any]:
    """The transcript of one catalog when every statement does what the Nessie SQL says."""
    ns = f"ns_{kind}{{suffix}}"
    # NessieCatalog commits carry Iceberg's client-side messages; through the REST catalog
    # the server writes them (ours: "Create table …" / "Update table …").
    messages = (
        ["Create table {ns}.u", "Update table {ns}.t"]
        if kind == "rest"
        else ["Iceberg append against {ns}.u", "Iceberg append against {ns}.t"]
    )
    return {
        "list references: main": "Branch",
        "create branch": ["Branch", True, True],
        "use reference": ["Branch", True, True],
        "branch: t": [[1, "a"], [2, "b"], [3, "c"]],
        "branch: u": [[10], [20], [30]],
        "show reference": ["Branch", True, True],
        "show log: first is the head": True,
        MESSAGES: [m.format(ns=ns) for m in messages],
        "list references: branch at its head": True,
        "use main": ["Branch", "main", True],
        "main: t": [[1, "a"]],
        "main: tables": ["t"],
        "merge branch": "main",
        "main after merge": ["Branch", "main", True, True],
        "main: t after merge": [[1, "a"], [2, "b"], [3, "c"]],
        "main: u after merge": [[10], [20], [30]],
        "drop branch": [["OK"]],
        "list references: branch gone": True,
    }


def steps(transcript: list[list[Any]]) -> dict[str, Any]:
    """A transcript as ``{step: value}`` (a failed statement is the step ``error``)."""
    out: dict[str, Any] = {}
    for step, *value in transcript:
        out[step] = value[0] if len(value) == 1 else value
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_the_nessie_sql_works_on_our_server(transcripts: dict[str, Any], kind: str) -> None:
    assert steps(transcripts[f"ours_{kind}"]) == expected(kind)


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_the_nessie_sql_behaves_as_on_the_real_nessie(
    transcripts: dict[str, Any], kind: str
) -> None:
    if not NESSIE_URL:
        pytest.skip("LAKEHOUSE_TEST_NESSIE_URL unset (scripts/services/nessie.sh url prints it)")
    assert transcripts[f"ours_{kind}"] == transcripts[f"real_{kind}"]


def test_the_nessie_sql_on_rest_behaves_as_on_the_real_nessie_but_for_messages(
    transcripts: dict[str, Any],
) -> None:
    if not S3_ENDPOINT:
        pytest.skip("LAKEHOUSE_TEST_S3_ENDPOINT unset (scripts/services/minio.sh url prints it)")
    ours, real = steps(transcripts["ours_rest"]), steps(transcripts["real_rest"])
    assert real.pop(MESSAGES) == [
        "Create ICEBERG_TABLE ns_rest{suffix}.u",
        "Update ICEBERG_TABLE ns_rest{suffix}.t",
    ]
    assert ours.pop(MESSAGES) == [
        "Create table ns_rest{suffix}.u",
        "Update table ns_rest{suffix}.t",
    ]
    assert ours == real
