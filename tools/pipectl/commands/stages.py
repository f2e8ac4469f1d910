"""`pipectl stages list [--json]`, `pipectl stages enable|disable S [--push] [--json]`."""

from __future__ import annotations

import json

import click


@click.group()
def stages() -> None:
    """Pipeline stages: list them, switch them on and off (a commit + audit entry)."""


@stages.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON list of stages.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Stages in pipeline order with their switches and gates."""
    config = ctx.obj.config
    rows = []
    for s in config.stages:
        gates = [g for g in ("market_hours", "approval", "integration_test") if getattr(s.gates, g)]
        prev = config.previous_enabled(s.name)
        rows.append(
            {
                "name": s.name,
                "enabled": s.enabled,
                "deploys": s.deploys,
                "namespace": s.namespace,
                "values": s.values,
                "gates": gates,
                "source": prev.name if prev else None,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    click.echo(f"{'STAGE':<17} {'ENABLED':<8} {'PROMOTES FROM':<17} GATES")
    for r in rows:
        source = (r["source"] or "-") if r["deploys"] else "-"
        click.echo(
            f"{r['name']:<17} {'yes' if r['enabled'] else 'no':<8} {source:<17} "
            f"{', '.join(r['gates']) or '-'}"
        )


def _switch(ctx: click.Context, stage: str, enabled: bool, push: bool, as_json: bool) -> None:
    from pipectl.stages_edit import set_enabled

    change = set_enabled(ctx.obj, stage, enabled, push=push)
    if as_json:
        click.echo(json.dumps(change.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(change.message)


@stages.command()
@click.argument("stage")
@click.option("--push", is_flag=True, help="Push the commit (fetch + rebase + retry).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def enable(ctx: click.Context, stage: str, push: bool, as_json: bool) -> None:
    """Enable STAGE: commit pipeline.yaml + re-rendered files, audit stage.enabled."""
    _switch(ctx, stage, True, push, as_json)


@stages.command()
@click.argument("stage")
@click.option("--push", is_flag=True, help="Push the commit (fetch + rebase + retry).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def disable(ctx: click.Context, stage: str, push: bool, as_json: bool) -> None:
    """Disable STAGE (promotions skip it; nothing is promoted by this)."""
    _switch(ctx, stage, False, push, as_json)
