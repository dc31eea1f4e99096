"""The server behind OIDC bearer tokens: 401 with the reason, 503 when the issuer is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server.authz import AccessDeniedError
from lakehouse.server.errors import map_error
from tests.server.helpers import ApiClient
from tests.server.test_oidc import Issuer, oidc_app


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(store: SqlStore, issuer: Issuer) -> Iterator[ApiClient]:
    with ApiClient(oidc_app(store, issuer)) as c:
        yield c


def test_a_valid_token_is_served(client: ApiClient, issuer: Issuer) -> None:
    response = client.get("/api/v2/trees", headers={"Authorization": f"Bearer {issuer.token()}"})
    assert response.status_code == 200
    assert [r["name"] for r in response.json()["references"]] == ["main"]


@pytest.mark.parametrize(
    "header",
    ["", "Basic dXNlcjpwdw==", "Bearer", "Bearer not.a.jwt", "Bearer " + "x" * 100_000],
)
def test_missing_or_malformed_credentials_are_401(client: ApiClient, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v2/trees", headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == 401
    assert response.json()["message"].startswith("Unauthorized: ")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_an_expired_token_is_401_with_the_reason(client: ApiClient, issuer: Issuer) -> None:
    token = issuer.token(exp=1)
    response = client.get("/api/v2/trees", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_iceberg_paths_need_a_token_too(client: ApiClient) -> None:
    assert client.get("/iceberg/v1/config").status_code == 401


def test_probes_stay_open(client: ApiClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_an_unreachable_issuer_is_503_never_accepted(client: ApiClient, issuer: Issuer) -> None:
    token = issuer.token()
    issuer.down = True
    response = client.get("/api/v2/trees", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert "identity provider" in response.json()["message"]


def test_access_denied_is_nessies_forbidden() -> None:
    status, code, message, _ = map_error(AccessDeniedError("'X' is not allowed"))
    assert (status, code, message) == (403, "FORBIDDEN", "'X' is not allowed")
