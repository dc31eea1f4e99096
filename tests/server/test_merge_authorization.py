"""Merges and transplants are checked per key, as Nessie's commit validator does.

Committing to the target is not enough: every key the merge creates, updates or deletes
on the target needs CREATE_ENTITY, UPDATE_ENTITY or DELETE_ENTITY there (the real Nessie
refuses the same merges: tests/server/keycloak/test_rules_matrix.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lakehouse.catalog.sql_store import SqlStore
from tests.server.helpers import ApiClient
from tests.server.test_oidc import Issuer, bearer, oidc_app

RULES = {
    "admin": "'admin' in roles",
    "branches": "op in ['VIEW_REFERENCE', 'COMMIT_CHANGE_AGAINST_REFERENCE'] && 'eng' in roles",
    "bronze": "op in ['CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'eng' in roles "
    "&& (path == 'bronze' || path.startsWith('bronze.'))",
}


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(store: SqlStore, issuer: Issuer) -> Iterator[ApiClient]:
    with ApiClient(oidc_app(store, issuer, RULES)) as c:
        yield c


def head(client: ApiClient, issuer: Issuer, ref: str) -> str:
    response = client.get(f"/api/v2/trees/{ref}", headers=bearer(issuer, "root", "admin"))
    return str(response.json()["reference"]["hash"])


def namespaces(*names: str) -> dict[str, Any]:
    return {
        "commitMeta": {"message": "namespaces"},
        "operations": [
            {
                "type": "PUT",
                "key": {"elements": [n]},
                "content": {"type": "NAMESPACE", "elements": [n]},
            }
            for n in names
        ],
    }


@pytest.fixture
def branches(client: ApiClient, issuer: Issuer) -> dict[str, str]:
    """Branch ``dev`` off main and branch ``work`` with namespaces gold and bronze (admin)."""
    root = bearer(issuer, "root", "admin")
    for name in ("dev", "work"):
        target = {"type": "BRANCH", "name": "main", "hash": head(client, issuer, "main")}
        created = client.post(
            "/api/v2/trees", params={"name": name, "type": "BRANCH"}, json=target, headers=root
        )
        assert created.status_code == 200, created.text
    committed = client.post(
        f"/api/v2/trees/work@{head(client, issuer, 'work')}/history/commit",
        json=namespaces("gold", "bronze"),
        headers=root,
    )
    assert committed.status_code == 200, committed.text
    return {"work": committed.json()["targetBranch"]["hash"]}


def test_a_merge_is_refused_when_one_merged_key_is_not_allowed(
    client: ApiClient, issuer: Issuer, branches: dict[str, str]
) -> None:
    body = {"fromRefName": "work", "fromHash": branches["work"]}
    eng = bearer(issuer, "erin", "eng")
    refused = client.post(
        f"/api/v2/trees/dev@{head(client, issuer, 'dev')}/history/merge", json=body, headers=eng
    )
    assert refused.status_code == 403, refused.text
    message = refused.json()["message"]
    assert "'CREATE_ENTITY' is not allowed for role 'erin' on content 'gold'" in message
    assert "bronze" not in message
    # nothing was merged
    entries = client.get("/api/v2/trees/dev/entries", headers=bearer(issuer, "root", "admin"))
    assert entries.json()["entries"] == []
    # the admin may
    allowed = client.post(
        f"/api/v2/trees/dev@{head(client, issuer, 'dev')}/history/merge",
        json=body,
        headers=bearer(issuer, "root", "admin"),
    )
    assert allowed.status_code == 200, allowed.text


def test_a_transplant_is_refused_when_one_key_is_not_allowed(
    client: ApiClient, issuer: Issuer, branches: dict[str, str]
) -> None:
    body = {"fromRefName": "work", "hashesToTransplant": [branches["work"]]}
    eng = bearer(issuer, "erin", "eng")
    refused = client.post(
        f"/api/v2/trees/dev@{head(client, issuer, 'dev')}/history/transplant",
        json=body,
        headers=eng,
    )
    assert refused.status_code == 403, refused.text
    assert "on content 'gold'" in refused.json()["message"]
