"""The web console: server-rendered pages over the library, each with a JSON twin.

Mounted by :func:`lakehouse.server.app.create_app` when given a lakehouse (``lakehouse
serve``, ``lakehouse ui``). Page data comes from :mod:`lakehouse.console.pages`; the
router (:mod:`lakehouse.console.router`) renders it with Jinja2 templates shipped as
package data, or returns it as JSON with ``?format=json``. No asset comes from a CDN.
"""

from lakehouse.console.router import SESSION_COOKIE as SESSION_COOKIE
from lakehouse.console.router import build_console_router as build_console_router

__all__ = ["SESSION_COOKIE", "build_console_router"]
