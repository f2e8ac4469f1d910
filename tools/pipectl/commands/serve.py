"""`pipectl serve`: the pipeline console and the gate API Kargo calls."""

from __future__ import annotations

from pathlib import Path

import click

from pipectl.context import Context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["local", "cluster"]),
    default="local",
    show_default=True,
    help="local: promote by Git commits in --repo; cluster: create Kargo Promotions.",
)
@click.option(
    "--htpasswd",
    type=click.Path(dir_okay=False, path_type=Path),
    help="bcrypt htpasswd file for HTTP Basic (needed for a non-loopback --host).",
)
@click.option(
    "--kargo-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bearer token Kargo uses for GET /api/v1/gate and /api/v1/inttest (re-read on change).",
)
@click.option(
    "--ci-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bearer token CI uses for POST /api/v1/inttest and GET /api/v1/stages.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    help="Addresses whose --proxy-user-header is believed (repeatable).",
)
@click.option("--proxy-user-header", default="X-Forwarded-User", show_default=True)
@click.option(
    "--public-url", help="The console's external URL (links, Origin check, Secure cookie)."
)
@click.option(
    "--push/--no-push",
    default=None,
    help="Push what the console commits (default: on in cluster mode, off in local mode).",
)
@click.option(
    "--kargo-namespace",
    default="kargo-stonks-oracle",
    show_default=True,
    help="Namespace of the Kargo Project (cluster mode).",
)
@click.option("--max-body", type=click.IntRange(1024, 64 << 20), default=1 << 20, show_default=True)
@click.option("--quiet", is_flag=True, help="No access log on stderr.")
@click.pass_obj
def serve(
    ctx: Context,
    host: str,
    port: int,
    mode: str,
    htpasswd: Path | None,
    kargo_token_file: Path | None,
    ci_token_file: Path | None,
    trusted_proxies: tuple[str, ...],
    proxy_user_header: str,
    public_url: str | None,
    push: bool | None,
    kargo_namespace: str,
    max_body: int,
    quiet: bool,
) -> None:
    """Serve the pipeline console and the gate API.

    Local mode without --htpasswd binds to loopback only and prints a one-time login link.
    """
    from pipectl.console.api import ConsoleAPI
    from pipectl.console.server import make_server

    cluster = None
    if mode == "cluster":
        from pipectl.console.kargo import KargoBackend

        cluster = KargoBackend.from_environment(namespace=kargo_namespace)
    api = ConsoleAPI(
        repo=ctx.repo,
        config_path=ctx.config_path,
        audit_path=ctx.audit_path,
        mode=mode,
        local_user=ctx.actor,
        push=(mode == "cluster") if push is None else push,
        public_url=public_url,
        cluster=cluster,
    )
    server = make_server(
        api,
        host=host,
        port=port,
        htpasswd=htpasswd,
        kargo_token_file=kargo_token_file,
        ci_token_file=ci_token_file,
        trusted_proxies=trusted_proxies,
        proxy_user_header=proxy_user_header,
        public_url=public_url,
        max_body=max_body,
        access_log=not quiet,
    )
    click.echo(
        f"pipectl serve: {mode} mode, {server.url} (repo {ctx.repo}, audit {ctx.audit_path})"
    )
    login = server.app.auth.login_token
    if login is not None and login.token:
        click.echo(
            f"pipectl serve: sign in (one-time link): {server.url}/login?token={login.token}"
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("pipectl serve: stopped", err=True)
    finally:
        server.server_close()
