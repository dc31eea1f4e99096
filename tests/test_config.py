"""Settings: defaults, precedence (arguments > env > .env), NESSIE_REF, secrets."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.errors import ConfigError


@pytest.fixture
def no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the LAKEHOUSE_HOME the shared isolation fixture sets."""
    monkeypatch.delenv("LAKEHOUSE_HOME")


@pytest.mark.usefixtures("no_home")
def test_defaults_live_under_dot_lakehouse_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "ada")
    settings = load_settings()
    assert settings.profile == "embedded"
    assert settings.home == tmp_path / ".lakehouse"
    assert settings.catalog_uri == f"sqlite:///{tmp_path}/.lakehouse/catalog.db"
    assert settings.warehouse_location == str(tmp_path / ".lakehouse" / "warehouse")
    assert settings.default_branch == "main"
    assert settings.default_ref == "main"
    assert settings.author == "ada"


@pytest.mark.usefixtures("no_home")
def test_home_moves_catalog_and_warehouse_defaults(tmp_path: Path) -> None:
    settings = load_settings(home=Path("elsewhere"))
    assert settings.home == tmp_path / "elsewhere"
    assert settings.catalog_uri == f"sqlite:///{tmp_path}/elsewhere/catalog.db"
    assert settings.warehouse_location == str(tmp_path / "elsewhere" / "warehouse")


def test_relative_warehouse_is_made_absolute_and_urls_are_kept(tmp_path: Path) -> None:
    assert load_settings(warehouse="wh").warehouse_location == str(tmp_path / "wh")
    assert load_settings(warehouse="s3://lake/prefix").warehouse_location == "s3://lake/prefix"


def test_precedence_arguments_then_env_then_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "LAKEHOUSE_PROFILE=cluster\n"
        "LAKEHOUSE_CATALOG__URI=postgresql+psycopg://dotenv/db\n"
        "LAKEHOUSE_AUTHOR=from-dotenv\n"
        "LAKEHOUSE_CATALOG__DEFAULT_BRANCH=trunk\n"
        "LAKEHOUSE_WAREHOUSE=s3://from-dotenv\n"
    )
    settings = load_settings()
    assert settings.profile == "cluster"
    assert settings.author == "from-dotenv"
    assert settings.default_branch == "trunk"

    monkeypatch.setenv("LAKEHOUSE_AUTHOR", "from-env")
    monkeypatch.setenv("LAKEHOUSE_CATALOG__URI", "postgresql+psycopg://env/db")
    settings = load_settings()
    assert settings.author == "from-env"
    assert settings.catalog_uri == "postgresql+psycopg://env/db"
    assert settings.default_branch == "trunk"  # nested fields merge across sources

    settings = load_settings(author="from-arg", catalog={"uri": "postgresql+psycopg://arg/db"})
    assert settings.author == "from-arg"
    assert settings.catalog_uri == "postgresql+psycopg://arg/db"
    assert settings.warehouse_location == "s3://from-dotenv"


def test_none_overrides_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_AUTHOR", "from-env")
    assert load_settings(author=None).author == "from-env"


def test_dotenv_ignores_other_tools_variables_but_rejects_unknown_lakehouse_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("MINIO_ROOT_USER=minio\nLAKEHOUSE_AUTHOR=a\n")
    assert load_settings().author == "a"

    (tmp_path / ".env").write_text("LAKEHOUSE_AUTHR=typo\n")
    with pytest.raises(ConfigError, match="unknown setting LAKEHOUSE_AUTHR"):
        load_settings()

    (tmp_path / ".env").write_text("LAKEHOUSE_S3__SECRET=typo\n")
    with pytest.raises(ConfigError, match="LAKEHOUSE_S3__SECRET"):
        load_settings()


def test_invalid_values_raise_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_PROFILE", "laptop")
    with pytest.raises(ConfigError, match="LAKEHOUSE_PROFILE"):
        load_settings()


def test_invalid_default_branch_is_rejected() -> None:
    with pytest.raises(ConfigError, match="LAKEHOUSE_CATALOG__DEFAULT_BRANCH"):
        load_settings(catalog={"default_branch": "no..dots"})


def test_nessie_ref_selects_the_default_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NESSIE_REF", "dev")
    assert load_settings().default_ref == "dev"
    assert load_settings().default_branch == "main"
    assert load_settings(ref="etl@1234abcd").default_ref == "etl@1234abcd"

    monkeypatch.delenv("NESSIE_REF")
    monkeypatch.setenv("LAKEHOUSE_REF", "staging")
    assert load_settings().default_ref == "staging"

    monkeypatch.delenv("LAKEHOUSE_REF")
    (tmp_path / ".env").write_text("NESSIE_REF=from-dotenv\n")
    assert load_settings().default_ref == "from-dotenv"


def test_invalid_nessie_ref_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NESSIE_REF", "bad..ref")
    with pytest.raises(ConfigError, match=r"^invalid setting NESSIE_REF: invalid reference name"):
        load_settings()


def test_secrets_never_show_in_repr_or_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_ACCESS_KEY", "s3-secret-value")
    monkeypatch.setenv("LAKEHOUSE_CATALOG__TOKEN", "token-secret-value")
    settings = load_settings(
        catalog={"uri": "postgresql+psycopg://lh:db-secret-value@db.example/lakehouse"},
        warehouse="s3://lake",
        s3={"endpoint": "http://127.0.0.1:9000", "access_key_id": "minio"},
    )
    shown = repr(settings) + str(settings) + str(settings.summary())
    for secret in ("s3-secret-value", "token-secret-value", "db-secret-value"):
        assert secret not in shown
    assert settings.summary()["catalog"] == "postgresql+psycopg://lh:***@db.example/lakehouse"
    # ... but the real values are there for the code that needs them.
    assert settings.catalog_uri.endswith("lh:db-secret-value@db.example/lakehouse")
    props = settings.fileio_properties()
    assert props["s3.secret-access-key"] == "s3-secret-value"
    assert props["s3.access-key-id"] == "minio"
    assert props["s3.endpoint"] == "http://127.0.0.1:9000"


def test_local_warehouse_gets_no_s3_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_ACCESS_KEY", "s3-secret-value")
    assert load_settings().fileio_properties() == {}


def test_settings_class_is_usable_directly(tmp_path: Path) -> None:
    settings = Settings(home=Path("h"), author="x")
    assert settings.home == tmp_path / "h"
    assert settings.author == "x"


def test_empty_values_mean_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in env/.env.example: `LAKEHOUSE_CATALOG__URI=` selects the default catalog."""
    (tmp_path / ".env").write_text("LAKEHOUSE_CATALOG__URI=\nNESSIE_REF=\nLAKEHOUSE_WAREHOUSE=\n")
    monkeypatch.setenv("LAKEHOUSE_AUTHOR", "")
    monkeypatch.setenv("USER", "ada")
    settings = load_settings()
    assert settings.catalog_uri == f"sqlite:///{settings.home}/catalog.db"
    assert settings.warehouse_location == str(settings.home / "warehouse")
    assert settings.default_ref == "main"
    assert settings.author == "ada"


# -- cluster profile -----------------------------------------------------------------------

PG_URL = "postgresql+psycopg://lakehouse:pg-secret@127.0.0.1:55432/lakehouse"


def test_cluster_profile_with_the_default_sqlite_catalog_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(profile="cluster")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the cluster profile cannot use the default SQLite catalog")
    assert "LAKEHOUSE_CATALOG__URI" in message


def test_cluster_profile_refuses_an_explicit_sqlite_catalog_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_PROFILE", "cluster")
    monkeypatch.setenv("LAKEHOUSE_CATALOG__URI", "sqlite:////tmp/catalog.db")
    with pytest.raises(ConfigError, match=r"^the cluster profile cannot use catalog 'sqlite:"):
        load_settings()


def test_cluster_profile_defaults_to_the_five_s3_buckets() -> None:
    from lakehouse.storage import Warehouse

    settings = load_settings(profile="cluster", catalog={"uri": PG_URL})
    assert settings.warehouse_location == "s3://{bucket}"
    assert Warehouse.from_uri(settings.warehouse_location) == Warehouse.s3()
    assert settings.catalog_uri == PG_URL


def test_cluster_profile_accepts_a_nessie_catalog_and_a_prefixed_bucket_template() -> None:
    settings = load_settings(
        profile="cluster",
        catalog={"uri": "http://127.0.0.1:19120/api/v2"},
        warehouse="s3://acme-{bucket}",
    )
    assert settings.warehouse_location == "s3://acme-{bucket}"


def test_cluster_profile_refuses_a_local_warehouse_without_showing_secrets() -> None:
    with pytest.raises(ConfigError, match="keeps tables on S3") as caught:
        load_settings(profile="cluster", catalog={"uri": PG_URL}, warehouse="/data/wh")
    assert "pg-secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(profile="cluster", catalog={"uri": "mysql://u:pw-secret@h/db"})
    assert "pw-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql+psycopg://postgres:postgres@db.internal:5432/lakehouse",
        "postgresql+psycopg://lakehouse:lakehouse@db.internal:5432/lakehouse",
        "postgresql+psycopg://lakehouse:changeme@db.internal:5432/lakehouse",
    ],
    ids=["postgres/postgres", "user as password", "changeme"],
)
def test_cluster_profile_refuses_a_default_database_password_off_this_machine(uri: str) -> None:
    with pytest.raises(ConfigError, match=r"^the cluster profile refuses a default password") as e:
        load_settings(profile="cluster", catalog={"uri": uri})
    assert "\n" not in str(e.value) and "changeme" not in str(e.value)


def test_cluster_profile_takes_a_real_password_or_none_and_dev_defaults_on_loopback() -> None:
    for uri in (
        "postgresql+psycopg://lakehouse:Zq8-long-secret@db.internal:5432/lakehouse",
        "postgresql+psycopg://lakehouse@db.internal:5432/lakehouse",  # PGPASSWORD / .pgpass
        "postgresql+psycopg://lakehouse:lakehouse@127.0.0.1:55432/lakehouse",
    ):
        assert load_settings(profile="cluster", catalog={"uri": uri}).catalog_uri == uri


@pytest.mark.parametrize(
    ("s3", "message"),
    [
        ({"endpoint": "http://minio:9000", "access_key_id": "minioadmin",
          "secret_access_key": "minioadmin"}, "refuses the default S3 secret key"),
        ({"access_key_id": "AKIAEXAMPLE", "secret_access_key": "password"},
         "refuses the default S3 secret key"),
        ({"endpoint": "http://minio:9000", "access_key_id": "lake"}, "needs both"),
        ({"endpoint": "http://minio:9000", "secret_access_key": "x" * 20}, "needs both"),
    ],
    ids=["minioadmin", "aws with a default", "no secret", "no access key"],
)  # fmt: skip
def test_cluster_profile_refuses_default_or_half_s3_credentials(
    s3: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(profile="cluster", catalog={"uri": PG_URL}, s3=s3)
    assert "\n" not in str(caught.value)


def test_cluster_profile_takes_minio_defaults_on_loopback_only() -> None:
    s3 = {"endpoint": "http://127.0.0.1:19000", "access_key_id": "minioadmin",
          "secret_access_key": "minioadmin"}  # fmt: skip
    assert load_settings(profile="cluster", catalog={"uri": PG_URL}, s3=s3).s3.endpoint


# -- env/.env.example ----------------------------------------------------------------------

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / "env" / ".env.example"


def setting_variables() -> list[str]:
    """The environment variable of every setting :class:`Settings` reads (nested with ``__``)."""
    from pydantic import BaseModel

    names: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            kind = field.annotation
            optional = [a for a in typing.get_args(kind) if a is not type(None)]
            if len(optional) == 1:  # `Model | None`: its fields are settings too
                kind = optional[0]
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                walk(kind, f"{prefix}{name.upper()}__")
            elif field.validation_alias is not None:  # ref: NESSIE_REF / LAKEHOUSE_REF
                names.append("NESSIE_REF")
            else:
                names.append(f"{prefix}{name.upper()}")

    walk(Settings, "LAKEHOUSE_")
    return names


def test_env_example_lists_every_setting() -> None:
    assigned = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    }
    names = setting_variables()
    assert {"LAKEHOUSE_HOME", "LAKEHOUSE_AUTHOR", "LAKEHOUSE_S3__ENDPOINT"} <= set(names)
    assert [n for n in names if n not in assigned] == []


def test_env_example_loads_as_a_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    settings = load_settings()
    assert settings.profile == "embedded"
    assert settings.catalog.default_branch == "main"


@pytest.mark.usefixtures("no_home")
def test_author_without_user_is_the_login_name_not_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container or cron job often has no USER: commits still name who made them."""
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.setenv("LOGNAME", "grace")
    assert load_settings().author == "grace"
