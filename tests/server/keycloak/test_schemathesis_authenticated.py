"""Fuzzing the authenticated server (schemathesis) with a real, valid Keycloak token: no 5xx.

The app is the one ``lakehouse serve --oidc-issuer <realm> --authorization-rules
docker/nessie/authorization-rules.properties`` builds: every request passes the OIDC
middleware (the token is verified against Keycloak's JWKS) and the authorization rules
before reaching a handler. The token is alice's (role ``admin``, allowed everything by the
rules), so that generated requests reach the handlers and the data; the catalog holds a
branch, a tag, a namespace and a table. Every operation of ``/openapi.json`` gets
``LAKEHOUSE_SCHEMATHESIS_AUTH_EXAMPLES`` requests (default 5, to stay within about three
minutes on a loaded 2-core machine; raise it for a deeper run).
Checks: no 5xx, and every response matches the documented schema for its status.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from lakehouse.server import ServerSettings, create_app
from lakehouse.server.authz import RULE_PREFIX, parse_properties
from lakehouse.server.oidc import OidcSettings
from tests.conftest import KEYCLOAK_URL_ENV
from tests.server.keycloak.conftest import AUDIENCE, ROLES_CLAIM, RULES_FILE, Realm
from tests.server.test_schemathesis import _seeded_store

EXAMPLES = int(os.environ.get("LAKEHOUSE_SCHEMATHESIS_AUTH_EXAMPLES", "5"))


def _authenticated_app() -> Any:
    """The app over a seeded catalog, requiring tokens of the realm in the environment.

    Built at collection (the schema drives parametrization); without
    LAKEHOUSE_TEST_KEYCLOAK_URL the issuer is a placeholder and the test fails on its
    ``realm`` fixture, as every test of this tier does.
    """
    issuer = os.environ.get(KEYCLOAK_URL_ENV, "http://127.0.0.1:9/realms/unset").rstrip("/")
    rules = {
        k.removeprefix(RULE_PREFIX): v
        for k, v in parse_properties(RULES_FILE.read_text(encoding="utf-8")).items()
        if k.startswith(RULE_PREFIX)
    }
    return create_app(
        _seeded_store(Path(_TMP.name) / "catalog.db"),
        settings=ServerSettings(
            oidc=OidcSettings(issuer=issuer, audience=AUDIENCE, roles_claim=ROLES_CLAIM),
            authorization_rules=rules,
        ),
    )


_TMP = tempfile.TemporaryDirectory(prefix="lakehouse-schemathesis-auth-")
schema = schemathesis.openapi.from_asgi("/openapi.json", _authenticated_app())


@pytest.mark.integration
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_the_authenticated_api_never_answers_5xx(case: schemathesis.Case, realm: Realm) -> None:
    token = realm.token("alice")
    case.call_and_validate(
        headers={"Nessie-Client-Spec": "2", "Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
