"""May tag T go to stage S now? The one gate every path asks (CLI, console, Kargo, promotions).

`decide` is pure: config, market calendar, audit entries and an instant in, a `Decision` out.
Rules (all are checked and every failing one is reported):

- the stage exists and is enabled;
- the tag is a git SHA: 7-40 lower-case hex digits;
- a stage with the market-hours gate is blocked while the market is open; a usable
  break-glass grant for exactly that stage and tag lifts this block and nothing else;
- a stage with the approval gate needs an `approval.granted` with notes for the tag;
- a stage with the integration-test gate needs the tag's newest integration-test result to
  be a pass, while the `integration-test` stage is enabled.

`evaluate` wraps `decide` with the I/O and fails closed: any error is a blocked decision whose
reason starts with "internal error:". With `record=True` (the console's Kargo gate endpoint)
it writes the decision and, when a grant let it through, the grant's consumption, in ONE audit
transaction.

Promotions that do their own writing call `decide` on `txn.entries` inside their own audit
transaction and, once the promotion has happened, `consume_grant(txn, decision, ...)` in that
same transaction; see `consume_grant`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipectl import policy
from pipectl.timeutil import humanize_seconds

if TYPE_CHECKING:
    from pipectl.audit import Entry, Transaction
    from pipectl.config import PipelineConfig
    from pipectl.context import Context
    from pipectl.market import MarketCalendar

TAG_RE = re.compile(r"[0-9a-f]{7,40}")  # used with fullmatch: no trailing newline slips through
INTTEST_STAGE = "integration-test"


def valid_tag(tag: object) -> bool:
    return isinstance(tag, str) and TAG_RE.fullmatch(tag) is not None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    stage: str
    tag: str
    reasons: tuple[str, ...]
    market_open: bool | None  # None when the market status could not be determined
    seconds_to_close: int | None  # while the market is open
    break_glass: str | None  # id of the grant that lifts the market block

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "stage": self.stage,
            "tag": self.tag,
            "reasons": list(self.reasons),
            "market_open": self.market_open,
            "seconds_to_close": self.seconds_to_close,
            "break_glass": self.break_glass,
        }

    def message(self) -> str:
        """One human line: the verdict, the reasons, and the time to the close when it matters."""
        if not self.allowed:
            return f"blocked: {self.tag} may not go to {self.stage}: " + "; ".join(self.reasons)
        text = f"allowed: {self.tag} may go to {self.stage}"
        if self.break_glass:
            text += f" (break-glass grant {self.break_glass} lifts the market-hours block)"
        if self.market_open and self.seconds_to_close is not None:
            text += f"; market closes in {humanize_seconds(self.seconds_to_close)}"
        return text


def decide(
    config: PipelineConfig,
    calendar: MarketCalendar,
    entries: Sequence[Entry],
    stage: str,
    tag: str,
    now: datetime,
    *,
    promotion: str | None = None,
) -> Decision:
    """The gate's answer for (stage, tag) at `now` (aware) given the audit `entries`.

    `promotion` names the promotion asking (Kargo's Promotion name): a grant that promotion
    already consumed still lifts the market block for it (a retried call gets the same answer),
    never for another. Raises only for an instant outside the market calendar's range."""
    reasons: list[str] = []
    target = None
    if isinstance(stage, str) and stage in config.stage_names:
        target = config.stage(stage)
        if not target.enabled:
            reasons.append(f"stage {stage} is disabled")
    else:
        reasons.append(
            f"unknown stage {stage!r} (expected one of: {', '.join(config.stage_names)})"
        )
    tag_ok = valid_tag(tag)
    if not tag_ok:
        reasons.append(f"tag {tag!r} is not a git SHA (7-40 lower-case hex digits)")

    status = calendar.status(now)
    seconds_to_close = status.seconds_to_close if status.open else None
    grant_id = None
    if target is not None and target.gates.market_hours and status.open:
        grant = None
        if tag_ok:
            grant = policy.active_break_glass(
                entries, stage, tag, now, config.break_glass_validity, promotion
            )
        if grant is not None:
            grant_id = grant.id
        else:
            close = status.next_close.astimezone(calendar.tz)
            reasons.append(
                f"market is open until {close:%H:%M} {calendar.market.timezone} "
                f"(closes in {humanize_seconds(status.seconds_to_close or 0)}); "
                f"{stage} deploys only while it is closed, unless a break-glass grant "
                f"for this tag is active"
            )
    if target is not None and tag_ok:
        if target.gates.approval and policy.approval_for(entries, stage, tag) is None:
            reasons.append(
                f"{stage} needs an approval with notes for {tag} "
                f"(pipectl approve --stage {stage} --tag {tag} --notes ...)"
            )
        if target.gates.integration_test and _inttest_enabled(config):
            result = policy.inttest_result(entries, tag)
            if result is None:
                reasons.append(f"{tag} has no integration-test result ({INTTEST_STAGE} is enabled)")
            elif result != "passed":
                reasons.append(f"{tag} failed its latest integration test")
    return Decision(
        allowed=not reasons,
        stage=stage,
        tag=tag,
        reasons=tuple(reasons),
        market_open=status.open,
        seconds_to_close=seconds_to_close,
        break_glass=grant_id,
    )


def _inttest_enabled(config: PipelineConfig) -> bool:
    return INTTEST_STAGE in config.stage_names and config.stage(INTTEST_STAGE).enabled


def consume_grant(
    txn: Transaction,
    decision: Decision,
    *,
    actor: str,
    promotion: str | None = None,
    details: dict[str, Any] | None = None,
) -> Entry | None:
    """Record that `decision`'s break-glass grant was used, inside the caller's transaction.

    Use it from code that lets something through on a decision it made itself:

        with ctx.audit.transaction() as txn:
            decision = gate.decide(config, calendar, txn.entries, stage, tag, now)
            if decision.allowed:
                ...  # do the promotion
                gate.consume_grant(txn, decision, actor=actor, details={"commit": sha})
                txn.append(action="promotion.completed", ...)

    The grant is consumed in the same transaction (the same single write) as the record of
    what it let through, and no other writer can use it in between: the log stays locked from
    `decide` to the end of the block. Returns the `break-glass.consumed` entry, or None when
    there is nothing to consume (not allowed, no grant, or already consumed by `promotion`)."""
    if not decision.allowed or decision.break_glass is None:
        return None
    if promotion and policy.consumed_for_promotion(txn.entries, decision.break_glass, promotion):
        return None
    return txn.append(
        action="break-glass.consumed",
        actor=actor,
        stage=decision.stage,
        tag=decision.tag,
        details={**(details or {}), "grant": decision.break_glass, "promotion": promotion},
    )


def record_decision(
    txn: Transaction,
    decision: Decision,
    *,
    actor: str,
    source: str,
    promotion: str | None = None,
) -> list[Entry]:
    """Write a gate decision (and the consumption of the grant it used) into `txn`.

    The consumption is written first: the batch is atomic anyway, and if it ever were not,
    a grant recorded as used without a matching `gate.allowed` fails safe."""
    written = []
    consumed = consume_grant(txn, decision, actor=actor, promotion=promotion)
    if consumed is not None:
        written.append(consumed)
    written.append(
        txn.append(
            action="gate.allowed" if decision.allowed else "gate.blocked",
            actor=actor,
            stage=decision.stage if isinstance(decision.stage, str) else None,
            tag=decision.tag if isinstance(decision.tag, str) else None,
            details={
                "reasons": list(decision.reasons),
                "source": source,
                "promotion": promotion,
                "break_glass": decision.break_glass,
                "market_open": decision.market_open,
            },
        )
    )
    return written


def _internal_error(stage: str, tag: str, exc: BaseException) -> Decision:
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Decision(
        allowed=False,
        stage=stage,
        tag=tag,
        reasons=(f"internal error: {text}",),
        market_open=None,
        seconds_to_close=None,
        break_glass=None,
    )


def evaluate(
    ctx: Context,
    stage: str,
    tag: str,
    now: datetime,
    *,
    record: bool,
    actor: str,
    source: str,
    promotion: str | None = None,
) -> Decision:
    """`decide` with the I/O around it; never raises, fails closed.

    record=False: a read-only query (the CLI `gate`): reads the log, writes nothing, consumes
    nothing. record=True: under the audit lock, decide on the current entries and append
    `gate.allowed`/`gate.blocked` (details: reasons, source, promotion) plus
    `break-glass.consumed` (details: grant, promotion) when a grant let it through, in ONE
    transaction. An internal error is reported as blocked and, with record=True, recorded as
    `gate.blocked` if the log can still be written."""
    from pipectl.market import MarketCalendar

    try:
        config = ctx.config
        calendar = MarketCalendar(config.market)
        if not record:
            entries = ctx.audit.entries()
            return decide(config, calendar, entries, stage, tag, now, promotion=promotion)
        with ctx.audit.transaction() as txn:
            decision = decide(config, calendar, txn.entries, stage, tag, now, promotion=promotion)
            record_decision(txn, decision, actor=actor, source=source, promotion=promotion)
        return decision
    except Exception as exc:
        decision = _internal_error(stage, tag, exc)
    if record:
        try:
            with ctx.audit.transaction() as txn:
                record_decision(txn, decision, actor=actor, source=source, promotion=promotion)
        except Exception:  # the log itself is what failed: the answer is still "blocked"
            pass
    return decision
