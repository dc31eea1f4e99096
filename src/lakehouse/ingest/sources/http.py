"""One file behind an HTTP(S) URL: ``type: http``.

Each run downloads the URL into a scratch folder; the loader then skips it when the
bronze table already holds the same content (sha256), so polling an unchanged URL loads
nothing. A server that cannot be reached, times out or answers 5xx raises
:class:`~lakehouse.ingest.errors.SourceUnavailableError` (transient); 404/410 raises
:class:`~lakehouse.ingest.errors.SourceNotFoundError`.
"""

from __future__ import annotations

import http.client
import posixpath
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator

from lakehouse.config import redact_url
from lakehouse.ingest._fs import CHUNK_SIZE, resolve
from lakehouse.ingest.errors import (
    IngestError,
    SourceConfigError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from lakehouse.ingest.formats import Format, FormatOptions, infer_format
from lakehouse.ingest.sources.base import (
    Discovery,
    Source,
    SourceFile,
    TableState,
    qualify_table,
)

_CONTENT_TYPES: Mapping[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
_USER_AGENT = "lakehouse-ingest/0.1"


class HttpSource(Source):
    """A file downloaded from an HTTP(S) URL into one bronze table."""

    type: Literal["http"] = "http"
    #: ``http://`` or ``https://`` URL of the file.
    url: str
    #: The bronze table it feeds.
    table: str
    #: File format; default: from the URL's suffix, else from the Content-Type.
    format: Format | None = None
    options: FormatOptions = Field(default_factory=FormatOptions)
    #: Request headers (e.g. ``Authorization``); values are secrets.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    #: Seconds to wait for the server (connect and each read).
    timeout: float = Field(default=30.0, gt=0)
    #: Name of the landed file; default: the URL's last path segment.
    file_name: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {redact_url(value)!r}")
        return value

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        return qualify_table(value)

    def targets(self) -> list[str]:
        """The one bronze table."""
        return [self.table]

    def describe(self) -> str:
        """The URL (password masked)."""
        return redact_url(self.url)

    def landed_name(self) -> str:
        """The file name the download is landed as."""
        if self.file_name:
            return posixpath.basename(self.file_name.strip("/")) or "download"
        segment = posixpath.basename(unquote(urlsplit(self.url).path))
        return segment or "download"

    def discover(self, states: Mapping[str, TableState], workdir: Path) -> Discovery:
        """Download the URL into ``workdir``."""
        url = self.describe()
        name = self.landed_name()
        request = urllib.request.Request(
            self.url,
            headers={
                "User-Agent": _USER_AGENT,
                **{k: v.get_secret_value() for k, v in self.headers.items()},
            },
        )
        target = workdir / "http" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                content_type = response.headers.get_content_type()
                with target.open("wb") as out:
                    while chunk := response.read(CHUNK_SIZE):
                        out.write(chunk)
        except urllib.error.HTTPError as exc:
            exc.close()  # the error carries the open response
            status = exc.code
            reason = f"{url} answered HTTP {status} {exc.reason}"
            if status in (404, 410):
                raise SourceNotFoundError(
                    f"source '{self.name}': {reason}", source=self.name, file=url
                ) from None
            if status >= 500 or status in (408, 429):
                raise SourceUnavailableError(
                    f"source '{self.name}' is unavailable: {reason}", source=self.name, file=url
                ) from None
            raise IngestError(
                f"source '{self.name}': {reason}", source=self.name, file=url
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(why, socket.timeout | TimeoutError):
                why = f"no answer within {self.timeout:g}s"
            raise SourceUnavailableError(
                f"source '{self.name}' is unavailable: cannot download {url}: {why}",
                source=self.name,
                file=url,
            ) from None

        fmt = self.format or infer_format(name) or _CONTENT_TYPES.get(content_type)
        if fmt is None:
            raise SourceConfigError(
                f"source '{self.name}': cannot tell the format of {url} (Content-Type "
                f"{content_type}); set the source's format to csv, jsonl or parquet",
                source=self.name,
                file=url,
            )
        return Discovery(
            [SourceFile(name, url, self.table, fmt, self.options, resolve(str(target)))]
        )


__all__ = ["HttpSource"]
