"""Loading a pipeline folder: ``pipeline.yaml``, SQL models, custom checks, the build order.

A pipeline is a folder (docs/pipelines-spec.md)::

    pipelines/<name>/
      pipeline.yaml
      silver/<table>.sql      one SELECT per file -> table silver.<table>
      gold/<table>.sql        one SELECT per file -> table gold.<table>
      checks/*.sql            custom checks: each fails when it returns rows

:func:`load_pipeline` reads and validates all of it before anything runs: a syntax error
in a model, an invalid field in ``pipeline.yaml`` or a dependency cycle is reported here,
naming the file. Dependencies come from the tables each SELECT reads (sqlglot); the build
order is a topological order that, among models ready at the same time, builds ``silver``
before ``gold`` and then goes by name. A model may read its own table (an incremental
model); that is not a dependency.

A custom check file may start with ``-- severity: warn`` to only warn.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.pipelines.config import (
    Check,
    ModelConfig,
    PipelineConfig,
    SqlCheck,
    parse_config,
)
from lakehouse.pipelines.errors import (
    DependencyCycleError,
    PipelineConfigError,
    PipelineNotFoundError,
)

if TYPE_CHECKING:
    from lakehouse.ingest import Source

#: The layers built from SQL models, in build order.
LAYERS: tuple[str, ...] = ("silver", "gold")
#: File name of a pipeline's definition.
PIPELINE_FILE = "pipeline.yaml"
#: Default folder holding pipelines (relative to the working directory).
DEFAULT_PIPELINES_DIR = Path("pipelines")

_SEVERITY_HEADER = re.compile(r"^\s*--\s*severity\s*:\s*(error|warn)\s*$", re.IGNORECASE)
_MODEL_STEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Model:
    """One SQL model: a SELECT whose result becomes table ``name``."""

    #: Table the model builds: ``<layer>.<file stem>``.
    name: str
    #: The ``.sql`` file.
    path: Path
    #: The SELECT, without a trailing ``;``.
    sql: str
    config: ModelConfig
    #: Tables the SELECT reads (``namespace.table``, as written).
    reads: tuple[str, ...] = ()
    #: Models among :attr:`reads` (the model itself excluded).
    depends_on: tuple[str, ...] = ()
    #: ``incremental`` models: the tables read only for their new rows (as in :attr:`reads`).
    incremental_sources: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        """``silver`` or ``gold``."""
        return self.name.split(".", 1)[0]

    @property
    def file(self) -> str:
        """The model file, for messages."""
        return display_path(self.path)


@dataclass(frozen=True)
class Pipeline:
    """A loaded, validated pipeline: its definition, models in build order and checks."""

    config: PipelineConfig
    #: The pipeline folder.
    path: Path
    #: Models in build order.
    models: tuple[Model, ...] = ()
    #: Checks of ``pipeline.yaml`` followed by those of ``checks/*.sql``.
    checks: tuple[Check, ...] = ()
    #: Ingestion sources (:mod:`lakehouse.ingest` objects), in ``pipeline.yaml`` order.
    sources: tuple[Source, ...] = ()
    _by_name: Mapping[str, Model] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return self.config.name

    @property
    def file(self) -> Path:
        """``pipeline.yaml``."""
        return self.path / PIPELINE_FILE

    def model(self, name: str) -> Model:
        """The model building table ``name`` (KeyError if none)."""
        return self._by_name[name.lower()]

    def has_model(self, name: str) -> bool:
        """True when a model builds table ``name``."""
        return name.lower() in self._by_name

    def step(
        self, *, sources: bool = False, layers: Collection[str] = (), checks: bool = False
    ) -> Pipeline:
        """This pipeline narrowed to one or more steps, for running them one at a time.

        The result keeps the sources only with ``sources=True``, the models of ``layers``
        (``silver``, ``gold``) in build order, and the checks only with ``checks=True``.
        Running it on the run's branch (``run_pipeline(lh, part, ref=branch,
        run_id=..., in_place=True)``) does that step there and never merges; the Airflow
        DAG runs each task this way and publishes with a merge at the end.
        """
        unknown = sorted(set(layers) - set(LAYERS))
        if unknown:
            raise PipelineConfigError(
                f"unknown layer(s) {', '.join(map(repr, unknown))}; known: {', '.join(LAYERS)}"
            )
        return replace(
            self,
            sources=self.sources if sources else (),
            models=tuple(m for m in self.models if m.layer in layers),
            checks=self.checks if checks else (),
        )

    def select(self, specs: Sequence[str]) -> Pipeline:
        """This pipeline narrowed to the models ``specs`` name, without its sources.

        ``MODEL`` selects one model, ``MODEL+`` the model and every model that depends on
        it, directly or not. The selection keeps build order and the checks about the
        selected models (a check's ``model``, or a custom SQL check reading one of them);
        tables it reads but does not build are read as they are on the run's branch.
        Raises :class:`PipelineConfigError` for a name that is no model of the pipeline.
        """
        from lakehouse.query.analysis import parse, tables_read

        chosen: set[str] = set()
        for spec in specs:
            name, plus = (spec[:-1], True) if spec.endswith("+") else (spec, False)
            if not self.has_model(name):
                known = [m.name for m in self.models]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else f" (models: {', '.join(known)})"
                raise PipelineConfigError(f"no model {name!r} in pipeline {self.name}{hint}")
            chosen.add(self.model(name).name)
            if plus:
                chosen.update(self.downstream(name))
        models = tuple(m for m in self.models if m.name in chosen)
        lowered = {n.lower() for n in chosen}

        def about_selection(check: Check) -> bool:
            if check.target is not None and check.target.lower() in lowered:
                return True
            if isinstance(check, SqlCheck):
                return any(
                    str(t).lower() in lowered for t in tables_read(check.sql, parse(check.sql))
                )
            return False

        checks = tuple(c for c in self.checks if about_selection(c))
        return replace(self, sources=(), models=models, checks=checks)

    def downstream(self, name: str) -> list[str]:
        """Every model that depends on model ``name``, directly or not, in build order."""
        found = {self.model(name).name}
        for model in self.models:  # build order: a model comes after what it depends on
            if any(d in found for d in model.depends_on):
                found.add(model.name)
        found.discard(self.model(name).name)
        return [m.name for m in self.models if m.name in found]


def find_pipeline(path_or_name: str | Path, pipelines_dir: str | Path | None = None) -> Path:
    """The folder of a pipeline given by path (folder or ``pipeline.yaml``) or by name."""
    given = Path(path_or_name)
    candidates = []
    if given.name == PIPELINE_FILE:
        candidates.append(given.parent)
    candidates.append(given)
    by_name = not given.is_absolute() and len(given.parts) == 1
    base = Path(pipelines_dir) if pipelines_dir is not None else DEFAULT_PIPELINES_DIR
    if by_name:
        candidates.append(base / given)
    for folder in candidates:
        if (folder / PIPELINE_FILE).is_file():
            return folder
    tried = ", ".join(display_path(c / PIPELINE_FILE) for c in dict.fromkeys(candidates))
    message = f"no pipeline '{path_or_name}': no {tried}"
    if by_name:  # a misspelled name: the pipelines that are there
        known = sorted(p.parent.name for p in base.glob(f"*/{PIPELINE_FILE}"))
        close = difflib.get_close_matches(given.name, known, n=3, cutoff=0.6)
        if close:
            message += f" (did you mean {' or '.join(close)}?)"
        elif known:
            message += f" (pipelines in {display_path(base)}: {', '.join(known)})"
    raise PipelineNotFoundError(message)


def load_pipeline(path_or_name: str | Path, pipelines_dir: str | Path | None = None) -> Pipeline:
    """Load and validate a pipeline (see the module docstring)."""
    import yaml

    folder = find_pipeline(path_or_name, pipelines_dir)
    file = folder / PIPELINE_FILE
    shown = display_path(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineConfigError(f"{shown}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineConfigError(f"{shown}: cannot read: {exc}") from None
    config = parse_config(data, shown, default_name=folder.resolve().name)

    sources = _parse_sources(config, folder, shown)
    models = _discover_models(folder, config, shown)
    ordered = build_order(models)
    checks: list[Check] = [*config.checks, *_sql_checks(folder)]
    _validate_sql_checks(config.checks, shown)
    return Pipeline(
        config=config,
        path=folder,
        models=tuple(ordered),
        checks=tuple(checks),
        sources=tuple(sources),
        _by_name={m.name.lower(): m for m in ordered},
    )


def _parse_sources(config: PipelineConfig, folder: Path, shown: str) -> list[Source]:
    """The ``sources:`` entries as :mod:`lakehouse.ingest` sources (validated there)."""
    if not config.sources:
        return []
    from lakehouse.ingest import IngestError, parse_source

    sources: list[Source] = []
    for i, entry in enumerate(config.sources):
        try:
            sources.append(parse_source(entry, base_dir=folder))
        except IngestError as exc:
            raise PipelineConfigError(f"{shown}: sources[{i}]: {exc}") from None
    return sources


def _discover_models(folder: Path, config: PipelineConfig, shown: str) -> list[Model]:
    from lakehouse.query.analysis import check_statement, parse, strip_terminator, tables_read
    from lakehouse.query.errors import QueryError

    files: dict[str, Path] = {}
    for layer in LAYERS:
        for path in sorted((folder / layer).glob("*.sql")):
            if not _MODEL_STEM.match(path.stem):
                raise PipelineConfigError(
                    f"{display_path(path)}: a model file is named <table>.sql with letters, "
                    "digits and '_' only"
                )
            files[f"{layer}.{path.stem}"] = path
    lowered = {name.lower(): name for name in files}
    for name in config.models:
        if name.lower() not in lowered:
            layer, _, table = name.partition(".")
            raise PipelineConfigError(
                f"{shown}: models[{name}]: no model file {layer}/{table}.sql"
                + ("" if layer in LAYERS else f" (models live in {' and '.join(LAYERS)})")
            )
    settings = {name.lower(): cfg for name, cfg in config.models.items()}

    found: list[Model] = []
    for name, path in files.items():
        where = display_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineConfigError(f"{where}: cannot read: {exc}") from None
        sql = strip_terminator(text)
        if not sql:
            raise PipelineConfigError(f"{where}: empty model (write one SELECT)")
        try:
            check_statement(sql)
        except QueryError as exc:
            raise PipelineConfigError(f"model {name} ({where}): {exc}") from None
        reads = tuple(str(t) for t in tables_read(sql, parse(sql)))
        deps = tuple(
            lowered[r.lower()]
            for r in dict.fromkeys(reads)
            if r.lower() in lowered and r.lower() != name.lower()
        )
        config_of = settings.get(name.lower(), ModelConfig())
        sources = _incremental_sources(name, config_of, reads, shown)
        found.append(Model(name, path, sql, config_of, reads, deps, sources))
    return found


def _incremental_sources(
    name: str, config: ModelConfig, reads: Sequence[str], shown: str
) -> tuple[str, ...]:
    """The tables incremental model ``name`` reads for new rows (checked against ``reads``)."""
    if not config.incremental:
        return ()
    others = {r.lower(): r for r in reads if r.lower() != name.lower()}
    if config.incremental_sources is None:
        if not others:
            raise PipelineConfigError(
                f"{shown}: models[{name}]: materialized: incremental needs a model that reads "
                "another table (it reads only itself)"
            )
        return tuple(others.values())
    chosen: list[str] = []
    for source in config.incremental_sources:
        if source.lower() == name.lower():
            raise PipelineConfigError(
                f"{shown}: models[{name}].incremental_sources: a model cannot be its own source"
            )
        if source.lower() not in others:
            read = ", ".join(others.values()) or "no other table"
            raise PipelineConfigError(
                f"{shown}: models[{name}].incremental_sources: the model does not read "
                f"{source} (it reads {read})"
            )
        chosen.append(others[source.lower()])
    return tuple(dict.fromkeys(chosen))


def build_order(models: Sequence[Model]) -> list[Model]:
    """``models`` in dependency order (silver before gold, then by name, among ready ones).

    Raises :class:`DependencyCycleError` naming the cycle.
    """
    by_name = {m.name: m for m in models}
    waiting = {m.name: set(m.depends_on) for m in models}
    dependents: dict[str, list[str]] = {m.name: [] for m in models}
    for m in models:
        for dep in m.depends_on:
            dependents[dep].append(m.name)

    def rank(name: str) -> tuple[int, str]:
        layer = by_name[name].layer
        return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), name)

    ready = [rank(name) for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    ordered: list[Model] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for child in dependents[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, rank(child))
    if len(ordered) < len(models):
        cycle = _find_cycle({n: d for n, d in waiting.items() if d})
        raise DependencyCycleError(cycle, [by_name[n].file for n in cycle[:-1]])
    return ordered


def _find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (node → nodes it depends on), as ``[a, b, …, a]``."""
    for start in sorted(graph):
        path: list[str] = [start]
        seen = {start}
        node = start
        while True:
            nexts = sorted(d for d in graph.get(node, ()) if d in graph)
            if not nexts:
                break
            node = nexts[0]
            if node in seen:
                cycle = path[path.index(node) :]
                return [*cycle, node]
            seen.add(node)
            path.append(node)
    return sorted(graph)  # pragma: no cover - a leftover graph always has a cycle


def _validate_sql_checks(checks: Sequence[Check], shown: str) -> None:
    from lakehouse.query.analysis import check_statement
    from lakehouse.query.errors import QueryError

    for check in checks:
        if isinstance(check, SqlCheck):
            try:
                check_statement(check.sql)
            except QueryError as exc:
                raise PipelineConfigError(f"{shown}: check {check.name}: {exc}") from None


def _sql_checks(folder: Path) -> list[Check]:
    from lakehouse.query.analysis import check_statement, strip_terminator
    from lakehouse.query.errors import QueryError

    checks: list[Check] = []
    for path in sorted((folder / "checks").glob("*.sql")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineConfigError(f"{display_path(path)}: cannot read: {exc}") from None
        severity = "error"
        for line in text.splitlines():
            if not line.strip():
                continue
            match = _SEVERITY_HEADER.match(line)
            if match:
                severity = match.group(1).lower()
                break
            if not line.lstrip().startswith("--"):
                break
        sql = strip_terminator(text)
        if not sql:
            raise PipelineConfigError(f"{display_path(path)}: empty check (write one SELECT)")
        check = SqlCheck(
            type="sql", name=path.stem, sql=sql, severity="warn" if severity == "warn" else "error"
        )
        try:
            check_statement(sql)
        except QueryError as exc:
            raise PipelineConfigError(f"{display_path(path)}: {exc}") from None
        checks.append(check)
    return checks


__all__ = [
    "DEFAULT_PIPELINES_DIR",
    "LAYERS",
    "PIPELINE_FILE",
    "Model",
    "Pipeline",
    "build_order",
    "display_path",
    "find_pipeline",
    "load_pipeline",
]
