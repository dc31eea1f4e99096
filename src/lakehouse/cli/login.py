"""``lakehouse login`` / ``lakehouse logout``: a person's sign-in at the catalog's issuer.

Thin commands over :mod:`lakehouse.catalog.login` (the OAuth2 device authorization grant,
RFC 8628). The issuer and the public client come from ``LAKEHOUSE_CATALOG__LOGIN__ISSUER``
and ``…__CLIENT_ID`` (or ``--issuer`` / ``--client-id``); the tokens are kept in a file of
mode 0600 and used by every later command whose catalog has no client credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

if TYPE_CHECKING:
    from lakehouse.config import LoginSettings

IssuerOpt = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        help="OIDC issuer URL (default: LAKEHOUSE_CATALOG__LOGIN__ISSUER).",
        show_default=False,
    ),
]
ClientIdOpt = Annotated[
    str | None,
    typer.Option(
        "--client-id",
        help="Public OAuth2 client with the device grant (default: …__LOGIN__CLIENT_ID).",
        show_default=False,
    ),
]


def _login_settings(ctx: typer.Context, issuer: str | None, client_id: str | None) -> LoginSettings:
    from lakehouse.config import LoginSettings, load_settings
    from lakehouse.errors import ConfigError

    state = State.of(ctx)
    configured = load_settings(home=state.home, ref=state.ref).catalog.login
    issuer = issuer or (configured.issuer if configured else None)
    client_id = client_id or (configured.client_id if configured else None)
    if not issuer or not client_id:
        raise ConfigError(
            "no issuer to sign in at: set LAKEHOUSE_CATALOG__LOGIN__ISSUER and "
            "LAKEHOUSE_CATALOG__LOGIN__CLIENT_ID (or pass --issuer and --client-id)"
        )
    base = configured.model_dump() if configured else {}
    return LoginSettings(**{**base, "issuer": issuer, "client_id": client_id})


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def login_command(
    ctx: typer.Context,
    issuer: IssuerOpt = None,
    client_id: ClientIdOpt = None,
    output: OutputOpt = None,
) -> None:
    """Sign in as a person: open the printed address in any browser and approve.

    Uses the OAuth2 device flow of the configured issuer; the tokens are kept (mode 0600)
    and renewed on their own until the issuer ends the session.

    Example: lakehouse login --issuer https://idp.example.com/realms/lh --client-id lakehouse-login
    """
    from lakehouse.catalog.login import DeviceLogin, TokenFile

    settings = _login_settings(ctx, issuer, client_id)
    state = State.of(ctx)
    token_file = TokenFile(settings.token_file)
    flow = DeviceLogin(settings.issuer, settings.client_id, scope=settings.scope)
    try:
        started = flow.start()
        where = started.verification_uri_complete or started.verification_uri
        # on stderr: stdout stays the result (JSON with --output json)
        typer.echo(f"Open {where}", err=True)
        typer.echo(
            f"and confirm the code {started.user_code} (valid {started.expires_in:.0f} s).",
            err=True,
        )
        typer.echo("Waiting for the approval…", err=True)
        tokens = flow.wait(started)
    finally:
        flow.close()
    token_file.save(tokens)
    info = {
        "issuer": tokens.issuer,
        "client_id": tokens.client_id,
        "token_file": str(token_file.path),
        "access_token_expires": _when(tokens.expires_at),
        "refresh_token_expires": _when(tokens.refresh_expires_at),
    }
    if state.format(output) is Output.JSON:
        print_json(info)
    else:
        console().print(f"Signed in at {tokens.issuer}; tokens kept in {token_file.path}.")


def logout_command(
    ctx: typer.Context,
    issuer: IssuerOpt = None,
    client_id: ClientIdOpt = None,
    output: OutputOpt = None,
) -> None:
    """Forget the stored sign-in, and revoke it at the issuer when the issuer allows."""
    from lakehouse.catalog.login import TokenFile, logout

    settings = _login_settings(ctx, issuer, client_id)
    token_file = TokenFile(settings.token_file)
    removed, revoked = logout(settings.issuer, settings.client_id, token_file=token_file)
    if State.of(ctx).format(output) is Output.JSON:
        print_json({"signed_out": removed, "revoked": revoked, "token_file": str(token_file.path)})
    elif not removed:
        console().print(f"Not signed in at {settings.issuer}.")
    else:
        where = "revoked at the issuer" if revoked else "not revoked: the issuer did not confirm"
        console().print(f"Signed out of {settings.issuer} ({where}).")


__all__ = ["login_command", "logout_command"]
