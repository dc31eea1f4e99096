"""A synchronous client for the app and small helpers speaking Nessie's JSON."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.from_thread
import httpx
from fastapi import FastAPI

API = "/api/v2"
SPEC2 = {"Nessie-Client-Spec": "2"}


class ApiClient:
    """``httpx.AsyncClient`` over ``ASGITransport``, called from synchronous tests."""

    def __init__(self, app: FastAPI, *, raise_app_exceptions: bool = True) -> None:
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._client = httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=SPEC2
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._portal.call(self._client.aclose)
        self._stack.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def ok(response: httpx.Response) -> dict[str, Any]:
    """The JSON of a 200 response (fails with the error body otherwise)."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The NessieError of a failed response, checked for status, code and shape."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["errorCode"] == code
    assert isinstance(body["reason"], str) and body["reason"]
    assert isinstance(body["message"], str) and body["message"]
    assert "serverStackTrace" in body and body["serverStackTrace"] is None
    return body


def key(*elements: str) -> dict[str, Any]:
    return {"elements": list(elements)}


def namespace(*elements: str, content_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "NAMESPACE", "elements": list(elements), "properties": {}}
    if content_id:
        out["id"] = content_id
    return out


def table(n: int, content_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "ICEBERG_TABLE",
        "metadataLocation": f"s3://iceberg-metadata/t/v{n}.metadata.json",
        "snapshotId": n,
        "schemaId": 0,
        "specId": 0,
        "sortOrderId": 0,
    }
    if content_id:
        out["id"] = content_id
    return out


def put(content: dict[str, Any], *elements: str) -> dict[str, Any]:
    return {"type": "PUT", "key": key(*elements), "content": content}


def delete(*elements: str) -> dict[str, Any]:
    return {"type": "DELETE", "key": key(*elements)}


def head(client: ApiClient, name: str = "main") -> str:
    hash_: str = ok(client.get(f"{API}/trees/{name}@"))["reference"]["hash"]
    return hash_


def commit_response(
    client: ApiClient,
    operations: list[dict[str, Any]],
    branch: str = "main",
    *,
    message: str = "test commit",
    expected: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    expected = expected or head(client, branch)
    body = {"commitMeta": {"message": message}, "operations": operations}
    return client.post(
        f"{API}/trees/{branch}@{expected}/history/commit", json=body, headers=headers
    )


def commit(
    client: ApiClient,
    operations: list[dict[str, Any]],
    branch: str = "main",
    *,
    message: str = "test commit",
    expected: str | None = None,
) -> dict[str, Any]:
    return ok(commit_response(client, operations, branch, message=message, expected=expected))


def content_id(client: ApiClient, ref: str, *elements: str) -> str | None:
    response = client.get(f"{API}/trees/{ref}/contents/{'.'.join(elements)}")
    if response.status_code == 404:
        return None
    cid: str = ok(response)["content"]["id"]
    return cid


def put_table(client: ApiClient, n: int, *elements: str, branch: str = "main") -> str:
    """Create or update a table at ``elements`` on ``branch``; the new head."""
    cid = content_id(client, branch, *elements)
    result = commit(client, [put(table(n, cid), *elements)], branch, message=f"put v{n}")
    hash_: str = result["targetBranch"]["hash"]
    return hash_


def with_namespace(client: ApiClient, name: str = "bronze", branch: str = "main") -> str:
    hash_: str = commit(client, [put(namespace(name), name)], branch, message="namespace")[
        "targetBranch"
    ]["hash"]
    return hash_


def create_branch(client: ApiClient, name: str, source: str = "main", kind: str = "branch") -> str:
    body = {"type": "BRANCH", "name": source, "hash": head(client, source)}
    hash_: str = ok(client.post(f"{API}/trees", params={"name": name, "type": kind}, json=body))[
        "reference"
    ]["hash"]
    return hash_


@contextmanager
def shared_nessie_lock(url: str) -> Iterator[None]:
    """Hold the inter-process lock on the shared test Nessie at ``url``.

    The same lock as ``fresh_nessie_store`` in ``tests/catalog/conftest.py``, whose tests
    reset the server (delete every other reference, rewind main) while they hold it.
    """
    netloc = urlsplit(url).netloc.replace(":", "_")
    lock_path = Path(tempfile.gettempdir()) / f"lakehouse-test-nessie-{netloc}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


#: The Nessie server version ``scripts/services/nessie.sh`` installs by default.
NESSIE_VERSION = "0.99.0"
NESSIE_SH = Path(__file__).resolve().parents[2] / "scripts" / "services" / "nessie.sh"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def private_nessie(folder: Path, properties: str) -> Iterator[str]:
    """A real Nessie of its own, started by ``nessie.sh`` with extra Quarkus ``properties``.

    It listens on free loopback ports, keeps its log and pid file in ``folder/cache`` (the
    runner jar linked from the shared cache when it is there) and is stopped on exit;
    yields its base URL (``http://127.0.0.1:PORT``).
    """
    shared = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse"))
    jar = f"nessie/nessie-quarkus-{NESSIE_VERSION}-runner.jar"
    (folder / "cache" / "nessie").mkdir(parents=True)
    if (shared / jar).is_file():
        (folder / "cache" / jar).symlink_to(shared / jar)
    config = folder / "nessie.properties"
    config.write_text(properties)
    port = free_port()
    env = {
        **os.environ,
        "LAKEHOUSE_CACHE": str(folder / "cache"),
        "LAKEHOUSE_NESSIE_VERSION": NESSIE_VERSION,
        "LAKEHOUSE_NESSIE_PORT": str(port),
        "LAKEHOUSE_NESSIE_MGMT_PORT": str(free_port()),
        "JAVA_TOOL_OPTIONS": f"-Dquarkus.config.locations={config.as_uri()}",
    }
    started = subprocess.run(
        ["bash", str(NESSIE_SH), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(NESSIE_SH), "stop"], env=env, capture_output=True, timeout=120)
