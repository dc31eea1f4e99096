"""Fixtures of the fault-injection tier: Toxiproxy between the lakehouse and its services.

``toxiproxy`` is the server of ``scripts/services/toxiproxy.sh`` (its API URL in
LAKEHOUSE_TEST_TOXIPROXY_URL, which ``make test-integration`` and CI always set); the
tests skip, saying so, only when that variable is absent. ``proxy_to(upstream)`` makes a
proxy of its own for one test and removes it afterwards, so tests never share toxics.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pytest

from lakehouse.storage import BUCKETS
from tests.faults.services import lakehouse_serve
from tests.faults.toxiproxy import Proxy, Toxiproxy

TOXIPROXY_URL_ENV = "LAKEHOUSE_TEST_TOXIPROXY_URL"
NESSIE_URL_ENV = "LAKEHOUSE_TEST_NESSIE_URL"


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[Toxiproxy]:
    """The Toxiproxy API of the integration tier."""
    url = os.environ.get(TOXIPROXY_URL_ENV)
    if not url:
        pytest.skip(
            f"{TOXIPROXY_URL_ENV} is not set: fault-injection tests need Toxiproxy "
            "(`make test-integration` starts it; or `scripts/services/toxiproxy.sh start` "
            "and export the URL it prints)"
        )
    api = Toxiproxy(url)
    api.version()  # fail here, clearly, if the variable points at nothing
    yield api
    api.close()


@pytest.fixture
def proxy_to(toxiproxy: Toxiproxy) -> Iterator[Callable[[str], Proxy]]:
    """``proxy_to("host:port")``: a new proxy for this test, deleted afterwards."""
    made: list[Proxy] = []

    def make(upstream: str) -> Proxy:
        proxy = toxiproxy.create_proxy(f"lh-test-{uuid.uuid4().hex[:10]}", upstream)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.delete()


def host_port(url: str) -> str:
    """``host:port`` of a URL (default ports filled in)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def through(url: str, proxy: Proxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.listen}" if userinfo else proxy.listen
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture(params=["lakehouse-serve", "nessie"])
def catalog_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """API v2 URL of the catalog server under test: ours on PostgreSQL, or the real Nessie.

    Our server's warehouse is ``tmp_path / "warehouse"``: the test's lakehouse must use it.
    """
    if request.param == "nessie":
        yield request.getfixturevalue("nessie_url")
        return
    catalog = request.getfixturevalue("fresh_postgres_url")
    server_home, warehouse = tmp_path / "server-home", tmp_path / "warehouse"
    with lakehouse_serve(catalog, server_home, warehouse=warehouse) as url:
        yield url


@pytest.fixture
def nessie_url() -> str:
    """The real Nessie server's API v2 URL (shared: never restarted by these tests)."""
    url = os.environ.get(NESSIE_URL_ENV)
    if not url:
        pytest.fail(
            f"{NESSIE_URL_ENV} is not set: run `make test-integration` "
            "(or `scripts/services/nessie.sh start` and export the URL it prints)",
            pytrace=False,
        )
    return url


@pytest.fixture
def prefix(s3_settings: dict[str, str]) -> Iterator[str]:
    """A fresh prefix in every (shared) bucket, deleted afterwards."""
    name = f"faults-{uuid.uuid4().hex[:8]}"
    yield name
    s3 = pafs.S3FileSystem(
        endpoint_override=s3_settings["endpoint"],
        access_key=s3_settings["access_key_id"],
        secret_key=s3_settings["secret_access_key"],
        region="us-east-1",
        force_virtual_addressing=False,
    )
    for bucket in BUCKETS:
        with contextlib.suppress(FileNotFoundError, OSError):
            s3.delete_dir(f"{bucket}/{name}")


@pytest.fixture
def s3_proxy(s3_settings: dict[str, str], proxy_to: Callable[[str], Proxy]) -> Proxy:
    return proxy_to(host_port(s3_settings["endpoint"]))
