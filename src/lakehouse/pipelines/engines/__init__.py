"""Compute engines for pipeline runs, chosen by name (``duckdb`` here, ``spark`` in the cluster).

Engines are imported when chosen, so an engine's libraries are only needed when it is
used. :class:`~lakehouse.pipelines.engines.base.Engine` is the interface.
"""

from __future__ import annotations

import importlib

from lakehouse.pipelines.engines.base import Engine as Engine
from lakehouse.pipelines.engines.base import WriteResult as WriteResult
from lakehouse.pipelines.errors import PipelineConfigError

#: Engine name → ``module:class``.
ENGINES: dict[str, str] = {
    "duckdb": "lakehouse.pipelines.engines.duckdb:DuckDBEngine",
    "spark": "lakehouse.pipelines.engines.spark:SparkEngine",
}
DEFAULT_ENGINE = "duckdb"


def get_engine(name: str = DEFAULT_ENGINE) -> type[Engine]:
    """The engine class called ``name``."""
    target = ENGINES.get(name)
    if target is None:
        raise PipelineConfigError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise PipelineConfigError(f"the {name} engine is not part of this build yet") from None
        raise PipelineConfigError(
            f"the {name} engine needs {exc.name}: install lakehouse[{name}]"
        ) from None
    engine: type[Engine] = getattr(module, class_name)
    return engine


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "WriteResult", "get_engine"]
