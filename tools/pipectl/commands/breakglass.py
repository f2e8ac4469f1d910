"""`pipectl break-glass` and `pipectl approve`: the two human overrides, recorded in the audit log.

pipectl break-glass --stage S --tag T --justification TEXT [--yes]
pipectl approve --stage live --tag T --notes TEXT
"""

from __future__ import annotations

import json
import sys

import click

from pipectl.errors import BadInput


def _confirm_stage(stage: str) -> None:
    """On a terminal, the operator types the stage name; anywhere else --yes is required."""
    if not sys.stdin.isatty():
        raise BadInput("refusing without --yes: not a terminal, so the stage cannot be confirmed")
    typed = click.prompt(
        f"This lifts the market-hours gate of {stage} for one promotion. "
        f"Type the stage name to confirm",
        default="",
        show_default=False,
        err=True,
    )
    if typed.strip() != stage:
        click.echo("pipectl: aborted: confirmation did not match; nothing was recorded", err=True)
        raise click.exceptions.Exit(1)


@click.command("break-glass")
@click.option("--stage", required=True, help="Stage whose market-hours gate to lift (paper, live).")
@click.option("--tag", required=True, help="The one image tag (git SHA) the grant is for.")
@click.option("--justification", required=True, help="Why, in a sentence (two words or more).")
@click.option("--yes", is_flag=True, help="Do not ask to type the stage name (scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the grant entry as JSON.")
@click.pass_context
def break_glass(
    ctx: click.Context, stage: str, tag: str, justification: str, yes: bool, as_json: bool
) -> None:
    """Grant a one-time lift of STAGE's market-hours gate for TAG, valid for the configured
    time (pipeline.yaml break_glass.validity) and used up by the first promotion it lets
    through."""
    from pipectl.breakglass import check_break_glass, grant_break_glass

    obj = ctx.obj
    config = obj.config
    check_break_glass(config, stage, tag, justification)  # refuse before asking anything
    if not yes:
        _confirm_stage(stage)
    entry = grant_break_glass(obj.audit, config, stage, tag, justification, obj.actor)
    if as_json:
        click.echo(json.dumps(entry.to_dict(), sort_keys=True))
        return
    click.echo(
        f"break-glass grant {entry.id} for {tag} to {stage}: valid until "
        f"{entry.details['expires']}, used up by the first promotion it lets through"
    )


@click.command()
@click.option("--stage", required=True, help="Stage with the approval gate (live).")
@click.option("--tag", required=True, help="The image tag (git SHA) being approved.")
@click.option("--notes", required=True, help="What was checked, why it may go (required).")
@click.option("--json", "as_json", is_flag=True, help="Print the approval entry as JSON.")
@click.pass_context
def approve(ctx: click.Context, stage: str, tag: str, notes: str, as_json: bool) -> None:
    """Record the approval STAGE needs for TAG (approvals are not used up)."""
    from pipectl.breakglass import record_approval

    obj = ctx.obj
    entry = record_approval(obj.audit, obj.config, stage, tag, notes, obj.actor)
    if as_json:
        click.echo(json.dumps(entry.to_dict(), sort_keys=True))
        return
    click.echo(f"approval {entry.id} recorded: {tag} may go to {stage} (by {entry.actor})")
