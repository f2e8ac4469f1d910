"""Break-glass grants and approvals: the two human overrides the gate knows.

- A break-glass grant (`break-glass.granted`) lifts the market-hours block for exactly one
  stage and one tag, for the configured validity, and is consumed by the first promotion it
  lets through (`break-glass.consumed`, see `pipectl.gate`). It needs a justification of at
  least two words.
- An approval (`approval.granted`) with notes is what a stage with the approval gate (live)
  needs for a tag. Approvals are not consumed.

Every check runs before the audit log is opened, so a refused request leaves the log
byte-identical (opening a transaction may set aside a torn line; a refusal must not even do
that). `target` is an `AuditLog` (one transaction is opened) or a `Transaction` the caller
already holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pipectl.audit import AuditLog, Entry, Transaction, format_time
from pipectl.errors import BadInput
from pipectl.gate import valid_tag

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig, Stage


def _check_tag(tag: object) -> str:
    if not valid_tag(tag):
        raise BadInput(f"tag {tag!r} is not a git SHA (7-40 lower-case hex digits)")
    return tag  # type: ignore[return-value]


def check_break_glass(
    config: PipelineConfig, stage: str, tag: str, justification: str
) -> tuple[Stage, str, str]:
    """Validate a grant request; returns (stage, tag, stripped justification)."""
    target = config.stage(stage)  # BadInput naming the known stages
    if not target.enabled:
        raise BadInput(f"stage {stage} is disabled; a break-glass grant would never be used")
    if not target.gates.market_hours:
        raise BadInput(f"stage {stage} has no market-hours gate; break-glass lifts only that gate")
    _check_tag(tag)
    text = (justification or "").strip()
    if not text:
        raise BadInput("--justification is empty; say why the market-hours gate must be lifted")
    if len(text.split()) < 2:
        raise BadInput(
            f"--justification {text!r} is one word; say why in a sentence (two words or more)"
        )
    return target, tag, text


def check_approval(config: PipelineConfig, stage: str, tag: str, notes: str) -> tuple[str, str]:
    """Validate an approval; returns (tag, stripped notes)."""
    target = config.stage(stage)
    if not target.gates.approval:
        gated = [s.name for s in config.stages if s.gates.approval]
        raise BadInput(
            f"stage {stage} has no approval gate (stages that need approval: "
            f"{', '.join(gated) or 'none'})"
        )
    _check_tag(tag)
    text = (notes or "").strip()
    if not text:
        raise BadInput("--notes is empty; an approval needs notes")
    return tag, text


def _write(target: AuditLog | Transaction, **fields) -> Entry:
    if isinstance(target, Transaction):
        return target.append(**fields)
    with target.transaction() as txn:
        return txn.append(**fields)


def grant_break_glass(
    target: AuditLog | Transaction,
    config: PipelineConfig,
    stage: str,
    tag: str,
    justification: str,
    actor: str,
    now: datetime | None = None,
) -> Entry:
    """Record a `break-glass.granted` for (stage, tag); details: `expires` (UTC, exclusive)
    and `validity_seconds`. Raises BadInput (nothing written) when the request is invalid."""
    _target_stage, tag, text = check_break_glass(config, stage, tag, justification)
    log = target.log if isinstance(target, Transaction) else target
    issued = now or log.clock()
    validity = config.break_glass_validity
    return _write(
        target,
        action="break-glass.granted",
        actor=actor,
        stage=stage,
        tag=tag,
        justification=text,
        details={
            "expires": format_time(issued + validity),
            "validity_seconds": int(validity.total_seconds()),
        },
    )


def record_approval(
    target: AuditLog | Transaction,
    config: PipelineConfig,
    stage: str,
    tag: str,
    notes: str,
    actor: str,
) -> Entry:
    """Record an `approval.granted` for (stage, tag) with the notes. Raises BadInput (nothing
    written) when the stage has no approval gate, the tag is malformed or the notes are empty."""
    tag, text = check_approval(config, stage, tag, notes)
    return _write(target, action="approval.granted", actor=actor, stage=stage, tag=tag, notes=text)
