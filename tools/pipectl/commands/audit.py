"""`pipectl audit log|verify|recover`: read and check the hash-chained audit log.

pipectl audit log [--stage S] [--tag T] [--action A] [--limit N] [--json]
pipectl audit verify [--json]     exit 0 intact, 1 naming the first bad entry (line and id)
pipectl audit recover             set aside a torn last line / unfinished write now
"""

from __future__ import annotations

import json

import click

from pipectl.errors import EXIT_FAILED, BadInput


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log (path: --audit-log, PIPECTL_AUDIT_LOG or
    pipeline.yaml audit.log)."""


@audit.command("log")
@click.option("--stage", help="Only entries for this stage.")
@click.option("--tag", help="Only entries for this tag.")
@click.option("--action", "actions", multiple=True, help="Only this action (repeatable).")
@click.option("--limit", type=int, help="Only the newest N matching entries.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one entry per line.")
@click.pass_context
def log_cmd(
    ctx: click.Context,
    stage: str | None,
    tag: str | None,
    actions: tuple[str, ...],
    limit: int | None,
    as_json: bool,
) -> None:
    """Entries, oldest first."""
    from pipectl.audit import ACTIONS, canonical_json

    unknown = sorted(set(actions) - ACTIONS)
    if unknown:
        raise BadInput(f"--action {unknown[0]!r}: unknown (known: {', '.join(sorted(ACTIONS))})")
    if limit is not None and limit < 0:
        raise BadInput("--limit must not be negative")
    entries = [
        e
        for e in ctx.obj.audit.entries()
        if (stage is None or e.stage == stage)
        and (tag is None or e.tag == tag)
        and (not actions or e.action in actions)
    ]
    if limit is not None:
        entries = entries[-limit:] if limit else []
    for e in entries:
        if as_json:
            click.echo(canonical_json(e.to_dict()))
        else:
            click.echo(_line(e))


def _line(e) -> str:
    where = e.stage or "-"
    if e.from_stage:
        where = f"{e.from_stage}->{where}"
    parts = [e.time, e.action, where, e.tag or "-", e.actor]
    text = e.notes or e.justification
    if text:
        parts.append(json.dumps(text, ensure_ascii=False))
    reasons = e.details.get("reasons") if isinstance(e.details, dict) else None
    if reasons:
        parts.append("reasons: " + "; ".join(str(r) for r in reasons))
    grant = e.details.get("grant") if isinstance(e.details, dict) else None
    if grant:
        parts.append(f"grant {grant}")
    parts.append(f"id {e.id}")
    return "  ".join(parts)


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check every entry's hash and the chain; exit 1 naming the first bad entry."""
    result = ctx.obj.audit.verify()
    if as_json:
        click.echo(json.dumps({"log": str(ctx.obj.audit_path), **result.to_json()}))
    elif result.ok:
        click.echo(f"audit log intact: {result.entries} entries ({ctx.obj.audit_path})")
    else:
        who = f", id {result.bad_id}" if result.bad_id else ""
        click.echo(
            f"audit log BROKEN at line {result.bad_line}{who}: {result.reason} "
            f"({result.entries} entries before it verify; {ctx.obj.audit_path})",
            err=True,
        )
    if not result.ok:
        ctx.exit(EXIT_FAILED)


@audit.command()
@click.pass_context
def recover(ctx: click.Context) -> None:
    """Move a torn last line or an unfinished multi-entry write to <log>.torn now (any write
    does this first anyway); earlier entries are not touched."""
    torn = ctx.obj.audit.recover()
    if torn is None:
        click.echo("nothing to recover")
    else:
        click.echo(
            f"set aside {torn.length} bytes ({torn.reason}) from offset {torn.offset} "
            f"into {torn.torn_path}"
        )
