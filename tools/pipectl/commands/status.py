"""`pipectl status [--json] [--cluster] [--at ISO]`."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status document.")
@click.option(
    "--cluster",
    is_flag=True,
    help="Also read Kargo Stages and Argo CD Applications (kubeconfig or in-cluster).",
)
@click.option("--at", "at", metavar="ISO", help="Evaluate the market state at this instant.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, cluster: bool, at: str | None) -> None:
    """Stage -> tag, enabled, last promotion, market state."""
    from pipectl.status import collect, format_text
    from pipectl.timeutil import parse_instant, utc_now

    now = parse_instant(at) if at else utc_now()
    doc = collect(ctx.obj, now, cluster=cluster)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        click.echo(format_text(doc))
