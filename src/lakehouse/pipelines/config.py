"""``pipeline.yaml``: the pydantic models of a pipeline definition (docs/pipelines-spec.md).

Every model forbids unknown fields, so a typo is an error naming the file and the field
(``pipelines/tpch/pipeline.yaml: checks[3].colums: unknown field``) rather than a setting
silently ignored.

::

    name: tpch
    description: TPC-H medallion demo
    schedule: "@daily"
    sources: [...]                 # validated by lakehouse.ingest
    models:
      silver.orders:
        {materialized: incremental, unique_key: [o_orderkey], delete_condition: "_op = 'D'"}
    checks:
      - {model: silver.orders, type: not_null, columns: [o_orderkey]}
      - {name: no_negative_prices, type: sql, sql: "SELECT * FROM silver.orders WHERE …"}
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from lakehouse.pipelines.errors import PipelineConfigError

Severity = Literal["error", "warn"]
Materialization = Literal["full_refresh", "append", "merge", "incremental"]
#: Materializations that write by ``unique_key``.
KEYED: tuple[Materialization, ...] = ("merge", "incremental")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_TABLE = re.compile(r"^[^.\s]+\.[^.\s]+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])", re.IGNORECASE)
_DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _table_name(value: str) -> str:
    if not isinstance(value, str) or not _TABLE.match(value):
        raise ValueError(f"{value!r} is not a table name: use namespace.table (silver.orders)")
    return value


def _optional_table_name(value: str | None) -> str | None:
    return None if value is None else _table_name(value)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def parse_duration(value: Any) -> Any:
    """``"1d"``, ``"12h"``, ``"1h30m"``, ``"2w"`` → :class:`timedelta`; other input unchanged.

    Numbers are seconds; ISO 8601 durations (``P1D``) are left to pydantic.
    """
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and _DURATION_PART.sub("", text).strip() == "":
            seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in parts)
            return timedelta(seconds=seconds)
    return value


# -- models ---------------------------------------------------------------------------------


class ModelConfig(_Strict):
    """How a model's result is written into its table."""

    #: ``full_refresh`` replaces the table's rows, ``append`` adds the result,
    #: ``merge`` upserts on ``unique_key`` and deletes rows matching ``delete_condition``;
    #: ``incremental`` is a ``merge`` whose sources are read only for the rows appended
    #: since the model's last successful write (:mod:`lakehouse.pipelines.incremental`).
    materialized: Materialization = "full_refresh"
    #: Key columns of ``merge`` and ``incremental``.
    unique_key: list[str] | None = None
    #: SQL condition on the model's result: matching rows delete their key from the table.
    delete_condition: str | None = None
    #: ``incremental`` only: the tables read for their new rows (default: every table the
    #: model reads except its own); the others are read in full (dimensions of a join).
    incremental_sources: list[str] | None = None

    _list_key = field_validator("unique_key", "incremental_sources", mode="before")(_as_list)

    @field_validator("incremental_sources")
    @classmethod
    def _source_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("incremental_sources needs at least one table")
            for name in value:
                _table_name(name)
        return value

    @model_validator(mode="after")
    def _merge_options(self) -> ModelConfig:
        if self.materialized in KEYED:
            if not self.unique_key:
                raise ValueError(
                    f"materialized: {self.materialized} needs unique_key (the key columns)"
                )
        else:
            if self.unique_key:
                raise ValueError("unique_key is only used with materialized: merge or incremental")
            if self.delete_condition:
                raise ValueError(
                    "delete_condition is only used with materialized: merge or incremental"
                )
        if self.incremental_sources is not None and self.materialized != "incremental":
            raise ValueError("incremental_sources is only used with materialized: incremental")
        if self.delete_condition:
            _check_condition(self.delete_condition)
        return self

    @property
    def incremental(self) -> bool:
        """True for ``materialized: incremental``."""
        return self.materialized == "incremental"

    def as_merge(self) -> ModelConfig:
        """The ``merge`` settings an ``incremental`` model writes with (itself otherwise)."""
        if not self.incremental:
            return self
        return ModelConfig(
            materialized="merge",
            unique_key=self.unique_key,
            delete_condition=self.delete_condition,
        )


def _check_condition(condition: str) -> None:
    """Raise unless ``condition`` is one SQL expression the read path allows.

    The engines evaluate it in their own statement over the model's result; checked as
    ``SELECT (condition)`` it cannot smuggle in a second statement, a file-reading table
    function or a settings function (:mod:`lakehouse.query.sandbox`).
    """
    from lakehouse.query.errors import QueryError
    from lakehouse.query.sandbox import check_read_only

    try:
        check_read_only(f"SELECT ({condition})")
    except QueryError as exc:
        raise ValueError(f"delete_condition {condition!r}: {exc}") from None


# -- checks ---------------------------------------------------------------------------------


class _Check(_Strict):
    #: Name shown in reports (default: derived from type, model and columns).
    name: str | None = None
    #: ``error`` blocks the merge when the check fails; ``warn`` only reports.
    severity: Severity = "error"

    @property
    def display_name(self) -> str:
        """The check's name, or one made of its type, model and columns."""
        return self.name or self._default_name()

    def _default_name(self) -> str:
        return str(getattr(self, "type", "check"))

    @property
    def target(self) -> str | None:
        """The model or table the check is about."""
        model: str | None = getattr(self, "model", None)
        return model


class NotNullCheck(_Check):
    """Fails for rows where any of ``columns`` is NULL."""

    type: Literal["not_null"]
    model: str
    columns: list[str] = Field(min_length=1)

    _table = field_validator("model")(_table_name)
    _list = field_validator("columns", mode="before")(_as_list)

    def _default_name(self) -> str:
        return f"not_null({self.model}: {', '.join(self.columns)})"


class UniqueCheck(_Check):
    """Fails for each combination of ``columns`` held by more than one row (NULLs ignored)."""

    type: Literal["unique"]
    model: str
    columns: list[str] = Field(min_length=1)

    _table = field_validator("model")(_table_name)
    _list = field_validator("columns", mode="before")(_as_list)

    def _default_name(self) -> str:
        return f"unique({self.model}: {', '.join(self.columns)})"


class AcceptedValuesCheck(_Check):
    """Fails for rows whose ``column`` is not NULL and not one of ``values``."""

    type: Literal["accepted_values"]
    model: str
    column: str
    values: list[str | int | float | bool] = Field(min_length=1)

    _table = field_validator("model")(_table_name)

    def _default_name(self) -> str:
        return f"accepted_values({self.model}: {self.column})"


class RelationshipsCheck(_Check):
    """Fails for rows whose ``column`` (not NULL) has no match in ``to``.``field``."""

    type: Literal["relationships"]
    model: str
    column: str
    to: str
    field: str

    _table = field_validator("model", "to")(_table_name)

    def _default_name(self) -> str:
        return f"relationships({self.model}.{self.column} -> {self.to}.{self.field})"


class RowCountCheck(_Check):
    """Fails when the table's row count is below ``min`` or above ``max``."""

    type: Literal["row_count"]
    model: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    _table = field_validator("model")(_table_name)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("row_count needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def _default_name(self) -> str:
        bounds = f"{'' if self.min is None else self.min}..{'' if self.max is None else self.max}"
        return f"row_count({self.model}: {bounds})"


class FreshnessCheck(_Check):
    """Fails when the newest ``column`` value is older than ``max_age`` (or there is none)."""

    type: Literal["freshness"]
    model: str
    column: str
    #: ``30m``, ``12h``, ``1d``, ``1w`` (combinations like ``1d12h``), seconds, or ISO ``P1D``.
    max_age: timedelta

    _table = field_validator("model")(_table_name)
    _age = field_validator("max_age", mode="before")(parse_duration)

    @field_validator("max_age")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_age must be positive")
        return value

    def _default_name(self) -> str:
        return f"freshness({self.model}.{self.column})"


class SqlCheck(_Check):
    """Custom SQL: fails when the query returns rows."""

    type: Literal["sql"]
    name: str
    sql: str
    #: Optional: the model the check is about (for reports).
    model: str | None = None

    _table = field_validator("model")(_optional_table_name)


Check = Annotated[
    NotNullCheck
    | UniqueCheck
    | AcceptedValuesCheck
    | RelationshipsCheck
    | RowCountCheck
    | FreshnessCheck
    | SqlCheck,
    Field(discriminator="type"),
]
CHECK_TYPES: tuple[str, ...] = (
    "not_null",
    "unique",
    "accepted_values",
    "relationships",
    "row_count",
    "freshness",
    "sql",
)


# -- the pipeline --------------------------------------------------------------------------


class PipelineConfig(_Strict):
    """The content of ``pipeline.yaml``."""

    #: Pipeline name: part of run branch names (``run/<name>/<run-id>``).
    name: str
    description: str = ""
    #: Cron expression or preset for Airflow; informational for ``lakehouse run``.
    schedule: str | None = None
    #: Ingestion sources (raw landing, then bronze), as :mod:`lakehouse.ingest` defines them
    #: (:func:`lakehouse.ingest.parse_source` validates them and expands ``${VAR:-default}``).
    sources: list[dict[str, Any]] = Field(default_factory=list)
    #: Per-model settings by model name (``silver.orders``); default ``full_refresh``.
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a pipeline name: use letters, digits, '_' and '-', "
                "starting with a letter"
            )
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for name in value:
            _table_name(name)
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        for i, source in enumerate(value):
            if not isinstance(source, dict):
                raise ValueError(f"sources[{i}] must be a mapping (name, type, …)")
            if not isinstance(source.get("name"), str) or not source["name"]:
                raise ValueError(f"sources[{i}] needs a name")
        return value


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i and isinstance(loc[i - 1], int) and part in CHECK_TYPES:
            continue  # the union tag pydantic inserts after the list index
        elif i == 1 and loc[0] == "models":
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(exc: ValidationError, file: str) -> str:
    """One line for all errors of ``exc``: ``file: field: message; field: message``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = _location(tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "field required"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return f"{file}: " + "; ".join(parts)


def parse_config(data: Any, file: str | Path, *, default_name: str | None = None) -> PipelineConfig:
    """Validate the parsed YAML of ``file``; raise :class:`PipelineConfigError` naming the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PipelineConfigError(f"{file}: expected a mapping at the top level")
    if default_name is not None and "name" not in data:
        data = {**data, "name": default_name}
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise PipelineConfigError(describe_validation_error(exc, str(file))) from None


def parse_check(data: Any, file: str) -> Check:
    """Validate one check definition (for checks given outside ``pipeline.yaml``)."""
    try:
        check: Check = TypeAdapter(Check).validate_python(data)
    except ValidationError as exc:
        raise PipelineConfigError(describe_validation_error(exc, file)) from None
    return check


__all__ = [
    "KEYED",
    "AcceptedValuesCheck",
    "Check",
    "FreshnessCheck",
    "Materialization",
    "ModelConfig",
    "NotNullCheck",
    "PipelineConfig",
    "RelationshipsCheck",
    "RowCountCheck",
    "Severity",
    "SqlCheck",
    "UniqueCheck",
    "parse_config",
    "parse_duration",
]
