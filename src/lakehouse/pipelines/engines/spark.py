"""The Spark engine: models run on Apache Spark over the Iceberg tables of the run's branch.

Spark reaches the versioned catalog through a catalog server — our ``lakehouse serve``
or a real Nessie server — with Iceberg's Spark runtime: ``catalog_type`` ``nessie``
(Iceberg's ``NessieCatalog`` over the API v2, ``ref`` = the engine's branch) or ``rest``
(the Iceberg REST catalog of ``lakehouse serve``, the branch in the prefix). Every commit
Spark makes is a commit on that branch, so write-audit-publish works as with DuckDB. The
embedded SQLite catalog cannot be reached from the JVM: with it (and no
``LAKEHOUSE_SPARK__CATALOG_URI``) the engine refuses to start with a one-line error.

Settings (:class:`~lakehouse.config.SparkSettings`): ``master`` (``local[2]`` …),
``catalog_type``, ``catalog_uri`` (default: the lakehouse's catalog URL when it is a
server URL), ``jars_dir`` (the Iceberg runtime and AWS bundle jars that
``scripts/services/spark.sh jars`` downloads) and ``conf`` (any Spark setting, applied
last). Storage comes from the same settings as everywhere else: an ``s3://`` warehouse
uses Iceberg's ``S3FileIO`` with ``LAKEHOUSE_S3__*`` (endpoint, path-style, region,
credentials); a local warehouse uses Hadoop's file system.

One Spark session serves every engine of the process (starting a JVM takes seconds):
:func:`spark_session` creates it on first use; :meth:`SparkEngine.close` only forgets the
engine's catalog and :func:`stop_spark_session` (also run at exit) stops the session. Each
engine registers its own Spark catalog (``lakehouse_<random>``) bound to its branch.

Queries are written in DuckDB's dialect (the pipelines' one) and translated by
:func:`to_spark_sql` (sqlglot, DuckDB → Spark, table names qualified with the engine's
catalog, DuckDB's result types kept where Spark's differ). Writes keep the semantics of
the DuckDB engine (:mod:`lakehouse.pipelines.engines.duckdb`), one Iceberg commit each:

* ``full_refresh`` — ``CREATE OR REPLACE TABLE … AS SELECT`` (the table's schema follows
  the result, its history, location and properties stay);
* ``append`` — appended (new columns or wider types are added first, by one schema
  commit through the :class:`~lakehouse.catalog.iceberg.RefCatalog`);
* ``merge`` — on ``unique_key``: the result is validated (no NULL or duplicate key), rows
  matching ``delete_condition`` delete their key, the others are upserted; only rows that
  differ from the table's version are sent to ``MERGE INTO`` (Iceberg's SQL extensions),
  so nothing changed means no commit. New columns: one schema commit first.

New tables are created by Spark with the layout and safety properties of the catalog
(``location`` and ``write.data.path`` under the zone bucket, ``write.metadata.path``
under ``iceberg-metadata``, ``gc.enabled=false``,
``write.metadata.delete-after-commit.enabled=false``). ``properties`` (run id, model)
are recorded on every snapshot through Iceberg's ``spark.sql.iceberg.snapshot-property.*``
session settings.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit, urlunsplit

from lakehouse.pipelines.engines.base import Engine, WriteResult
from lakehouse.pipelines.engines.duckdb import MergeError
from lakehouse.pipelines.errors import PipelineConfigError, PipelineError

if TYPE_CHECKING:
    import pyarrow as pa
    import sqlglot.expressions as exp
    from pyiceberg.table import Table
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.config import Settings
    from lakehouse.pipelines.config import ModelConfig
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: The Iceberg Spark catalog implementation and the SQL extensions (``MERGE INTO``).
SPARK_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
NESSIE_CATALOG_IMPL = "org.apache.iceberg.nessie.NessieCatalog"
REST_CATALOG_IMPL = "org.apache.iceberg.rest.RESTCatalog"
S3_FILE_IO = "org.apache.iceberg.aws.s3.S3FileIO"
#: Prefix of the session settings Iceberg records on the snapshots of SQL writes.
SNAPSHOT_PROPERTY_CONF = "spark.sql.iceberg.snapshot-property."
#: Spark settings used unless ``LAKEHOUSE_SPARK__CONF`` says otherwise.
DEFAULT_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "ERROR",
}
#: Shuffle partitions for a ``local[…]`` master (Spark's default of 200 is for clusters).
LOCAL_SHUFFLE_PARTITIONS = "4"

_DELETE_FLAG = "__lh_delete"


class SparkQueryError(PipelineError, ValueError):
    """Spark could not translate or run a query (the message is Spark's first line)."""


# -- configuration ---------------------------------------------------------------------------


def default_jars_dir() -> Path:
    """Where ``scripts/services/spark.sh jars`` puts the jars (``$LAKEHOUSE_CACHE/spark/jars``)."""
    cache = os.environ.get("LAKEHOUSE_CACHE") or "~/.cache/lakehouse"
    return Path(cache).expanduser() / "spark" / "jars"


def runtime_jars(settings: Settings) -> list[Path]:
    """The jars of ``settings.spark.jars_dir``; :class:`PipelineConfigError` when there are none."""
    folder = settings.spark.jars_dir or default_jars_dir()
    jars = sorted(folder.expanduser().glob("*.jar"))
    if not any(j.name.startswith("iceberg-spark-runtime-") for j in jars):
        raise PipelineConfigError(
            f"no Iceberg Spark runtime jar in {folder}: run `scripts/services/spark.sh jars` "
            "or set LAKEHOUSE_SPARK__JARS_DIR"
        )
    return jars


def _server_root(uri: str) -> str:
    """``http://host:port/prefix`` of a catalog server URL ending in ``/api/v2`` or ``/iceberg``."""
    parts = urlsplit(uri.rstrip("/"))
    path = re.sub(r"/(api/v[12]|iceberg)(/.*)?$", "", parts.path)
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


def catalog_server_uri(settings: Settings) -> str:
    """The URL Spark's catalog talks to (see :class:`~lakehouse.config.SparkSettings`).

    ``LAKEHOUSE_SPARK__CATALOG_URI`` when set; else derived from the lakehouse's catalog
    when that is a server URL (``http://host:19120/api/v2``): the API v2 URL for
    ``nessie``, ``<server>/iceberg`` for ``rest``. A SQLite or PostgreSQL catalog is not a
    server: :class:`PipelineConfigError`.
    """
    spark = settings.spark
    if spark.catalog_uri:
        return spark.catalog_uri.rstrip("/")
    uri = settings.catalog_uri
    if not uri.startswith(("http://", "https://")):
        raise PipelineConfigError(
            "the Spark engine needs a catalog server, not the catalog database "
            f"{uri.split(':', 1)[0]!r}: run `lakehouse serve` (or use Nessie) and set "
            "LAKEHOUSE_SPARK__CATALOG_URI=http://HOST:19120/api/v2"
        )
    root = _server_root(uri)
    return f"{root}/api/v2" if spark.catalog_type == "nessie" else f"{root}/iceberg"


def catalog_properties(settings: Settings, ref: str) -> dict[str, str]:
    """Properties of the Iceberg Spark catalog bound to branch ``ref`` (secrets revealed).

    Keys are relative to ``spark.sql.catalog.<name>``; the empty key is the catalog class.
    """
    from lakehouse.storage.filesystem import is_s3
    from lakehouse.storage.zones import METADATA_BUCKET, Warehouse

    spark = settings.spark
    uri = catalog_server_uri(settings)
    warehouse = Warehouse.from_uri(settings.warehouse_location)
    props: dict[str, str] = {"": SPARK_CATALOG, "cache-enabled": "false"}
    token = settings.catalog.token.get_secret_value() if settings.catalog.token else None
    if spark.catalog_type == "nessie":
        if not re.search(r"/api/v2/?$", uri):
            raise PipelineConfigError(
                f"the Spark engine's nessie catalog needs the API v2 URL (…/api/v2), not {uri!r}"
            )
        props.update(
            {
                "catalog-impl": NESSIE_CATALOG_IMPL,
                "uri": uri,
                "ref": ref,
                "client-api-version": "2",
                "warehouse": warehouse.bucket_uri(METADATA_BUCKET),
            }
        )
        if token:
            props["authentication.type"] = "BEARER"
            props["authentication.token"] = token
        oauth2 = settings.catalog.oauth2
        if oauth2 is not None:
            # Nessie's own client signs in (nessie.authentication.oauth2.*, client credentials)
            props["authentication.type"] = "OAUTH2"
            if oauth2.issuer:
                props["authentication.oauth2.issuer-url"] = oauth2.issuer
            if oauth2.token_url:
                props["authentication.oauth2.token-endpoint"] = oauth2.token_url
            props["authentication.oauth2.client-id"] = oauth2.client_id
            props["authentication.oauth2.client-secret"] = oauth2.client_secret.get_secret_value()
            if oauth2.scope:
                props["authentication.oauth2.client-scopes"] = oauth2.scope
    else:
        if settings.catalog.oauth2 is not None:
            raise PipelineConfigError(
                "the Spark engine's rest catalog takes a static token only "
                "(LAKEHOUSE_CATALOG__TOKEN); to sign in with LAKEHOUSE_CATALOG__OAUTH2__* use "
                "LAKEHOUSE_SPARK__CATALOG_TYPE=nessie"
            )
        base = uri if uri.endswith("/iceberg") else f"{_server_root(uri)}/iceberg"
        props.update({"type": "rest", "uri": f"{base}/{quote(ref, safe='')}"})
        if token:
            props["token"] = token
    if is_s3(settings.warehouse_location):
        s3 = settings.s3
        props["io-impl"] = S3_FILE_IO
        if s3.endpoint:
            props["s3.endpoint"] = s3.endpoint
        props["s3.path-style-access"] = str(s3.path_style_access).lower()
        region = s3.region or ("us-east-1" if s3.endpoint else None)
        if region:
            props["client.region"] = region
        if s3.access_key_id:
            props["s3.access-key-id"] = s3.access_key_id
        if s3.secret_access_key is not None:
            props["s3.secret-access-key"] = s3.secret_access_key.get_secret_value()
    return props


def catalog_conf(name: str, properties: Mapping[str, str]) -> dict[str, str]:
    """Spark settings that register catalog ``name`` with ``properties``.

    ``properties`` as :func:`catalog_properties` gives them: keys relative to
    ``spark.sql.catalog.<name>``, the empty key the catalog class.
    """
    prefix = f"spark.sql.catalog.{name}"
    return {f"{prefix}.{key}" if key else prefix: value for key, value in properties.items()}


def session_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of the session (jars, Iceberg extensions, defaults, then ``conf``)."""
    jars = runtime_jars(settings)
    conf = {
        "spark.master": settings.spark.master,
        "spark.app.name": "lakehouse",
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        **DEFAULT_CONF,
    }
    if settings.spark.master.startswith("local"):
        conf["spark.sql.shuffle.partitions"] = LOCAL_SHUFFLE_PARTITIONS
    conf.update(settings.spark.conf)
    return conf


# -- the session -----------------------------------------------------------------------------

_lock = threading.RLock()
_session: SparkSession | None = None
_session_key: tuple[tuple[str, str], ...] | None = None


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session for ``settings`` (created on first use, then shared).

    A session started with other settings (master, jars, ``conf``) is stopped first.
    """
    global _session, _session_key
    conf = session_conf(settings)
    key = tuple(sorted(conf.items()))
    with _lock:
        if _session is not None and _session_key == key and _alive(_session):
            return _session
        stop_spark_session()
        from pyspark.sql import SparkSession

        builder = SparkSession.builder
        for name, value in conf.items():
            builder = builder.config(name, value)
        logger.info("starting Spark (master %s)", settings.spark.master)
        _session = builder.getOrCreate()
        _session_key = key
        return _session


def _alive(session: SparkSession) -> bool:
    try:
        return session.sparkContext._jsc is not None  # stopped contexts drop their JVM handle
    except Exception:
        return False


def stop_spark_session() -> None:
    """Stop the shared session, if any (the next :func:`spark_session` starts a new one)."""
    global _session, _session_key
    with _lock:
        if _session is not None:
            with contextlib.suppress(Exception):
                _session.stop()
        _session, _session_key = None, None


atexit.register(stop_spark_session)


# -- SQL translation ---------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    from lakehouse.query.analysis import first_line

    java = getattr(exc, "java_exception", None)  # py4j: the JVM's exception says what failed
    text = str(java) if java is not None else getattr(exc, "desc", None) or str(exc)
    return first_line(str(text)) or type(exc).__name__


def _parse(sql: str) -> exp.Expression:
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        raise SparkQueryError(f"cannot parse the query: {_one_line(exc)}") from exc
    if len(statements) != 1:
        raise SparkQueryError(f"expected one SQL statement, got {len(statements)}")
    return cast("exp.Expression", statements[0])


def _duckdb_types(node: exp.Expression) -> exp.Expression:
    """Keep DuckDB's result types and arithmetic where Spark's differ.

    ``avg`` is a DOUBLE in DuckDB, computed from the exact sum; Spark averages a DECIMAL
    as a DECIMAL rounded to 6 places (0.049995 where DuckDB says 0.0499947...). Averaging
    the argument cast to DOUBLE gives DuckDB's type and its value to ~1e-15.
    """
    import sqlglot.expressions as exp

    if isinstance(node, exp.Avg) and not (
        isinstance(node.this, exp.Cast) and node.this.to.is_type("double")
    ):
        avg = node.copy()
        avg.set("this", exp.cast(avg.this, "DOUBLE"))
        return avg
    return node


def to_spark_sql(sql: str, catalog: str) -> str:
    """Translate one DuckDB-dialect query into Spark SQL over Spark catalog ``catalog``.

    Tables named ``namespace.table`` become ``catalog.namespace.table`` (CTE names and
    one-part names are left alone); features Spark has no equivalent for raise
    :class:`SparkQueryError`.
    """
    import sqlglot.expressions as exp
    from sqlglot.errors import ErrorLevel, SqlglotError

    tree = _parse(sql)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("catalog") is not None:
            continue
        if table.args.get("db") is not None:
            table.set("catalog", exp.to_identifier(catalog))
    tree = tree.transform(_duckdb_types, copy=False)
    try:
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise SparkQueryError(f"cannot translate the query to Spark SQL: {_one_line(exc)}") from exc


def to_spark_expression(condition: str) -> str:
    """Translate one DuckDB boolean expression (a ``delete_condition``) into Spark SQL."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        node = sqlglot.parse_one(condition, read="duckdb")
        return node.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise MergeError(f"delete_condition {condition!r}: {_one_line(exc)}") from exc


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# -- the engine --------------------------------------------------------------------------------


class SparkEngine(Engine):
    """Apache Spark over the Iceberg tables of branch ``ref`` (see the module docstring)."""

    name = "spark"

    def __init__(self, lakehouse: Lakehouse, ref: str) -> None:
        super().__init__(lakehouse, ref)
        self._props = catalog_properties(lakehouse.settings, ref)  # fails before the JVM
        if importlib.util.find_spec("pyspark") is None:
            raise PipelineConfigError("the spark engine needs pyspark: install lakehouse[spark]")
        self.catalog_name = f"lakehouse_{secrets.token_hex(4)}"
        self._spark: SparkSession | None = None

    @property
    def spark(self) -> SparkSession:
        """The Spark session, with this engine's catalog registered (started on first use)."""
        if self._spark is None:
            spark = spark_session(self.lakehouse.settings)
            for key, value in catalog_conf(self.catalog_name, self._props).items():
                spark.conf.set(key, value)
            self._spark = spark
        return self._spark

    def close(self) -> None:
        """Forget this engine's catalog (the shared session keeps running)."""
        spark, self._spark = self._spark, None
        if spark is None or not _alive(spark):
            return
        for key in catalog_conf(self.catalog_name, self._props):
            with contextlib.suppress(Exception):
                spark.conf.unset(key)

    # -- reading ----------------------------------------------------------------------------

    def _table(self, name: str) -> str:
        namespace, _, table = name.rpartition(".")
        if not namespace:
            raise SparkQueryError(f"invalid table name {name!r}: use <namespace>.<table>")
        return ".".join(_ident(p) for p in (self.catalog_name, *namespace.split("."), table))

    def translate(self, sql: str) -> str:
        """``sql`` (DuckDB dialect) as Spark SQL over this engine's catalog."""
        return to_spark_sql(sql, self.catalog_name)

    def _dataframe(self, sql: str) -> DataFrame:
        translated = self.translate(sql)
        with _spark_errors():
            return self.spark.sql(translated)

    def execute(self, sql: str) -> pa.Table:
        """Run ``sql`` (DuckDB dialect) on Spark over the branch's tables; an Arrow table."""
        df = self._dataframe(sql)
        with _spark_errors():
            return _to_arrow(df)

    def read(self, table: str, *, columns: Sequence[str] | None = None) -> pa.Table:
        """Read ``table`` of the branch, all or some ``columns``."""
        with _spark_errors():
            df = self.spark.table(self._table(table))
            if columns:
                df = df.select(*[_ident(c) for c in columns])
            return _to_arrow(df)

    # -- writing ----------------------------------------------------------------------------

    def write(
        self,
        table: str,
        sql: str,
        config: ModelConfig,
        *,
        properties: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Run ``sql`` on Spark and commit the result into ``table`` (see the module docstring)."""
        df = _storable(self._dataframe(sql))
        props = dict(properties or {})
        catalog = self.lakehouse.catalog(self.ref)
        with _spark_errors(), self._snapshot_properties(props):
            if config.materialized == "merge":
                return self._merge(table, df, config)
            if not catalog.table_exists(table):
                written = self._create(table, df)
                rows = _added(written)
                return WriteResult(
                    table, config.materialized, rows, inserted=rows, created=True,
                    snapshot_id=_snapshot_id(written),
                )  # fmt: skip
            current = catalog.load_table(table)
            if config.materialized == "append":
                self._evolve(table, df)
                before = _snapshot_id(current)
                df.writeTo(self._table(table)).append()
                written = catalog.load_table(table)
                if _snapshot_id(written) == before:
                    return WriteResult(table, "append", 0)
                rows = _added(written)
                if not rows:  # Spark commits empty appends too; DuckDB does not write them
                    return WriteResult(table, "append", 0, snapshot_id=_snapshot_id(written))
                return WriteResult(
                    table, "append", rows, inserted=rows, snapshot_id=_snapshot_id(written)
                )
            previous = _total_records(current)
            written = self._replace(table, current, df)
            rows = _added(written)
            return WriteResult(
                table, "full_refresh", rows, inserted=rows, deleted=previous,
                snapshot_id=_snapshot_id(written),
            )  # fmt: skip

    @contextlib.contextmanager
    def _snapshot_properties(self, props: Mapping[str, str]) -> Iterator[None]:
        """Record ``props`` on the snapshots of the writes inside (one writer at a time)."""
        spark = self.spark
        with _lock:
            for key, value in props.items():
                spark.conf.set(SNAPSHOT_PROPERTY_CONF + key, value)
            try:
                yield
            finally:
                for key in props:
                    with contextlib.suppress(Exception):
                        spark.conf.unset(SNAPSHOT_PROPERTY_CONF + key)

    def _view(self, df: DataFrame) -> str:
        name = f"__lh_{secrets.token_hex(6)}"
        df.createOrReplaceTempView(name)
        return name

    def _table_properties(self, location: str, data: str, metadata: str) -> str:
        from pyiceberg.table import TableProperties

        from lakehouse.catalog.iceberg import SAFETY_PROPERTIES

        props = {
            **SAFETY_PROPERTIES,
            TableProperties.WRITE_DATA_PATH: data,
            TableProperties.WRITE_METADATA_PATH: metadata,
        }
        listed = ", ".join(f"{_literal(k)} = {_literal(v)}" for k, v in props.items())
        return f"LOCATION {_literal(location)} TBLPROPERTIES ({listed})"

    def _create(self, name: str, df: DataFrame) -> Table:
        """Create table ``name`` with ``df``'s rows (one commit) in the catalog's layout."""
        from pyiceberg.exceptions import NamespaceAlreadyExistsError

        catalog = self.lakehouse.catalog(self.ref)
        namespace, _, table = name.rpartition(".")
        if not catalog.namespace_exists(namespace):
            with contextlib.suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(namespace)
        paths = self.lakehouse.warehouse.table_locations(tuple(namespace.split(".")), table)
        view = self._view(df)
        try:
            self.spark.sql(
                f"CREATE TABLE {self._table(name)} USING iceberg "
                f"{self._table_properties(paths.root, paths.data, paths.metadata)} "
                f"AS SELECT * FROM {view}"
            )
        finally:
            self.spark.catalog.dropTempView(view)
        return catalog.load_table(name)

    def _replace(self, name: str, current: Table, df: DataFrame) -> Table:
        """Replace every row and the schema of ``name`` with ``df`` (one commit, same table)."""
        from pyiceberg.table import TableProperties

        properties = current.properties
        location = current.metadata.location
        data = properties.get(TableProperties.WRITE_DATA_PATH) or f"{location}/data"
        metadata = properties.get(TableProperties.WRITE_METADATA_PATH) or f"{location}/metadata"
        view = self._view(df)
        try:
            self.spark.sql(
                f"CREATE OR REPLACE TABLE {self._table(name)} USING iceberg "
                f"{self._table_properties(location, data, metadata)} "
                f"AS SELECT * FROM {view}"
            )
        finally:
            self.spark.catalog.dropTempView(view)
        return self.lakehouse.catalog(self.ref).load_table(name)

    def _evolve(self, name: str, df: DataFrame) -> list[str]:
        """Add ``df``'s new columns (and widen types) to table ``name``; its columns after.

        One schema commit through the :class:`RefCatalog` when anything changes, none else.
        """
        from pyiceberg.exceptions import ValidationError

        from lakehouse.pipelines.materialize import SchemaChangeError, iceberg_compatible

        schema = iceberg_compatible(_arrow_schema(df).empty_table()).schema
        table = self.lakehouse.catalog(self.ref).load_table(name)
        try:
            with table.update_schema() as update:
                update.union_by_name(schema)
        except (ValidationError, ValueError, TypeError) as exc:
            raise SchemaChangeError(f"the result does not fit the table's schema: {exc}") from exc
        return [f.name for f in self.lakehouse.catalog(self.ref).load_table(name).schema().fields]

    # -- merge ------------------------------------------------------------------------------

    def _merge(self, name: str, result: DataFrame, config: ModelConfig) -> WriteResult:
        from pyspark.sql import functions as sf

        keys = list(config.unique_key or ())
        columns = list(result.columns)
        missing = [k for k in keys if k not in columns]
        if missing:
            raise MergeError(
                f"unique_key column(s) {', '.join(missing)} not in the result "
                f"(columns: {', '.join(columns)})"
            )
        if _DELETE_FLAG in columns:
            raise MergeError(f"the result must not have a column named {_DELETE_FLAG}")
        flag = (
            sf.coalesce(sf.expr(to_spark_expression(config.delete_condition)), sf.lit(False))
            if config.delete_condition
            else sf.lit(False)
        )
        try:
            flagged = result.withColumn(_DELETE_FLAG, flag).localCheckpoint(eager=True)
        except Exception as exc:
            if config.delete_condition and _is_analysis_error(exc):
                raise MergeError(
                    f"delete_condition {config.delete_condition!r}: {_one_line(exc)}"
                ) from exc
            raise
        try:
            return self._merge_flagged(name, flagged, keys, columns)
        finally:
            flagged.unpersist()

    def _merge_flagged(
        self, name: str, flagged: DataFrame, keys: list[str], columns: list[str]
    ) -> WriteResult:
        from pyspark.sql import functions as sf

        key_list = ", ".join(keys)
        any_null = sf.lit(False)
        for k in keys:
            any_null = any_null | sf.col(_ident(k)).isNull()
        deleting = sf.col(_DELETE_FLAG)
        stats = flagged.agg(
            sf.count(sf.lit(1)).alias("rows"),
            sf.sum(sf.when(~deleting & any_null, 1).otherwise(0)).alias("nulls"),
        ).first()
        assert stats is not None  # an aggregate has one row
        rows, nulls = int(stats["rows"]), int(stats["nulls"] or 0)
        if nulls:
            raise MergeError(f"{nulls} row(s) of the result have a NULL unique_key ({key_list})")
        key_cols = [sf.col(_ident(k)) for k in keys]
        duplicate = (
            flagged.where(~deleting)
            .groupBy(*key_cols)
            .agg(sf.count(sf.lit(1)).alias("__n"))
            .where(sf.col("__n") > 1)
            .orderBy(sf.col("__n").desc())
            .limit(1)
            .collect()
        )
        if duplicate:
            row = duplicate[0]
            shown = ", ".join(f"{k}={row[i]!r}" for i, k in enumerate(keys))
            raise MergeError(
                f"unique_key ({key_list}) is not unique in the result: {shown} appears "
                f"{row['__n']} times"
            )
        upserts = flagged.where(~deleting).drop(_DELETE_FLAG)
        deletes = flagged.where(deleting & ~any_null).select(*key_cols).distinct()
        catalog = self.lakehouse.catalog(self.ref)
        if not catalog.table_exists(name):
            created = self._create(name, upserts)
            inserted = _added(created)
            return WriteResult(
                name, "merge", rows, inserted=inserted, created=True,
                snapshot_id=_snapshot_id(created),
            )  # fmt: skip
        target_table = catalog.load_table(name)
        target_columns = [f.name for f in target_table.schema().fields]
        missing_keys = [k for k in keys if k not in target_columns]
        if missing_keys:
            raise MergeError(
                f"table {name} has no column(s) {', '.join(missing_keys)} of unique_key"
            )
        target = self.spark.table(self._table(name))
        if all(c in target_columns for c in columns):
            same = [upserts[_ident(c)].eqNullSafe(target[_ident(c)]) for c in columns]
            changed = upserts.join(target, on=_all(same), how="left_anti")
        else:  # new columns: every row gets its new version
            changed = upserts
        changed = changed.join(
            target.select(*[sf.col(_ident(k)) for k in keys]).withColumn(
                "__lh_existing", sf.lit(1)
            ),
            on=keys,
            how="left",
        ).localCheckpoint(eager=True)
        deleted_keys = deletes.join(target.select(*key_cols), on=keys, how="left_semi")
        counts = changed.agg(
            sf.count(sf.lit(1)).alias("changed"),
            sf.count(sf.col("__lh_existing")).alias("updated"),
        ).first()
        assert counts is not None
        n_changed, updated = int(counts["changed"]), int(counts["updated"])
        deleted = target.join(deletes, on=keys, how="left_semi").count()
        if not n_changed and not deleted:
            changed.unpersist()
            return WriteResult(name, "merge", rows)
        target_columns = self._evolve(name, upserts)
        source = changed.drop("__lh_existing").withColumn(_DELETE_FLAG, sf.lit(False))
        removals = deleted_keys.join(changed.select(*key_cols), on=keys, how="left_anti")
        source = source.unionByName(
            removals.withColumn(_DELETE_FLAG, sf.lit(True)), allowMissingColumns=True
        )
        # materialized: a MERGE source must not read the target table itself
        source = source.localCheckpoint(eager=True)
        view = self._view(source)
        on = " AND ".join(f"t.{_ident(k)} = s.{_ident(k)}" for k in keys)
        assignments = ", ".join(
            f"t.{_ident(c)} = " + (f"s.{_ident(c)}" if c in columns else "NULL")
            for c in target_columns
        )
        inserted_columns = ", ".join(_ident(c) for c in columns)
        inserted_values = ", ".join(f"s.{_ident(c)}" for c in columns)
        try:
            self.spark.sql(
                f"MERGE INTO {self._table(name)} AS t USING {view} AS s ON {on} "
                f"WHEN MATCHED AND s.{_DELETE_FLAG} THEN DELETE "
                f"WHEN MATCHED THEN UPDATE SET {assignments} "
                f"WHEN NOT MATCHED AND NOT s.{_DELETE_FLAG} THEN "
                f"INSERT ({inserted_columns}) VALUES ({inserted_values})"
            )
        finally:
            self.spark.catalog.dropTempView(view)
            source.unpersist()
            changed.unpersist()
        written = catalog.load_table(name)
        return WriteResult(
            name, "merge", rows, inserted=n_changed - updated, updated=updated, deleted=deleted,
            snapshot_id=_snapshot_id(written),
        )  # fmt: skip


# -- helpers -----------------------------------------------------------------------------------


def _all(conditions: list[Any]) -> Any:
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _storable(df: DataFrame) -> DataFrame:
    """``df`` with untyped NULL columns as strings (Iceberg cannot store Spark's ``void``)."""
    from pyspark.sql.types import NullType

    void = [f.name for f in df.schema.fields if isinstance(f.dataType, NullType)]
    for name in void:
        df = df.withColumn(name, df[_ident(name)].cast("string"))
    duplicates = sorted({c for c in df.columns if df.columns.count(c) > 1})
    if duplicates:
        from lakehouse.pipelines.materialize import SchemaChangeError

        raise SchemaChangeError(
            f"the result has several columns named {', '.join(duplicates)}; alias them"
        )
    return df


def _arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    schema: pa.Schema = to_arrow_schema(df.schema)
    return schema


def _to_arrow(df: DataFrame) -> pa.Table:
    table: pa.Table = df.toArrow()
    return table


def _snapshot_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


def _summary(table: Table, name: str) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get(name, "0") or 0)


def _added(table: Table) -> int:
    return _summary(table, "added-records")


def _total_records(table: Table) -> int:
    return _summary(table, "total-records")


def _is_analysis_error(exc: BaseException) -> bool:
    from pyspark.errors import AnalysisException

    return isinstance(exc, AnalysisException)


@contextlib.contextmanager
def _spark_errors() -> Iterator[None]:
    """Spark's errors (analysis, parse, JVM) as :class:`SparkQueryError` with one line."""
    from py4j.protocol import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        Py4JJavaError,
    )
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JJavaError) as exc:
        raise SparkQueryError(_one_line(exc)) from exc


__all__ = [
    "SparkEngine",
    "SparkQueryError",
    "catalog_conf",
    "catalog_properties",
    "catalog_server_uri",
    "session_conf",
    "spark_session",
    "stop_spark_session",
    "to_spark_expression",
    "to_spark_sql",
]
