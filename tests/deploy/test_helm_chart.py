"""helm/: lint, render and assert (integration tier: needs scripts/tools/helm.sh).

Charts are tested as the Airflow chart's helm-tests do: render with `helm template` and
assert on the parsed objects; values that break the schema or a check-values rule must be
refused by `helm template` itself with a message naming the problem.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART, Helm, by_kind, pod_specs

pytestmark = pytest.mark.integration

SECRET = "lakehouse-secrets"
INGRESS_COMPONENTS = ("minio", "catalog", "airflow", "nifi", "dremio", "trino")


def all_ingress_on() -> dict[str, Any]:
    return {
        c: {
            "ingress": {
                "enabled": True,
                "hosts": [f"{c}.lakehouse.example.com"],
                "tls": {"secretName": f"{c}-tls"},
            }
        }
        for c in INGRESS_COMPONENTS
    }


NESSIE_INSTEAD = {
    "global": {"catalogBackend": "nessie", "catalogAuth": False},
    "catalog": {"enabled": False},
    "nessie": {"enabled": True},
}
NESSIE_OIDC = {
    "global": {"catalogBackend": "nessie", "catalogAuth": True},
    "catalog": {"enabled": False},
    "nessie": {
        "enabled": True,
        "auth": {
            "enabled": True,
            "oidc": {
                "authServerUrl": "https://keycloak.example.com/realms/lakehouse",
                "clientId": "nessie",
                "clientSecretKey": "nessie-oidc-client-secret",
            },
        },
    },
}
EVERYTHING = {"kafka": {"enabled": True, "replicas": 3}, "nifi": {"replicas": 2}}

VARIANTS = {
    "default": None,
    "ingress": all_ingress_on(),
    "nessie": NESSIE_INSTEAD,
    "nessie-oidc": NESSIE_OIDC,
    "everything": EVERYTHING,
}


@pytest.fixture(params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest, helm: Helm) -> list[dict[str, Any]]:
    return helm.template(VARIANTS[request.param])


def test_lint(helm: Helm) -> None:
    proc = helm.run("lint", str(CHART), "-f", str(CHART / "values.yaml"), "--strict")
    assert "0 chart(s) failed" in proc.stdout


def test_dependency_build_offline(helm: Helm, tmp_path: Path) -> None:
    """Every subchart is local: `helm dependency build` needs no repository or network."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    helm.run("dependency", "build", str(copy))
    listing = helm.run("dependency", "list", str(copy)).stdout
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    assert rows and all(row[-1] == "unpacked" for row in rows), listing
    assert {row[0] for row in rows} >= {
        "catalog", "nessie", "minio", "postgresql", "airflow", "spark", "kafka", "nifi", "dremio",
        "trino",
    }  # fmt: skip


def test_images_pinned(rendered: list[dict[str, Any]]) -> None:
    images = []
    for name, spec in pod_specs(rendered):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = container["image"]
            repo, _, tag = image.rpartition(":")
            assert repo and tag and tag != "latest" and "/" not in tag, f"{name}: {image}"
            images.append(image)
    assert images


def test_secrets_only_from_existing_secret(rendered: list[dict[str, Any]]) -> None:
    """No Secret objects are rendered; credentials come from the pre-created Secret only."""
    assert not by_kind(rendered, "Secret")
    keys = set()
    for name, spec in pod_specs(rendered):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                lowered = env["name"].lower()
                secretish = any(w in lowered for w in ("password", "secret", "token", "fernet"))
                secretish = secretish or lowered.endswith(("_user", "access_key_id"))
                secretish = secretish and not lowered.endswith(("_file", "_manager_users", "_cmd"))
                if "value" in env:
                    assert not secretish, f"{name}: {env['name']} is a literal value"
                    continue
                ref = env["valueFrom"].get("secretKeyRef")
                if ref is not None:
                    assert ref["name"] == SECRET, f"{name}: {env['name']} from {ref['name']}"
                    keys.add(ref["key"])
    assert {"minio-root-user", "minio-root-password"} <= keys


def test_secret_keys_mirror_env_example(helm: Helm) -> None:
    from tests.deploy.conftest import TEST_SECRETS

    docs = helm.template(
        {**EVERYTHING, **NESSIE_OIDC, "nessie": {**NESSIE_OIDC["nessie"], "enabled": True}}
    )
    keys = set()
    for _, spec in pod_specs(docs):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    keys.add(ref["key"])
    # Grafana runs in compose only: the chart hands its dashboard to the cluster's own Grafana
    compose_only = {"GRAFANA_ADMIN_PASSWORD"}
    expected = {
        name.lower().replace("__", "_").replace("_", "-")
        for name in TEST_SECRETS
        if name not in compose_only
    }
    # every secret of docker/.env.example, under its mirrored key (+ the OIDC client secret)
    assert keys == expected | {"nessie-oidc-client-secret"}


def test_component_secret_override(helm: Helm) -> None:
    docs = helm.template({"minio": {"existingSecret": "minio-only"}})
    sts = by_kind(docs, "StatefulSet")["lakehouse-minio"]
    env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env} == {"minio-only"}


def test_airflow_kubernetes_executor_and_rbac(helm: Helm) -> None:
    docs = helm.template()
    sa = by_kind(docs, "ServiceAccount")
    assert "lakehouse-airflow" in sa
    role = by_kind(docs, "Role")["lakehouse-airflow-pod-launcher"]
    rules = {(tuple(r["resources"]), tuple(sorted(r["verbs"]))) for r in role["rules"]}
    launcher_verbs = tuple(sorted(["create", "get", "list", "watch", "delete", "patch"]))
    assert (("pods",), launcher_verbs) in rules
    assert (("pods/log",), ("get",)) in rules
    binding = by_kind(docs, "RoleBinding")["lakehouse-airflow-pod-launcher"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "lakehouse-airflow-pod-launcher",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "lakehouse-airflow", "namespace": "lakehouse"}
    ]
    scheduler = by_kind(docs, "Deployment")["lakehouse-airflow-scheduler"]["spec"]["template"]
    assert scheduler["spec"]["serviceAccountName"] == "lakehouse-airflow"
    env = {e["name"]: e.get("value") for e in scheduler["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "KubernetesExecutor"
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"] == "lakehouse"
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"].endswith("pod_template.yaml")


def test_rbac_file_is_where_the_guide_says() -> None:
    text = (CHART / "charts" / "airflow" / "templates" / "rbac.yaml").read_text()
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        assert f"kind: {kind}" in text


def test_airflow_task_pods_are_spark_drivers(helm: Helm) -> None:
    docs = helm.template(None, "spark.executor.instances=7")
    template = by_kind(docs, "ConfigMap")["lakehouse-airflow-pod-template"]
    pod = yaml.safe_load(template["data"]["pod_template.yaml"])
    assert pod["spec"]["serviceAccountName"] == "lakehouse-spark"
    assert pod["spec"]["containers"][0]["name"] == "base"
    assert pod["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "lakehouse-spark-env", "optional": True}}
    ]
    spark_env = by_kind(docs, "ConfigMap")["lakehouse-spark-env"]["data"]
    conf = json.loads(spark_env["LAKEHOUSE_SPARK__CONF"])
    assert conf["spark.executor.instances"] == "7"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "lakehouse-spark"
    assert spark_env["LAKEHOUSE_SPARK__MASTER"].startswith("k8s://")
    defaults = by_kind(docs, "ConfigMap")["lakehouse-spark-defaults"]["data"]
    assert "spark.executor.instances 7" in defaults["spark-defaults.conf"].splitlines()
    role = by_kind(docs, "Role")["lakehouse-spark"]
    pods_rule = next(r for r in role["rules"] if "pods" in r["resources"])
    assert {"create", "delete", "watch", "list"} <= set(pods_rule["verbs"])


def test_catalog_default_backend(helm: Helm) -> None:
    docs = helm.template()
    deployments = by_kind(docs, "Deployment")
    assert "lakehouse-catalog" in deployments and "lakehouse-nessie" not in deployments
    container = deployments["lakehouse-catalog"]["spec"]["template"]["spec"]["containers"][0]
    assert "--token-env LAKEHOUSE_CATALOG__TOKEN" in container["command"][-1]
    scheduler = deployments["lakehouse-airflow-scheduler"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in scheduler["containers"][0]["env"]}
    assert env["LAKEHOUSE_CATALOG__URI"]["value"] == "http://lakehouse-catalog:19120/api/v2"
    assert env["LAKEHOUSE_CATALOG__TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == (
        "lakehouse-catalog-token"
    )


def test_nessie_instead_of_catalog(helm: Helm) -> None:
    docs = helm.template(NESSIE_INSTEAD)
    deployments = by_kind(docs, "Deployment")
    assert "lakehouse-nessie" in deployments and "lakehouse-catalog" not in deployments
    nessie = deployments["lakehouse-nessie"]["spec"]["template"]["spec"]["containers"][0]
    assert nessie["image"].startswith("ghcr.io/projectnessie/nessie:")
    props = by_kind(docs, "ConfigMap")["lakehouse-nessie-config"]["data"]["application.properties"]
    entries = dict(line.split("=", 1) for line in props.splitlines() if line)
    assert entries["nessie.version.store.type"] == "JDBC2"
    assert entries["quarkus.datasource.postgresql.jdbc.url"] == (
        "jdbc:postgresql://lakehouse-postgresql:5432/nessie"
    )
    assert entries["quarkus.datasource.postgresql.password"] == "${NESSIE_DB_PASSWORD}"
    assert entries["nessie.server.authentication.enabled"] == "false"
    scheduler = deployments["lakehouse-airflow-scheduler"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in scheduler["containers"][0]["env"]}
    assert env["LAKEHOUSE_CATALOG__URI"]["value"] == "http://lakehouse-nessie:19120/api/v2"
    assert "LAKEHOUSE_CATALOG__TOKEN" not in env


def _trino_catalogs(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    data = by_kind(docs, "ConfigMap")["lakehouse-trino-catalogs"]["data"]
    return {
        name.removesuffix(".properties"): dict(
            line.split("=", 1) for line in text.splitlines() if line.strip()
        )
        for name, text in data.items()
    }


@pytest.mark.parametrize("variant", ["default", "nessie"])
def test_trino_catalogs_follow_the_catalog_backend(helm: Helm, variant: str) -> None:
    """Trino's `lakehouse` (REST) and `lakehouse_nessie` (API v2) catalogs, as tested in
    tests/serving: the backend's URLs, the S3 lines, secrets only as ${ENV:…} from the pod."""
    docs = helm.template(NESSIE_INSTEAD if variant == "nessie" else None)
    server = (
        "http://lakehouse-nessie:19120" if variant == "nessie" else "http://lakehouse-catalog:19120"
    )
    catalogs = _trino_catalogs(docs)
    assert set(catalogs) == {"lakehouse", "lakehouse_nessie"}
    rest, nessie = catalogs["lakehouse"], catalogs["lakehouse_nessie"]
    assert rest["iceberg.catalog.type"] == "rest"
    assert rest["iceberg.rest-catalog.uri"] == f"{server}/iceberg/"
    assert nessie["iceberg.catalog.type"] == "nessie"
    assert nessie["iceberg.nessie-catalog.uri"] == "${ENV:LAKEHOUSE_CATALOG__URI}"
    assert nessie["iceberg.nessie-catalog.default-warehouse-dir"] == "s3://iceberg-metadata"
    authenticated = variant == "default"  # our server requires the bearer token by default
    assert (rest.get("iceberg.rest-catalog.oauth2.token") is not None) == authenticated
    assert (nessie.get("iceberg.nessie-catalog.authentication.type") == "BEARER") == authenticated
    pod = by_kind(docs, "Deployment")["lakehouse-trino"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    for props in catalogs.values():
        assert props["connector.name"] == "iceberg"
        assert props["fs.native-s3.enabled"] == "true"
        for value in props.values():
            for name in re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", value):
                assert name in env, f"${{ENV:{name}}} is not set on the Trino pod"
        assert props["s3.aws-secret-key"] == "${ENV:LAKEHOUSE_S3__SECRET_ACCESS_KEY}"
    assert env["LAKEHOUSE_CATALOG__URI"]["value"] == f"{server}/api/v2"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["catalogs"] == "/etc/trino/catalog"


def test_trino_extra_catalogs_are_added_and_checked(helm: Helm) -> None:
    extra = "connector.name=iceberg\niceberg.catalog.type=rest\n"
    docs = helm.template({"trino": {"extraCatalogs": {"lakehouse_dev": extra}}})
    assert _trino_catalogs(docs)["lakehouse_dev"]["iceberg.catalog.type"] == "rest"
    error = helm.template_error({"trino": {"extraCatalogs": {"Bad-Name": extra}}})
    assert "Bad-Name" in error and "does not match pattern" in error


EXTERNAL = {
    "global": {
        "catalogBackend": "external",
        "catalogAuth": False,
        "externalCatalogUri": "http://nessie.lakehouse.svc:19120/api/v2",
    },
    "catalog": {"enabled": False},
}


def test_external_catalog(helm: Helm) -> None:
    """The upstream Nessie chart (or any Nessie API v2 server) instead of our subcharts."""
    docs = helm.template(EXTERNAL)
    deployments = by_kind(docs, "Deployment")
    assert "lakehouse-catalog" not in deployments and "lakehouse-nessie" not in deployments
    scheduler = deployments["lakehouse-airflow-scheduler"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in scheduler["containers"][0]["env"]}
    assert env["LAKEHOUSE_CATALOG__URI"]["value"] == "http://nessie.lakehouse.svc:19120/api/v2"


def test_nessie_oidc(helm: Helm) -> None:
    docs = helm.template(NESSIE_OIDC)
    props = by_kind(docs, "ConfigMap")["lakehouse-nessie-config"]["data"]["application.properties"]
    entries = dict(line.split("=", 1) for line in props.splitlines() if line)
    assert entries["nessie.server.authentication.enabled"] == "true"
    assert (
        entries["quarkus.oidc.auth-server-url"] == "https://keycloak.example.com/realms/lakehouse"
    )
    assert entries["quarkus.oidc.client-id"] == "nessie"
    assert entries["quarkus.oidc.credentials.secret"] == "${NESSIE_OIDC_CLIENT_SECRET}"
    nessie = by_kind(docs, "Deployment")["lakehouse-nessie"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in nessie["containers"][0]["env"]}
    assert env["NESSIE_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": SECRET,
        "key": "nessie-oidc-client-secret",
    }


def test_ingress_with_tls(helm: Helm) -> None:
    docs = helm.template(all_ingress_on())
    ingresses = by_kind(docs, "Ingress")
    assert set(ingresses) == {f"lakehouse-{c}" for c in INGRESS_COMPONENTS}
    airflow = ingresses["lakehouse-airflow"]["spec"]
    assert airflow["ingressClassName"] == "nginx"
    assert airflow["tls"] == [
        {"hosts": ["airflow.lakehouse.example.com"], "secretName": "airflow-tls"}
    ]
    rule = airflow["rules"][0]
    assert rule["host"] == "airflow.lakehouse.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "lakehouse-airflow", "port": {"number": 8080}}
    services = by_kind(docs, "Service")
    for name, ingress in ingresses.items():
        target = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        ports = {p["port"] for p in services[target["name"]]["spec"]["ports"]}
        assert target["port"]["number"] in ports, name
    nifi = ingresses["lakehouse-nifi"]["metadata"]["annotations"]
    assert nifi["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"


def test_no_ingress_by_default(helm: Helm) -> None:
    assert not by_kind(helm.template(), "Ingress")


def test_minio_buckets_job(helm: Helm) -> None:
    job = by_kind(helm.template(), "Job")["lakehouse-minio-buckets"]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "mc mb --ignore-existing --with-lock lake/raw" in script
    for bucket in ("bronze", "silver", "gold", "iceberg-metadata"):
        assert f"mc mb --ignore-existing lake/{bucket}" in script
        assert f"mc version enable lake/{bucket}" in script


def test_kafka_and_nifi_scaled(helm: Helm) -> None:
    docs = helm.template(EVERYTHING)
    sts = by_kind(docs, "StatefulSet")
    assert sts["lakehouse-kafka"]["spec"]["replicas"] == 3
    kafka_env = {
        e["name"]: e.get("value")
        for e in sts["lakehouse-kafka"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
    assert sts["lakehouse-nifi"]["spec"]["replicas"] == 2
    nifi_env = {
        e["name"]: e.get("value")
        for e in sts["lakehouse-nifi"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert nifi_env["NIFI_CLUSTER_IS_NODE"] == "true"
    assert "lakehouse-nifi" in by_kind(docs, "Role")


def test_resources_everywhere(rendered: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(rendered):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            assert container.get("resources", {}).get("requests"), f"{name}/{container['name']}"


# --- values the chart must refuse -------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"catalog": {"replicas": "two"}}, "catalog.replicas"),
        ({"catalog": {"unknown": 1}}, "additional properties 'unknown' not allowed"),
        ({"airflow": {"executor": "CeleryExecutor"}}, "airflow.executor"),
        ({"global": {"catalogBackend": "glue"}}, "global.catalogBackend"),
        ({"minio": {"image": {"tag": "latest"}}}, "minio.image.tag"),
        ({"global": {"existingSecret": ""}}, "global.existingSecret"),
        ({"nifi": {"ingress": {"hosts": []}}}, "nifi.ingress.hosts"),
        ({"spark": {"extraConf": {"executor.memory": "1g"}}}, "'executor.memory' does not match"),
    ],
)
def test_schema_rejects(helm: Helm, values: dict[str, Any], message: str) -> None:
    error = helm.template_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error.replace("/", "."), error


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nessie": {"enabled": True}}, "exactly one catalog backend may be enabled"),
        ({"catalog": {"enabled": False}}, "exactly one catalog backend must be enabled"),
        (
            {**NESSIE_INSTEAD, "global": {"catalogBackend": "catalog"}},
            'global.catalogBackend is "catalog" but catalog.enabled is false',
        ),
        ({"catalog": {"auth": {"enabled": False}}}, "global.catalogAuth (true) must equal"),
        (
            {
                "global": {"catalogAuth": False},
                "catalog": {"auth": {"enabled": False}, "ingress": {"enabled": True}},
            },
            "catalog.ingress.enabled exposes the catalog",
        ),
        (
            {
                **NESSIE_OIDC,
                "nessie": {
                    "enabled": True,
                    "auth": {"enabled": True, "oidc": {"authServerUrl": ""}},
                },
            },
            "nessie.auth.enabled needs nessie.auth.oidc.authServerUrl",
        ),
        (
            {**EXTERNAL, "global": {**EXTERNAL["global"], "externalCatalogUri": ""}},
            "global.catalogBackend external needs global.externalCatalogUri",
        ),
        (
            {**EXTERNAL, "nessie": {"enabled": True}},
            "global.catalogBackend external uses a catalog installed separately",
        ),
        ({"postgresql": {"enabled": False}}, "enable postgresql.enabled"),
        ({"minio": {"enabled": False}}, "no S3"),
        ({"kafka": {"enabled": True, "replicas": 2}}, "kafka.replicas 2"),
        (
            {"airflow": {"rbac": {"create": False}}},
            "airflow.executor KubernetesExecutor launches pods",
        ),
        (
            {"global": {"ingress": {"className": ""}}, "dremio": {"ingress": {"enabled": True}}},
            "dremio.ingress.enabled needs an ingress class",
        ),
    ],
)
def test_check_values_rejects(helm: Helm, values: dict[str, Any], message: str) -> None:
    error = helm.template_error(values)
    assert "lakehouse values:" in error
    assert message in error, error


def test_guide_install_arguments_render(helm: Helm) -> None:
    """The guide's `helm upgrade --install lakehouse ./helm -n lakehouse -f helm/values.yaml`.

    `upgrade --install` needs a cluster even with --dry-run; `helm template` with the same
    release, chart, namespace and values renders the same manifests without one.
    """
    proc = helm.run(
        "template", "lakehouse", str(CHART), "-n", "lakehouse", "-f", str(CHART / "values.yaml")
    )
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    assert by_kind(docs, "Deployment") and by_kind(docs, "StatefulSet")


@pytest.mark.parametrize("variant", ["nessie", "nessie-oidc"])
def test_real_nessie_accepts_rendered_properties(helm: Helm, tmp_path: Path, variant: str) -> None:
    """The chart's Nessie configuration starts the real server (unknown keys are fatal)."""
    from tests.deploy.test_nessie_properties import start_nessie

    docs = helm.template(VARIANTS[variant])
    props = by_kind(docs, "ConfigMap")["lakehouse-nessie-config"]["data"]["application.properties"]
    code, log = start_nessie(props, tmp_path / variant)
    assert code == 0, log[-3000:]
