"""Nessie API v2 behind OIDC tokens and Nessie's authorization rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server.authz import parse_properties
from tests.server.helpers import ApiClient
from tests.server.test_oidc import Issuer, bearer, oidc_app

RULES = parse_properties(
    """
nessie.server.authorization.rules.readers=op in ['VIEW_REFERENCE', 'READ_ENTRIES', \\
  'READ_CONTENT_KEY', 'LIST_COMMIT_LOG', 'READ_ENTITY_VALUE'] && 'readers' in roles
nessie.server.authorization.rules.dev_writers=op in ['CREATE_REFERENCE', \\
  'COMMIT_CHANGE_AGAINST_REFERENCE', 'CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] \\
  && 'writers' in roles && ref.startsWith('dev')
nessie.server.authorization.rules.admin=role == 'admin'
"""
)
RULES = {k.rsplit(".", 1)[1]: v for k, v in RULES.items()}


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(store: SqlStore, issuer: Issuer) -> Iterator[ApiClient]:
    with ApiClient(oidc_app(store, issuer, RULES)) as c:
        yield c


def namespace_put(name: str) -> dict[str, Any]:
    return {
        "commitMeta": {"message": f"create {name}"},
        "operations": [
            {
                "type": "PUT",
                "key": {"elements": [name]},
                "content": {"type": "NAMESPACE", "elements": [name]},
            }
        ],
    }


def head(client: ApiClient, issuer: Issuer, ref: str) -> str:
    response = client.get(f"/api/v2/trees/{ref}", headers=bearer(issuer, "admin"))
    return str(response.json()["reference"]["hash"])


def test_readers_read_but_cannot_commit(client: ApiClient, issuer: Issuer) -> None:
    reader = bearer(issuer, "rita", "readers")
    assert client.get("/api/v2/trees/main/entries", headers=reader).status_code == 200
    h = head(client, issuer, "main")
    response = client.post(
        f"/api/v2/trees/main@{h}/history/commit", json=namespace_put("bronze"), headers=reader
    )
    assert response.status_code == 403
    body = response.json()
    assert body["errorCode"] == "FORBIDDEN"
    assert body["message"] == (
        "'COMMIT_CHANGE_AGAINST_REFERENCE' is not allowed for role 'rita' on reference 'main', "
        "'CREATE_ENTITY' is not allowed for role 'rita' on content 'bronze'"
    )


def test_writers_commit_on_dev_branches_only(client: ApiClient, issuer: Issuer) -> None:
    writer = bearer(issuer, "wendy", "readers", "writers")
    h = head(client, issuer, "main")
    created = client.post(
        "/api/v2/trees?name=dev1&type=BRANCH",
        json={"type": "BRANCH", "name": "main", "hash": h},
        headers=writer,
    )
    assert created.status_code == 200, created.text
    ok = client.post(
        f"/api/v2/trees/dev1@{h}/history/commit", json=namespace_put("bronze"), headers=writer
    )
    assert ok.status_code == 200, ok.text
    denied = client.post(
        f"/api/v2/trees/main@{h}/history/commit", json=namespace_put("bronze"), headers=writer
    )
    assert denied.status_code == 403
    delete = client.delete(f"/api/v2/trees/dev1@{head(client, issuer, 'dev1')}", headers=writer)
    assert delete.status_code == 403
    assert "DELETE_REFERENCE" in delete.json()["message"]


def test_entries_hide_keys_the_principal_may_not_read(client: ApiClient, issuer: Issuer) -> None:
    admin = bearer(issuer, "admin")
    h = head(client, issuer, "main")
    assert (
        client.post(
            f"/api/v2/trees/main@{h}/history/commit", json=namespace_put("gold"), headers=admin
        ).status_code
        == 200
    )
    nobody = bearer(issuer, "nobody")
    response = client.get("/api/v2/trees/main/entries", headers=nobody)
    assert response.status_code == 403
    assert client.get("/api/v2/trees/main/entries", headers=admin).json()["entries"]


def test_references_are_listed_when_no_rule_restricts_viewing(
    client: ApiClient, issuer: Issuer
) -> None:
    # the rules mention VIEW_REFERENCE, so there is no implicit "view all": only readers see
    nobody = client.get("/api/v2/trees", headers=bearer(issuer, "nobody"))
    assert nobody.status_code == 200
    assert nobody.json()["references"] == []
    reader = client.get("/api/v2/trees", headers=bearer(issuer, "rita", "readers"))
    assert [r["name"] for r in reader.json()["references"]] == ["main"]


def test_every_write_is_audited_with_principal_outcome_hashes_and_keys(
    client: ApiClient, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    caplog.set_level(logging.INFO, logger="lakehouse.audit")
    h = head(client, issuer, "main")
    reader = bearer(issuer, "rita", "readers")
    admin = bearer(issuer, "admin")
    url = f"/api/v2/trees/main@{h}/history/commit"
    assert client.post(url, json=namespace_put("bronze"), headers=reader).status_code == 403
    done = client.post(url, json=namespace_put("bronze"), headers=admin)
    assert done.status_code == 200
    lines = [json.loads(r.message) for r in caplog.records if r.name == "lakehouse.audit"]
    assert [(x["principal"], x["operation"], x["ref"], x["outcome"]) for x in lines] == [
        ("rita", "commit", "main", "denied"),
        ("admin", "commit", "main", "ok"),
    ]
    assert lines[1]["expectedHash"] == h
    assert lines[1]["resultHash"] == done.json()["targetBranch"]["hash"]
    assert lines[1]["keys"] == ["bronze"]
    assert lines[1]["time"].endswith("Z")
    metrics = client.get("/metrics").text
    assert 'lakehouse_audit_writes_total{operation="commit",outcome="denied"} 1.0' in metrics
    assert 'lakehouse_audit_writes_total{operation="commit",outcome="ok"} 1.0' in metrics
