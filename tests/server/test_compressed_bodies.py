"""Compressed request bodies: Nessie's Java client (and so the Nessie CLI, Spark's Nessie
catalog and Nessie's own conformance tests) sends every body with ``Content-Encoding: gzip``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator

import pytest

from lakehouse.server import ServerSettings
from tests.server.helpers import API, ApiClient, error, head, ok, put, table, with_namespace

_GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def _commit_body(n: int = 1) -> bytes:
    body = {"commitMeta": {"message": "gz"}, "operations": [put(table(n), "bronze", "t")]}
    return json.dumps(body).encode()


def test_a_gzip_body_is_decoded(client: ApiClient) -> None:
    h = with_namespace(client)
    response = client.post(
        f"{API}/trees/main@{h}/history/commit",
        content=gzip.compress(_commit_body()),
        headers=_GZIP_JSON,
    )
    assert ok(response)["targetBranch"]["hash"] == head(client) != h


def test_a_chunked_gzip_body_is_decoded(client: ApiClient) -> None:
    h = with_namespace(client)
    data = gzip.compress(_commit_body())

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length, as the Java client sends
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    response = client.post(
        f"{API}/trees/main@{h}/history/commit", content=chunks(), headers=_GZIP_JSON
    )
    ok(response)
    assert head(client) != h


@pytest.mark.parametrize("compress", [zlib.compress, lambda b: zlib.compress(b)[2:-4]])
def test_a_deflate_body_is_decoded(client: ApiClient, compress: object) -> None:
    h = with_namespace(client)
    assert callable(compress)
    response = client.post(
        f"{API}/trees/main@{h}/history/commit",
        content=compress(_commit_body()),
        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"},
    )
    ok(response)


def test_broken_or_unknown_encodings_are_4xx(client: ApiClient) -> None:
    h = with_namespace(client)
    url = f"{API}/trees/main@{h}/history/commit"
    error(client.post(url, content=b"not gzip at all", headers=_GZIP_JSON), 400, "BAD_REQUEST")
    truncated = gzip.compress(_commit_body())[:-12]
    error(client.post(url, content=truncated, headers=_GZIP_JSON), 400, "BAD_REQUEST")
    headers = {"Content-Type": "application/json", "Content-Encoding": "br"}
    error(client.post(url, content=_commit_body(), headers=headers), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert head(client) == h


@pytest.mark.parametrize("settings", [ServerSettings(max_request_bytes=2000)])
def test_the_limit_bounds_the_decompressed_size(client: ApiClient) -> None:
    h = head(client)
    bomb = {"commitMeta": {"message": "x" * 100_000}, "operations": []}
    data = gzip.compress(json.dumps(bomb).encode())
    assert len(data) < 2000
    response = client.post(f"{API}/trees/main@{h}/history/commit", content=data, headers=_GZIP_JSON)
    assert "2000 bytes" in error(response, 413, "BAD_REQUEST")["message"]
    assert head(client) == h
