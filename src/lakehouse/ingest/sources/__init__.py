"""Sources, one module each, chosen by the ``type`` of a ``sources:`` entry.

:func:`parse_source` turns one entry of ``pipeline.yaml`` (a mapping) into a
:class:`~lakehouse.ingest.sources.base.Source`: ``${VAR}`` and ``${VAR:-default}`` are
expanded in every string, and a relative folder ``path`` is taken relative to
``base_dir`` (the pipeline's folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from lakehouse.ingest.errors import SourceConfigError
from lakehouse.ingest.sources.base import (
    Cursor as Cursor,
)
from lakehouse.ingest.sources.base import (
    Discovery as Discovery,
)
from lakehouse.ingest.sources.base import (
    Source as Source,
)
from lakehouse.ingest.sources.base import (
    SourceFile as SourceFile,
)
from lakehouse.ingest.sources.base import (
    TableState as TableState,
)
from lakehouse.ingest.sources.base import (
    qualify_table as qualify_table,
)
from lakehouse.ingest.sources.folder import FolderSource as FolderSource
from lakehouse.ingest.sources.folder import TableMapping as TableMapping
from lakehouse.ingest.sources.http import HttpSource as HttpSource
from lakehouse.ingest.sources.sql import SqlSource as SqlSource

#: Any source, chosen by its ``type`` field.
SourceConfig = Annotated[FolderSource | HttpSource | SqlSource, Field(discriminator="type")]

_ADAPTER: TypeAdapter[FolderSource | HttpSource | SqlSource] = TypeAdapter(SourceConfig)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` expanded in every string inside it."""
    environ = os.environ if env is None else env
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = environ.get(name)
            if found:
                return found
            if default is not None:
                return default
            raise SourceConfigError(f"environment variable {name} is not set (in {value!r})")

        return _VARIABLE.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand_vars(v, environ) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [expand_vars(v, environ) for v in value]
    return value


def parse_source(
    entry: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> FolderSource | HttpSource | SqlSource:
    """A source from one ``sources:`` entry of ``pipeline.yaml``.

    Raises :class:`~lakehouse.ingest.errors.SourceConfigError` naming the source and the
    offending field.
    """
    data = dict(expand_vars(dict(entry), env))
    name = str(data.get("name", "?"))
    if data.get("type") == "folder" and base_dir is not None and isinstance(data.get("path"), str):
        path = data["path"]
        if "://" not in path and not Path(path).expanduser().is_absolute():
            data["path"] = str(Path(base_dir) / path)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SourceConfigError(f"source '{name}': {_describe(exc)}", source=name) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in error["loc"][1:] or error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        elif error["type"] == "union_tag_invalid":
            parts.append("type must be folder, http or sql")
        elif error["type"] == "union_tag_not_found":
            parts.append("missing 'type' (folder, http or sql)")
        else:
            parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


__all__ = [
    "Cursor",
    "Discovery",
    "FolderSource",
    "HttpSource",
    "Source",
    "SourceConfig",
    "SourceFile",
    "SqlSource",
    "TableMapping",
    "TableState",
    "expand_vars",
    "parse_source",
    "qualify_table",
]
