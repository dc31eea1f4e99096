"""Real sign-in: Keycloak's tokens at ``lakehouse serve`` and at a real, authenticated Nessie.

Both servers are started once per test session, in parallel, each on its own loopback port
and each configured the way docs/operations.md tells an operator to:

* ``lakehouse serve --oidc-issuer <realm> --oidc-audience lakehouse --oidc-roles-claim roles
  --authorization-rules docker/nessie/authorization-rules.properties`` (a subprocess, fresh
  SQLite catalog);
* the Nessie runner jar of ``scripts/services/nessie.sh jar`` with
  ``nessie.server.authentication.enabled=true``, ``quarkus.oidc.*`` pointed at the same realm
  and ``nessie.server.authorization.enabled=true`` followed by the very same rules file, in
  its ``config/application.properties`` (in-memory store). The shared Nessie of
  ``nessie.sh start`` (port 19120) is never touched.

Tokens come from the Keycloak of ``scripts/services/keycloak.sh`` (realm
``docker/keycloak/lakehouse-realm.json``; its users' passwords and clients' secrets are read
from that file, they are development values).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
RULES_FILE = REPO / "docker" / "nessie" / "authorization-rules.properties"
REALM_FILE = REPO / "docker" / "keycloak" / "lakehouse-realm.json"
OTHER_REALM_FILE = REPO / "docker" / "keycloak" / "elsewhere-realm.json"
#: The audience both servers require (the realm's audience mappers add it).
AUDIENCE = "lakehouse"
#: The claim holding the realm roles (the realm's ``realm-roles`` mappers).
ROLES_CLAIM = "roles"
STARTUP_SECONDS = 240


def _secrets(realm_file: Path) -> tuple[dict[str, str], dict[str, str]]:
    realm = json.loads(realm_file.read_text(encoding="utf-8"))
    clients = {c["clientId"]: c["secret"] for c in realm["clients"] if c.get("secret")}
    passwords = {
        u["username"]: u["credentials"][0]["value"] for u in realm["users"] if u.get("credentials")
    }
    return clients, passwords


@dataclass
class Realm:
    """Gets real tokens from a Keycloak realm (secrets from the committed realm file)."""

    issuer: str
    realm_file: Path = REALM_FILE
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients, self.passwords = _secrets(self.realm_file)

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def _grant(self, data: Mapping[str, str]) -> dict[str, Any]:
        response = httpx.post(self.token_endpoint, data=dict(data), timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def client_credentials(self, client_id: str) -> dict[str, Any]:
        """The token response of the client-credentials grant of service account ``client_id``."""
        return self._grant(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": self.clients[client_id],
            }
        )

    def password(self, username: str, client_id: str = "lakehouse-cli") -> dict[str, Any]:
        """The token response of the password grant of user ``username`` (via the CLI client)."""
        return self._grant(
            {
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": self.clients[client_id],
                "username": username,
                "password": self.passwords[username],
                "scope": "openid",
            }
        )

    def token(self, principal: str) -> str:
        """A valid access token of ``principal``: a user name, or ``sa:<client id>``.

        Cached until 60 s before it expires (the matrix outlives one token).
        """
        cached = self._cache.get(principal)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if principal.startswith("sa:"):
            answer = self.client_credentials(principal.removeprefix("sa:"))
        else:
            answer = self.password(principal)
        token = str(answer["access_token"])
        self._cache[principal] = (token, time.monotonic() + int(answer["expires_in"]) - 60)
        return token


@dataclass(frozen=True)
class Server:
    """One server under test: its name in reports and its API v2 base URL."""

    name: str
    api: str

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Nessie-Client-Spec": "2", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.api, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def realm(keycloak_issuer: str) -> Realm:
    return Realm(keycloak_issuer)


@pytest.fixture(scope="session")
def other_realm(keycloak_issuer: str) -> Realm:
    """Realm ``elsewhere`` of the same Keycloak: another issuer, other keys."""
    base = keycloak_issuer.rsplit("/realms/", 1)[0]
    return Realm(f"{base}/realms/elsewhere", OTHER_REALM_FILE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("LAKEHOUSE_") and not k.startswith("LAKEHOUSE_TEST_"))
        and k != "NESSIE_REF"
    }
    env.update(extra)
    return env


def _nessie_script(command: str) -> str:
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "services" / "nessie.sh"), command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0:
        pytest.fail(f"scripts/services/nessie.sh {command}: {run.stderr.strip()}", pytrace=False)
    return run.stdout.strip().splitlines()[-1]


def nessie_properties(issuer: str, rules: str) -> str:
    """The authenticated Nessie's ``application.properties``: OIDC, authorization, ``rules``."""
    return "\n".join(
        [
            "nessie.server.authentication.enabled=true",
            f"quarkus.oidc.auth-server-url={issuer}",
            "quarkus.oidc.application-type=service",
            f"quarkus.oidc.token.audience={AUDIENCE}",
            "quarkus.oidc.token.principal-claim=preferred_username",
            f"quarkus.oidc.roles.role-claim-path={ROLES_CLAIM}",
            "nessie.server.authorization.enabled=true",
            rules,
        ]
    )


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def servers(
    keycloak_issuer: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """``lakehouse`` and ``nessie``: both servers, same issuer, same rules file."""
    rules = RULES_FILE.read_text(encoding="utf-8")
    # the real Nessie: its own folder (config/application.properties) and ports
    nessie_dir = tmp_path_factory.mktemp("nessie-oidc")
    (nessie_dir / "config").mkdir()
    (nessie_dir / "config" / "application.properties").write_text(
        nessie_properties(keycloak_issuer, rules), encoding="utf-8"
    )
    jar, java = _nessie_script("jar"), _nessie_script("java")
    port, mgmt_port = _free_port(), _free_port()
    nessie_log = (nessie_dir / "nessie.log").open("w")
    nessie = subprocess.Popen(
        [
            java,
            "-Xms64m",
            "-Xmx512m",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={mgmt_port}",
            "-Dquarkus.log.file.enable=false",
            "-Dquarkus.http.access-log.enabled=false",
            "-Dnessie.version.store.type=IN_MEMORY",
            "-jar",
            jar,
        ],
        cwd=nessie_dir,
        stdout=nessie_log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    # our server, meanwhile
    ours_dir = tmp_path_factory.mktemp("lakehouse-oidc")
    env = _clean_env(LAKEHOUSE_HOME=str(ours_dir / "home"))
    cli = [sys.executable, "-m", "lakehouse.cli"]
    ours: subprocess.Popen[str] | None = None
    ours_log = (ours_dir / "serve.log").open("w")
    try:
        subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, timeout=300)
        ours = subprocess.Popen(
            [
                *cli,
                "--output",
                "json",
                "serve",
                "--port",
                "0",
                "--log-level",
                "warning",
                "--oidc-issuer",
                keycloak_issuer,
                "--oidc-audience",
                AUDIENCE,
                "--oidc-roles-claim",
                ROLES_CLAIM,
                "--oidc-leeway",
                "0",  # as Quarkus: an expired token is refused at once
                "--authorization-rules",
                str(RULES_FILE),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=ours_log,
            text=True,
        )
        assert ours.stdout is not None
        document = ""
        for line in ours.stdout:
            document += line
            if line.rstrip() == "}":
                break
        else:
            ours.wait(timeout=30)
            pytest.fail(f"lakehouse serve exited: {(ours_dir / 'serve.log').read_text()}")
        ours_api = json.loads(document)["nessie_uri"]

        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{mgmt_port}/q/health/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if nessie.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "the authenticated Nessie did not start: "
                    + (nessie_dir / "nessie.log").read_text()[-3000:],
                    pytrace=False,
                )
            time.sleep(0.5)
        yield {
            "lakehouse": Server("lakehouse", ours_api),
            "nessie": Server("nessie", f"http://127.0.0.1:{port}/api/v2"),
        }
    finally:
        _stop(nessie)
        nessie_log.close()
        if ours is not None:
            _stop(ours)
            assert ours.stdout is not None
            ours.stdout.close()
        ours_log.close()


@pytest.fixture(params=["lakehouse", "nessie"])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    """Each server in turn."""
    return servers[str(request.param)]
