"""pipectl promote: rules, gate, commits with trailers, audit, push/rebase/restore, concurrency.

Real Git repositories in temp dirs (copies of pipeline.yaml and apps/), a bare remote for
--push, real pipectl processes for the concurrency test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _gitfix import GIT_ENV, add_bare_remote, clone, commit_file, git, pipeline_repo
from pipectl import gitrepo
from pipectl.audit import AuditLog
from pipectl.breakglass import grant_break_glass, record_approval
from pipectl.cli import main
from pipectl.config import load_config
from pipectl.context import Context
from pipectl.errors import BadInput
from pipectl.promotion import promote, source_reasons
from pipectl.values_file import read_tag, set_scalar_text

OPEN = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tue 11:00 New York: market open
CLOSED = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # Tue 18:00 New York: closed
A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "b2c3d4e"
C = "c3d4e5f6"
VALUES = {s: f"apps/stonks-oracle/{s}/values.yaml" for s in ("beta", "paper", "live")}
ACTOR = "alice@example.com"


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = pipeline_repo(tmp / "repo")
        self.audit_path = tmp / "audit.jsonl"
        self.now = CLOSED
        self.log = AuditLog(self.audit_path, clock=lambda: self.now)
        self.ctx = Context(
            repo=self.repo, audit_log_override=str(self.audit_path), actor_override=ACTOR
        )
        self.ctx.audit = self.log  # the same clock for entries and the gate

    @property
    def config(self):
        return load_config(self.repo / "pipeline.yaml")

    def passed(self, *tags: str) -> None:
        for tag in tags:
            self.log.append(
                action="inttest.passed",
                actor="ci",
                stage="integration-test",
                tag=tag,
                details={
                    "passed": 3,
                    "failed": 0,
                    "errors": 0,
                    "skipped": 0,
                    "total": 3,
                    "exit_code": 0,
                },
            )

    def failed(self, tag: str) -> None:
        self.log.append(
            action="inttest.failed",
            actor="ci",
            stage="integration-test",
            tag=tag,
            details={
                "passed": 2,
                "failed": 1,
                "errors": 0,
                "skipped": 0,
                "total": 3,
                "exit_code": 1,
            },
        )

    def promote(self, stage: str, tag: str, at: datetime = CLOSED, **kw):
        self.now = at
        self.ctx.__dict__.pop("config", None)  # pipeline.yaml may have changed
        return promote(self.ctx, stage, tag, now=at, **kw)

    def tag(self, stage: str) -> str:
        return read_tag(self.repo / VALUES[stage], "global.image.tag")

    def actions(self) -> list[str]:
        return [e.action for e in self.log.entries()]

    def head(self) -> str:
        return gitrepo.head(self.repo)

    def switch(self, stage: str, enabled: bool) -> None:
        """Flip a stage in pipeline.yaml by hand (what `pipectl stages` commits)."""
        path = self.repo / "pipeline.yaml"
        names = [s.name for s in self.config.stages]
        text = set_scalar_text(
            path.read_text(), ["stages", names.index(stage), "enabled"], enabled, "p"
        )
        commit_file(self.repo, "pipeline.yaml", text, f"{stage} enabled={enabled}")


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_beta_needs_a_passed_inttest_then_commits_exactly_one_line(w: World) -> None:
    start = w.head()
    r = w.promote("beta", A)
    assert r.status == "blocked" and r.commit is None
    assert r.reasons == [f"{A} has no integration-test result (integration-test is enabled)"]
    w.failed(A)
    r = w.promote("beta", A)
    assert r.reasons == [f"{A} failed its latest integration test"]
    assert w.head() == start and w.tag("beta") == ""

    w.passed(A)
    r = w.promote("beta", A, notes="First beta of the new scorer.\n\nTicket: OPS-7")
    assert r.status == "completed", r.message
    assert r.from_stage == "integration-test" and r.break_glass is None
    assert r.commit == w.head() and w.tag("beta") == A
    # the commit: one file, one line, subject, body, trailers
    assert git(w.repo, "show", "--name-only", "--format=", "HEAD").split() == [VALUES["beta"]]
    assert git(w.repo, "diff", "--numstat", "HEAD~1", "HEAD").split()[:2] == ["1", "1"]
    [entry] = gitrepo.log(w.repo, max_count=1)
    assert entry.subject == f"promote(beta): {A}"
    assert entry.notes == "First beta of the new scorer.\n\nTicket: OPS-7"
    assert entry.trailers == {
        "Pipeline-Stage": "beta",
        "Image-Tag": A,
        "From-Stage": "integration-test",
        "Promoted-By": ACTOR,
        "Break-Glass": "none",
        "Audit-Id": r.audit_id,
    }
    assert git(w.repo, "status", "--porcelain").strip() == ""
    # the audit trail
    entries = w.log.entries()
    assert [e.action for e in entries] == [
        "promotion.requested",
        "promotion.blocked",
        "inttest.failed",
        "promotion.requested",
        "promotion.blocked",
        "inttest.passed",
        "promotion.requested",
        "promotion.completed",
    ]
    requested, completed = entries[-2:]
    assert requested.id == r.audit_id and requested.from_stage == "integration-test"
    assert completed.details["commit"] == r.commit
    assert completed.details["requested"] == requested.id
    assert completed.notes == "First beta of the new scorer.\n\nTicket: OPS-7"
    assert entries[1].details["reasons"] == [
        f"{A} has no integration-test result (integration-test is enabled)"
    ]
    assert w.log.verify().ok


def test_same_tag_is_a_noop(w: World) -> None:
    w.passed(A)
    first = w.promote("beta", A)
    again = w.promote("beta", A, at=OPEN)
    assert again.status == "noop" and again.commit is None
    assert again.message == f"beta already runs {A}; nothing to promote"
    assert w.head() == first.commit
    assert w.actions()[-2:] == ["promotion.requested", "promotion.noop"]


def test_same_tag_on_a_disabled_stage_is_blocked_not_a_noop(w: World) -> None:
    w.passed(A)
    w.promote("beta", A)
    w.switch("beta", False)
    head = w.head()
    r = w.promote("beta", A)
    assert r.status == "blocked" and r.reasons == ["stage beta is disabled"]
    assert w.head() == head and w.actions()[-1] == "promotion.blocked"


def test_paper_takes_only_what_beta_runs_and_respects_market_hours(w: World) -> None:
    w.passed(A, B)
    w.promote("beta", A)
    r = w.promote("paper", B)
    assert r.status == "blocked"
    assert r.reasons == [
        f"{B} is not what beta runs ({A}): promote it to beta first "
        "(beta is enabled and is not skipped)"
    ]
    r = w.promote("paper", A, at=OPEN)
    assert r.status == "blocked" and len(r.reasons) == 1
    assert r.reasons[0].startswith("market is open until 16:00 America/New_York")
    r = w.promote("paper", A, at=CLOSED)
    assert r.status == "completed" and r.from_stage == "beta"
    assert w.tag("paper") == A
    assert gitrepo.log(w.repo, max_count=1)[0].trailers["From-Stage"] == "beta"


def test_break_glass_is_consumed_in_the_same_transaction(w: World) -> None:
    w.passed(A)
    w.promote("beta", A)
    w.now = OPEN
    grant = grant_break_glass(
        w.log, w.config, "paper", A, "hotfix for a broken order router", "bob@example.com", OPEN
    )
    size_before = w.audit_path.stat().st_size
    r = w.promote("paper", A, at=OPEN, notes="router hotfix")
    assert r.status == "completed" and r.break_glass == grant.id
    assert gitrepo.log(w.repo, max_count=1)[0].trailers["Break-Glass"] == grant.id
    entries = w.log.entries()
    requested, consumed, completed = entries[-3:]
    assert [requested.action, consumed.action, completed.action] == [
        "promotion.requested",
        "break-glass.consumed",
        "promotion.completed",
    ]
    assert consumed.details["grant"] == grant.id
    assert consumed.details["commit"] == completed.details["commit"] == r.commit
    assert completed.details["break_glass"] == grant.id
    # requested was its own write; consumed + completed were ONE write: the bytes after
    # `requested` are exactly those two lines, appended together.
    tail = w.audit_path.read_bytes()[size_before:].splitlines()
    assert [json.loads(x)["action"] for x in tail] == [
        "promotion.requested",
        "break-glass.consumed",
        "promotion.completed",
    ]
    # The grant is used up: undo paper by hand, and the same promotion is blocked again.
    git(w.repo, "revert", "--no-edit", "HEAD")
    r = w.promote("paper", A, at=OPEN)
    assert r.status == "blocked" and r.reasons[0].startswith("market is open")
    assert w.log.verify().ok


def test_live_needs_an_approval_and_notes_do_not_approve(w: World) -> None:
    w.passed(A)
    w.promote("beta", A)
    w.promote("paper", A)
    r = w.promote("live", A, notes="I approve this myself")
    assert r.status == "blocked"
    assert r.reasons == [
        f"live needs an approval with notes for {A} "
        f"(pipectl approve --stage live --tag {A} --notes ...)"
    ]
    assert "approval.granted" not in w.actions()
    record_approval(w.log, w.config, "live", A, "reviewed the paper P&L", "carol@example.com")
    r = w.promote("live", A, notes="go")
    assert r.status == "completed" and r.from_stage == "paper" and w.tag("live") == A


def test_disabled_stage_is_skipped_and_reenabled_stage_gates_again(w: World) -> None:
    w.passed(A, B)
    w.switch("beta", False)
    r = w.promote("paper", A)
    assert r.status == "completed" and r.from_stage == "integration-test"
    assert w.tag("beta") == ""  # nothing went to the disabled stage
    r = w.promote("beta", B)
    assert r.status == "blocked" and r.reasons[0] == "stage beta is disabled"
    w.switch("beta", True)
    r = w.promote("paper", B)
    assert r.status == "blocked"
    assert r.reasons == [
        f"{B} is not what beta runs (nothing): promote it to beta first "
        "(beta is enabled and is not skipped)"
    ]
    assert w.promote("beta", B).status == "completed"
    assert w.promote("paper", B).status == "completed"


def test_without_integration_test_beta_takes_any_built_tag(w: World) -> None:
    w.switch("integration-test", False)
    r = w.promote("beta", C)  # no integration-test result at all
    assert r.status == "completed" and r.from_stage == "ci"
    w.switch("ci", False)
    r = w.promote("beta", B)
    assert r.status == "completed" and r.from_stage is None
    assert gitrepo.log(w.repo, max_count=1)[0].trailers["From-Stage"] == "none"
    w.failed(A)
    w.switch("integration-test", True)
    r = w.promote("beta", A)
    assert r.reasons == [f"{A} failed its latest integration test"]


def test_source_reasons_is_pure() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "pipeline.yaml")
    assert source_reasons(None, A, None, []) == []
    assert source_reasons(config.stage("ci"), A, None, []) == []
    assert source_reasons(config.stage("beta"), A, A, []) == []
    assert "runs (nothing)" in source_reasons(config.stage("beta"), A, "", [])[0]


@pytest.mark.parametrize(
    ("stage", "tag", "message"),
    [
        ("beta", "HEAD", "not a git SHA"),
        ("beta", "ABCDEF1", "not a git SHA"),
        ("beta", "abcdef1\n", "not a git SHA"),
        ("ci", A, "does not deploy"),
        ("integration-test", A, "does not deploy"),
        ("prod", A, "unknown stage"),
    ],
)
def test_bad_input_records_nothing(w: World, stage: str, tag: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        w.promote(stage, tag)
    assert not w.audit_path.exists()


def test_refuses_dirty_values_file_detached_head_and_wrong_push_branch(w: World) -> None:
    w.passed(A)
    path = w.repo / VALUES["beta"]
    path.write_text(path.read_text() + "# local tweak\n")
    with pytest.raises(BadInput, match="uncommitted changes"):
        w.promote("beta", A)
    git(w.repo, "add", VALUES["beta"])  # staged counts as dirty too
    with pytest.raises(BadInput, match="uncommitted changes"):
        w.promote("beta", A)
    git(w.repo, "reset", "-q", "--hard")
    git(w.repo, "checkout", "-q", "--detach")
    with pytest.raises(BadInput, match="detached"):
        w.promote("beta", A)
    git(w.repo, "checkout", "-q", "-b", "feature")
    with pytest.raises(BadInput, match="--push needs branch main"):
        w.promote("beta", A, push=True)
    assert w.actions() == ["inttest.passed"]


def test_failed_commit_restores_and_is_audited(w: World) -> None:
    w.passed(A)
    hook = w.repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'policy: no commits today' >&2\nexit 1\n")
    hook.chmod(0o755)
    start = w.head()
    r = w.promote("beta", A)
    assert r.status == "failed"
    assert w.head() == start and w.tag("beta") == ""
    assert git(w.repo, "status", "--porcelain").strip() == ""
    last = w.log.entries()[-1]
    assert last.action == "promotion.failed"
    assert "git commit" in last.details["error"]
    assert last.details["restored"] == "branch and values file restored"


def _remote(w: World) -> tuple[Path, Path]:
    bare = add_bare_remote(w.repo, w.tmp / "remote.git")
    other = clone(bare, w.tmp / "other")
    return bare, other


def test_push_rebases_over_a_concurrent_push(w: World) -> None:
    bare, other = _remote(w)
    w.passed(A)
    theirs = commit_file(other, "NOTES.md", "a concurrent change\n", "someone else")
    git(other, "push", "-q", "origin", "main")
    r = w.promote("beta", A, push=True)
    assert r.status == "completed" and r.pushed, r.message
    assert git(bare, "rev-parse", "main").strip() == r.commit == w.head()
    assert git(w.repo, "rev-parse", "HEAD~1").strip() == theirs  # rebased onto theirs
    completed = w.log.entries()[-1]
    assert completed.details["commit"] == r.commit and completed.details["pushed"] is True
    assert git(bare, "log", "-1", "--format=%s", "main").strip() == f"promote(beta): {A}"


def test_push_final_failure_restores_the_branch(w: World) -> None:
    bare, _ = _remote(w)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    w.passed(A)
    start = w.head()
    r = w.promote("beta", A, push=True)
    assert r.status == "failed" and r.commit is None
    assert "local branch restored" in r.message
    assert w.head() == start and w.tag("beta") == ""
    assert git(w.repo, "status", "--porcelain").strip() == ""
    assert git(bare, "rev-parse", "main").strip() == start
    failed = w.log.entries()[-1]
    assert (
        failed.action == "promotion.failed"
        and "push to origin main failed" in failed.details["error"]
    )
    assert "promotion.completed" not in w.actions()


def test_push_gives_up_after_bounded_retries(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _bare, other = _remote(w)
    w.passed(A)
    start = w.head()
    real_git = gitrepo.git
    pushes = []

    def racing(repo: Path, *args: str, **kw):  # someone else wins every race
        if args and args[0] == "push":
            pushes.append(1)
            commit_file(other, "NOTES.md", f"race {len(pushes)}\n", f"race {len(pushes)}")
            git(other, "push", "-q", "origin", "main")
        return real_git(repo, *args, **kw)

    monkeypatch.setattr(gitrepo, "git", racing)
    r = w.promote("beta", A, push=True)
    monkeypatch.undo()
    assert r.status == "failed" and len(pushes) == 3
    assert "after 3 attempt(s)" in r.message
    assert w.head() == start and w.tag("beta") == ""
    assert w.actions()[-1] == "promotion.failed"


def _pipectl_env(w: World) -> dict[str, str]:
    return {
        **os.environ,
        **GIT_ENV,
        "PIPECTL_AUDIT_LOG": str(w.audit_path),
        "PIPECTL_ACTOR": ACTOR,
    }


def test_two_processes_serialize_and_lose_nothing(w: World) -> None:
    bare, _ = _remote(w)
    real = AuditLog(w.audit_path)  # real clock: the subprocesses use it too
    for tag in (A, B):
        real.append(
            action="inttest.passed",
            actor="ci",
            stage="integration-test",
            tag=tag,
            details={"passed": 1, "failed": 0, "errors": 0, "exit_code": 0},
        )
    cmd = [
        sys.executable,
        "-m",
        "pipectl.cli",
        "--repo",
        str(w.repo),
        "promote",
        "--stage",
        "beta",
        "--push",
        "--json",
        "--tag",
    ]
    with gitrepo.repo_lock(w.repo):  # both start while the repository is locked
        procs = [
            subprocess.Popen(
                [*cmd, tag],
                env=_pipectl_env(w),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in (A, B)
        ]
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs)  # both are waiting for the lock
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert {r["status"] for r in results} == {"completed"}
    commits = {r["commit"] for r in results}
    subjects = git(w.repo, "log", "--format=%H %s", "-3").splitlines()
    assert {line.split()[0] for line in subjects[:2]} == commits
    assert git(bare, "rev-parse", "main").strip() == w.head()
    # the newer commit's tag is what beta runs; both tags were committed, one after the other
    assert {line.split(": ")[1] for line in subjects[:2]} == {A, B}
    assert w.tag("beta") == subjects[0].split(": ")[1]
    log = AuditLog(w.audit_path)
    assert log.verify().ok
    verify = subprocess.run(
        [sys.executable, "-m", "pipectl.cli", "--repo", str(w.repo), "audit", "verify"],
        env=_pipectl_env(w),
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    actions = [e.action for e in log.entries()]
    assert actions.count("promotion.requested") == 2
    assert actions.count("promotion.completed") == 2
    done = {e.details["commit"] for e in log.entries() if e.action == "promotion.completed"}
    assert done == commits


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_exit_codes(w: World, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_AUDIT_LOG", str(w.audit_path))
    monkeypatch.setenv("PIPECTL_ACTOR", "cli@example.com")
    base = ["--repo", str(w.repo), "promote", "--stage", "beta"]
    assert _run(*base, "--tag", A) == 3
    err = capsys.readouterr().err
    assert f"pipectl: blocked: {A} -> beta" in err and "no integration-test result" in err
    w.passed(A)
    assert _run(*base, "--tag", A, "--notes", "ship it") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"promoted {A} to beta from integration-test")
    assert _run(*base, "--tag", A, "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "noop"
    assert _run(*base, "--tag", "nope") == 2
    assert capsys.readouterr().err.startswith("pipectl: error: tag 'nope' is not a git SHA")
    hook = w.repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    w.passed(B)
    assert _run(*base, "--tag", B) == 1
    assert "failed" in capsys.readouterr().err
    entries = AuditLog(w.audit_path).entries()
    assert {e.actor for e in entries if e.action.startswith("promotion.")} == {"cli@example.com"}
