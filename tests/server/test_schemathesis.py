"""Property-based tests of the server against its own OpenAPI document (schemathesis).

Stateless: every operation of ``/openapi.json`` (Nessie API v2, health, metrics) gets
``LAKEHOUSE_SCHEMATHESIS_EXAMPLES`` generated requests (default 50) through the ASGI app,
over a catalog with a branch, a tag, a namespace and a table, so that some requests
reach real data. Checks: no 5xx, and every response (errors included) matches the
documented schema for its status. The Iceberg REST routes are not in the document
(``/iceberg`` follows the Iceberg REST spec's own OpenAPI) and are not generated here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from lakehouse.catalog.model import ContentKey, IcebergTable, Namespace, Put, ReferenceType
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import create_app

EXAMPLES = int(os.environ.get("LAKEHOUSE_SCHEMATHESIS_EXAMPLES", "50"))


def _seeded_store(path: Path) -> SqlStore:
    store = SqlStore(f"sqlite:///{path}")
    table = IcebergTable("s3://warehouse/bronze/t/metadata/v1.json", 1, 0, 0, 0)
    store.commit(
        "main",
        [
            Put(ContentKey.of("bronze"), Namespace(("bronze",))),
            Put(ContentKey.of("bronze", "t"), table),
        ],
        "seed",
    )
    store.create_reference("dev", ReferenceType.BRANCH)
    store.create_reference("v1", ReferenceType.TAG)
    return store


# Built at collection (the schema drives parametrization): a small SQLite file in a
# temporary folder that is removed when the interpreter exits.
_TMP = tempfile.TemporaryDirectory(prefix="lakehouse-schemathesis-")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(_seeded_store(Path(_TMP.name) / "catalog.db"))
)


@pytest.mark.integration
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Nessie-Client-Spec": "2"},
        checks=[not_a_server_error, response_schema_conformance],
    )
