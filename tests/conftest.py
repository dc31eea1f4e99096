"""Fixtures shared by every test tier.

- Every test runs with an isolated configuration (autouse): no developer
  settings, no `.env` file from the working copy.
- `postgres_url` / `fresh_postgres_url` serve the integration tier; the server
  comes from `scripts/services/postgres.sh` (`make test-integration` starts it and
  sets LAKEHOUSE_TEST_POSTGRES_URL).
- `s3_settings` serves the integration tier's S3 server from `scripts/services/minio.sh`
  (LAKEHOUSE_TEST_S3_ENDPOINT, LAKEHOUSE_TEST_S3_ACCESS_KEY, LAKEHOUSE_TEST_S3_SECRET_KEY).
- `keycloak_issuer` is the issuer URL of realm `lakehouse` on the Keycloak of
  `scripts/services/keycloak.sh` (LAKEHOUSE_TEST_KEYCLOAK_URL).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_URL_ENV = "LAKEHOUSE_TEST_POSTGRES_URL"
KEYCLOAK_URL_ENV = "LAKEHOUSE_TEST_KEYCLOAK_URL"
S3_ENV = (
    "LAKEHOUSE_TEST_S3_ENDPOINT",
    "LAKEHOUSE_TEST_S3_ACCESS_KEY",
    "LAKEHOUSE_TEST_S3_SECRET_KEY",
)


@pytest.fixture(autouse=True)
def _isolate_lakehouse_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in `tmp_path` with only test-controlled settings.

    Removes every LAKEHOUSE_* variable (except the LAKEHOUSE_TEST_* ones that
    point tests at services), NESSIE_REF and PYICEBERG_* variables, hides the
    developer's ~/.pyiceberg.yaml, points LAKEHOUSE_HOME into `tmp_path` and
    changes the working directory to `tmp_path` so that no `.env` file is read.
    Returns the LAKEHOUSE_HOME path (not created).
    """
    for name in list(os.environ):
        if (
            (name.startswith("LAKEHOUSE_") and not name.startswith("LAKEHOUSE_TEST_"))
            or name == "NESSIE_REF"
            or name.startswith("PYICEBERG_")
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "lakehouse_home"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    monkeypatch.chdir(tmp_path)

    # As pyiceberg's own `_isolate_pyiceberg_config`: no configuration file, and
    # the module-level config that `load_catalog` uses rebuilt without it.
    import pyiceberg.catalog
    from pyiceberg.utils.config import Config

    monkeypatch.setattr(Config, "_from_configuration_files", staticmethod(lambda: None))
    monkeypatch.setattr(pyiceberg.catalog, "_ENV_CONFIG", Config())
    return home


@pytest.fixture
def postgres_url() -> str:
    """SQLAlchemy URL of the PostgreSQL server of the integration tier.

    A missing server is a failure, not a skip: `make test-integration` starts it.
    """
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.fail(
            f"{POSTGRES_URL_ENV} is not set: run `make test-integration` "
            "(or `scripts/services/postgres.sh start` and export the URL it prints)",
            pytrace=False,
        )
    return url


@contextmanager
def new_database(postgres_url: str, name: str) -> Iterator[str]:
    """A new, empty database called ``name`` on the server of ``postgres_url``: its URL.

    Dropped (connections forced out) when the block ends.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url)
    # psycopg takes a libpq URL: same URL without the SQLAlchemy driver suffix.
    admin_conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_conninfo, autocommit=True) as conn:
            conn.execute(drop)


@pytest.fixture
def fresh_postgres_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty database on the test server, dropped after the test."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    with new_database(postgres_url, f"lh_{slug}_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture
def s3_settings() -> dict[str, str]:
    """``S3Settings`` fields of the integration tier's S3 server (buckets already created).

    A missing server is a failure, not a skip: `make test-integration` starts it.
    """
    missing = [name for name in S3_ENV if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: run `make test-integration` "
            "(or `scripts/services/minio.sh start` and export its url, access-key, secret-key)",
            pytrace=False,
        )
    endpoint, access_key, secret_key = (os.environ[name] for name in S3_ENV)
    return {"endpoint": endpoint, "access_key_id": access_key, "secret_access_key": secret_key}


@pytest.fixture(scope="session")
def keycloak_issuer() -> str:
    """Issuer URL of realm ``lakehouse`` (docker/keycloak/lakehouse-realm.json) on Keycloak.

    A missing server is a failure, not a skip: `make test-integration` starts it.
    """
    url = os.environ.get(KEYCLOAK_URL_ENV)
    if not url:
        pytest.fail(
            f"{KEYCLOAK_URL_ENV} is not set: run `make test-integration` "
            "(or `scripts/services/keycloak.sh start` and export the URL it prints)",
            pytrace=False,
        )
    return url.rstrip("/")
