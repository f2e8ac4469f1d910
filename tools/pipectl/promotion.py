"""`pipectl promote`: a promotion is one Git commit that changes one stage's image tag.

Order of events (all under the repository lock, so two promotions never interleave):

1. input checks (tag, stage, branch, clean values file) -- a refusal records nothing;
2. audit `promotion.requested`;
3. the tag already runs in the stage -> audit `promotion.noop`, no commit;
4. in ONE audit transaction (the audit log stays locked until it ends):
   - the rules below plus the gate for (stage, tag) -> `promotion.blocked` with the reasons;
   - otherwise edit the tag (byte-exact), commit with trailers, push if asked, then
     `break-glass.consumed` (when a grant lifted the market block) and `promotion.completed`
     are written together; any failure restores the branch and the file and writes
     `promotion.failed` instead.

Rules (`source_reasons`, pure): the source is the nearest ENABLED stage before the target.
`ci` or no enabled stage before: any well-formed tag. `integration-test`: the tag's newest
integration-test result must be a pass. A deploy stage: the tag must be what that stage's
values file holds at HEAD, so an enabled stage is never skipped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipectl import gitrepo, policy
from pipectl.errors import BadInput, PipectlError
from pipectl.inttest import check_tag
from pipectl.values_file import read_text_exact, set_tag, tag_from_text

COMPLETED = "completed"
NOOP = "noop"
BLOCKED = "blocked"
FAILED = "failed"


@dataclass(frozen=True)
class PromotionResult:
    status: str  # completed | noop | blocked | failed
    stage: str
    tag: str
    from_stage: str | None
    commit: str | None = None
    audit_id: str | None = None  # the promotion.requested entry (also the Audit-Id trailer)
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    break_glass: str | None = None
    pushed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stage": self.stage,
            "tag": self.tag,
            "from_stage": self.from_stage,
            "commit": self.commit,
            "audit_id": self.audit_id,
            "reasons": list(self.reasons),
            "message": self.message,
            "break_glass": self.break_glass,
            "pushed": self.pushed,
        }


def source_reasons(
    source: Any, tag: str, source_tag: str | None, entries: Sequence[Any]
) -> list[str]:
    """Why `tag` may not come from `source` (empty = it may). `source_tag` is the tag in the
    source's values file at HEAD ("" = nothing deployed) for deploy stages."""
    if source is None or source.name == "ci":
        return []
    if source.name == "integration-test":
        # Same words as the gate's integration-test check, so a stage with both says it once.
        result = policy.inttest_result(entries, tag)
        if result is None:
            return [f"{tag} has no integration-test result (integration-test is enabled)"]
        if result != "passed":
            return [f"{tag} failed its latest integration test"]
        return []
    if source_tag == tag:
        return []
    running = source_tag or "nothing"
    return [
        f"{tag} is not what {source.name} runs ({running}): promote it to {source.name} first "
        f"({source.name} is enabled and is not skipped)"
    ]


def _dedupe(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def _restore(repo, start: str, relpath: str) -> None:
    """Back to the state before the promotion: branch at `start`, the values file as in
    `start` (it was clean when the promotion began, so nothing of anyone's is lost)."""
    if gitrepo.head(repo) != start:
        gitrepo.restore_branch(repo, start)
    gitrepo.git(repo, "checkout", start, "--", relpath)


def promote(
    ctx,
    stage: str,
    tag: str,
    notes: str = "",
    push: bool = False,
    now: datetime | None = None,
) -> PromotionResult:
    """Promote `tag` to `stage`; see the module docstring. `now` defaults to the time the
    gate is evaluated (after the repository lock is held)."""
    from pipectl import gate
    from pipectl.config import load_config
    from pipectl.market import MarketCalendar
    from pipectl.timeutil import utc_now

    config = ctx.config
    repo = ctx.repo
    check_tag(tag)
    target = config.stage(stage)
    if target.values is None:
        deploy = ", ".join(s.name for s in config.deploy_stages)
        raise BadInput(f"stage {stage} does not deploy; promote to one of: {deploy}")
    notes = (notes or "").strip()
    actor = ctx.actor
    audit = ctx.audit

    with gitrepo.repo_lock(repo):
        # Re-read the pipeline now that no `stages enable|disable` can commit: one that
        # committed while this waited for the lock must count (an enabled stage is never
        # skipped on the strength of a stale copy).
        config = load_config(ctx.config_path or repo / "pipeline.yaml")
        target = config.stage(stage)
        if target.values is None:
            raise BadInput(f"stage {stage} no longer deploys")
        relpath = target.values
        branch = gitrepo.current_branch(repo)
        if branch is None:
            raise BadInput("HEAD is detached; check out a branch before promoting")
        if push and branch != config.branch:
            raise BadInput(f"--push needs branch {config.branch} checked out (on {branch})")
        if gitrepo.path_dirty(repo, relpath):
            raise BadInput(f"{relpath} has uncommitted changes; commit or revert them first")
        current = tag_from_text(read_text_exact(repo / relpath), config.tag_key, relpath)
        source = config.previous_enabled(stage)
        from_stage = source.name if source else None
        source_tag = None
        if source is not None and source.values is not None:
            text = gitrepo.show(repo, "HEAD", source.values)
            if text is None:
                raise BadInput(f"{source.values} does not exist at HEAD")
            source_tag = tag_from_text(text, config.tag_key, source.values)

        common = {"actor": actor, "stage": stage, "from_stage": from_stage, "tag": tag}
        requested = audit.append(
            action="promotion.requested",
            notes=notes or None,
            details={"push": push, "branch": branch},
            **common,
        )

        def result(status: str, **kw: Any) -> PromotionResult:
            return PromotionResult(
                status=status,
                stage=stage,
                tag=tag,
                from_stage=from_stage,
                audit_id=requested.id,
                **kw,
            )

        if current == tag and target.enabled:  # a disabled stage is refused by the gate
            message = f"{stage} already runs {tag}; nothing to promote"
            audit.append(action="promotion.noop", details={"requested": requested.id}, **common)
            return result(NOOP, message=message)

        calendar = MarketCalendar(config.market)
        with audit.transaction() as txn:
            at = now or utc_now()
            decision = gate.decide(config, calendar, txn.entries, stage, tag, at)
            reasons = _dedupe(
                [*decision.reasons, *source_reasons(source, tag, source_tag, txn.entries)]
            )
            if reasons:
                txn.append(
                    action="promotion.blocked",
                    details={"requested": requested.id, "reasons": reasons},
                    **common,
                )
                return result(
                    BLOCKED,
                    reasons=reasons,
                    message=f"promotion of {tag} to {stage} blocked: " + "; ".join(reasons),
                )

            grant = decision.break_glass
            start = gitrepo.head(repo)
            trailers = [
                ("Pipeline-Stage", stage),
                ("Image-Tag", tag),
                ("From-Stage", from_stage or "none"),
                ("Promoted-By", actor),
                ("Break-Glass", grant or "none"),
                ("Audit-Id", requested.id),
            ]
            try:
                set_tag(repo / relpath, config.tag_key, tag)
                commit = gitrepo.commit_paths(
                    repo, [relpath], f"promote({stage}): {tag}", notes, trailers
                )
                if push:
                    remote = gitrepo.upstream_remote(repo, branch)
                    commit = gitrepo.push_with_retry(repo, remote, branch, restore_to=start).commit
            except BaseException as exc:
                try:
                    _restore(repo, start, relpath)
                    restored = "branch and values file restored"
                except PipectlError as again:
                    restored = f"RESTORE FAILED: {again}"
                if not isinstance(exc, Exception):
                    raise
                error = str(exc) or type(exc).__name__
                txn.append(
                    action="promotion.failed",
                    details={"requested": requested.id, "error": error, "restored": restored},
                    **common,
                )
                return result(
                    FAILED,
                    reasons=[error],
                    message=f"promotion of {tag} to {stage} failed: {error} ({restored})",
                )
            gate.consume_grant(
                txn, decision, actor=actor, details={"commit": commit, "requested": requested.id}
            )
            txn.append(
                action="promotion.completed",
                notes=notes or None,
                details={
                    "commit": commit,
                    "requested": requested.id,
                    "break_glass": grant,
                    "pushed": push,
                },
                **common,
            )
        where = " and pushed" if push else ""
        via = f" (break-glass {grant})" if grant else ""
        return result(
            COMPLETED,
            commit=commit,
            break_glass=grant,
            pushed=push,
            message=f"promoted {tag} to {stage} from {from_stage or 'none'}{via}: "
            f"{commit[:12]}{where}",
        )
