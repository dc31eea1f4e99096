"""``/iceberg/…/v1/config`` of our server and of the real Nessie, compared key by key.

The real Nessie (``scripts/services/nessie.sh``, 0.99.0) serves its Iceberg REST catalog
only with a warehouse configured, so this module starts one of its own: on free loopback
ports, with a cache folder of its own (the runner jar linked from the shared cache when it
is there) and a properties file naming a warehouse ``warehouse`` (an S3 location that is
never written: only the config endpoint is asked, and the object-store health check is
off). It is stopped at the end of the module.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakehouse.client import connect
from lakehouse.server.app import make_server, serving
from lakehouse.server.iceberg_rest import IcebergRestSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NESSIE_SH = ROOT / "scripts" / "services" / "nessie.sh"
NESSIE_VERSION = "0.99.0"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def real_nessie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real Nessie with an Iceberg warehouse, stopped at the end."""
    folder = tmp_path_factory.mktemp("real-nessie")
    shared = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse"))
    jar = f"nessie/nessie-quarkus-{NESSIE_VERSION}-runner.jar"
    (folder / "cache" / "nessie").mkdir(parents=True)
    if (shared / jar).is_file():
        (folder / "cache" / jar).symlink_to(shared / jar)
    properties = folder / "nessie.properties"
    properties.write_text(NESSIE_PROPERTIES)
    port = _free_port()
    env = {
        **os.environ,
        "LAKEHOUSE_CACHE": str(folder / "cache"),
        "LAKEHOUSE_NESSIE_VERSION": NESSIE_VERSION,
        "LAKEHOUSE_NESSIE_PORT": str(port),
        "LAKEHOUSE_NESSIE_MGMT_PORT": str(_free_port()),
        "JAVA_TOOL_OPTIONS": f"-Dquarkus.config.locations={properties.as_uri()}",
    }
    started = subprocess.run(
        ["bash", str(NESSIE_SH), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(NESSIE_SH), "stop"], env=env, capture_output=True, timeout=120)


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
