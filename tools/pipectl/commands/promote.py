"""`pipectl promote --stage S --tag T [--notes TEXT] [--push] [--json]`."""

from __future__ import annotations

import json

import click

from pipectl.errors import EXIT_BLOCKED, EXIT_FAILED


@click.command()
@click.option("--stage", required=True, help="Target stage (beta, paper or live).")
@click.option("--tag", required=True, help="Image tag (git SHA) to promote.")
@click.option("--notes", default="", help="Why; becomes the commit body and the audit notes.")
@click.option(
    "--push",
    is_flag=True,
    help="Push the commit; a non-fast-forward fetches, rebases and retries (bounded).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def promote(
    ctx: click.Context, stage: str, tag: str, notes: str, push: bool, as_json: bool
) -> None:
    """Promote TAG to STAGE as one Git commit, if the gate allows it.

    Exit 0: completed or already there (no-op); 3: blocked (reasons printed);
    1: failed (branch restored); 2: bad input (nothing recorded). For live, an approval
    must exist (`pipectl approve`); --notes does not approve.
    """
    from pipectl.promotion import BLOCKED, FAILED
    from pipectl.promotion import promote as run

    res = run(ctx.obj, stage, tag, notes=notes, push=push)
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2, sort_keys=True))
    elif res.status == BLOCKED:
        click.echo(f"pipectl: blocked: {tag} -> {stage}", err=True)
        for reason in res.reasons:
            click.echo(f"  - {reason}", err=True)
    elif res.status == FAILED:
        click.echo(f"pipectl: error: {res.message}", err=True)
    else:
        click.echo(res.message)
    if res.status == BLOCKED:
        ctx.exit(EXIT_BLOCKED)
    if res.status == FAILED:
        ctx.exit(EXIT_FAILED)
