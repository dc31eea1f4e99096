"""docker/nessie/application.properties: real Nessie/Quarkus keys only.

Fast tier: every key matches a property documented in Nessie's server configuration
reference (patterns below, each with its section); no secret literal; OAuth2 steps in the
comments. Integration tier: the real Nessie server (the runner jar of
scripts/services/nessie.sh) starts with the file — Nessie refuses any unknown nessie.* or
quarkus.* key at start (quarkus.config.mapping.validate-unknown=true) — and refuses it
again with one misspelt key, so the check can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

PROPERTIES = REPO / "docker" / "nessie" / "application.properties"

#: Documented keys (Nessie "Server Configuration" reference, Quarkus config reference).
DOCUMENTED = [
    r"quarkus\.http\.port",  # Quarkus HTTP
    r"quarkus\.management\.port",  # Quarkus management interface (health, metrics)
    r"nessie\.server\.default-branch",  # Nessie server settings
    r"nessie\.server\.authentication\.enabled",  # Nessie authentication
    r"nessie\.version\.store\.type",  # version store: IN_MEMORY, JDBC2, ...
    r"nessie\.version\.store\.persist\.jdbc\.datasource",  # JDBC version store
    r"quarkus\.datasource\.postgresql\.(jdbc\.url|username|password)",  # Quarkus datasource
    r"nessie\.catalog\.default-warehouse",  # catalog: warehouse defaults
    r"nessie\.catalog\.warehouses\.[a-z0-9-]+\.location",  # catalog: warehouses
    r"nessie\.catalog\.service\.s3\.default-options\."
    r"(endpoint|path-style-access|region|access-key)",  # catalog: S3 default options
    r"quarkus\.oidc\.(auth-server-url|client-id|credentials\.secret)",  # OIDC
]
#: Secret references of `access-key=urn:nessie-secret:quarkus:<name>` (any prefix).
SECRET_REF = re.compile(r"urn:nessie-secret:quarkus:([a-z0-9-]+)")


def entries(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            assert key.strip() not in result, f"duplicate key {key}"
            result[key.strip()] = value.strip()
    return result


def test_keys_are_documented() -> None:
    props = entries(PROPERTIES.read_text())
    secret_names = set(SECRET_REF.findall(" ".join(props.values())))
    for key in props:
        if key.split(".")[0] in secret_names:
            assert key.rsplit(".", 1)[1] in ("name", "secret"), key
            continue
        assert any(re.fullmatch(p, key) for p in DOCUMENTED), f"undocumented key {key}"


def test_jdbc2_on_postgres() -> None:
    props = entries(PROPERTIES.read_text())
    assert props["nessie.version.store.type"] == "JDBC2"
    assert props["nessie.version.store.persist.jdbc.datasource"] == "postgresql"
    assert (
        "jdbc:postgresql://postgres:5432/nessie" in props["quarkus.datasource.postgresql.jdbc.url"]
    )


def test_warehouses_are_the_buckets() -> None:
    props = entries(PROPERTIES.read_text())
    default = props["nessie.catalog.default-warehouse"]
    warehouses = {
        k.split(".")[3]: v for k, v in props.items() if k.startswith("nessie.catalog.warehouses.")
    }
    assert default in warehouses
    assert warehouses == {b: f"s3://{b}/" for b in ("bronze", "silver", "gold", "iceberg-metadata")}


def test_no_secret_literals() -> None:
    props = entries(PROPERTIES.read_text())
    for key, value in props.items():
        if re.search(r"password|secret|\.name$", key):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", value), f"{key} holds a literal"
    assert props["nessie.catalog.service.s3.default-options.access-key"].startswith(
        "urn:nessie-secret:quarkus:"
    )


def test_oauth2_instructions_in_comments() -> None:
    text = PROPERTIES.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for key in (
        "nessie.server.authentication.enabled=true",
        "quarkus.oidc.auth-server-url=",
        "quarkus.oidc.client-id=",
        "quarkus.oidc.credentials.secret=",
    ):
        assert key in comments, key
    assert entries(text)["nessie.server.authentication.enabled"] == "false"


# --- the real server --------------------------------------------------------------------


def _java21() -> str:
    candidates = [os.environ.get("LAKEHOUSE_NESSIE_JAVA", "")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java"))
    candidates.append(shutil.which("java") or "")
    for java in candidates:
        if not java or not os.access(java, os.X_OK):
            continue
        out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
        match = re.search(r'version "(\d+)', out)
        if match and int(match.group(1)) >= 21:
            return java
    pytest.fail("no Java 21+ for the Nessie server (scripts/services/nessie.sh needs one too)")


def _nessie_jar() -> Path:
    version = os.environ.get("LAKEHOUSE_NESSIE_VERSION", "0.99.0")
    cache = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse"))
    jar = cache.expanduser() / "nessie" / f"nessie-quarkus-{version}-runner.jar"
    if not jar.is_file():  # downloaded (and checked) by the service script
        subprocess.run(["bash", str(REPO / "scripts/services/nessie.sh"), "start"], check=True)
    assert jar.is_file(), jar
    return jar


def start_nessie(properties: str, workdir: Path) -> tuple[int, str]:
    """Start the real Nessie server with `properties` as config/application.properties.

    The version store is switched to IN_MEMORY on the command line (no PostgreSQL
    needed; every key is still validated). Returns (0, log) once the server listens, or
    (exit code, log) when it refused to start.
    """
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "application.properties").write_text(properties)
    log = workdir / "nessie.log"
    env = {
        **os.environ,
        "NESSIE_DB_PASSWORD": "test-only",
        "MINIO_ROOT_USER": "test-only",
        "MINIO_ROOT_PASSWORD": "test-only",
        "NESSIE_OIDC_CLIENT_SECRET": "test-only",
    }
    args = [
        _java21(), "-Xmx384m",
        "-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=0",
        "-Dquarkus.management.host=127.0.0.1", "-Dquarkus.management.port=0",
        "-Dquarkus.log.file.enable=false", "-Dnessie.version.store.type=IN_MEMORY",
        "-jar", str(_nessie_jar()),
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if " started in " in text and "Listening on" in text:
                return 0, text
            code = proc.poll()
            if code is not None:
                return code, log.read_text(errors="replace")
            time.sleep(0.5)
        pytest.fail(f"Nessie neither started nor failed within 180 s:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.integration
def test_real_nessie_accepts_the_file(tmp_path: Path) -> None:
    code, log = start_nessie(PROPERTIES.read_text(), tmp_path / "ok")
    assert code == 0, log[-3000:]
    assert "SRCFG" not in log


@pytest.mark.integration
def test_real_nessie_refuses_a_misspelt_key(tmp_path: Path) -> None:
    text = PROPERTIES.read_text().replace(
        "nessie.catalog.warehouses.gold.location", "nessie.catalog.warehouses.gold.locatoin"
    )
    code, log = start_nessie(text, tmp_path / "typo")
    assert code != 0
    assert "nessie.catalog.warehouses.gold.locatoin" in log and "does not map" in log
