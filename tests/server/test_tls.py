"""``lakehouse serve`` over HTTPS, with a throwaway CA made in the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.errors import ConfigError
from lakehouse.server import ServerSettings
from lakehouse.server.app import make_server, serving


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a CA and a 127.0.0.1 certificate it signed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(store: SqlStore, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    settings = ServerSettings(tls_certfile=str(cert), tls_keyfile=str(key))
    server = make_server(store, "127.0.0.1", 0, settings=settings, log_level="warning")
    with serving(server) as port:
        yield f"https://127.0.0.1:{port}", ca


def test_https_with_a_certificate_the_client_trusts(tls_server: tuple[str, Path]) -> None:
    url, ca = tls_server
    context = ssl.create_default_context(cafile=str(ca))
    response = httpx.get(f"{url}/api/v2/config", verify=context, timeout=10)
    assert response.json()["defaultBranch"] == "main"


def test_a_client_without_the_ca_refuses_the_server(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/api/v2/config", timeout=10)


def test_a_certificate_without_its_key_is_refused(store: SqlStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both"):
        make_server(store, settings=ServerSettings(tls_certfile=str(tmp_path / "x.pem")))
