"""``/iceberg/…/v1/config`` of our server and of the real Nessie, compared key by key.

The real Nessie (``scripts/services/nessie.sh``, 0.99.0) serves its Iceberg REST catalog
only with a warehouse configured, so this module starts one of its own
(``helpers.private_nessie``: free loopback ports, a cache folder of its own) with a
properties file naming a warehouse ``warehouse`` (an S3 location that is
never written: only the config endpoint is asked, and the object-store health check is
off). It is stopped at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lakehouse.client import connect
from lakehouse.server.app import make_server, serving
from lakehouse.server.iceberg_rest import IcebergRestSettings
from tests.server.helpers import private_nessie

pytestmark = pytest.mark.integration

#: What the real Nessie needs to serve ``/iceberg``: a default warehouse.
NESSIE_PROPERTIES = """\
nessie.catalog.default-warehouse=warehouse
nessie.catalog.warehouses.warehouse.location=s3://bucket1/
nessie.catalog.service.s3.default-options.region=us-east-1
quarkus.smallrye-health.check."org.projectnessie.server.catalog.ObjectStoresHealthCheck".enabled=false
"""
#: The requests compared: (path, query).
REQUESTS = [
    ("/iceberg/v1/config", {}),
    ("/iceberg/v1/config", {"warehouse": "warehouse"}),
    ("/iceberg/main/v1/config", {}),
    ("/iceberg/dev/v1/config", {"warehouse": "warehouse"}),
]


@pytest.fixture(scope="module")
def real_nessie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real Nessie with an Iceberg warehouse, stopped at the end."""
    with private_nessie(tmp_path_factory.mktemp("real-nessie"), NESSIE_PROPERTIES) as url:
        yield url


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of ``lakehouse serve`` (both APIs) over a fresh embedded lakehouse."""
    lh = connect(tmp_path_factory.mktemp("ours") / "home", create=True)
    iceberg = IcebergRestSettings.from_settings(lh.settings)
    server = make_server(lh.store, "127.0.0.1", 0, log_level="warning", iceberg=iceberg)
    with lh, serving(server) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("path", "query"), REQUESTS)
def test_overrides_and_prefix_equal_the_real_nessies(
    real_nessie: str, ours: str, path: str, query: dict[str, str]
) -> None:
    real = httpx.get(f"{real_nessie}{path}", params=query, timeout=30)
    served = httpx.get(f"{ours}{path}", params=query, timeout=30)
    assert real.status_code == served.status_code == 200, (real.text, served.text)
    real_body, our_body = real.json(), served.json()

    real_overrides = {k: v.replace(real_nessie, ours) for k, v in real_body["overrides"].items()}
    real_overrides.pop("client.region", None)  # the real one's S3 setting, not a Nessie key
    assert sorted(our_body["overrides"]) == sorted(real_overrides)
    for key, value in real_overrides.items():
        assert our_body["overrides"][key] == value, key
    assert our_body["defaults"]["prefix"] == real_body["defaults"]["prefix"]


def test_neither_serves_a_config_without_the_version(real_nessie: str, ours: str) -> None:
    assert httpx.get(f"{real_nessie}/iceberg/config", timeout=30).status_code == 404
    assert httpx.get(f"{ours}/iceberg/config", timeout=30).status_code == 404
