"""The library and the CLI sign in at Keycloak themselves (client credentials) and renew.

Both servers take the tokens the client gets on its own: ``lakehouse.connect()`` and the
``lakehouse`` command, configured only with the issuer, a client id and its secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

import lakehouse
from lakehouse.catalog.nessie_store import NessieStore
from lakehouse.catalog.oauth2 import ClientCredentials, SignInError
from tests.server.keycloak.conftest import Realm, Server

pytestmark = pytest.mark.integration


def oauth2(realm: Realm, client_id: str = "lakehouse-etl") -> dict[str, str]:
    return {
        "issuer": realm.issuer,
        "client_id": client_id,
        "client_secret": realm.clients[client_id],
    }


def test_connect_signs_in_with_client_credentials(server: Server, realm: Realm) -> None:
    name = f"etl-{server.name}-{time.time_ns()}"
    with lakehouse.connect(server.api, catalog={"oauth2": oauth2(realm)}) as lh:
        created = lh.create_branch(name)  # the engineer rule: any branch but main
        assert name in [b.name for b in lh.branches()]
        assert created.hash == lh.store.get_reference("main").hash


def test_connect_with_a_wrong_secret_is_a_sign_in_error(server: Server, realm: Realm) -> None:
    settings = {**oauth2(realm), "client_secret": "not-the-secret"}
    with (
        pytest.raises(
            SignInError, match=r"refused: \w+ \(Invalid client or Invalid client"
        ) as raised,
        lakehouse.connect(server.api, catalog={"oauth2": settings}) as lh,
    ):
        lh.branches()
    assert "not-the-secret" not in str(raised.value)


def test_a_one_second_token_is_renewed_while_the_client_works(server: Server, realm: Realm) -> None:
    credentials = ClientCredentials(
        "lakehouse-short-lived",
        SecretStr(realm.clients["lakehouse-short-lived"]),
        issuer=realm.issuer,
    )
    store = NessieStore(server.api, auth=credentials)
    tokens = []
    for _ in range(4):
        assert store.get_reference("main").name == "main"  # never refused, however slow
        tokens.append(credentials.token().get_secret_value())
        time.sleep(1.0)  # past the renewal point (0.9 s) of a 1 s token
    store.close()
    assert len(set(tokens)) == 4


def _cli(
    args: list[str], server: Server, realm: Realm, tmp_path: Path, secret: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("LAKEHOUSE_") and not k.startswith("LAKEHOUSE_TEST_"))
    }
    env.update(
        {
            "LAKEHOUSE_HOME": str(tmp_path / "home"),
            "LAKEHOUSE_CATALOG__URI": server.api,
            "LAKEHOUSE_CATALOG__OAUTH2__ISSUER": realm.issuer,
            "LAKEHOUSE_CATALOG__OAUTH2__CLIENT_ID": "lakehouse-etl",
            "LAKEHOUSE_CATALOG__OAUTH2__CLIENT_SECRET": secret,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_signs_in_from_the_environment(
    server: Server, realm: Realm, tmp_path: Path
) -> None:
    name = f"cli-{server.name}-{time.time_ns()}"
    created = _cli(
        ["branch", "create", name], server, realm, tmp_path, realm.clients["lakehouse-etl"]
    )
    assert created.returncode == 0, created.stderr
    listed = _cli(["branch", "list"], server, realm, tmp_path, realm.clients["lakehouse-etl"])
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout


def test_the_cli_with_a_wrong_secret_is_one_line_and_exit_1(
    server: Server, realm: Realm, tmp_path: Path
) -> None:
    result = _cli(["branch", "list"], server, realm, tmp_path, "wrong-secret-value")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: cannot sign in as client 'lakehouse-etl'")
    assert "refused: unauthorized_client (Invalid client or Invalid client credentials)" in lines[0]
    assert "wrong-secret-value" not in result.stderr + result.stdout
