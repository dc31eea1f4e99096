"""The Iceberg REST catalog under Nessie's authorization rules (one rules file, both APIs).

Each Iceberg REST operation is checked as the Nessie operations it implies
(:mod:`lakehouse.server.iceberg_authz`). The matrix runs principals with different roles
against every operation, allowed and denied; a denied write changes nothing (the Nessie
log of both branches is compared before and after). PyIceberg's ``RestCatalog`` is the
client of the end-to-end test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from pyiceberg.catalog import load_catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import ForbiddenError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import ContentKey
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import ServerSettings
from lakehouse.server.app import create_app, serving
from lakehouse.server.authz import RULE_PREFIX, parse_properties
from lakehouse.server.iceberg_rest import CATALOG_NAME, IcebergRestSettings
from lakehouse.server.oidc import OidcSettings, OidcVerifier
from lakehouse.storage import Warehouse
from tests.server.helpers import ApiClient
from tests.server.test_oidc import ISSUER, Clock, Issuer

#: One rules file, as Nessie reads it (``application.properties``).
RULES_FILE = """
# readers: see every reference and read every table
nessie.server.authorization.rules.readers=op in ['VIEW_REFERENCE', 'READ_ENTRIES', \\
  'READ_CONTENT_KEY', 'READ_ENTITY_VALUE'] && 'readers' in roles
# silver readers: see references and listings, but only silver's keys and values
nessie.server.authorization.rules.silver_view=op in ['VIEW_REFERENCE', 'READ_ENTRIES'] \\
  && 'silver' in roles
nessie.server.authorization.rules.silver_read=op in ['READ_CONTENT_KEY', \\
  'READ_ENTITY_VALUE'] && 'silver' in roles && path.startsWith('silver')
# bronze writers: change bronze keys on the dev branch only
nessie.server.authorization.rules.bronze_writers=op in ['COMMIT_CHANGE_AGAINST_REFERENCE', \\
  'CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'writers' in roles \\
  && ref == 'dev' && path.startsWith('bronze')
nessie.server.authorization.rules.writers_commit=op == 'COMMIT_CHANGE_AGAINST_REFERENCE' \\
  && 'writers' in roles && ref == 'dev'
nessie.server.authorization.rules.admin=role == 'admin'
"""
RULES = {
    k.removeprefix(RULE_PREFIX): v
    for k, v in parse_properties(RULES_FILE).items()
    if k.startswith(RULE_PREFIX)
}
#: Principals: name -> roles.
PRINCIPALS: dict[str, tuple[str, ...]] = {
    "admin": (),
    "rita": ("readers",),
    "sam": ("silver",),
    "wes": ("readers", "writers"),
    "nobody": (),
}
SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}
BASE = "/iceberg/v1"


def ident(namespace: str, name: str) -> dict[str, Any]:
    return {"namespace": [namespace], "name": name}


def set_props(namespace: str, name: str) -> dict[str, Any]:
    return {
        "identifier": ident(namespace, name),
        "requirements": [],
        "updates": [{"action": "set-properties", "updates": {"owner": "etl"}}],
    }


@dataclass
class World:
    """The server over a catalog with bronze/silver tables on ``main`` and ``dev``."""

    client: ApiClient
    issuer: Issuer
    store: SqlStore
    warehouse: Warehouse
    warehouse_root: Path
    metadata_location: str

    def headers(self, who: str) -> dict[str, str]:
        token = self.issuer.token(
            preferred_username=who, realm_access={"roles": list(PRINCIPALS[who])}
        )
        return {"Authorization": f"Bearer {token}"}

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.request(method, path, json=body, headers=self.headers(who))

    def heads(self) -> dict[str, str]:
        return {r.name: r.hash for r in self.store.list_references()}


def seed(store: SqlStore, warehouse: Warehouse) -> str:
    """bronze.orders, silver.sales and an empty namespace bronze_empty; branch dev."""
    cat = RefCatalog(CATALOG_NAME, store, "main", warehouse)
    for ns in ("bronze", "silver", "bronze_empty"):
        cat.create_namespace(ns)
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    orders = cat.create_table("bronze.orders", schema)
    cat.create_table("silver.sales", schema)
    store.create_reference("dev", "BRANCH", "main")
    assert orders.metadata_location is not None
    return orders.metadata_location


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    """One key pair for the module (generating RSA keys is the slow part of a case)."""
    return Issuer()


def build_app(store: SqlStore, issuer: Issuer, warehouse_root: Path) -> Any:
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles")
    verifier = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    settings = ServerSettings(oidc=oidc, authorization_rules=RULES)
    warehouse = Warehouse.local(warehouse_root)
    iceberg = IcebergRestSettings(warehouse, warehouse_location=str(warehouse_root))
    return create_app(store, settings=settings, oidc_verifier=verifier, iceberg=iceberg)


@pytest.fixture
def world(store: SqlStore, issuer: Issuer, tmp_path: Path) -> Iterator[World]:
    root = tmp_path / "warehouse"
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    location = seed(store, warehouse)
    with ApiClient(build_app(store, issuer, root)) as client:
        yield World(client, issuer, store, warehouse, root, location)


# -- the matrix ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    who: str
    method: str
    path: str
    status: int
    body: Any = None

    def __str__(self) -> str:
        return f"{self.who}-{self.method}-{self.path.removeprefix(BASE)}-{self.status}"


def _create(name: str) -> dict[str, Any]:
    return {"name": name, "schema": SCHEMA}


def _rename(src: tuple[str, str], dst: tuple[str, str]) -> dict[str, Any]:
    return {"source": ident(*src), "destination": ident(*dst)}


READS = [
    # config: only a named reference is checked (VIEW_REFERENCE)
    Case("nobody", "GET", "/iceberg/v1/config", 200),
    Case("rita", "GET", "/iceberg/dev/v1/config", 200),
    Case("nobody", "GET", "/iceberg/dev/v1/config", 403),
    Case("nobody", "GET", "/iceberg/v1/config?warehouse=warehouse", 200),
    Case("nobody", "GET", "/iceberg/v1/config?warehouse=dev", 403),
    Case("rita", "GET", "/iceberg/v1/config?warehouse=dev%7Cwarehouse", 200),
    # listings: VIEW_REFERENCE + READ_ENTRIES, keys filtered by READ_CONTENT_KEY
    Case("rita", "GET", f"{BASE}/main/namespaces", 200),
    Case("nobody", "GET", f"{BASE}/main/namespaces", 403),
    Case("rita", "GET", f"{BASE}/dev/namespaces/bronze/tables", 200),
    Case("wes", "GET", f"{BASE}/dev/namespaces/bronze/tables", 200),
    Case("nobody", "GET", f"{BASE}/main/namespaces/bronze/tables", 403),
    # loads: VIEW_REFERENCE + READ_ENTITY_VALUE (namespace and its parents)
    Case("rita", "GET", f"{BASE}/main/namespaces/bronze", 200),
    Case("sam", "GET", f"{BASE}/main/namespaces/bronze", 403),
    Case("sam", "GET", f"{BASE}/main/namespaces/silver", 200),
    Case("rita", "HEAD", f"{BASE}/main/namespaces/bronze", 204),
    Case("sam", "HEAD", f"{BASE}/main/namespaces/bronze", 403),
    Case("rita", "GET", f"{BASE}/main/namespaces/bronze/tables/orders", 200),
    Case("wes", "GET", f"{BASE}/dev/namespaces/bronze/tables/orders", 200),
    Case("sam", "GET", f"{BASE}/main/namespaces/bronze/tables/orders", 403),
    Case("sam", "GET", f"{BASE}/main/namespaces/silver/tables/sales", 200),
    Case("sam", "HEAD", f"{BASE}/main/namespaces/bronze/tables/orders", 403),
    Case("sam", "HEAD", f"{BASE}/main/namespaces/silver/tables/sales", 204),
    # a missing key is not checked (404, as Nessie), but the reference still is
    Case("sam", "GET", f"{BASE}/main/namespaces/bronze/tables/nope", 404),
    Case("nobody", "GET", f"{BASE}/main/namespaces/bronze/tables/nope", 403),
    Case("admin", "GET", f"{BASE}/main/namespaces/bronze/tables/orders", 200),
]

WRITES = [
    # create namespace: read, then commit CREATE_ENTITY(NAMESPACE)
    Case("wes", "POST", f"{BASE}/dev/namespaces", 200, {"namespace": ["bronze_raw"]}),
    Case("wes", "POST", f"{BASE}/main/namespaces", 403, {"namespace": ["bronze_raw"]}),
    Case("wes", "POST", f"{BASE}/dev/namespaces", 403, {"namespace": ["gold"]}),
    Case("rita", "POST", f"{BASE}/dev/namespaces", 403, {"namespace": ["bronze_raw"]}),
    # an existing namespace is a 409 before the commit is checked (Nessie's order)
    Case("rita", "POST", f"{BASE}/dev/namespaces", 409, {"namespace": ["bronze"]}),
    # update namespace properties: read for write, commit UPDATE_ENTITY
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/namespaces/bronze/properties",
        200,
        {"updates": {"owner": "etl"}},
    ),
    Case(
        "rita",
        "POST",
        f"{BASE}/dev/namespaces/bronze/properties",
        403,
        {"updates": {"owner": "etl"}},
    ),
    # drop namespace: entries, commit DELETE_ENTITY; a non-empty one is a 409
    Case("wes", "DELETE", f"{BASE}/dev/namespaces/bronze_empty", 204),
    Case("wes", "DELETE", f"{BASE}/main/namespaces/bronze_empty", 403),
    Case("rita", "DELETE", f"{BASE}/dev/namespaces/bronze_empty", 403),
    Case("wes", "DELETE", f"{BASE}/dev/namespaces/bronze", 409),
    # create table: read for write (CREATE_ENTITY, contentType ''), commit CREATE_ENTITY
    Case("wes", "POST", f"{BASE}/dev/namespaces/bronze/tables", 200, _create("t2")),
    Case("wes", "POST", f"{BASE}/main/namespaces/bronze/tables", 403, _create("t2")),
    Case("wes", "POST", f"{BASE}/dev/namespaces/silver/tables", 403, _create("t2")),
    Case("rita", "POST", f"{BASE}/dev/namespaces/bronze/tables", 403, _create("t2")),
    Case("admin", "POST", f"{BASE}/main/namespaces/silver/tables", 200, _create("t2")),
    # commit table: read for write, commit UPDATE_ENTITY
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/namespaces/bronze/tables/orders",
        200,
        set_props("bronze", "orders"),
    ),
    Case(
        "wes",
        "POST",
        f"{BASE}/main/namespaces/bronze/tables/orders",
        403,
        set_props("bronze", "orders"),
    ),
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/namespaces/silver/tables/sales",
        403,
        set_props("silver", "sales"),
    ),
    Case(
        "rita",
        "POST",
        f"{BASE}/dev/namespaces/bronze/tables/orders",
        403,
        set_props("bronze", "orders"),
    ),
    # multi-table commit: every table in one batch, one commit
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/transactions/commit",
        403,
        {"table-changes": [set_props("bronze", "orders"), set_props("silver", "sales")]},
    ),
    Case(
        "admin",
        "POST",
        f"{BASE}/dev/transactions/commit",
        204,
        {"table-changes": [set_props("bronze", "orders"), set_props("silver", "sales")]},
    ),
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/transactions/commit",
        204,
        {"table-changes": [set_props("bronze", "orders")]},
    ),
    # rename: read both keys, commit DELETE_ENTITY(source) + CREATE_ENTITY(target)
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/tables/rename",
        204,
        _rename(("bronze", "orders"), ("bronze", "orders2")),
    ),
    Case(
        "wes",
        "POST",
        f"{BASE}/dev/tables/rename",
        403,
        _rename(("bronze", "orders"), ("silver", "orders")),
    ),
    Case(
        "rita",
        "POST",
        f"{BASE}/dev/tables/rename",
        403,
        _rename(("bronze", "orders"), ("bronze", "orders2")),
    ),
    # drop table: read, commit DELETE_ENTITY
    Case("wes", "DELETE", f"{BASE}/dev/namespaces/bronze/tables/orders", 204),
    Case("wes", "DELETE", f"{BASE}/main/namespaces/bronze/tables/orders", 403),
    Case("wes", "DELETE", f"{BASE}/dev/namespaces/silver/tables/sales", 403),
    Case("sam", "DELETE", f"{BASE}/main/namespaces/silver/tables/sales", 403),
    Case("nobody", "DELETE", f"{BASE}/dev/namespaces/bronze/tables/orders", 403),
]


@pytest.mark.parametrize("case", READS, ids=str)
def test_reads_are_checked_as_nessie_checks_them(world: World, case: Case) -> None:
    response = world.call(case.who, case.method, case.path, case.body)
    assert response.status_code == case.status, response.text
    if case.status == 403 and case.method != "HEAD":
        error = response.json()["error"]
        assert error["type"] == "ForbiddenException"
        assert error["code"] == 403
        assert "is not allowed for role" in error["message"]


@pytest.mark.parametrize("case", WRITES, ids=str)
def test_writes_are_checked_and_a_denied_write_changes_nothing(world: World, case: Case) -> None:
    before = world.heads()
    response = world.call(case.who, case.method, case.path, case.body)
    assert response.status_code == case.status, response.text
    if case.status < 300:
        assert world.heads() != before
    else:
        assert world.heads() == before
    if case.status == 403:
        assert response.json()["error"]["type"] == "ForbiddenException"


def test_register_needs_create_entity_on_the_new_key(world: World) -> None:
    body = {"name": "copy", "metadata-location": world.metadata_location}
    before = world.heads()
    denied = world.call("rita", "POST", f"{BASE}/dev/namespaces/bronze/register", body)
    assert denied.status_code == 403, denied.text
    assert (
        "'CREATE_ENTITY' is not allowed for role 'rita' on content 'bronze.copy'"
        in (denied.json()["error"]["message"])
    )
    assert world.heads() == before
    allowed = world.call("wes", "POST", f"{BASE}/dev/namespaces/bronze/register", body)
    assert allowed.status_code == 200, allowed.text
    assert ContentKey.of("bronze", "copy") in world.store.get_contents(
        "dev", [ContentKey.of("bronze", "copy")]
    )


def test_refusal_names_nessie_s_failed_checks(world: World) -> None:
    response = world.call("nobody", "GET", f"{BASE}/main/namespaces/bronze/tables/orders")
    # every failed check of the batch, as Nessie's AccessCheckException
    assert response.json()["error"]["message"] == (
        "'VIEW_REFERENCE' is not allowed for role 'nobody' on reference 'main', "
        "'READ_ENTITY_VALUE' is not allowed for role 'nobody' on content 'bronze.orders'"
    )
    response = world.call("sam", "GET", f"{BASE}/main/namespaces/bronze/tables/orders")
    assert response.json()["error"]["message"] == (
        "'READ_ENTITY_VALUE' is not allowed for role 'sam' on content 'bronze.orders'"
    )


def test_listings_leave_out_what_the_principal_may_not_see(world: World) -> None:
    def namespaces(who: str) -> list[list[str]]:
        response = world.call(who, "GET", f"{BASE}/main/namespaces")
        assert response.status_code == 200, response.text
        return list(response.json()["namespaces"])

    def tables(who: str, ns: str) -> list[str]:
        response = world.call(who, "GET", f"{BASE}/main/namespaces/{ns}/tables")
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()["identifiers"]]

    assert namespaces("rita") == [["bronze"], ["bronze_empty"], ["silver"]]
    assert namespaces("sam") == [["silver"]]
    assert tables("rita", "bronze") == ["orders"]
    assert tables("sam", "bronze") == []
    assert tables("sam", "silver") == ["sales"]


def test_a_hidden_namespace_cannot_be_dropped_it_is_absent(world: World) -> None:
    response = world.call("sam", "DELETE", f"{BASE}/main/namespaces/bronze_empty")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "NoSuchNamespaceException"


def test_create_table_checks_create_entity_with_no_content_type_first(
    store: SqlStore, issuer: Issuer, tmp_path: Path
) -> None:
    # Nessie reads the new key for writing before the commit: there CREATE_ENTITY has
    # contentType '' (nothing is there yet); the commit checks it with ICEBERG_TABLE.
    rules = {
        "all": "op != 'CREATE_ENTITY'",
        "tables_only": "op == 'CREATE_ENTITY' && contentType == 'ICEBERG_TABLE'",
    }
    root = tmp_path / "warehouse"
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    seed(store, warehouse)
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse")
    verifier = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    app = create_app(
        store,
        settings=ServerSettings(oidc=oidc, authorization_rules=rules),
        oidc_verifier=verifier,
        iceberg=IcebergRestSettings(warehouse, warehouse_location=str(root)),
    )
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    with ApiClient(app) as client:
        response = client.post(
            f"{BASE}/dev/namespaces/bronze/tables", json=_create("t3"), headers=headers
        )
    assert response.status_code == 403, response.text
    assert (
        "'CREATE_ENTITY' is not allowed for role 'alice' on content 'bronze.t3'"
        in (response.json()["error"]["message"])
    )


def test_the_same_rules_file_checks_the_nessie_api(world: World) -> None:
    # rita may read through both APIs and write through neither
    assert world.call("rita", "GET", "/api/v2/trees/main/entries").status_code == 200
    assert world.call("rita", "GET", f"{BASE}/main/namespaces").status_code == 200
    assert world.call("nobody", "GET", "/api/v2/trees/main/entries").status_code == 403
    assert world.call("nobody", "GET", f"{BASE}/main/namespaces").status_code == 403


# -- PyIceberg's RestCatalog as the client ----------------------------------------------------


@pytest.fixture
def rest(
    store: SqlStore, issuer: Issuer, tmp_path: Path
) -> Iterator[Callable[[str, str], RestCatalog]]:
    root = tmp_path / "warehouse"
    warehouse = Warehouse.local(root)
    warehouse.ensure_local_dirs()
    seed(store, warehouse)
    config = uvicorn.Config(
        build_app(store, issuer, root), host="127.0.0.1", port=0, log_level="warning"
    )
    with serving(uvicorn.Server(config)) as port:

        def make(who: str, ref: str) -> RestCatalog:
            token = issuer.token(
                preferred_username=who, realm_access={"roles": list(PRINCIPALS[who])}
            )
            catalog = load_catalog(
                who,
                type="rest",
                uri=f"http://127.0.0.1:{port}/iceberg/",
                warehouse=str(root),
                token=token,
                prefix=quote(ref, safe=""),
            )
            assert isinstance(catalog, RestCatalog)
            return catalog

        yield make


def test_pyiceberg_reader_loads_but_its_commit_is_forbidden_and_changes_nothing(
    rest: Callable[[str, str], RestCatalog], store: SqlStore
) -> None:
    reader = rest("rita", "dev")
    table = reader.load_table("bronze.orders")
    assert table.schema().find_field("id").field_type == LongType()
    before = {r.name: r.hash for r in store.list_references()}
    log_before = [e.hash for e in store.iter_log("dev")]
    with (
        pytest.raises(ForbiddenError, match="COMMIT_CHANGE_AGAINST_REFERENCE"),
        table.transaction() as tx,
    ):
        tx.set_properties(owner="rita")
    with pytest.raises(ForbiddenError, match="CREATE_ENTITY"):
        reader.create_namespace("bronze_rita")
    assert {r.name: r.hash for r in store.list_references()} == before
    assert [e.hash for e in store.iter_log("dev")] == log_before
    # the writer's same commit lands on dev
    writer = rest("wes", "dev")
    with writer.load_table("bronze.orders").transaction() as tx:
        tx.set_properties(owner="wes")
    assert writer.load_table("bronze.orders").properties["owner"] == "wes"
    assert len(list(store.iter_log("dev"))) == len(log_before) + 1


def test_pyiceberg_listing_is_filtered(rest: Callable[[str, str], RestCatalog]) -> None:
    sam = rest("sam", "main")
    assert sam.list_namespaces() == [("silver",)]
    assert sam.list_tables("bronze") == []
    assert sam.list_tables("silver") == [("silver", "sales")]
    with pytest.raises(ForbiddenError):
        sam.load_table("bronze.orders")
