"""Settings of a Lakehouse installation, from arguments, the environment and a ``.env`` file.

Precedence, highest first (written once, here):

1. explicit arguments (``Settings(home=...)``, ``lakehouse --home``, ``connect(..., author=...)``);
2. environment variables ``LAKEHOUSE_*``, ``__`` separating nested fields
   (``LAKEHOUSE_CATALOG__URI``, ``LAKEHOUSE_S3__SECRET_ACCESS_KEY``);
3. the ``.env`` file in the working directory (same names). Only ``LAKEHOUSE_*`` and
   ``NESSIE_REF`` entries are read from it, so it can be shared with docker compose;
   an unknown ``LAKEHOUSE_*`` entry is an error (``extra="forbid"``), not silently ignored;
   an empty value (``LAKEHOUSE_CATALOG__URI=``) means "not set" here and in the environment;
4. the defaults below.

``NESSIE_REF`` (no prefix, as Spark jobs and the Nessie tools use it) selects the
reference that reads and pipeline runs use when none is given: see
:attr:`Settings.default_ref`. ``LAKEHOUSE_REF`` is accepted as well.

Secrets are :class:`~pydantic.SecretStr`: they never appear in ``repr``, logs or errors.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.catalog.model import RefSpec, validate_ref_name
from lakehouse.errors import ConfigError
from lakehouse.storage.filesystem import fileio_properties, s3_properties

ENV_PREFIX = "LAKEHOUSE_"
#: File name of the catalog database inside the home folder (embedded profile).
CATALOG_DB = "catalog.db"
#: Folder name of the local warehouse inside the home folder (embedded profile).
WAREHOUSE_DIR = "warehouse"
#: Default warehouse of the cluster profile: one S3 bucket per bucket name (``s3://raw`` …).
CLUSTER_WAREHOUSE = "s3://{bucket}"
#: Catalog URIs the cluster profile accepts: PostgreSQL, or a Nessie (or our) server.
_SHARED_CATALOGS = ("postgresql", "http://", "https://")

Profile = Literal["embedded", "cluster"]
#: Variables (no prefix) that select the default reference.
_REF_VARIABLES = ("NESSIE_REF", "LAKEHOUSE_REF")


class OAuth2ClientSettings(BaseModel):
    """Client credentials of a catalog client (``LAKEHOUSE_CATALOG__OAUTH2__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The issuer URL (e.g. ``https://keycloak.example.com/realms/lakehouse``); its
    #: discovery document names the token endpoint. Either this or ``token_url``.
    issuer: str | None = None
    #: The token endpoint itself (skips discovery).
    token_url: str | None = None
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    #: Space-separated scopes to ask for (none by default).
    scope: str | None = None

    @model_validator(mode="after")
    def _one_endpoint(self) -> OAuth2ClientSettings:
        if not self.issuer and not self.token_url:
            raise ValueError("set the issuer or the token_url of the OAuth2 client")
        if not self.client_secret.get_secret_value():
            raise ValueError("the OAuth2 client_secret is empty")
        return self


class LoginSettings(BaseModel):
    """A person's sign-in, ``lakehouse login`` (``LAKEHOUSE_CATALOG__LOGIN__*``).

    The OAuth2 device authorization grant (RFC 8628) at ``issuer`` with a *public* client;
    the tokens are kept in ``token_file`` (mode 0600) and used when the catalog has
    neither a static token nor client credentials (:mod:`lakehouse.catalog.login`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The issuer URL; its discovery document names the device and token endpoints.
    issuer: str = Field(min_length=1)
    #: The public client with the device grant enabled (Keycloak: ``lakehouse-login``).
    client_id: str = Field(min_length=1)
    #: Space-separated scopes to ask for.
    scope: str = "openid"
    #: Where the tokens are kept. Default: ``$XDG_CONFIG_HOME/lakehouse/credentials.json``
    #: (``~/.config/lakehouse/credentials.json``).
    token_file: Path | None = None


class CatalogSettings(BaseModel):
    """Where the versioned catalog lives."""

    model_config = ConfigDict(extra="forbid")

    #: SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``) or a Nessie API URL.
    #: Default: ``sqlite:///<home>/catalog.db``.
    uri: str | None = None
    #: The branch that exists from the start and that merges target by default.
    default_branch: str = "main"
    #: Bearer token for a remote catalog server (static; see ``oauth2`` for signing in).
    token: SecretStr | None = None
    #: OAuth2 client credentials: the client gets its own tokens from the issuer and renews
    #: them (``LAKEHOUSE_CATALOG__OAUTH2__ISSUER``, ``…__CLIENT_ID``, ``…__CLIENT_SECRET``).
    oauth2: OAuth2ClientSettings | None = None
    #: A person's sign-in (``lakehouse login``), used when neither ``token`` nor ``oauth2``
    #: is set (``LAKEHOUSE_CATALOG__LOGIN__ISSUER``, ``…__CLIENT_ID``).
    login: LoginSettings | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name == "uri" and value else value)

    @field_validator("default_branch")
    @classmethod
    def _valid_branch(cls, value: str) -> str:
        return validate_ref_name(value)

    @model_validator(mode="after")
    def _one_credential(self) -> CatalogSettings:
        if self.token is not None and self.oauth2 is not None:
            raise ValueError(
                "set either LAKEHOUSE_CATALOG__TOKEN or LAKEHOUSE_CATALOG__OAUTH2__*, not both"
            )
        return self


class S3Settings(BaseModel):
    """Endpoint, region and credentials of the S3 API (warehouse on ``s3://`` buckets).

    Mapped to PyIceberg FileIO properties and pyarrow file systems in one place:
    :mod:`lakehouse.storage.filesystem`. No defaults point anywhere: without an
    endpoint the AWS SDK defaults apply (AWS S3, credentials from the environment).
    """

    model_config = ConfigDict(extra="forbid")

    #: URL of an S3-compatible server (``http://127.0.0.1:19000``); unset for AWS S3.
    endpoint: str | None = None
    #: Signing region; with an endpoint and no region ``us-east-1`` is used.
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    #: Address buckets as paths (``http://host/bucket/key``), as self-hosted servers need.
    path_style_access: bool = True

    def fileio_properties(self) -> dict[str, str]:
        """The PyIceberg FileIO properties (``s3.*``) for these settings, secrets revealed."""
        return s3_properties(self)


EngineName = Literal["duckdb", "spark"]


class SparkSettings(BaseModel):
    """How the Spark engine starts and reaches the catalog (cluster profile compute)."""

    model_config = ConfigDict(extra="forbid")

    #: Spark master URL (``local[2]``, ``spark://host:7077``, ``k8s://…``).
    master: str = "local[2]"
    #: How Spark reaches the versioned catalog: Iceberg's Nessie catalog over the
    #: catalog's API v2 (``nessie``), or the Iceberg REST catalog (``rest``).
    catalog_type: Literal["nessie", "rest"] = "nessie"
    #: URL of the catalog server Spark talks to (``http://host:19120/api/v2`` for ``nessie``,
    #: ``http://host:19120/iceberg`` for ``rest``). Default: derived from the catalog URI
    #: when that is a server URL.
    catalog_uri: str | None = None
    #: Folder with the Iceberg (and Nessie) Spark runtime jars
    #: (``scripts/services/spark.sh jars`` fills it). Default: ``~/.cache/lakehouse/spark/jars``.
    jars_dir: Path | None = None
    #: Extra Spark configuration (``spark.executor.memory`` …), applied last.
    conf: dict[str, str] = Field(default_factory=dict)


class KafkaSettings(BaseModel):
    """The Kafka cluster CDC ingestion consumes from."""

    model_config = ConfigDict(extra="forbid")

    #: ``host:port[,host:port…]``.
    bootstrap_servers: str = "127.0.0.1:19092"
    #: Extra librdkafka consumer configuration (``security.protocol`` …).
    conf: dict[str, str] = Field(default_factory=dict)


class MetricsSettings(BaseModel):
    """Where batch processes publish their metrics (see :mod:`lakehouse.observability`).

    The server exposes them at ``/metrics`` whatever these say.
    """

    model_config = ConfigDict(extra="forbid")

    #: Folder of node-exporter's textfile collector: ``lakehouse.prom`` is kept there
    #: (counters accumulate across runs). Unset: no file.
    textfile_dir: Path | None = None
    #: Prometheus Pushgateway URL (``http://pushgateway:9091``). Unset: no push.
    pushgateway_url: str | None = None
    #: The ``job`` label of pushed metrics.
    job: str = "lakehouse"

    @field_validator("textfile_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_dir():
            raise ValueError(f"{value} is not a folder")
        return value.expanduser() if value is not None else None


class ComputeSettings(BaseModel):
    """Which engine runs pipeline models."""

    model_config = ConfigDict(extra="forbid")

    #: ``duckdb`` or ``spark``. Default: ``duckdb`` in the embedded profile, ``spark`` in
    #: the cluster profile.
    engine: EngineName | None = None
    #: Most memory the DuckDB engine uses for a model (DuckDB's ``memory_limit``: ``1GB``,
    #: ``512MB``, ``25%``); beyond it, joins, sorts and windows spill to
    #: :attr:`duckdb_temp_directory` instead of growing.
    duckdb_memory_limit: str = Field(default="1GB", min_length=1)
    #: Where the DuckDB engine spills (default: a private folder in the system's
    #: temporary folder, removed when the process exits).
    duckdb_temp_directory: Path | None = None
    #: Rows per Arrow record batch when a model's result streams into data files.
    batch_rows: int = Field(default=65536, ge=1)

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(%|[KMGT]i?B|B|bytes)?\s*", value, re.IGNORECASE):
            raise ValueError(f"{value!r} is not a memory size (e.g. 1GB, 512MB, 25%)")
        return value.strip()


class IngestSettings(BaseModel):
    """How ingestion reads landed files."""

    model_config = ConfigDict(extra="forbid")

    #: Bytes of a CSV or JSON Lines file parsed at a time: a file is read, checked and
    #: written into data files one block after another, never whole (Parquet files are
    #: read one row group at a time).
    block_bytes: int = Field(default=16 * 1024**2, ge=1024)


def _login_name() -> str | None:
    """The process's login name (``getpass.getuser``), or None when it has none."""
    try:
        return getpass.getuser() or None
    except (KeyError, OSError):  # a uid with no passwd entry, e.g. in a container
        return None


class Settings(BaseSettings):
    """Every setting of Lakehouse. Build with :func:`load_settings` to get :class:`ConfigError`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        dotenv_filtering="match_prefix",
        env_ignore_empty=True,  # `LAKEHOUSE_CATALOG__URI=` means "use the default"
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
    )

    #: ``embedded``: one machine, SQLite catalog, local folders. ``cluster``: real services.
    profile: Profile = "embedded"
    #: Folder holding the catalog database and the local warehouse (relative to the cwd).
    home: Path = Path(".lakehouse")
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    #: Root of the buckets: a local folder, ``s3://lake/prefix`` or ``s3://acme-{bucket}``
    #: (see :meth:`lakehouse.storage.zones.Warehouse.from_uri`). Default: ``<home>/warehouse``.
    warehouse: str | None = None
    #: Author recorded on commits. Default: the ``USER`` environment variable, else the
    #: login name of the process (``LOGNAME``, then the password database), as ``git`` does.
    author: str | None = None
    s3: S3Settings = Field(default_factory=S3Settings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    #: Log lines as ``text`` or ``json`` (one object per line), on stderr; the CLI and the
    #: server configure logging, library code only logs.
    log_format: Literal["text", "json"] = "text"
    #: Lowest level logged: ``CRITICAL``, ``ERROR``, ``WARNING``, ``INFO`` or ``DEBUG``.
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "WARNING"
    #: Days a failed or interrupted run's branch (``run/*``) is kept before ``lakehouse
    #: branch prune`` and the start of every pipeline run delete it; 0 keeps them forever.
    failed_run_retention_days: int = Field(default=7, ge=0)
    #: Reference for reads and runs when none is given (``NESSIE_REF``).
    ref: str | None = Field(default=None, validation_alias=AliasChoices(*_REF_VARIABLES))

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        value = value.expanduser()
        return value if value.is_absolute() else Path.cwd() / value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str | None) -> str | None:
        if value:
            RefSpec.parse(value)
            return value
        return None

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.profile == "cluster":
            self._check_cluster()
        if self.catalog.uri is None:
            self.catalog = self.catalog.model_copy(
                update={"uri": f"sqlite:///{self.home / CATALOG_DB}"}
            )
        if self.warehouse is None:
            cluster = self.profile == "cluster"
            self.warehouse = CLUSTER_WAREHOUSE if cluster else str(self.home / WAREHOUSE_DIR)
        elif "://" not in self.warehouse:
            path = Path(self.warehouse).expanduser()
            self.warehouse = str(path if path.is_absolute() else Path.cwd() / path)
        if self.author is None:
            self.author = os.environ.get("USER") or _login_name()
        if self.compute.engine is None:
            engine: EngineName = "spark" if self.profile == "cluster" else "duckdb"
            self.compute = self.compute.model_copy(update={"engine": engine})
        return self

    def _check_cluster(self) -> None:
        """The cluster profile needs a shared catalog and S3 storage (one-line errors)."""
        uri = (self.catalog.uri or "").strip()
        if not uri.startswith(_SHARED_CATALOGS):
            kind = "the default SQLite catalog" if not uri else f"catalog {redact_url(uri)!r}"
            raise ValueError(
                f"the cluster profile cannot use {kind}: set LAKEHOUSE_CATALOG__URI to "
                "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or a Nessie URL "
                "(http://HOST:19120/api/v2)"
            )
        problem = _default_credentials(uri, self.s3)
        if problem is not None:
            raise ValueError(problem)
        if self.warehouse is not None and not self.warehouse.lower().startswith(
            ("s3://", "s3a://", "s3n://")
        ):
            raise ValueError(
                f"the cluster profile keeps tables on S3, not in {self.warehouse!r}: set "
                f"LAKEHOUSE_WAREHOUSE to an s3:// URI or leave it empty ({CLUSTER_WAREHOUSE})"
            )

    @property
    def catalog_uri(self) -> str:
        """The catalog URL, defaults applied."""
        assert self.catalog.uri is not None  # set by the validator
        return self.catalog.uri

    @property
    def warehouse_location(self) -> str:
        """The warehouse root (absolute folder or ``s3://…``), defaults applied."""
        assert self.warehouse is not None  # set by the validator
        return self.warehouse

    @property
    def default_branch(self) -> str:
        """The catalog's default branch (``main``)."""
        return self.catalog.default_branch

    @property
    def default_ref(self) -> str:
        """The reference reads and runs use when none is given: ``NESSIE_REF`` or ``main``."""
        return self.ref or self.catalog.default_branch

    @property
    def engine(self) -> EngineName:
        """The compute engine pipeline runs use, defaults applied."""
        assert self.compute.engine is not None  # set by the validator
        return self.compute.engine

    def fileio_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties for the warehouse (empty for a local one)."""
        return fileio_properties(self)

    def summary(self) -> dict[str, Any]:
        """The settings for display: secrets and passwords in URLs masked."""
        return {
            "profile": self.profile,
            "home": str(self.home),
            "catalog": redact_url(self.catalog_uri),
            "warehouse": redact_url(self.warehouse_location),
            "default_branch": self.default_branch,
            "default_ref": self.default_ref,
            "author": self.author,
            "engine": self.engine,
        }


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` with ``overrides`` on top; raise :class:`ConfigError` if invalid.

    ``None`` overrides are ignored, so optional CLI options can be passed straight through.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        if not loc and error["type"] == "value_error":  # a rule across settings
            parts.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        if not loc:
            name = "settings"
        elif loc[0].upper() in _REF_VARIABLES:  # an alias: the variable's own name
            name = "__".join(loc).upper()
        else:
            name = ENV_PREFIX + "__".join(loc).upper()
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown setting {name}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            parts.append(f"invalid setting {name}: {message}")
    return "; ".join(parts) or "invalid settings"


#: Passwords and secret keys the components ship with or their docs show: the cluster
#: profile refuses them (and a user name used as its own password) for any service that is
#: not on this machine's loopback interface.
DEFAULT_SECRETS = frozenset(
    {"", "admin", "changeme", "minioadmin", "nessie", "password", "postgres", "secret"}
)


def _loopback(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _default_credentials(catalog_uri: str, s3: S3Settings) -> str | None:
    """Why the cluster profile's credentials are a default or empty (``None``: they are not)."""
    if catalog_uri.startswith("postgresql"):
        parts = urlsplit(catalog_uri)
        password = parts.password
        if (
            password is not None
            and (password in DEFAULT_SECRETS or password == parts.username)
            and not _loopback(parts.hostname)
        ):
            return (
                f"the cluster profile refuses a default password for {redact_url(catalog_uri)}: "
                "set a real one in LAKEHOUSE_CATALOG__URI (or leave it out for PGPASSWORD / "
                ".pgpass)"
            )
    if s3.access_key_id is not None or s3.secret_access_key is not None:
        secret = s3.secret_access_key.get_secret_value() if s3.secret_access_key else ""
        if not s3.access_key_id or not secret:
            return (
                "the cluster profile needs both LAKEHOUSE_S3__ACCESS_KEY_ID and "
                "LAKEHOUSE_S3__SECRET_ACCESS_KEY, or neither (the AWS credential chain)"
            )
        endpoint = urlsplit(s3.endpoint).hostname if s3.endpoint else None
        default = secret in DEFAULT_SECRETS or secret == s3.access_key_id
        if default and (s3.endpoint is None or not _loopback(endpoint)):
            return (
                f"the cluster profile refuses the default S3 secret key of access key "
                f"{s3.access_key_id!r}: set a real LAKEHOUSE_S3__SECRET_ACCESS_KEY"
            )
    return None


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for display)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


__all__ = [
    "CatalogSettings",
    "LoginSettings",
    "MetricsSettings",
    "OAuth2ClientSettings",
    "S3Settings",
    "Settings",
    "load_settings",
]
