"""The ``contentMerge`` opt-in of Nessie API v2 merges: content-aware table merges on the server.

Without the opt-in a merge keeps Nessie's semantics (a table changed on both sides is a
conflict). With ``"contentMerge": true`` the server runs the library's content merge
(:func:`lakehouse.catalog.content_merge.content_merge`) over its own store and reports
each table changed on both sides in its detail's ``contentMerge``. Offered, and
advertised in ``GET /api/v2/config``, only when the server serves a warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI
from pyiceberg.types import StringType

from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import ReferenceType
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import ServerSettings
from lakehouse.server.app import create_app
from lakehouse.server.iceberg_rest import IcebergRestSettings
from lakehouse.server.oidc import OidcSettings, OidcVerifier
from lakehouse.storage.zones import Warehouse
from tests.server.helpers import (
    API,
    ApiClient,
    create_branch,
    error,
    head,
    key,
    ok,
    put_table,
    with_namespace,
)
from tests.server.test_merge import merge, transplant
from tests.server.test_oidc import ISSUER, Clock, Issuer, bearer

ORDERS = key("bronze", "orders")
ADVERTISED = {"lakehouse.content-merge": "1"}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    w = Warehouse.local(tmp_path / "warehouse")
    w.ensure_local_dirs()
    return w


@pytest.fixture
def app(store: SqlStore, settings: ServerSettings, warehouse: Warehouse) -> FastAPI:
    return create_app(store, settings=settings, iceberg=IcebergRestSettings(warehouse))


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def catalog(store: SqlStore, warehouse: Warehouse, ref: str) -> RefCatalog:
    return RefCatalog("lakehouse", store, ref, warehouse)


def ids(store: SqlStore, warehouse: Warehouse, ref: str = "main") -> list[int]:
    table = catalog(store, warehouse, ref).load_table("bronze.orders")
    return sorted(table.scan().to_arrow().column("id").to_pylist())


@pytest.fixture
def forked(store: SqlStore, warehouse: Warehouse) -> tuple[RefCatalog, RefCatalog]:
    """``bronze.orders`` (ids 1, 2) on main; ``dev`` forked from it."""
    main = catalog(store, warehouse, "main")
    main.create_namespace("bronze")
    main.create_table("bronze.orders", schema=rows(1).schema).append(rows(1, 2))
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    return main, catalog(store, warehouse, "dev")


@pytest.fixture
def appended(forked: tuple[RefCatalog, RefCatalog]) -> None:
    """Both sides appended to ``bronze.orders``: main id 3, dev id 4."""
    main, dev = forked
    main.load_table("bronze.orders").append(rows(3))
    dev.load_table("bronze.orders").append(rows(4))


@pytest.fixture
def schemas_differ(forked: tuple[RefCatalog, RefCatalog]) -> None:
    """Both sides added a different column to ``bronze.orders``: cannot be merged."""
    for side, column in zip(forked, ("a", "b"), strict=True):
        with side.load_table("bronze.orders").update_schema() as update:
            update.add_column(column, StringType())


def orders_detail(response: dict[str, Any]) -> dict[str, Any]:
    [detail] = [d for d in response["details"] if d["key"] == ORDERS]
    return detail


def test_the_config_advertises_the_opt_in_in_nessies_additional_properties(
    client: ApiClient,
) -> None:
    config = ok(client.get(f"{API}/config"))
    assert config["additionalProperties"] == ADVERTISED
    assert config["specVersion"] == "2.2.0" and config["defaultBranch"] == "main"


@pytest.mark.parametrize(
    "iceberg, settings",
    [(False, ServerSettings()), (True, ServerSettings(content_merge=False))],
    ids=["no warehouse", "switched off"],
)
def test_a_server_that_does_not_offer_it_says_nothing_and_refuses_it(
    store: SqlStore, warehouse: Warehouse, iceberg: bool, settings: ServerSettings
) -> None:
    served = IcebergRestSettings(warehouse) if iceberg else None
    with ApiClient(create_app(store, settings=settings, iceberg=served)) as client:
        assert "additionalProperties" not in ok(client.get(f"{API}/config"))
        create_branch(client, "dev")
        refused = error(merge(client, contentMerge=True), 400, "BAD_REQUEST")
        assert "contentMerge is not offered by this server" in refused["message"]


@pytest.mark.usefixtures("appended")
def test_without_the_opt_in_a_table_changed_on_both_sides_is_nessies_conflict(
    client: ApiClient, store: SqlStore, warehouse: Warehouse
) -> None:
    before = head(client)
    result = ok(merge(client, returnConflictAsResult=True))
    assert not result["wasSuccessful"] and not result["wasApplied"]
    detail = orders_detail(result)
    assert detail["conflict"]["conflictType"] == "VALUE_DIFFERS"
    assert "contentMerge" not in detail  # the response is exactly Nessie's
    assert head(client) == before and ids(store, warehouse) == [1, 2, 3]


@pytest.mark.usefixtures("appended")
def test_with_the_opt_in_appends_on_both_sides_merge_as_one_commit(
    client: ApiClient, store: SqlStore, warehouse: Warehouse
) -> None:
    before, dev = head(client), head(client, "dev")
    result = ok(merge(client, contentMerge=True, commitMeta={"message": "publish dev"}))
    assert result["wasApplied"] and result["wasSuccessful"]
    assert result["expectedHash"] == before and result["resultantTargetHash"] == head(client)
    detail = orders_detail(result)
    assert "conflict" not in detail
    assert detail["contentMerge"] == {
        "merged": True,
        "description": "merged by content (appends on the source (1 data file(s)) applied "
        "on top of the target)",
    }
    assert ids(store, warehouse) == [1, 2, 3, 4]
    meta = ok(client.get(f"{API}/trees/main/history"))["logEntries"][0]["commitMeta"]
    assert meta["parentCommitHashes"] == [before, dev] and meta["message"] == "publish dev"


@pytest.mark.usefixtures("appended")
def test_a_dry_run_with_the_opt_in_reports_each_table_and_changes_nothing(
    client: ApiClient, store: SqlStore, warehouse: Warehouse
) -> None:
    before = head(client)
    result = ok(merge(client, contentMerge=True, dryRun=True))
    assert result["wasSuccessful"] and not result["wasApplied"]
    assert result["resultantTargetHash"] is None or result["resultantTargetHash"] == before
    report = orders_detail(result)["contentMerge"]
    assert report["merged"] and report["description"].startswith("merged by content (appends")
    assert head(client) == before and ids(store, warehouse) == [1, 2, 3]


@pytest.mark.usefixtures("schemas_differ")
def test_a_table_that_cannot_be_merged_is_a_conflict_that_says_why(
    client: ApiClient,
) -> None:
    before = head(client)
    result = ok(merge(client, contentMerge=True, returnConflictAsResult=True))
    assert not result["wasSuccessful"] and not result["wasApplied"]
    detail = orders_detail(result)
    assert detail["contentMerge"]["merged"] is False
    reason = detail["contentMerge"]["description"]
    assert reason.startswith("conflict: both sides changed the schema, differently")
    assert detail["conflict"] == {"conflictType": "VALUE_DIFFERS", "key": ORDERS, "message": reason}
    # without returnConflictAsResult: Nessie's 409 with the same per-key reason
    refused = error(merge(client, contentMerge=True), 409, "REFERENCE_CONFLICT")
    [conflict] = refused["errorDetails"]["conflicts"]
    assert conflict["key"] == ORDERS and conflict["message"] == reason
    assert head(client) == before


def test_a_table_whose_metadata_is_outside_the_warehouse_is_not_read(client: ApiClient) -> None:
    with_namespace(client)
    put_table(client, 1, "bronze", "orders")  # metadata in s3://iceberg-metadata/…
    create_branch(client, "dev")
    put_table(client, 2, "bronze", "orders", branch="dev")
    put_table(client, 3, "bronze", "orders")
    result = ok(merge(client, contentMerge=True, returnConflictAsResult=True))
    report = orders_detail(result)["contentMerge"]
    assert report == {
        "merged": False,
        "description": "conflict: metadata file s3://iceberg-metadata/t/v3.metadata.json "
        "is outside the warehouse",
    }


@pytest.mark.usefixtures("appended")
def test_the_opt_in_computes_its_own_resolutions(client: ApiClient) -> None:
    content = ok(client.get(f"{API}/trees/main/contents/bronze.orders"))["content"]
    mode = {
        "key": ORDERS,
        "mergeBehavior": "NORMAL",
        "expectedTargetContent": content,
        "resolvedContent": content,
    }
    refused = error(merge(client, contentMerge=True, keyMergeModes=[mode]), 400, "BAD_REQUEST")
    assert "send no resolvedContent" in refused["message"]


def test_a_transplant_keeps_nessies_semantics_and_refuses_the_opt_in(client: ApiClient) -> None:
    with_namespace(client)
    create_branch(client, "dev")
    picked = put_table(client, 1, "bronze", "orders", branch="dev")
    refused = error(transplant(client, [picked], contentMerge=True), 400, "BAD_REQUEST")
    assert "contentMerge is supported by merges only" in refused["message"]


def test_the_openapi_document_describes_the_opt_in(client: ApiClient) -> None:
    schemas = ok(client.get("/openapi.json"))["components"]["schemas"]
    opt_in = schemas["MergeBody"]["properties"]["contentMerge"]
    assert {"type": "boolean"} in opt_in["anyOf"] and "merges by content" in opt_in["description"]
    assert (
        "lakehouse.content-merge"
        in (
            schemas["NessieConfigurationResponse"]["properties"]["additionalProperties"][
                "description"
            ]
        )
    )
    details = schemas["ContentKeyDetailsResponse"]["properties"]
    assert "contentMerge" in details


def test_a_table_changed_since_a_stale_expected_hash_merges_against_the_current_head(
    client: ApiClient, store: SqlStore, warehouse: Warehouse, forked: tuple[RefCatalog, RefCatalog]
) -> None:
    """The run that lost the race: main moved on after the client read its head.

    As in the library (and on every store), the table changed on main since is merged by
    content against main's current head, never against the stale one; the resolution is
    then checked against the contents it was computed from when the commit lands.
    """
    main, dev = forked
    dev.load_table("bronze.orders").append(rows(4))
    stale = head(client)  # the client read main's head here
    main.load_table("bronze.orders").append(rows(3))  # main moved on since 'stale'
    body = {"fromRefName": "dev", "fromHash": head(client, "dev"), "contentMerge": True}
    moved = head(client)
    result = ok(client.post(f"{API}/trees/main@{stale}/history/merge", json=body))
    assert result["expectedHash"] == stale and result["effectiveTargetHash"] == moved
    assert orders_detail(result)["contentMerge"]["merged"]
    assert ids(store, warehouse) == [1, 2, 3, 4]


RULES = {
    "admin": "'admin' in roles",
    "branches": "op in ['VIEW_REFERENCE', 'COMMIT_CHANGE_AGAINST_REFERENCE'] && 'eng' in roles",
    "bronze": "op in ['CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'writer' in roles "
    "&& path.startsWith('bronze.')",
}


@pytest.mark.usefixtures("appended")
def test_a_content_merge_needs_update_entity_on_each_table_it_merges(
    store: SqlStore, warehouse: Warehouse
) -> None:
    """As Nessie's commit validator on a merge: the merged table is an update on the target."""
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles")
    issuer = Issuer()
    keys = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    app = create_app(
        store,
        settings=ServerSettings(oidc=oidc, authorization_rules=RULES),
        oidc_verifier=keys,
        iceberg=IcebergRestSettings(warehouse),
    )
    body = {
        "fromRefName": "dev",
        "fromHash": store.resolve("dev").hash,
        "contentMerge": True,
    }
    url = f"{API}/trees/main@{store.resolve('main').hash}/history/merge"
    with ApiClient(app) as client:
        refused = client.post(url, json=body, headers=bearer(issuer, "erin", "eng"))
        assert refused.status_code == 403, refused.text
        assert "'UPDATE_ENTITY' is not allowed for role 'erin'" in refused.json()["message"]
        assert ids(store, warehouse) == [1, 2, 3]
        merged = client.post(url, json=body, headers=bearer(issuer, "wes", "eng", "writer"))
        assert orders_detail(ok(merged))["contentMerge"]["merged"]
    assert ids(store, warehouse) == [1, 2, 3, 4]


@pytest.mark.usefixtures("appended")
def test_api_v1s_merge_takes_the_opt_in_too(
    client: ApiClient, store: SqlStore, warehouse: Warehouse
) -> None:
    body = {"fromRefName": "dev", "fromHash": head(client, "dev"), "contentMerge": True}
    response = client.post(
        "/api/v1/trees/branch/main/merge", params={"expectedHash": head(client)}, json=body
    )
    assert orders_detail(ok(response))["contentMerge"]["merged"]
    assert ids(store, warehouse) == [1, 2, 3, 4]
