"""docker/: the Compose file, its env template, init scripts and Dockerfiles (fast tier).

The same file is resolved by compose-go in test_compose_config.py (integration tier).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import (
    BUCKETS,
    COMPOSE_FILE,
    REPO,
    TEST_SECRETS,
    env_example_names,
    load_compose,
)

#: Services the operations guide and DESIGN.md name.
SERVICES = {
    "minio",
    "minio-init",
    "postgres",
    "nessie",
    "catalog",
    "spark-master",
    "spark-worker",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "kafka",
    "nifi",
    "dremio",
    "trino",
    "prometheus",
    "pushgateway",
    "grafana",
}
#: Services without a healthcheck, and why.
ONE_SHOT = {
    "minio-init": "creates the buckets and exits",
    "airflow-init": "migrates the Airflow database and exits",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|ACCESS_KEY|_USER(NAME)?$")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:[?-][^}]*)?\}")


def services() -> dict[str, Any]:
    result = load_compose()["services"]
    assert isinstance(result, dict)
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping (NAME: value)"
    return {str(k): str(v) for k, v in env.items()}


def test_all_services_defined() -> None:
    assert set(services()) == SERVICES


def test_profiles() -> None:
    svc = services()
    assert svc["catalog"]["profiles"] == ["catalog"]
    assert svc["kafka"]["profiles"] == ["cdc"]
    default = {name for name, s in svc.items() if not s.get("profiles")}
    assert {"nessie", "minio", "postgres", "spark-master", "nifi", "dremio", "trino"} <= default


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_or_one_shot(name: str) -> None:
    service = services()[name]
    if name in ONE_SHOT:
        assert "healthcheck" not in service
        assert service.get("restart") == "no"
        return
    check = service.get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert not check.get("disable")


def test_dependents_wait_for_health() -> None:
    svc = services()
    assert svc["nessie"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc["nessie"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )
    assert svc["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor"):
        assert svc[name]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )


@pytest.mark.parametrize("name", ["nifi", "spark-worker"])
def test_scalable_services(name: str) -> None:
    """`docker compose up -d --scale nifi=2` (the guide) needs no fixed name or host port."""
    service = services()[name]
    assert "container_name" not in service
    for port in service.get("ports", []):
        assert ":" not in str(port), f"{name} publishes a fixed host port: {port}"
    for volume in service.get("volumes", []):
        source = str(volume).split(":")[0]
        assert source.startswith("/"), f"{name} replicas would share volume {volume}"


def test_no_container_names() -> None:
    """`logs -f <service>` addresses services by name; container names only get in the way."""
    assert not [n for n, s in services().items() if "container_name" in s]


def test_no_literal_secrets() -> None:
    """Every secret-looking value is an interpolation from the env file, never a literal."""
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith(("_FILE", "_MANAGER_USERS")):
                assert INTERPOLATION.fullmatch(value), f"{name}: {key}={value!r} is a literal"
    text = COMPOSE_FILE.read_text()
    for literal in ("minioadmin", "lakehouse-dev-secret", *TEST_SECRETS.values()):
        assert literal not in text


def test_required_secrets_fail_when_missing() -> None:
    """Secrets use ${NAME:?…}: compose stops with the name instead of starting unprotected."""
    text = COMPOSE_FILE.read_text()
    for secret in TEST_SECRETS:
        if secret == "LAKEHOUSE_CATALOG__TOKEN":  # optional for clients, required by `catalog`
            assert f"${{{secret}:?" in text
            continue
        uses = re.findall(r"\$\{" + re.escape(secret) + r"(:[?-])", text)
        assert uses, f"{secret} is not used"
        assert set(uses) == {":?"}, f"{secret} has a default somewhere"


def test_env_example_lists_every_variable_without_values() -> None:
    entries = env_example_names()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text()))
    assert required == set(TEST_SECRETS)
    assert required <= set(entries)
    assert all(entries[name] == "" for name in required), "no value in the template"


def test_connection_strings_take_passwords_from_env() -> None:
    svc = services()
    conn = environment(svc["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "${AIRFLOW_DB_PASSWORD:?" in conn
    uri = environment(svc["catalog"])["LAKEHOUSE_CATALOG__URI"]
    assert uri.startswith("postgresql+psycopg://lakehouse:${LAKEHOUSE_DB_PASSWORD:?")


def test_named_volumes_for_state() -> None:
    data = load_compose()
    declared = set(data["volumes"])
    used = set()
    for service in data["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    assert {"minio-data", "postgres-data", "kafka-data", "dremio-data"} <= declared


def test_images_pinned() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert "/" not in tag


def test_nessie_is_real_and_configured_from_file() -> None:
    nessie = services()["nessie"]
    assert nessie["image"].startswith("ghcr.io/projectnessie/nessie:")
    assert (
        "./nessie/application.properties:/deployments/config/application.properties:ro"
        in nessie["volumes"]
    )


def test_catalog_runs_lakehouse_serve_with_token() -> None:
    catalog = services()["catalog"]
    command = catalog["command"]
    assert command[:2] == ["lakehouse", "serve"]
    assert command[command.index("--token-env") + 1] == "LAKEHOUSE_CATALOG__TOKEN"
    assert catalog["build"]["dockerfile"] == "docker/lakehouse/Dockerfile"


def test_trino_reads_its_catalog_files_with_secrets_from_its_environment() -> None:
    """docker/trino/catalog/*.properties: the Iceberg connector on the stack's catalog, every
    ${ENV:NAME} they use set on the service, and no secret written in them."""
    trino = services()["trino"]
    assert trino["image"] == "trinodb/trino:476"
    assert "./trino/catalog:/etc/trino/catalog:ro" in trino["volumes"]
    env = environment(trino)
    folder = REPO / "docker" / "trino" / "catalog"
    files = {p.stem: p.read_text() for p in sorted(folder.glob("*.properties"))}
    assert set(files) == {"lakehouse", "lakehouse_nessie"}
    types = {}
    for name, text in files.items():
        props = dict(
            line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
        assert props["connector.name"] == "iceberg", name
        types[name] = props["iceberg.catalog.type"]
        for used in re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", text):
            assert used in env, f"{name}.properties uses ${{ENV:{used}}}, unset on trino"
        for key in ("s3.aws-access-key", "s3.aws-secret-key"):
            assert props[key].startswith("${ENV:"), f"{name}: {key} is a literal"
    assert types == {"lakehouse": "rest", "lakehouse_nessie": "nessie"}
    assert env["LAKEHOUSE_CATALOG__URI"] == "${CATALOG_URI:-http://nessie:19120/api/v2}"
    assert env["LAKEHOUSE_ICEBERG_REST_URI"].endswith("http://nessie:19120/iceberg/}")


def test_airflow_mounts_dags_and_runs_each_component() -> None:
    svc = services()
    for name, command in (
        ("airflow-api-server", ["airflow", "api-server"]),
        ("airflow-scheduler", ["airflow", "scheduler"]),
        ("airflow-dag-processor", ["airflow", "dag-processor"]),
    ):
        assert svc[name]["command"] == command
        assert "../dags:/opt/airflow/dags:ro" in svc[name]["volumes"]
        assert environment(svc[name])["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"


def test_kafka_is_kraft() -> None:
    env = environment(services()["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in str(env).lower()


def test_buckets_script_creates_all_buckets() -> None:
    script = (REPO / "docker" / "minio" / "create-buckets.sh").read_text()
    assert 'mc mb --ignore-existing --with-lock "$alias_name/raw"' in script
    loop = re.search(r"for bucket in ([a-z -]+); do", script)
    assert loop is not None
    created = {"raw", *loop.group(1).split()}
    assert created == set(BUCKETS)
    assert 'mc version enable "$alias_name/$bucket"' in script


def test_postgres_init_creates_three_databases() -> None:
    script = REPO / "docker" / "postgres" / "init" / "10-databases.sh"
    text = script.read_text()
    for db in ("lakehouse", "nessie", "airflow"):
        assert re.search(rf'^create {db} "\$[A-Z_]+_DB_PASSWORD"$', text, re.M)
    helm_copy = REPO / "helm" / "charts" / "postgresql" / "files" / "10-databases.sh"
    assert helm_copy.read_text() == text, "helm/charts/postgresql/files/ must be the same script"


@pytest.mark.parametrize("dockerfile", ["lakehouse/Dockerfile", "airflow/Dockerfile"])
def test_dockerfiles(dockerfile: str) -> None:
    text = (REPO / "docker" / dockerfile).read_text()
    from_lines = re.findall(r"^ARG (?:PYTHON|AIRFLOW)_IMAGE=(\S+)$", text, re.M)
    assert from_lines and all(":" in image for image in from_lines)
    assert not re.search(r"(?i)(password|secret|token)\s*=", text)
    ignore = Path(str(REPO / "docker" / dockerfile) + ".dockerignore").read_text()
    assert ignore.splitlines()[2] == "*" or "*" in ignore.splitlines()


def test_lakehouse_image_extras() -> None:
    text = (REPO / "docker" / "lakehouse" / "Dockerfile").read_text()
    assert 'pip install ".[server,postgres,kafka,spark]"' in text


def test_makefile_up_down() -> None:
    makefile = (REPO / "Makefile").read_text()
    up = re.search(r"^up:.*\n((?:\t.*\n)+)", makefile, re.M)
    down = re.search(r"^down:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert up and down
    assert "--env-file" in up.group(1) and "up -d" in up.group(1)
    assert "down" in down.group(1)
    assert "docker info" in up.group(1), "up must fail fast without a Docker engine"


def test_docs_secret_conversion_matches_chart_keys(tmp_path: Path) -> None:
    """The `awk` line of docs/operations.md turns docker/.env into the chart's Secret keys."""
    import shutil
    import subprocess

    docs = (REPO / "docs" / "operations.md").read_text()
    match = re.search(r"^awk -F= '([^']+)'", docs, re.M)
    assert match, "docs/operations.md lost its awk line"
    env_file = tmp_path / "docker.env"
    env_file.write_text("# comment\n" + "".join(f"{k}={v}\n" for k, v in TEST_SECRETS.items()))
    awk = shutil.which("awk")
    assert awk
    out = subprocess.run(
        [awk, "-F=", match.group(1), str(env_file)], capture_output=True, text=True, check=True
    ).stdout
    converted = dict(line.split("=", 1) for line in out.splitlines())
    assert converted == {
        name.lower().replace("__", "_").replace("_", "-"): value
        for name, value in TEST_SECRETS.items()
    }
    assert converted["lakehouse-catalog-token"] == TEST_SECRETS["LAKEHOUSE_CATALOG__TOKEN"]
    assert {"minio-root-user", "minio-root-password"} <= set(converted)
