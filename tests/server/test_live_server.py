"""The server under uvicorn on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.errors import LakehouseError
from lakehouse.server import ServerSettings
from lakehouse.server.app import make_server, serving


@pytest.fixture
def live_url(store: SqlStore) -> Iterator[str]:
    """Base URL of a uvicorn server over ``store`` on a free loopback port."""
    server = make_server(
        store, "127.0.0.1", 0, settings=ServerSettings(token="t0ken"), log_level="warning"
    )
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_real_http_round_trip(live_url: str) -> None:
    headers = {"Authorization": "Bearer t0ken", "Nessie-Client-Spec": "2"}
    with httpx.Client(base_url=live_url, headers=headers, timeout=10) as http:
        assert http.get("/api/v2/config").json()["defaultBranch"] == "main"
        main = http.get("/api/v2/trees/main").json()["reference"]["hash"]
        created = http.post(
            "/api/v2/trees",
            params={"name": "feature/x", "type": "BRANCH"},
            json={"type": "BRANCH", "name": "main", "hash": main},
        )
        assert created.status_code == 200, created.text
        body = {
            "commitMeta": {"message": "ns"},
            "operations": [
                {
                    "type": "PUT",
                    "key": {"elements": ["a.b"]},
                    "content": {"type": "NAMESPACE", "elements": ["a.b"]},
                }
            ],
        }
        committed = http.post(f"/api/v2/trees/feature%2Fx@{main}/history/commit", json=body)
        assert committed.status_code == 200, committed.text
        content = http.get("/api/v2/trees/feature%2Fx%40/contents/a%1Db")
        assert content.json()["content"]["elements"] == ["a.b"]
        unauthenticated = httpx.get(f"{live_url}/api/v2/config", timeout=10)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["status"] == 401
        assert httpx.get(f"{live_url}/healthz", timeout=10).json() == {"status": "UP"}


def test_serving_a_port_in_use_is_one_error_not_a_hang(store: SqlStore, live_url: str) -> None:
    taken = int(live_url.rsplit(":", 1)[1])
    server = make_server(store, "127.0.0.1", taken, log_level="critical")
    refused = pytest.raises(LakehouseError, match=r"starting: .*address already in use")
    with refused, serving(server, timeout=5):
        pass
