"""The web console: server-rendered pages over the library, each with a JSON twin.

Mounted on the server's app as a :class:`WebConsole` (``create_app(store,
console=WebConsole(lh))``, done by ``lakehouse serve`` and ``lakehouse ui``). Page data
comes from :mod:`lakehouse.console.pages`; the router (:mod:`lakehouse.console.router`)
renders it with Jinja2 templates shipped as package data, or returns it as JSON with
``?format=json``. No asset comes from a CDN.
"""

from lakehouse.console.router import SESSION_COOKIE as SESSION_COOKIE
from lakehouse.console.router import WebConsole as WebConsole
from lakehouse.console.router import build_console_router as build_console_router

__all__ = ["SESSION_COOKIE", "WebConsole", "build_console_router"]
