"""HTTP sources against a real ``http.server`` on 127.0.0.1 (in a thread)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse
from lakehouse.ingest import (
    BadInputError,
    HttpSource,
    IngestError,
    SourceConfigError,
    SourceNotFoundError,
    SourceUnavailableError,
    ingest,
)

from .conftest import manifests, raw_files, rows

RATES = b'{"currency": "EUR", "rate": 1.1}\n{"currency": "GBP", "rate": 1.3}\n'


class Server:
    """A tiny HTTP server: ``files[path] = (status, content type, body)``; records requests."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                status, content_type, body = server.files.get(
                    self.path, (404, "text/plain", b"not found")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def http(url: str, **kwargs: object) -> HttpSource:
    fields: dict[str, object] = {"name": "rates", "url": url, "table": "bronze.rates"}
    fields.update(kwargs)
    return HttpSource.model_validate(fields)


def test_a_url_is_downloaded_landed_and_loaded(lh: Lakehouse, server: Server) -> None:
    server.files["/v1/rates.jsonl"] = (200, "application/x-ndjson", RATES)

    [result] = ingest(lh, http(server.url("/v1/rates.jsonl")))

    assert result.rows_loaded == 2
    assert [f.name for f in result.landed] == ["rates.jsonl"]
    assert result.landed[0].origin == server.url("/v1/rates.jsonl")
    [manifest] = manifests(lh)
    assert manifest["files"][0]["original"] == server.url("/v1/rates.jsonl")
    assert manifest["source_type"] == "http"
    assert rows(lh, "bronze.rates") == [("EUR", 1.1), ("GBP", 1.3)]


def test_an_unchanged_url_loads_nothing_and_a_changed_one_loads_again(
    lh: Lakehouse, server: Server
) -> None:
    server.files["/rates.jsonl"] = (200, "application/x-ndjson", RATES)
    source = http(server.url("/rates.jsonl"))
    ingest(lh, source)

    [same] = ingest(lh, source)
    server.files["/rates.jsonl"] = (200, "application/x-ndjson", b'{"currency": "JPY"}\n')
    [changed] = ingest(lh, source)

    assert same.batch_id is None and same.skipped[0].reason == "already loaded"
    assert changed.rows_loaded == 1
    assert len(rows(lh, "bronze.rates")) == 3
    assert len(server.requests) == 3


def test_the_format_comes_from_the_content_type_and_headers_are_sent(
    lh: Lakehouse, server: Server
) -> None:
    server.files["/export?day=1"] = (200, "text/csv; charset=utf-8", b"a,b\n1,2\n")

    ingest(lh, http(server.url("/export?day=1"), headers={"Authorization": "Bearer s3cret"}))

    assert rows(lh, "bronze.rates") == [(1, 2)]
    assert server.requests[0]["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(http(server.url("/x"), headers={"Authorization": "s3cret"}))


def test_a_server_that_is_down_is_a_transient_one_line_error(lh: Lakehouse) -> None:
    url = f"http://127.0.0.1:{closed_port()}/rates.jsonl"
    commit = lh.resolve("main").hash

    with pytest.raises(SourceUnavailableError) as caught:
        ingest(lh, http(url, timeout=5))

    assert url in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.transient
    assert lh.resolve("main").hash == commit
    assert raw_files(lh) == []


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (404, SourceNotFoundError, False),
        (503, SourceUnavailableError, True),
        (403, IngestError, False),
    ],
)
def test_http_errors_map_to_ingest_errors(
    lh: Lakehouse, server: Server, status: int, error: type[IngestError], transient: bool
) -> None:
    server.files["/x.csv"] = (status, "text/plain", b"nope")

    with pytest.raises(error, match=f"answered HTTP {status}") as caught:
        ingest(lh, http(server.url("/x.csv")))

    assert caught.value.transient is transient
    assert raw_files(lh) == []


def test_an_empty_download_is_bad_input(lh: Lakehouse, server: Server) -> None:
    server.files["/rates.csv"] = (200, "text/csv", b"")

    with pytest.raises(BadInputError, match=r"cannot read rates\.csv as csv: the file is empty"):
        ingest(lh, http(server.url("/rates.csv")))

    assert lh.tables() == []


def test_an_unknown_format_asks_for_one(lh: Lakehouse, server: Server) -> None:
    server.files["/download"] = (200, "application/octet-stream", b"a\n1\n")

    with pytest.raises(SourceConfigError, match="cannot tell the format"):
        ingest(lh, http(server.url("/download")))

    [result] = ingest(lh, http(server.url("/download"), format="csv"))
    assert result.rows_loaded == 1


def test_only_http_urls_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an http"):
        http(f"file://{tmp_path}/x.csv")
