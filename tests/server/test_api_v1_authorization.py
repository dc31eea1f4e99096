"""API v1 behind OIDC and Nessie's authorization rules: the same checks and audit as v2.

The rules and principals are those of ``test_authorization.py`` (readers read; writers
commit on ``dev*`` branches only; admin does anything).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from lakehouse.catalog.sql_store import SqlStore
from tests.server.helpers import ApiClient
from tests.server.test_authorization import RULES, namespace_put
from tests.server.test_oidc import Issuer, bearer, oidc_app

V1 = "/api/v1"


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(store: SqlStore, issuer: Issuer) -> Iterator[ApiClient]:
    with ApiClient(oidc_app(store, issuer, RULES)) as c:
        yield c


def head(client: ApiClient, issuer: Issuer, ref: str) -> str:
    response = client.get(f"{V1}/trees/tree/{ref}", headers=bearer(issuer, "admin"))
    return str(response.json()["hash"])


def test_v1_needs_a_token(client: ApiClient) -> None:
    assert client.get(f"{V1}/trees").status_code == 401


def test_v1_readers_read_but_cannot_commit_create_or_write_namespaces(
    client: ApiClient, issuer: Issuer
) -> None:
    reader = bearer(issuer, "rita", "readers")
    main = head(client, issuer, "main")
    assert client.get(f"{V1}/trees/tree/main/log", headers=reader).status_code == 200
    assert client.get(f"{V1}/trees/tree/main/entries", headers=reader).status_code == 200
    denied = client.post(
        f"{V1}/trees/branch/main/commit",
        params={"expectedHash": main},
        json=namespace_put("bronze"),
        headers=reader,
    )
    assert denied.status_code == 403 and denied.json()["errorCode"] == "FORBIDDEN"
    create = client.post(
        f"{V1}/trees/tree",
        json={"type": "BRANCH", "name": "dev", "hash": main},
        headers=reader,
    )
    assert create.status_code == 403
    namespace = client.put(
        f"{V1}/namespaces/namespace/main/bronze", json={"elements": ["bronze"]}, headers=reader
    )
    assert namespace.status_code == 403


def test_v1_writers_commit_on_dev_branches_only(client: ApiClient, issuer: Issuer) -> None:
    writer = bearer(issuer, "wes", "writers", "readers")
    main = head(client, issuer, "main")
    created = client.post(
        f"{V1}/trees/tree",
        params={"sourceRefName": "main"},
        json={"type": "BRANCH", "name": "dev1", "hash": main},
        headers=writer,
    )
    assert created.status_code == 200, created.text
    on_dev = client.post(
        f"{V1}/trees/branch/dev1/commit",
        params={"expectedHash": main},
        json=namespace_put("bronze"),
        headers=writer,
    )
    assert on_dev.status_code == 200, on_dev.text
    on_main = client.post(
        f"{V1}/trees/branch/main/commit",
        params={"expectedHash": main},
        json=namespace_put("bronze"),
        headers=writer,
    )
    assert on_main.status_code == 403


def test_v1_writes_are_audited_like_v2(
    client: ApiClient, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lakehouse.audit")
    main = head(client, issuer, "main")
    url = f"{V1}/trees/branch/main/commit"
    reader, admin = bearer(issuer, "rita", "readers"), bearer(issuer, "admin")
    body = namespace_put("bronze")
    params = {"expectedHash": main}
    assert client.post(url, params=params, json=body, headers=reader).status_code == 403
    done = client.post(url, params=params, json=body, headers=admin)
    assert done.status_code == 200
    lines = [json.loads(r.message) for r in caplog.records if r.name == "lakehouse.audit"]
    assert [(x["principal"], x["operation"], x["ref"], x["outcome"]) for x in lines] == [
        ("rita", "commit", "main", "denied"),
        ("admin", "commit", "main", "ok"),
    ]
    assert lines[1]["expectedHash"] == main
    assert lines[1]["resultHash"] == done.json()["hash"]
    assert lines[1]["keys"] == ["bronze"]
