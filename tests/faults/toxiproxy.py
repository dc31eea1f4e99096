"""A small typed client of Toxiproxy's HTTP API, for the fault-injection tests.

Toxiproxy (``scripts/services/toxiproxy.sh``) is a TCP proxy whose connections can be
given *toxics*: ``reset_peer`` (a TCP reset), ``timeout`` (data stops; the connection
closes after ``timeout`` ms, or never with 0), ``latency``, ``limit_data`` (the
connection closes after that many bytes: a cut reply when set on the ``downstream``
stream) and others. A toxic added while a connection is open applies to it at once.

    toxiproxy = Toxiproxy("http://127.0.0.1:18474")
    proxy = toxiproxy.create_proxy("s3-test-1", upstream="127.0.0.1:19000")
    with proxy.toxic("reset_peer", stream="downstream", toxicity=0.3, timeout=0):
        ...  # a third of the replies are resets
    proxy.delete()
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Stream = Literal["upstream", "downstream"]
ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]


class ToxiproxyError(RuntimeError):
    """Toxiproxy's API refused a request."""


@dataclass(frozen=True)
class Toxic:
    """One toxic of a proxy, as the API reports it."""

    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, int]


class Toxiproxy:
    """The API of one Toxiproxy server (``GET /version``, ``/proxies``, ``/reset``)."""

    def __init__(self, url: str, *, timeout: float = 10) -> None:
        self.url = url.rstrip("")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connections (proxies stay)."""
        self._http.close()

    def _request(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        if response.status_code >= 400:
            raise ToxiproxyError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def version(self) -> str:
        """The server's version (also a health check)."""
        return str(self._request("GET", "version")["version"])

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        """A new proxy to ``upstream`` (``host:port``) on a free loopback port."""
        body = self._request(
            "POST", "proxies", {"name": name, "upstream": upstream, "listen": listen}
        )
        return Proxy(self, body["name"], body["listen"], body["upstream"])

    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy of the server, by name."""
        result: dict[str, dict[str, Any]] = self._request("GET", "proxies")
        return result


@dataclass(frozen=True)
class Proxy:
    """One proxy: ``listen`` (``host:port``) forwards to ``upstream``."""

    api: Toxiproxy
    name: str
    listen: str
    upstream: str

    @property
    def host(self) -> str:
        """The host the proxy listens on."""
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self.listen.rsplit(":", 1)[1])

    def delete(self) -> None:
        """Remove the proxy (its open connections close)."""
        self.api._request("DELETE", f"proxies/{self.name}")

    def set_enabled(self, enabled: bool) -> None:
        """Disable (close the listener and every connection: refused) or enable the proxy."""
        self.api._request("POST", f"proxies/{self.name}", {"enabled": enabled})

    def add_toxic(
        self,
        type: ToxicType,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: int,
    ) -> Toxic:
        """Add a toxic; it applies to open and new connections until removed."""
        name = name or f"{type}-{stream}-{uuid.uuid4().hex[:6]}"
        body = self.api._request(
            "POST",
            f"proxies/{self.name}/toxics",
            {
                "name": name,
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return Toxic(
            body["name"], body["type"], body["stream"], body["toxicity"], body["attributes"]
        )

    def remove_toxic(self, name: str) -> None:
        """Remove one toxic."""
        self.api._request("DELETE", f"proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[Toxic]:
        """The toxics in force."""
        return [
            Toxic(t["name"], t["type"], t["stream"], t["toxicity"], t["attributes"])
            for t in self.api._request("GET", f"proxies/{self.name}/toxics")
        ]

    def clear(self) -> None:
        """Remove every toxic."""
        for toxic in self.toxics():
            self.remove_toxic(toxic.name)

    @contextmanager
    def toxic(
        self,
        type: ToxicType,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Iterator[Toxic]:
        """A toxic in force for the ``with`` block."""
        added = self.add_toxic(type, stream=stream, toxicity=toxicity, **attributes)
        try:
            yield added
        finally:
            self.remove_toxic(added.name)

    # the four faults of the tests, by name

    def reset_peer(self, *, stream: Stream = "downstream", toxicity: float = 1.0) -> Toxic:
        """Connections are reset (RST) as soon as data flows on ``stream``."""
        return self.add_toxic("reset_peer", stream=stream, toxicity=toxicity, timeout=0)

    def stall(self, *, stream: Stream = "downstream", close_after_ms: int = 0) -> Toxic:
        """Data on ``stream`` stops (``timeout`` toxic); closed after ``close_after_ms`` if set."""
        return self.add_toxic("timeout", stream=stream, timeout=close_after_ms)

    def latency(self, ms: int, *, jitter_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Every chunk on ``stream`` is delayed by ``ms`` (± ``jitter_ms``)."""
        return self.add_toxic("latency", stream=stream, latency=ms, jitter=jitter_ms)

    def cut_after(self, nbytes: int, *, stream: Stream = "downstream") -> Toxic:
        """Connections close once ``nbytes`` more bytes passed on ``stream`` (a cut reply)."""
        return self.add_toxic("limit_data", stream=stream, bytes=nbytes)
