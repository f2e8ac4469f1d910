"""`pipectl market`: trading sessions and whether the market is open (exact CLI contract).

pipectl market sessions --from YYYY-MM-DD --to YYYY-MM-DD [--json]
pipectl market status [--at ISO] [--json]
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date

import click

from pipectl.errors import BadInput

MAX_RANGE_DAYS = 3660
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(text: str, option: str) -> date:
    if not _DATE.fullmatch(text.strip()):
        raise BadInput(f"{option} {text!r}: expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{option} {text!r}: not a valid date") from None


def _calendar(ctx: click.Context):
    from pipectl.market import MarketCalendar

    return MarketCalendar(ctx.obj.config.market)


@click.group()
def market() -> None:
    """NYSE (or Mon-Fri) trading sessions from pipeline.yaml's market."""


@market.command()
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD", help="First date.")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD", help="Last date (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="JSON list of {date, open, close}.")
@click.pass_context
def sessions(ctx: click.Context, start: str, end: str, as_json: bool) -> None:
    """Trading sessions from --from to --to, both inclusive (market-local dates)."""
    first = _parse_date(start, "--from")
    last = _parse_date(end, "--to")
    if first > last:
        raise BadInput(f"--from {first.isoformat()} is after --to {last.isoformat()}")
    if (last - first).days > MAX_RANGE_DAYS:
        raise BadInput(
            f"--from {first.isoformat()} --to {last.isoformat()}: range longer than "
            f"{MAX_RANGE_DAYS} days"
        )
    cal = _calendar(ctx)
    found = cal.sessions(first, last)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in found], indent=2))
        return
    m = cal.market
    regular = m.close
    click.echo(f"{'DATE':<10}  {'DAY':<3}  {'OPEN':<5}  {'CLOSE':<5}  {'UTC':<6}  NOTE")
    for s in found:
        note = "early close" if s.close.time() < regular else ""
        click.echo(
            f"{s.date.isoformat():<10}  {s.date:%a}  {s.open:%H:%M}  {s.close:%H:%M}  "
            f"{_offset(s.open):<6}  {note}".rstrip()
        )
    click.echo(
        f"{len(found)} session(s) from {first.isoformat()} to {last.isoformat()} "
        f"({m.calendar}, {m.timezone})"
    )


def _offset(dt) -> str:
    raw = dt.strftime("%z")
    return f"{raw[:3]}:{raw[3:]}"


@market.command()
@click.option("--at", "at_text", metavar="ISO", help="Instant with UTC offset (default: now).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="{open, at, session, next_open, next_close, seconds_to_close}.",
)
@click.pass_context
def status(ctx: click.Context, at_text: str | None, as_json: bool) -> None:
    """Whether the market is open at --at (default now), and when it next opens and closes."""
    from pipectl.timeutil import humanize_seconds, iso, parse_instant, utc_now

    at = parse_instant(at_text) if at_text is not None else utc_now()
    cal = _calendar(ctx)
    st = cal.status(at)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2))
        return
    m = cal.market
    state = "OPEN" if st.open else "CLOSED"
    click.echo(f"market {state} ({m.calendar}, {m.timezone})")
    click.echo(f"  at          {iso(st.at)}")
    if st.session is not None:
        s = st.session
        click.echo(f"  session     {s.date.isoformat()} {s.open:%H:%M}-{s.close:%H:%M}")
    else:
        click.echo(f"  session     none on {st.at.date().isoformat()} ({st.at:%A})")
    if st.open and st.seconds_to_close is not None:
        click.echo(f"  closes in   {humanize_seconds(st.seconds_to_close)}")
    else:
        # via UTC: both are in market time, and same-tzinfo subtraction ignores DST changes
        wait = (st.next_open.astimezone(UTC) - st.at).total_seconds()
        click.echo(f"  opens in    {humanize_seconds(wait)}")
    click.echo(f"  next open   {iso(st.next_open)}")
    click.echo(f"  next close  {iso(st.next_close)}")
