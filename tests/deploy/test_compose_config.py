"""docker/docker-compose.yml resolved by compose-go, as `docker compose config` does.

Integration tier: needs the compose-config binary (scripts/tools/compose.sh).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    TEST_SECRETS,
    compose_config,
    compose_project,
)

pytestmark = pytest.mark.integration

ALL_PROFILES = ("--profile", "catalog", "--profile", "cdc")


@pytest.fixture
def project(compose_bin: Path, compose_env_file: Path) -> dict[str, Any]:
    return compose_project(compose_bin, compose_env_file, *ALL_PROFILES)


def test_default_profile_services(compose_bin: Path, compose_env_file: Path) -> None:
    services = compose_project(compose_bin, compose_env_file)["services"]
    assert "catalog" not in services and "kafka" not in services
    assert {"minio", "minio-init", "postgres", "nessie", "spark-master", "spark-worker"} <= set(
        services
    )
    assert {"airflow-api-server", "airflow-scheduler", "nifi", "dremio"} <= set(services)


def test_all_profiles(project: dict[str, Any]) -> None:
    assert {"catalog", "kafka"} <= set(project["services"])


def test_guide_scale_commands_are_valid(compose_bin: Path, compose_env_file: Path) -> None:
    """`docker compose up -d --scale nifi=2` and `--scale spark-worker=2` (guide/brief)."""
    compose_config(
        compose_bin, "--env-file", str(compose_env_file), "--scale", "nifi=2",
        "--scale", "spark-worker=2",
    )  # fmt: skip


@pytest.mark.parametrize("service", ["minio", "nessie", "spark-master"])
def test_scale_check_refuses_fixed_host_ports(
    compose_bin: Path, compose_env_file: Path, service: str
) -> None:
    """The scale check can fail: services with a fixed host port cannot be scaled."""
    proc = compose_config(
        compose_bin, "--env-file", str(compose_env_file), "--scale", f"{service}=2", check=False
    )
    assert proc.returncode == 1
    assert f'service "{service}" cannot be scaled to 2' in proc.stderr


def test_missing_secrets_are_refused(compose_bin: Path) -> None:
    """The template with its empty secrets does not start: compose names each variable."""
    proc = compose_config(compose_bin, "--env-file", str(ENV_EXAMPLE), check=False)
    assert proc.returncode == 1
    for name in TEST_SECRETS:
        assert f"set {name} in the env file" in proc.stderr, name


def test_secrets_resolved_from_env_file(project: dict[str, Any]) -> None:
    services = project["services"]
    minio = services["minio"]["environment"]
    assert minio["MINIO_ROOT_USER"] == TEST_SECRETS["MINIO_ROOT_USER"]
    assert minio["MINIO_ROOT_PASSWORD"] == TEST_SECRETS["MINIO_ROOT_PASSWORD"]
    catalog = services["catalog"]["environment"]
    assert catalog["LAKEHOUSE_CATALOG__URI"] == (
        f"postgresql+psycopg://lakehouse:{TEST_SECRETS['LAKEHOUSE_DB_PASSWORD']}"
        "@postgres:5432/lakehouse"
    )
    spark = services["spark-worker"]["environment"]
    assert spark["LAKEHOUSE_SPARK__CONF"] == '{"spark.executor.instances": "2"}'
    assert spark["LAKEHOUSE_SPARK__MASTER"] == "spark://spark-master:7077"


def test_executor_instances_from_env(compose_bin: Path, compose_env_file: Path) -> None:
    with compose_env_file.open("a") as f:
        f.write("LAKEHOUSE_SPARK_EXECUTOR_INSTANCES=5\n")
    project = compose_project(compose_bin, compose_env_file)
    conf = project["services"]["airflow-scheduler"]["environment"]["LAKEHOUSE_SPARK__CONF"]
    assert conf == '{"spark.executor.instances": "5"}'


def test_healthchecks_survive_resolution(project: dict[str, Any]) -> None:
    for name, service in project["services"].items():
        if name in ("minio-init", "airflow-init"):
            continue
        assert service.get("healthcheck", {}).get("test"), name


def test_builds_resolve_to_repository_root(project: dict[str, Any]) -> None:
    for name in ("catalog", "spark-master", "spark-worker", "airflow-scheduler"):
        build = project["services"][name]["build"]
        context = Path(build["context"])
        assert (context / "pyproject.toml").is_file(), name
        assert (context / build["dockerfile"]).is_file(), name


def test_bind_mounts_exist(project: dict[str, Any]) -> None:
    """Every bind mount (config files, init scripts, DAGs) points at a file of the repo."""
    for name, service in project["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"


def test_env_file_in_compose_folder_is_read(
    compose_bin: Path, compose_env_file: Path, tmp_path: Path
) -> None:
    """docker/.env is the project's .env: the guide's commands need no --env-file.

    (`docker compose -f docker/docker-compose.yml logs -f <service>`, and
    `docker compose up -d --scale nifi=2` run in docker/.) Checked on a copy of docker/.
    """
    import shutil
    import subprocess

    copy = tmp_path / "docker"
    shutil.copytree(COMPOSE_FILE.parent, copy, ignore=shutil.ignore_patterns(".env"))
    shutil.copy(compose_env_file, copy / ".env")
    env = {k: v for k, v in os.environ.items() if k not in TEST_SECRETS}
    proc = subprocess.run(
        [str(compose_bin), "-f", "docker-compose.yml", "--scale", "nifi=2", "config"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert TEST_SECRETS["MINIO_ROOT_PASSWORD"] in proc.stdout
