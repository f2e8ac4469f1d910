"""`pipectl render [--check]`: write (or check) every file rendered from pipeline.yaml.

pipectl render            write the rendered files; print what changed
pipectl render --check    change nothing; exit 1 naming every stale file
"""

from __future__ import annotations

import click

from pipectl.errors import EXIT_FAILED, PipectlError


@click.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a rendered file is stale.")
@click.pass_context
def render(ctx: click.Context, check: bool) -> None:
    """Render gitops/ manifests and stage switches from pipeline.yaml and gitops/versions.env."""
    from pipectl import render as r

    repo = ctx.obj.repo
    config = ctx.obj.config
    if check:
        out = r.stale(config, repo)
        if out:
            for rel in out:
                click.echo(f"stale: {rel}", err=True)
            raise PipectlError(
                f"{len(out)} rendered file(s) out of date with pipeline.yaml / "
                "gitops/versions.env: run `pipectl render` and commit",
                exit_code=EXIT_FAILED,
            )
        click.echo("rendered files are up to date")
        return
    files = r.render_all(config, repo)
    try:
        changed = r.write(repo, files)
    except OSError as exc:
        raise PipectlError(f"cannot write rendered files: {exc}", exit_code=EXIT_FAILED) from None
    for rel in changed:
        click.echo(f"wrote {rel}")
    click.echo(f"{len(changed)} file(s) changed, {len(files)} rendered")
