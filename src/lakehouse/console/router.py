"""Routes of the console under ``/ui`` (and its home at ``/``).

With a server token set, every page needs a session: ``/ui/login`` takes the token and
sets an HttpOnly, SameSite=Strict cookie holding an HMAC of it (never the token
itself); ``Authorization: Bearer <token>`` works too (for the JSON twins). Without a
session an HTML request is sent to the sign-in page and a JSON request gets 401.
"""

from __future__ import annotations

import hashlib
import hmac
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import SecretStr

from lakehouse.console import pages
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse

SESSION_COOKIE = "lakehouse_session"
_HERE = Path(str(files("lakehouse.console")))
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.filters["short"] = lambda h: (h or "")[:12]
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")


def session_value(token: SecretStr) -> str:
    """The cookie value for ``token``: an HMAC, so the cookie never holds the token."""
    key = token.get_secret_value().encode("utf-8")
    return hmac.new(key, b"lakehouse-console-session", hashlib.sha256).hexdigest()


def build_console_router(lh: Lakehouse, token: SecretStr | None = None) -> APIRouter:
    """The console's routes over ``lh``; with ``token``, sign-in is required."""
    router = APIRouter(include_in_schema=False)

    def signed_in(request: Request) -> bool:
        if token is None:
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cookie and hmac.compare_digest(cookie, session_value(token)):
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        secret = token.get_secret_value().encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), secret)

    def wants_json(request: Request) -> bool:
        return request.query_params.get("format") == "json"

    def respond(request: Request, template: str, data: dict[str, Any], **extra: Any) -> Response:
        if not signed_in(request):
            if wants_json(request):
                return JSONResponse({"error": "sign in: send a Bearer token"}, status_code=401)
            return RedirectResponse(f"/ui/login?next={quote(str(request.url.path))}", 303)
        if wants_json(request):
            return JSONResponse(data)
        context = {"data": data, "lh": lh, "auth": token is not None, **extra}
        return templates.TemplateResponse(request, template, context)

    def guarded(request: Request, template: str, build: Any, **extra: Any) -> Response:
        if not signed_in(request):
            return respond(request, template, {})
        try:
            data = build()
        except LakehouseError as exc:
            if wants_json(request):
                return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)
            context = {"error": " ".join(str(exc).split()), "lh": lh, "auth": token is not None}
            return templates.TemplateResponse(request, "error.html", context, status_code=400)
        return respond(request, template, data, **extra)

    @router.get("/", response_class=HTMLResponse)
    @router.get("/ui/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return guarded(request, "references.html", lambda: pages.references_page(lh))

    @router.get("/ui/log", response_class=HTMLResponse)
    def log(request: Request, ref: str | None = None, limit: int = 100) -> Response:
        return guarded(
            request, "history.html", lambda: pages.history_page(lh, ref, max(1, min(limit, 1000)))
        )

    @router.get("/ui/commit/{hash_}", response_class=HTMLResponse)
    def commit(request: Request, hash_: str) -> Response:
        return guarded(request, "commit.html", lambda: pages.commit_page(lh, hash_))

    @router.get("/ui/compare", response_class=HTMLResponse)
    def compare(request: Request, base: str | None = None, head: str | None = None) -> Response:
        if not base or not head:
            refs = [r.name for r in lh.references()]
            return respond(request, "compare_form.html", {"references": refs})
        return guarded(request, "compare.html", lambda: pages.compare_page(lh, base, head))

    @router.get("/ui/table/{name}", response_class=HTMLResponse)
    def table(request: Request, name: str, ref: str | None = None) -> Response:
        return guarded(request, "table.html", lambda: pages.table_page(lh, name, ref))

    @router.get("/ui/tables", response_class=HTMLResponse)
    def tables(request: Request, ref: str | None = None) -> Response:
        from lakehouse.views import entries_json

        return guarded(
            request,
            "tables.html",
            lambda: {"ref": ref or lh.default_ref, "tables": entries_json(lh.tables(ref))},
        )

    @router.get("/ui/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        return guarded(request, "runs.html", lambda: pages.runs_page(lh))

    @router.get("/ui/runs/{run_id}", response_class=HTMLResponse)
    def run(request: Request, run_id: str) -> Response:
        def build() -> dict[str, Any]:
            found = pages.run_page(lh, run_id)
            if found is None:
                raise LakehouseError(f"no record of run {run_id}")
            return found

        return guarded(request, "run.html", build)

    @router.get("/ui/operations", response_class=HTMLResponse)
    def operations(request: Request) -> Response:
        return guarded(request, "operations.html", lambda: pages.operations_page(lh))

    @router.get("/ui/sql", response_class=HTMLResponse)
    def sql(request: Request, q: str = "", ref: str | None = None, limit: int = 100) -> Response:
        if not q.strip():
            return respond(request, "sql.html", {"query": "", "ref": ref or lh.default_ref})
        bounded = max(1, min(limit, pages.SQL_ROW_LIMIT))
        return guarded(request, "sql.html", lambda: pages.sql_page(lh, q, ref, bounded))

    @router.get("/ui/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        context = {"next": next, "lh": lh, "auth": token is not None, "failed": False}
        return templates.TemplateResponse(request, "login.html", context)

    @router.post("/ui/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        target = (form.get("next") or ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if token is None or hmac.compare_digest(
            given.encode(), token.get_secret_value().encode("utf-8")
        ):
            response = RedirectResponse(target, 303)
            if token is not None:
                response.set_cookie(
                    SESSION_COOKIE, session_value(token), httponly=True, samesite="strict"
                )
            return response
        context = {"next": target, "lh": lh, "auth": True, "failed": True}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)

    @router.get("/ui/logout")
    def logout() -> Response:
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router


__all__ = ["SESSION_COOKIE", "build_console_router", "session_value"]
