"""Maintenance policies: what to keep, when to compact, what the garbage collector may delete.

Policies come from a YAML file, ``maintenance.yaml`` in the lakehouse home unless a path is
given (:func:`load_policies`); without a file the defaults below apply. Unknown keys are
errors (``extra="forbid"``). Durations are ``30s``, ``15m``, ``12h``, ``7d``, ``2w``, ISO 8601
(``P7D``) or seconds; sizes are bytes or ``128MiB``/``1GB``. Example with every section::

    snapshots:                 # snapshot expiry (metadata only)
      keep_last: 5             # always keep the newest 5 snapshots of each Iceberg branch
      max_age: 7d              # expire older snapshots beyond those
      keep_ingest_history: true   # never lose ingestion's exactly-once state …
      ingest_checkpoints: true    # … by checkpointing it (false: keep the whole chain)
    compaction:
      target_file_size: 128MiB
      small_file_ratio: 0.75   # a data file below 0.75 x target is "small"
      min_small_files: 5       # compact a partition with at least 5 small files …
      min_small_share: 0.5     # … or whose files are at least half small (needs >= 2)
      rewrite_manifests: true
      max_manifests: 10        # rewrite when a snapshot has more data manifests than this
    overrides:                 # per namespace or table; the most specific wins
      bronze:
        snapshots: {max_age: 30d}
      silver.orders:
        compaction: {target_file_size: 256MiB}
    gc:
      grace_period: 1d         # never delete a file younger than this
      references:              # history kept per reference pattern; first match wins
        - {pattern: main, keep_commits: 100, max_age: 30d}
        - {pattern: "run/*", type: branch, keep_commits: 1}
        - {pattern: "*", type: tag, keep_commits: 1}
      default: {}              # other references: all history (the safe default)
      exclude: ["_gc/*"]       # bucket-relative paths the sweep never touches
    branches:
      merge_into: main
      include: ["*"]
      exclude: []
      require_checks: false    # true: merge only branches whose pipeline run passed
      stale_after: 30d

Retention of history (``gc.references``) works like nessie-gc's cutoff policies: a reference
keeps its newest ``keep_commits`` commits and every commit younger than ``max_age`` (the
union when both are given), plus the commit that was current at the cutoff; with neither,
all of its history. Everything a kept commit can reach stays; the collector may delete the
rest once it is older than ``grace_period``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from lakehouse.catalog.model import ContentKey, ReferenceType
from lakehouse.maintenance.errors import PolicyError

#: File name of the policies file inside the lakehouse home.
POLICIES_FILE = "maintenance.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|week|weeks)\s*$")
_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}


def parse_duration(value: Any) -> Any:
    """``"7d"`` → ``timedelta(days=7)``; other forms are left to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


def format_duration(value: timedelta) -> str:
    """A short form of ``value`` (``7d``, ``12h``, ``90s``) that :func:`parse_duration` reads."""
    seconds = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    return value


#: A non-negative duration (``7d``, ``12h``, ``P7D``, seconds).
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SnapshotPolicy(_Model):
    """Snapshot expiry of one table (Iceberg's ``history.expire.*`` semantics)."""

    #: Snapshots of each Iceberg branch (newest ancestors) that are always kept.
    keep_last: int = Field(default=1, ge=1)
    #: Beyond ``keep_last``, snapshots older than this are expired.
    max_age: Duration = timedelta(days=5)
    #: Never lose ingestion's exactly-once state (files loaded, cursors, Kafka offsets,
    #: read from ``lakehouse.ingest.*`` snapshot summaries) to expiry. ``false``: expire
    #: ingestion snapshots without keeping their state (ingestion would load their files
    #: again) — only for tables nothing ingests into any more.
    keep_ingest_history: bool = True
    #: How ``keep_ingest_history`` keeps that state: ``true`` folds the state of expired
    #: ingestion snapshots into an ingest-state checkpoint file named by the table (and
    #: ingestion snapshots expire like any other); ``false`` keeps the whole ancestry down
    #: to the oldest ingestion snapshot (the behaviour before checkpoints: metadata grows
    #: without bound; only while an ingestion process older than checkpoints still runs).
    ingest_checkpoints: bool = True

    @field_validator("max_age")
    @classmethod
    def _check_age(cls, value: timedelta) -> timedelta:
        return _non_negative(value)


class CompactionPolicy(_Model):
    """When and how data files and manifests of one table are rewritten."""

    enabled: bool = True
    #: Size of the data files compaction writes (compressed Parquet bytes, approximately).
    target_file_size: ByteSize = ByteSize(128 * 1024 * 1024)
    #: A data file smaller than ``small_file_ratio x target_file_size`` is small.
    small_file_ratio: float = Field(default=0.75, gt=0, le=1)
    #: Compact a partition holding at least this many small files …
    min_small_files: int = Field(default=5, ge=2)
    #: … or (when set) whose data files are at least this share small (and at least 2).
    min_small_share: float | None = Field(default=None, gt=0, le=1)
    #: Rewrite a data file (applying its deletes, dropping its delete files) once at least
    #: this share of its rows is deleted (0: any delete; Iceberg's delete-ratio-threshold).
    delete_ratio: float = Field(default=0.1, ge=0, le=1)
    #: Also rewrite manifests when a snapshot lists more than ``max_manifests`` of them.
    rewrite_manifests: bool = True
    max_manifests: int = Field(default=10, ge=1)
    #: Size of the manifests a manifest rewrite writes.
    target_manifest_size: ByteSize = ByteSize(8 * 1024 * 1024)

    @property
    def small_file_size(self) -> int:
        """Files below this many bytes are small."""
        return int(self.target_file_size * self.small_file_ratio)


class TablePolicy(_Model):
    """Everything that applies to one table."""

    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy)
    compaction: CompactionPolicy = Field(default_factory=CompactionPolicy)


class TableOverride(_Model):
    """Partial :class:`TablePolicy` for a namespace or table (only the keys given apply)."""

    snapshots: dict[str, Any] = Field(default_factory=dict)
    compaction: dict[str, Any] = Field(default_factory=dict)


class Retention(_Model):
    """How much history of a reference the garbage collector keeps readable.

    Both ``None``: all of it.
    """

    keep_commits: int | None = Field(default=None, ge=1)
    max_age: Duration | None = None

    @field_validator("max_age")
    @classmethod
    def _check_age(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _non_negative(value)

    @property
    def keeps_everything(self) -> bool:
        """True when no commit of the reference's history may be collected."""
        return self.keep_commits is None and self.max_age is None

    def describe(self) -> str:
        """``"all history"``, ``"10 commits"``, ``"7d"`` or ``"10 commits + 7d"``."""
        if self.keeps_everything:
            return "all history"
        parts = []
        if self.keep_commits is not None:
            parts.append(f"{self.keep_commits} commit{'s' if self.keep_commits != 1 else ''}")
        if self.max_age is not None:
            parts.append(format_duration(self.max_age))
        return " + ".join(parts)


class RetentionRule(Retention):
    """A :class:`Retention` for the references whose name matches ``pattern`` (fnmatch)."""

    pattern: str = Field(min_length=1)
    type: Literal["branch", "tag", "any"] = "any"

    def matches(self, name: str, kind: ReferenceType) -> bool:
        """True if this rule applies to reference ``name`` of type ``kind``."""
        if self.type != "any" and self.type != kind.value.lower():
            return False
        return fnmatch.fnmatchcase(name, self.pattern)


class GCPolicy(_Model):
    """What the garbage collector keeps."""

    enabled: bool = True
    #: Files younger than this are never deleted (in-flight writes, clock skew).
    grace_period: Duration = timedelta(days=1)
    #: Per reference pattern, first match wins.
    references: list[RetentionRule] = Field(default_factory=list)
    #: References no rule matches.
    default: Retention = Field(default_factory=Retention)
    #: Bucket-relative path patterns (fnmatch) the sweep never deletes.
    exclude: list[str] = Field(default_factory=lambda: ["_gc/*"])
    #: How many sample paths a report shows.
    sample_size: int = Field(default=10, ge=0)

    @field_validator("grace_period")
    @classmethod
    def _check_grace(cls, value: timedelta) -> timedelta:
        return _non_negative(value)

    def retention_for(self, name: str, kind: ReferenceType) -> Retention:
        """The retention of reference ``name``: the first matching rule, else the default."""
        for rule in self.references:
            if rule.matches(name, kind):
                return Retention(keep_commits=rule.keep_commits, max_age=rule.max_age)
        return self.default

    def excluded(self, relative_path: str) -> bool:
        """True if the sweep must never delete ``relative_path`` (relative to its bucket)."""
        return any(fnmatch.fnmatchcase(relative_path, p) for p in self.exclude)


class BranchPolicy(_Model):
    """Which approved branches a maintenance run merges, and into what."""

    merge_into: str = "main"
    #: Branch name patterns (fnmatch) considered; ``merge_into`` itself never is.
    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)
    #: Merge only branches whose newest pipeline run (``lakehouse.run.status``) passed;
    #: when false, a branch without any run record is merged on approval alone (a failed
    #: run always blocks).
    require_checks: bool = False
    #: An approved branch whose last commit is older than this is reported stale, not merged.
    stale_after: Duration | None = timedelta(days=30)
    #: Delete a branch once it has been merged.
    delete_after_merge: bool = False

    def considers(self, name: str) -> bool:
        """True if branch ``name`` is subject to this policy."""
        if name == self.merge_into:
            return False
        if not any(fnmatch.fnmatchcase(name, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)


class Policies(_Model):
    """Every maintenance policy (the contents of ``maintenance.yaml``)."""

    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy)
    compaction: CompactionPolicy = Field(default_factory=CompactionPolicy)
    #: Namespace (``bronze``) or table (``bronze.orders``) → partial policy.
    overrides: dict[str, TableOverride] = Field(default_factory=dict)
    gc: GCPolicy = Field(default_factory=GCPolicy)
    branches: BranchPolicy = Field(default_factory=BranchPolicy)

    @model_validator(mode="after")
    def _check_overrides(self) -> Policies:
        # validate every override now, so a typo fails at load time, not mid-run
        for name in self.overrides:
            try:
                ContentKey.parse(name)
            except ValueError as exc:
                raise ValueError(f"overrides: invalid namespace or table {name!r}: {exc}") from None
            self._merged(self._chain(ContentKey.parse(name)))
        return self

    def _chain(self, key: ContentKey) -> list[TableOverride]:
        out: list[TableOverride] = []
        for i in range(1, len(key.elements) + 1):
            override = self.overrides.get(".".join(key.elements[:i]))
            if override is not None:
                out.append(override)
        return out

    def _merged(self, chain: Sequence[TableOverride]) -> TablePolicy:
        snapshots = self.snapshots.model_dump()
        compaction = self.compaction.model_dump()
        for override in chain:
            snapshots.update(override.snapshots)
            compaction.update(override.compaction)
        return TablePolicy(
            snapshots=SnapshotPolicy.model_validate(snapshots),
            compaction=CompactionPolicy.model_validate(compaction),
        )

    def for_table(self, table: str | ContentKey) -> TablePolicy:
        """The policy of ``table``: defaults, then namespace overrides, then the table's own."""
        key = table if isinstance(table, ContentKey) else ContentKey.parse(table)
        return self._merged(self._chain(key))

    def with_changes(self, **sections: Mapping[str, Any]) -> Policies:
        """A copy with some sections' fields replaced, validated (``gc={"grace_period": 0}``)."""
        data = self.model_dump()
        for name, values in sections.items():
            if name not in data:
                raise PolicyError(f"unknown policy section {name!r}")
            if isinstance(data[name], dict) and name != "overrides":
                data[name].update(values)
            else:
                data[name] = values
        return _validate(data, None)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "policies"
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown key {where}")
        else:
            parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts) or "invalid policies"


def _validate(data: Any, path: str | None) -> Policies:
    try:
        return Policies.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise PolicyError(_describe(exc), path=path) from None


def load_policies(path: str | Path | None = None, *, home: str | Path | None = None) -> Policies:
    """Read policies from ``path``, else from ``<home>/maintenance.yaml`` if it exists.

    An explicit ``path`` that does not exist is an error; no file at all means the
    defaults. Raises :class:`~lakehouse.maintenance.errors.PolicyError`.
    """
    if path is None:
        if home is None:
            return Policies()
        candidate = Path(home) / POLICIES_FILE
        if not candidate.exists():
            return Policies()
        path = candidate
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            f"cannot read the policies file ({exc.strerror})", path=str(file)
        ) from None
    return parse_policies(text, path=str(file))


def parse_policies(text: str, *, path: str | None = None) -> Policies:
    """Policies from YAML text (see the module docstring)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {' '.join(str(exc).split())}", path=path) from None
    if data is not None and not isinstance(data, dict):
        raise PolicyError("the policies file must hold a mapping", path=path)
    return _validate(data, path)


__all__ = [
    "POLICIES_FILE",
    "BranchPolicy",
    "CompactionPolicy",
    "Duration",
    "GCPolicy",
    "Policies",
    "Retention",
    "RetentionRule",
    "SnapshotPolicy",
    "TableOverride",
    "TablePolicy",
    "format_duration",
    "load_policies",
    "parse_duration",
    "parse_policies",
]
