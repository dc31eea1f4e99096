"""Routes of the console under ``/ui`` (and its home at ``/``).

With auth on, every page needs a signed-in principal (:mod:`lakehouse.console.access`):
``/ui/login`` takes the server token (the cookie then holds an HMAC of it, never the
token) or, under OIDC, a bearer token of the issuer (kept in an HttpOnly, SameSite=Strict
cookie until it expires); ``Authorization: Bearer <token>`` works too (for the JSON
twins). Without a session an HTML request is sent to the sign-in page and a JSON request
gets 401. With authorization rules each page shows only what the rules allow, and a page
about something they refuse is a 403 naming the failed checks.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from lakehouse.catalog.model import ContentKey, ContentType
from lakehouse.console import pages
from lakehouse.console.access import (
    SESSION_COOKIE,
    TOKEN_COOKIE,
    ConsoleAccess,
    ConsoleAuth,
    session_value,
)
from lakehouse.console.oidc_login import (
    FLOW_COOKIE,
    FLOW_SECONDS,
    AuthorizationCodeFlow,
    PendingSignIn,
)
from lakehouse.errors import LakehouseError
from lakehouse.server import wire
from lakehouse.server.authz import AccessDeniedError, AuthorizationRules
from lakehouse.server.oidc import (
    AuthenticationError,
    IdentityProviderUnavailableError,
    OidcVerifier,
    Principal,
)

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse

_HERE = Path(str(files("lakehouse.console")))
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.filters["short"] = lambda h: (h or "")[:12]
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")
#: Where the console's own CSS and JavaScript are served.
STATIC_PATH = "/ui/static"


class WebConsole:
    """The console over ``lh``, for :func:`lakehouse.server.app.create_app` to mount.

    It implements the server's ``AppExtension``: the caller (``lakehouse serve``,
    ``lakehouse ui``) hands it to the server, which never imports the console.
    """

    def __init__(self, lh: Lakehouse) -> None:
        self.lakehouse = lh

    def install(
        self,
        app: FastAPI,
        *,
        token: SecretStr | None,
        verifier: OidcVerifier | None,
        rules: AuthorizationRules | None,
    ) -> None:
        """Add the pages under ``/`` and ``/ui``, and the static assets, to ``app``."""
        app.include_router(
            build_console_router(self.lakehouse, token, verifier=verifier, rules=rules)
        )
        app.mount(STATIC_PATH, StaticFiles(directory=str(_HERE / "static")), name="console-static")


def build_console_router(
    lh: Lakehouse,
    token: SecretStr | None = None,
    *,
    verifier: OidcVerifier | None = None,
    rules: AuthorizationRules | None = None,
) -> APIRouter:
    """The console's routes over ``lh``.

    With ``token`` (or an OIDC ``verifier``, which takes precedence) sign-in is required;
    with ``rules`` pages show only what Nessie's authorization rules allow.
    """
    router = APIRouter(include_in_schema=False)
    auth = ConsoleAuth(token, verifier)
    flow: AuthorizationCodeFlow | None = None
    if verifier is not None and verifier.settings.console_client_id:
        flow = AuthorizationCodeFlow(
            verifier,
            verifier.settings.console_client_id,
            verifier.settings.console_client_secret,
        )

    def wants_json(request: Request) -> bool:
        return request.query_params.get("format") == "json"

    def context(**extra: Any) -> dict[str, Any]:
        return {
            "lh": lh,
            "auth": auth.enabled,
            "oidc": verifier is not None,
            "oidc_redirect": flow is not None,
            **extra,
        }

    def token_cookie(response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            TOKEN_COOKIE,
            value,
            max_age=_seconds_left(value),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def ref_name(text: str | None) -> str:
        """The ``ref`` of checks for a page's reference (``DETACHED`` for a bare hash)."""
        spec = wire.parse_ref_path(text or lh.default_ref, lh.default_branch)
        return spec.name if spec.name is not None else wire.DETACHED

    def failure(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return templates.TemplateResponse(
            request, "error.html", context(error=message), status_code=status
        )

    async def signed_in(request: Request) -> Principal | Response:
        """The principal, or the response that asks for sign-in (401/redirect, 503)."""
        try:
            principal = await run_in_threadpool(auth.principal, request)
        except IdentityProviderUnavailableError as exc:
            return failure(request, 503, str(exc))
        if principal is not None:
            return principal
        if wants_json(request):
            return JSONResponse({"error": "sign in: send a Bearer token"}, status_code=401)
        return RedirectResponse(f"/ui/login?next={quote(str(request.url.path))}", 303)

    async def page(request: Request, template: str, build: Any, **extra: Any) -> Response:
        """Render ``build(access)`` for the signed-in principal (errors as pages)."""
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        access = ConsoleAccess(rules, principal)
        try:
            data = await run_in_threadpool(build, access)
        except AccessDeniedError as exc:
            return failure(request, 403, f"Forbidden: {exc}")
        except LakehouseError as exc:
            return failure(request, 400, " ".join(str(exc).split()))
        if wants_json(request):
            return JSONResponse(data)
        return templates.TemplateResponse(
            request, template, context(data=data, principal=principal.name, **extra)
        )

    @router.get("/", response_class=HTMLResponse)
    @router.get("/ui/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        return await page(
            request,
            "references.html",
            lambda access: pages.references_page(lh, visible=access.can_view),
        )

    @router.get("/ui/log", response_class=HTMLResponse)
    async def log(request: Request, ref: str | None = None, limit: int = 100) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            access.require_log(ref_name(ref))
            return pages.history_page(lh, ref, max(1, min(limit, 1000)))

        return await page(request, "history.html", build)

    @router.get("/ui/commit/{hash_}", response_class=HTMLResponse)
    async def commit(request: Request, hash_: str) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            access.require_log(wire.DETACHED)
            if access.rules is not None:  # the page shows the rows each commit changed
                entry = lh.log("@" + hash_, limit=1, operations=True)[0]
                access.require_values(
                    wire.DETACHED, ((op.key, _type_of(op)) for op in entry.operations or ())
                )
            return pages.commit_page(lh, hash_)

        return await page(request, "commit.html", build)

    @router.get("/ui/compare", response_class=HTMLResponse)
    async def compare(
        request: Request, base: str | None = None, head: str | None = None
    ) -> Response:
        if not base or not head:
            return await page(
                request,
                "compare_form.html",
                lambda access: {
                    "references": [r.name for r in lh.references() if access.can_view(r.name)]
                },
            )

        def build(access: ConsoleAccess) -> dict[str, Any]:
            for ref in (base, head):
                access.require_entries(ref_name(ref))
            if access.rules is not None:  # the page shows the rows of every changed table
                changed = lh.diff(base, head)
                for ref, side in ((base, "from_content"), (head, "to_content")):
                    access.require_values(
                        ref_name(ref),
                        ((d.key, _type_of(getattr(d, side))) for d in changed),
                    )
            return pages.compare_page(lh, base, head)

        return await page(request, "compare.html", build)

    @router.get("/ui/table/{name}", response_class=HTMLResponse)
    async def table(request: Request, name: str, ref: str | None = None) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            at = ref_name(ref)
            if access.rules is not None:
                key = ContentKey.parse(name)
                found = lh.store.get_contents(ref or lh.default_ref, [key]).get(key)
                access.require_values(at, [(key, found.type.value if found else "")])
            return pages.table_page(lh, name, ref)

        return await page(request, "table.html", build)

    @router.get("/ui/tables", response_class=HTMLResponse)
    async def tables(request: Request, ref: str | None = None) -> Response:
        from lakehouse.views import entries_json

        def build(access: ConsoleAccess) -> dict[str, Any]:
            at = ref_name(ref)
            access.require_entries(at)
            shown = access.readable(at, lh.tables(ref))
            return {"ref": ref or lh.default_ref, "tables": entries_json(shown)}

        return await page(request, "tables.html", build)

    def operational(access: ConsoleAccess) -> None:
        """Runs and operations records name tables: the default branch's listing is needed."""
        access.require_entries(lh.default_branch)

    @router.get("/ui/runs", response_class=HTMLResponse)
    async def runs(request: Request) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            operational(access)
            return pages.runs_page(lh)

        return await page(request, "runs.html", build)

    @router.get("/ui/runs/{run_id}", response_class=HTMLResponse)
    async def run(request: Request, run_id: str) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            operational(access)
            found = pages.run_page(lh, run_id)
            if found is None:
                raise LakehouseError(f"no record of run {run_id}")
            return found

        return await page(request, "run.html", build)

    @router.get("/ui/operations", response_class=HTMLResponse)
    async def operations(request: Request) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            operational(access)
            return pages.operations_page(lh)

        return await page(request, "operations.html", build)

    @router.get("/ui/sql", response_class=HTMLResponse)
    async def sql(
        request: Request, q: str = "", ref: str | None = None, limit: int = 100
    ) -> Response:
        def build(access: ConsoleAccess) -> dict[str, Any]:
            at = ref_name(ref)
            # the SQL box is offered on references the principal may list
            access.require_entries(at)
            if not q.strip():
                return {"query": "", "ref": ref or lh.default_ref}
            bounded = max(1, min(limit, pages.SQL_ROW_LIMIT))

            def authorize(keys: Sequence[ContentKey]) -> None:
                access.require_values(at, ((k, ContentType.ICEBERG_TABLE.value) for k in keys))

            return pages.sql_page(lh, q, ref, bounded, authorize=authorize)

        return await page(request, "sql.html", build)

    @router.get("/ui/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return templates.TemplateResponse(request, "login.html", context(next=next, failed=False))

    @router.post("/ui/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        target = _local((form.get("next") or ["/"])[0])
        secure = request.url.scheme == "https"
        if verifier is not None:
            try:
                principal = await run_in_threadpool(auth.verify, given) if given else None
            except IdentityProviderUnavailableError as exc:
                return failure(request, 503, str(exc))
            if principal is not None:
                response = RedirectResponse(target, 303)
                token_cookie(response, request, given)
                return response
        elif token is None or auth.static_token_matches(given):
            response = RedirectResponse(target, 303)
            if token is not None:
                response.set_cookie(
                    SESSION_COOKIE,
                    session_value(token),
                    httponly=True,
                    samesite="strict",
                    secure=secure,
                )
            return response
        return templates.TemplateResponse(
            request, "login.html", context(next=target, failed=True), status_code=401
        )

    def callback_uri(request: Request) -> str:
        return f"{str(request.base_url).rstrip('/')}/ui/login/callback"

    @router.get("/ui/login/oidc")
    async def login_redirect(request: Request, next: str = "/") -> Response:
        if flow is None:
            return failure(request, 404, "no OIDC sign-in client is configured")
        target = _local(next)
        try:
            url, pending = await run_in_threadpool(flow.start, callback_uri(request), target)
        except IdentityProviderUnavailableError as exc:
            return failure(request, 503, str(exc))
        response = RedirectResponse(url, 303)
        # Lax: the provider sends the browser back with a cross-site navigation
        response.set_cookie(
            FLOW_COOKIE,
            pending.to_cookie(),
            max_age=FLOW_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/ui/login",
        )
        return response

    @router.get("/ui/login/callback")
    async def login_callback(
        request: Request, code: str = "", state: str = "", error: str = ""
    ) -> Response:
        if flow is None:
            return failure(request, 404, "no OIDC sign-in client is configured")
        try:
            if error:
                raise AuthenticationError(f"the identity provider refused the sign-in: {error}")
            pending = PendingSignIn.from_cookie(request.cookies.get(FLOW_COOKIE, ""))
            access_token = await run_in_threadpool(
                flow.finish, code, state, pending, callback_uri(request)
            )
            principal = await run_in_threadpool(auth.verify, access_token)
            if principal is None:
                raise AuthenticationError("the identity provider's token does not verify here")
        except AuthenticationError as exc:
            return failure(request, 401, f"Sign-in failed: {exc}")
        except IdentityProviderUnavailableError as exc:
            return failure(request, 503, str(exc))
        # a page, not a redirect: the SameSite=Strict cookie is then sent on the next
        # navigation, which starts on this site (a redirect would continue the provider's)
        target = _local(pending.next)
        response = HTMLResponse(
            f'<!doctype html><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
            f'<a href="{html.escape(target)}">Continue</a>'
        )
        token_cookie(response, request, access_token)
        response.delete_cookie(FLOW_COOKIE, path="/ui/login")
        return response

    @router.get("/ui/logout")
    def logout() -> Response:
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(TOKEN_COOKIE)
        return response

    return router


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _type_of(item: object) -> str:
    """The content type name of an operation or content (``''`` when it has none)."""
    content = getattr(item, "content", item)
    kind = getattr(content, "type", None)
    return kind.value if isinstance(kind, ContentType) else ""


def _seconds_left(token: str) -> int | None:
    """Seconds until a (verified) token's ``exp``: the cookie expires with it."""
    claims = jwt.decode(token, options={"verify_signature": False})
    exp = claims.get("exp")
    return max(1, int(exp - time.time())) if isinstance(exp, int | float) else None


__all__ = ["SESSION_COOKIE", "TOKEN_COOKIE", "build_console_router", "session_value"]
