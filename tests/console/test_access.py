"""The console under OIDC and Nessie's authorization rules: sign-in, and only what is allowed.

References are listed when ``VIEW_REFERENCE`` passes, tables when ``READ_ENTITY_VALUE``
passes; a page or a SQL query about anything else is a 403 naming the failed checks.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pydantic import SecretStr

from lakehouse.client import Lakehouse, connect
from lakehouse.console import WebConsole
from lakehouse.console.access import SESSION_COOKIE, TOKEN_COOKIE
from lakehouse.server.app import create_app
from lakehouse.server.oidc import OidcSettings, OidcVerifier
from lakehouse.server.settings import ServerSettings
from tests.server.helpers import ApiClient
from tests.server.test_oidc import ISSUER, Clock, Issuer

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
FORM = {"content-type": "application/x-www-form-urlencoded"}
RULES = {
    "readers": "op in ['VIEW_REFERENCE', 'READ_ENTRIES', 'READ_CONTENT_KEY', "
    "'LIST_COMMIT_LOG', 'READ_ENTITY_VALUE'] && 'readers' in roles",
    "analysts_main": "op in ['VIEW_REFERENCE', 'READ_ENTRIES'] && ref == 'main' "
    "&& 'analysts' in roles",
    "analysts_silver": "op in ['READ_CONTENT_KEY', 'READ_ENTITY_VALUE'] "
    "&& 'analysts' in roles && ref == 'main' && path.startsWith('silver')",
}


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """main with bronze.orders and silver.sales; branch dev."""
    with connect(create=True) as opened:
        main = opened.catalog("main")
        for ns in ("bronze", "silver"):
            main.create_namespace(ns)
        main.create_table("bronze.orders", schema=ROWS.schema).append(ROWS)
        main.create_table("silver.sales", schema=ROWS.schema).append(ROWS.slice(0, 2))
        opened.create_branch("dev", "main")
        yield opened


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(lh: Lakehouse, issuer: Issuer) -> Iterator[ApiClient]:
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles")
    verifier = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    settings = ServerSettings(oidc=oidc, authorization_rules=RULES)
    app = create_app(lh.store, settings=settings, oidc_verifier=verifier, console=WebConsole(lh))
    with ApiClient(app) as opened:
        yield opened


def token(issuer: Issuer, name: str, *roles: str) -> str:
    return issuer.token(preferred_username=name, realm_access={"roles": list(roles)})


def sign_in(client: ApiClient, value: str) -> httpx.Response:
    return client.post("/ui/login", content=f"token={value}&next=/ui/tables", headers=FORM)


def as_(issuer: Issuer, name: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(issuer, name, *roles)}"}


def get_json(client: ApiClient, url: str, headers: dict[str, str]) -> Any:
    sep = "&" if "?" in url else "?"
    response = client.get(f"{url}{sep}format=json", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_pages_ask_for_sign_in_under_oidc(client: ApiClient) -> None:
    page = client.get("/ui/tables")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=/ui/tables"
    assert client.get("/ui/tables?format=json").status_code == 401
    form = client.get("/ui/login")
    assert form.status_code == 200
    assert "OIDC access token" in form.text


def test_a_pasted_token_signs_in_with_an_httponly_cookie(client: ApiClient, issuer: Issuer) -> None:
    value = token(issuer, "rita", "readers")
    response = sign_in(client, value)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/tables"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=" in cookie
    page = client.get("/ui/tables")  # the client keeps the cookie
    assert page.status_code == 200
    assert "bronze.orders" in page.text
    assert "rita" in page.text
    client.get("/ui/logout")
    assert client.get("/ui/tables").status_code == 303


def test_a_bad_or_expired_token_does_not_sign_in(client: ApiClient, issuer: Issuer) -> None:
    assert sign_in(client, "not-a-jwt").status_code == 401
    expired = issuer.token(preferred_username="rita", exp=1, iat=0)
    assert sign_in(client, expired).status_code == 401
    assert TOKEN_COOKIE not in client._client.cookies
    # an expired token left in a cookie is no session
    client._client.cookies.set(TOKEN_COOKIE, expired)
    assert client.get("/ui/tables").status_code == 303


def test_references_are_listed_by_view_reference(client: ApiClient, issuer: Issuer) -> None:
    reader = get_json(client, "/", as_(issuer, "rita", "readers"))
    assert [r["name"] for r in reader["references"]] == ["dev", "main"]
    analyst = get_json(client, "/", as_(issuer, "ana", "analysts"))
    assert [r["name"] for r in analyst["references"]] == ["main"]
    nobody = get_json(client, "/", as_(issuer, "nobody"))
    assert nobody["references"] == []
    form = get_json(client, "/ui/compare", as_(issuer, "ana", "analysts"))
    assert form["references"] == ["main"]


def test_tables_are_listed_by_read_entity_value(client: ApiClient, issuer: Issuer) -> None:
    reader = get_json(client, "/ui/tables", as_(issuer, "rita", "readers"))
    assert [t["name"] for t in reader["tables"]] == ["bronze.orders", "silver.sales"]
    analyst = get_json(client, "/ui/tables", as_(issuer, "ana", "analysts"))
    assert [t["name"] for t in analyst["tables"]] == ["silver.sales"]
    refused = client.get("/ui/tables?ref=dev", headers=as_(issuer, "ana", "analysts"))
    assert refused.status_code == 403
    assert "'VIEW_REFERENCE' is not allowed for role 'ana' on reference 'dev'" in html.unescape(
        refused.text
    )


def test_a_table_page_needs_read_entity_value(client: ApiClient, issuer: Issuer) -> None:
    analyst = as_(issuer, "ana", "analysts")
    assert client.get("/ui/table/silver.sales", headers=analyst).status_code == 200
    refused = client.get("/ui/table/bronze.orders", headers=analyst)
    assert refused.status_code == 403
    assert "'READ_ENTITY_VALUE' is not allowed for role 'ana' on content 'bronze.orders'" in (
        html.unescape(refused.text)
    )
    assert "<html" in refused.text


def test_sql_runs_only_over_allowed_references_and_tables(
    client: ApiClient, issuer: Issuer
) -> None:
    analyst = as_(issuer, "ana", "analysts")
    ok = get_json(client, "/ui/sql?q=SELECT+count(*)+AS+n+FROM+silver.sales", analyst)
    assert ok["rows"] == [{"n": 2}]
    joined = client.get(
        "/ui/sql?q=SELECT+count(*)+FROM+silver.sales+JOIN+bronze.orders+USING+(id)&format=json",
        headers=analyst,
    )
    assert joined.status_code == 403
    assert "bronze.orders" in joined.json()["error"]
    other_ref = client.get(
        "/ui/sql?q=SELECT+1+AS+x+FROM+silver.sales&ref=dev&format=json", headers=analyst
    )
    assert other_ref.status_code == 403
    box = client.get("/ui/sql?ref=dev", headers=analyst)  # no box on a hidden reference
    assert box.status_code == 403
    assert client.get("/ui/sql", headers=analyst).status_code == 200
    reader = get_json(
        client, "/ui/sql?q=SELECT+count(*)+AS+n+FROM+bronze.orders", as_(issuer, "rita", "readers")
    )
    assert reader["rows"] == [{"n": 3}]


def test_history_and_commits_need_list_commit_log(
    client: ApiClient, issuer: Issuer, lh: Lakehouse
) -> None:
    head = lh.resolve("main").hash
    assert client.get("/ui/log", headers=as_(issuer, "rita", "readers")).status_code == 200
    assert client.get(f"/ui/commit/{head}", headers=as_(issuer, "rita", "readers")).status_code == (
        200
    )
    analyst = as_(issuer, "ana", "analysts")
    assert client.get("/ui/log", headers=analyst).status_code == 403
    assert client.get(f"/ui/commit/{head}", headers=analyst).status_code == 403
    assert client.get("/ui/compare?base=main&head=dev", headers=analyst).status_code == 403


def test_static_token_sessions_are_checked_as_the_anonymous_role(
    lh: Lakehouse,
) -> None:
    # the static token carries no identity: rules see role '' and no roles
    rules = {
        "anonymous_main": "op in ['VIEW_REFERENCE', 'READ_ENTRIES'] && ref == 'main' && role == ''"
    }
    settings = ServerSettings(token=SecretStr("s3cret"), authorization_rules=rules)
    with ApiClient(create_app(lh.store, settings=settings, console=WebConsole(lh))) as client:
        assert client.get("/").status_code == 303
        response = client.post("/ui/login", content="token=s3cret&next=/", headers=FORM)
        assert response.status_code == 303
        assert response.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
        refs = client.get("/?format=json").json()
        assert [r["name"] for r in refs["references"]] == ["main"]
        assert client.get("/ui/tables?ref=dev").status_code == 403
