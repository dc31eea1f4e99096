"""Fixtures of the deployment tests (``docker/``, ``helm/``).

No Docker engine and no Kubernetes cluster exist where these run, so the deployment
artifacts are validated the way the real tools validate them without a cluster:

* fast tier (unmarked): the files parsed as YAML/properties and checked by rules
  (no literal secrets, healthchecks, scalable services, real Nessie property names);
* integration tier: ``helm`` (built by ``scripts/tools/helm.sh``) lints and renders the
  chart, schema and ``check-values`` included; ``compose-config`` (compose-go, the loader
  of ``docker compose``, built by ``scripts/tools/compose.sh``) resolves the Compose
  file. ``make test-integration`` builds both first; the fixtures build them when missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "docker-compose.yml"
ENV_EXAMPLE = REPO / "docker" / ".env.example"
CHART = REPO / "helm"
BUCKETS = ("raw", "bronze", "silver", "gold", "iceberg-metadata")

#: Placeholder values for every secret of docker/.env.example (test-only, not secrets).
TEST_SECRETS = {
    "MINIO_ROOT_USER": "test-user",
    "MINIO_ROOT_PASSWORD": "test-minio-pw",
    "POSTGRES_PASSWORD": "test-pg-pw",
    "LAKEHOUSE_DB_PASSWORD": "test-lh-pw",
    "NESSIE_DB_PASSWORD": "test-nessie-pw",
    "AIRFLOW_DB_PASSWORD": "test-airflow-pw",
    "LAKEHOUSE_CATALOG__TOKEN": "test-token",
    "AIRFLOW_FERNET_KEY": "test-fernet",
    "AIRFLOW_JWT_SECRET": "test-jwt",
    "AIRFLOW_ADMIN_PASSWORD": "test-admin-pw",
    "NIFI_USERNAME": "test-nifi",
    "NIFI_PASSWORD": "test-nifi-password",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-pw",
}


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def env_example_names() -> dict[str, str]:
    """The ``NAME=value`` entries of docker/.env.example (comments skipped)."""
    entries = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            entries[name] = value
    return entries


def _tool(script: str) -> Path:
    """Build (if missing) and return a binary of scripts/tools/ (prints its path last)."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "tools" / script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert proc.returncode == 0, f"scripts/tools/{script} failed:\n{proc.stderr}"
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return _tool("helm.sh")


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    return _tool("compose.sh")


@pytest.fixture
def helm_env(tmp_path: Path) -> dict[str, str]:
    """Helm with its own empty config/cache/data folders (no repositories, no network)."""
    env = dict(os.environ)
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[name] = str(tmp_path / name.lower())
    return env


class Helm:
    """Runs ``helm`` against helm/ and parses what it renders."""

    def __init__(self, binary: Path, env: dict[str, str], tmp_path: Path) -> None:
        self.binary = binary
        self.env = env
        self.tmp_path = tmp_path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=300,
        )
        if check:
            assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    def template_args(self, values: dict[str, Any] | None, sets: Sequence[str]) -> list[str]:
        args = [
            "template", "lakehouse", str(CHART), "-n", "lakehouse",
            "-f", str(CHART / "values.yaml"),
        ]  # fmt: skip
        if values is not None:
            extra = self.tmp_path / f"values-{len(list(self.tmp_path.iterdir()))}.yaml"
            extra.write_text(yaml.safe_dump(values))
            args += ["-f", str(extra)]
        for item in sets:
            args += ["--set", item]
        return args

    def template(self, values: dict[str, Any] | None = None, *sets: str) -> list[dict[str, Any]]:
        proc = self.run(*self.template_args(values, sets))
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def template_error(self, values: dict[str, Any] | None = None, *sets: str) -> str:
        proc = self.run(*self.template_args(values, sets), check=False)
        assert proc.returncode != 0, "helm template accepted values it should refuse"
        return proc.stderr


@pytest.fixture
def helm(helm_bin: Path, helm_env: dict[str, str], tmp_path: Path) -> Helm:
    work = tmp_path / "helm-values"
    work.mkdir()
    return Helm(helm_bin, helm_env, work)


@pytest.fixture
def compose_env_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "compose.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in TEST_SECRETS.items()))
    yield path


def compose_config(
    binary: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_SECRETS}
    proc = subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), *args, "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, f"compose-config failed:\n{proc.stderr}"
    return proc


def compose_project(binary: Path, env_file: Path, *args: str) -> dict[str, Any]:
    proc = compose_config(binary, "--env-file", str(env_file), "--format", "json", *args)
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(object name, pod spec) of every workload, incl. the Airflow task pod template."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        if doc["kind"] == "ConfigMap" and "pod_template.yaml" in doc.get("data", {}):
            yield doc["metadata"]["name"], yaml.safe_load(doc["data"]["pod_template.yaml"])["spec"]
