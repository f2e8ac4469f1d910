"""`pipectl gate --stage S --tag T [--at ISO] [--json]`: may tag T go to stage S now?

A read-only query: it reads the audit log but writes nothing and consumes no break-glass grant
(the console's gate endpoint and `pipectl promote` do, when they let something through).

Exit codes: 0 allowed; 3 blocked, including an unknown or disabled stage and a malformed tag
given as well-formed options (those are rules of the gate, reported as reasons) and any
internal error (fail closed); 2 bad input: a malformed or out-of-calendar `--at`, or a broken
pipeline.yaml.
"""

from __future__ import annotations

import json

import click

from pipectl.errors import EXIT_BLOCKED


@click.command()
@click.option("--stage", required=True, help="Target stage (beta, paper, live, ...).")
@click.option("--tag", required=True, help="Image tag: the git SHA (7-40 lower-case hex).")
@click.option("--at", "at_text", metavar="ISO", help="Ask about this instant instead of now.")
@click.option("--json", "as_json", is_flag=True, help="The decision as JSON.")
@click.pass_context
def gate(ctx: click.Context, stage: str, tag: str, at_text: str | None, as_json: bool) -> None:
    """Exit 0 if TAG may go to STAGE now (or --at), 3 if blocked (with the reasons)."""
    from pipectl import gate as gate_mod
    from pipectl.market import MarketCalendar
    from pipectl.timeutil import parse_instant, utc_now

    obj = ctx.obj
    config = obj.config  # a broken pipeline.yaml is bad input (exit 2), not a decision
    at = parse_instant(at_text) if at_text is not None else utc_now()
    MarketCalendar(config.market).status(at)  # an instant outside the calendar: exit 2
    decision = gate_mod.evaluate(obj, stage, tag, at, record=False, actor="", source="cli")
    if as_json:
        click.echo(json.dumps(decision.to_json()))
    else:
        click.echo(decision.message())
    if not decision.allowed:
        ctx.exit(EXIT_BLOCKED)
