"""End-to-end promotion stories through the real `pipectl` CLI (subprocesses) in real Git
repositories (copies of pipeline.yaml, apps/ and gitops/), with a bare remote for --push.

`promote` and `break-glass` have no clock option, so the stories that need the market CLOSED
run the CLI against a copy whose market timezone is one where it is closed right now (and for
the next hour): the rules under test do not depend on which zone that is. The story that needs
the market OPEN drives `pipectl.promotion.promote` / `grant_break_glass` with an explicit
`now` (and an audit clock at that instant, a session after every CLI-written entry) and
checks the result through the CLI (`gate --at`, `status`, `audit verify`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pipectl import gitrepo
from pipectl.audit import AuditLog
from pipectl.breakglass import grant_break_glass
from pipectl.config import load_config
from pipectl.context import Context
from pipectl.market import MarketCalendar
from pipectl.promotion import BLOCKED, COMPLETED, promote
from pipectl.render import render_all, write
from pipectl.timeutil import utc_now
from pipectl.values_file import read_text_exact, set_scalar_text, write_atomic
from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[1]
A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "b2c3d4e"
C = "c3d4e5f6"
D = "d4e5f6a7b8"
E = "e5f6a7b"
F = "f6a7b8c9"
ALICE = "alice@example.com"
BOB = "bob@example.com"
VALUES = {s: f"apps/stonks-oracle/{s}/values.yaml" for s in ("beta", "paper", "live")}
STAGES_YAML = "gitops/kargo/project/rendered/stages.yaml"
SWITCHES = "apps/stonks-oracle/stage-switches.json"
TRAILERS = ("Pipeline-Stage", "Image-Tag", "From-Stage", "Promoted-By", "Break-Glass", "Audit-Id")
PASSED = {"passed": 5, "failed": 0, "errors": 0, "skipped": 1, "exit_code": 0}
FAILED = {"passed": 4, "failed": 1, "errors": 0, "skipped": 0, "exit_code": 1}


# --- world ---------------------------------------------------------------------------------


def closed_zone(now: datetime) -> str:
    """A market timezone in which the (NYSE-calendar) market is closed from `now` for an hour:
    New York when it is closed there, else Tokyo (13-14 h ahead: never in 09:30-16:00 then)."""
    cfg = load_config(REPO_ROOT / "pipeline.yaml")
    for zone in ("America/New_York", "Asia/Tokyo"):
        market = type(cfg.market)(zone, cfg.market.open, cfg.market.close, cfg.market.calendar)
        cal = MarketCalendar(market)
        status = cal.status(now)
        if not status.open and status.next_open > now + timedelta(hours=1):
            return zone
    raise AssertionError("no closed market zone found")  # impossible: the zones are 13 h apart


class World:
    """A repository copy, its audit log, and the CLI run against both."""

    def __init__(self, tmp: Path, *, zone: str | None = None) -> None:
        self.tmp = tmp
        self.home = tmp / "home"  # no global git identity, like a CI machine
        self.home.mkdir()
        self.repo = tmp / "repo"
        self.repo.mkdir()
        shutil.copy2(REPO_ROOT / "pipeline.yaml", self.repo / "pipeline.yaml")
        for sub in ("apps", "gitops"):
            shutil.copytree(
                REPO_ROOT / sub, self.repo / sub, ignore=shutil.ignore_patterns("__pycache__")
            )
        (self.repo / ".gitignore").write_text(".pipectl/\n")
        if zone and zone != "America/New_York":
            path = self.repo / "pipeline.yaml"
            text = set_scalar_text(read_text_exact(path), ["market", "timezone"], zone, str(path))
            write_atomic(path, text)
            write(self.repo, render_all(load_config(path), self.repo))
        self.audit = tmp / "audit" / "audit.jsonl"
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ops@example.com")
        self.git("config", "user.name", "Ops")
        self.git("config", "commit.gpgsign", "false")
        self.git("add", "-A")
        self.git("commit", "-qm", "init")
        self.base = self.head()
        self.results = {}
        for name, body in (("passed", PASSED), ("failed", FAILED)):
            p = tmp / f"{name}.json"
            p.write_text(json.dumps(body))
            self.results[name] = p

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL_", "GIT_"))}
        env.update({"HOME": str(self.home), "GIT_CONFIG_NOSYSTEM": "1"})
        return env

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd or self.repo, capture_output=True, text=True, env=self.env()
        )
        assert proc.returncode == 0, f"git {args}: {proc.stderr}"
        return proc.stdout

    def head(self, cwd: Path | None = None) -> str:
        return self.git("rev-parse", "HEAD", cwd=cwd).strip()

    def cmd(self, *args: str, actor: str = ALICE, repo: Path | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pipectl.cli",
            "--repo",
            str(repo or self.repo),
            "--audit-log",
            str(self.audit),
            "--actor",
            actor,
            *args,
        ]

    def run(self, *args: str, rc: int = 0, actor: str = ALICE) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            self.cmd(*args, actor=actor),
            capture_output=True,
            text=True,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert proc.returncode == rc, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str, rc: int = 0, actor: str = ALICE):
        return json.loads(self.run(*args, "--json", rc=rc, actor=actor).stdout)

    # shortcuts
    def inttest(self, tag: str, result: str = "passed") -> None:
        self.run("inttest", "record", "--results", str(self.results[result]), "--tag", tag)

    def promote(self, stage: str, tag: str, rc: int = 0, notes: str = "") -> dict:
        args = ["promote", "--stage", stage, "--tag", tag]
        if notes:
            args += ["--notes", notes]
        return self.json(*args, rc=rc)

    def entries(self) -> list[dict]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def actions(self) -> list[str]:
        return [e["action"] for e in self.entries()]

    def tag(self, stage: str, rev: str = "HEAD") -> str:
        data = YAML(typ="safe").load(self.git("show", f"{rev}:{VALUES[stage]}"))
        return data["global"]["image"]["tag"]

    def commits(self, since: str | None = None) -> list[str]:
        out = self.git("rev-list", "--reverse", f"{since or self.base}..HEAD")
        return out.split()

    def trailers(self, commit: str) -> dict[str, str]:
        out = self.git("log", "-1", "--format=%(trailers:only,unfold)", commit)
        return dict(line.split(": ", 1) for line in out.splitlines() if line.strip())

    def changed_files(self, commit: str) -> list[str]:
        out = self.git("diff-tree", "--no-commit-id", "--name-only", "-r", commit)
        return out.split()

    def snapshot(self) -> tuple:
        """Everything a refused command must leave alone: log bytes, HEAD, worktree state."""
        log = self.audit.read_bytes() if self.audit.exists() else None
        values = tuple((self.repo / v).read_bytes() for v in VALUES.values())
        status = self.git("status", "--porcelain=v1", "--untracked-files=all")
        return log, self.head(), values, (self.repo / "pipeline.yaml").read_bytes(), status


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, zone=closed_zone(utc_now()))


# --- 1. happy path -------------------------------------------------------------------------


def test_story_happy_path_to_live(world: World) -> None:
    w = world
    w.inttest(A)
    assert w.promote("beta", A, notes="first build of the new signal")["status"] == "completed"
    res = w.promote("paper", A, notes="beta looked fine overnight")
    assert res["status"] == "completed" and res["from_stage"] == "beta"
    assert res["break_glass"] is None
    w.run("approve", "--stage", "live", "--tag", A, "--notes", "paper P&L checked", actor=BOB)
    res = w.promote("live", A, notes="going live after approval")
    assert res["status"] == "completed" and res["from_stage"] == "paper"

    doc = w.json("status")
    assert doc["market"]["open"] is False
    rows = {r["name"]: r for r in doc["stages"]}
    for stage, source, notes in (
        ("beta", "integration-test", "first build of the new signal"),
        ("paper", "beta", "beta looked fine overnight"),
        ("live", "paper", "going live after approval"),
    ):
        row = rows[stage]
        assert row["tag"] == A and row["enabled"] is True
        last = row["last_promotion"]
        assert last["by"] == ALICE and last["notes"] == notes and last["from_stage"] == source
        assert last["tag"] == A and last["break_glass"] is None and last["via"] == "pipectl"
        assert last["time"].startswith(str(utc_now().year))
    assert rows["integration-test"]["inttest"]["result"] == "passed"
    assert rows["ci"]["tag"] == A

    assert w.json("audit", "verify")["ok"] is True
    assert w.actions() == [
        "inttest.passed",
        *["promotion.requested", "promotion.completed"] * 2,
        "approval.granted",
        "promotion.requested",
        "promotion.completed",
    ]
    requested = [e for e in w.entries() if e["action"] == "promotion.requested"]
    completed = [e for e in w.entries() if e["action"] == "promotion.completed"]

    commits = w.commits()
    assert len(commits) == 3
    for commit, stage, source, req, done in zip(
        commits,
        ("beta", "paper", "live"),
        ("integration-test", "beta", "paper"),
        requested,
        completed,
        strict=True,
    ):
        assert w.git("log", "-1", "--format=%s", commit).strip() == f"promote({stage}): {A}"
        trailers = w.trailers(commit)
        assert tuple(trailers) == TRAILERS
        assert trailers == {
            "Pipeline-Stage": stage,
            "Image-Tag": A,
            "From-Stage": source,
            "Promoted-By": ALICE,
            "Break-Glass": "none",
            "Audit-Id": req["id"],
        }
        assert done["details"]["commit"] == commit
        assert w.changed_files(commit) == [VALUES[stage]]
        numstat = w.git("show", "--numstat", "--format=", commit).split()
        assert numstat == ["1", "1", VALUES[stage]]
        diff = w.git("show", "-U0", "--format=", commit).splitlines()
        assert [ln for ln in diff if ln[:1] in "+-" and not ln.startswith(("+++", "---"))] == [
            '-    tag: ""',
            f'+    tag: "{A}"',
        ]
    assert w.git("status", "--porcelain").strip() == ""


# --- 2. guards -----------------------------------------------------------------------------


def test_story_guards(world: World) -> None:
    w = world
    # beta: no integration-test result, and a failed one
    res = w.promote("beta", B, rc=3)
    assert res["status"] == "blocked"
    assert res["reasons"] == [f"{B} has no integration-test result (integration-test is enabled)"]
    w.inttest(C, "failed")
    res = w.promote("beta", C, rc=3)
    assert res["reasons"] == [f"{C} failed its latest integration test"]
    # a pass after a fail counts (the newest result wins), and a fail after a pass blocks
    w.inttest(D)
    w.inttest(D, "failed")
    assert w.promote("beta", D, rc=3)["reasons"] == [f"{D} failed its latest integration test"]
    assert w.commits() == [] and w.git("status", "--porcelain").strip() == ""

    w.inttest(A)
    w.inttest(B)
    w.promote("beta", A)
    # paper takes only what beta runs
    res = w.promote("paper", B, rc=3)
    assert res["reasons"] == [
        f"{B} is not what beta runs ({A}): promote it to beta first "
        "(beta is enabled and is not skipped)"
    ]
    w.promote("paper", A)
    # live: no approval; an approval for another tag or with blank notes does not count
    w.run("approve", "--stage", "live", "--tag", B, "--notes", "wrong tag", actor=BOB)
    res = w.promote("live", A, rc=3)
    assert res["reasons"] == [
        f"live needs an approval with notes for {A} "
        f"(pipectl approve --stage live --tag {A} --notes ...)"
    ]
    before = w.snapshot()
    proc = w.run("approve", "--stage", "live", "--tag", A, "--notes", "  ", rc=2, actor=BOB)
    assert proc.stderr.startswith("pipectl: error: --notes is empty")
    assert w.snapshot() == before
    # the same tag again: a no-op, no commit
    head = w.head()
    proc = w.run("promote", "--stage", "paper", "--tag", A)
    assert proc.stdout.strip() == f"paper already runs {A}; nothing to promote"
    assert w.head() == head and w.actions()[-2:] == ["promotion.requested", "promotion.noop"]
    assert len(w.commits()) == 2

    # bad input: one clear line, nothing written anywhere
    before = w.snapshot()
    for args, words in (
        (("promote", "--stage", "beta", "--tag", "A1B2C3D"), "'A1B2C3D' is not a git SHA"),
        (("promote", "--stage", "beta", "--tag", "abc123"), "'abc123' is not a git SHA"),
        (("promote", "--stage", "beta", "--tag", f"{B}\n"), "is not a git SHA"),
        (("promote", "--stage", "prod", "--tag", B), "prod"),
        (("promote", "--stage", "integration-test", "--tag", B), "does not deploy"),
        (("inttest", "record", "--results", str(w.results["passed"]), "--tag", "xyz"), "xyz"),
        (("inttest", "record", "--results", str(w.tmp / "nope.json"), "--tag", B), "not found"),
        (("approve", "--stage", "paper", "--tag", B, "--notes", "ok"), "no approval gate"),
        (("break-glass", "--stage", "paper", "--tag", B, "--justification", "x", "--yes"), "one"),
        (("break-glass", "--stage", "beta", "--tag", B, "--justification", "a b", "--yes"), "gate"),
        (("break-glass", "--stage", "live", "--tag", B, "--justification", "two words"), "--yes"),
        (("gate", "--stage", "paper", "--tag", B, "--at", "2026-03-10T15:00:00"), "offset"),
        (("stages", "disable", "prod"), "prod"),
    ):
        proc = w.run(*args, rc=2)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pipectl: error: "), (args, proc.stderr)
        assert words in lines[0], (args, lines[0])
        assert w.snapshot() == before, args
    assert w.json("audit", "verify")["ok"] is True


# --- 3. market hours + break-glass ----------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_story_market_hours_and_break_glass(tmp_path: Path) -> None:
    w = World(tmp_path)  # the real NYSE market in New York
    w.inttest(B)
    w.inttest(C)
    w.promote("beta", B)

    config = load_config(w.repo / "pipeline.yaml")
    cal = MarketCalendar(config.market)
    # A session that starts after every entry the CLI wrote above (the log's times only
    # move forward): ten minutes after its open.
    later = cal.status(utc_now() + timedelta(hours=1))
    opens = later.next_open if not later.open else cal.status(later.next_close).next_open
    t0 = opens + timedelta(minutes=10)
    session = cal.status(t0)
    assert session.open and session.seconds_to_close > 3 * 3600
    close = f"{session.next_close.astimezone(cal.tz):%H:%M} America/New_York"

    clock = Clock(t0)
    ctx = Context(repo=w.repo, audit_log_override=str(w.audit), actor_override=ALICE)
    ctx.audit = AuditLog(w.audit, clock=clock)

    def at(minutes: float) -> datetime:
        clock.now = t0 + timedelta(minutes=minutes)
        return clock.now

    def gate(stage: str, tag: str, when: datetime, rc: int) -> dict:
        return w.json("gate", "--stage", stage, "--tag", tag, "--at", when.isoformat(), rc=rc)

    # blocked while open: exit 3 and the reason names the close
    decision = gate("paper", B, at(0), rc=3)
    assert decision["market_open"] is True and decision["break_glass"] is None
    assert f"market is open until {close}" in decision["reasons"][0]
    head = w.head()
    res = promote(ctx, "paper", B, notes="try during hours", now=at(1))
    assert res.status == BLOCKED and f"market is open until {close}" in res.reasons[0]
    assert w.head() == head

    # a break-glass grant lets exactly one promotion through
    grant = grant_break_glass(
        ctx.audit, config, "paper", B, "order routing hotfix cannot wait", BOB, now=at(2)
    )
    allowed = gate("paper", B, at(3), rc=0)  # read-only: consumes nothing
    assert allowed["break_glass"] == grant.id
    assert gate("paper", C, at(3), rc=3)["break_glass"] is None  # bound to B
    assert gate("live", B, at(3), rc=3)["break_glass"] is None  # and to paper
    res = promote(ctx, "paper", B, notes="hotfix", now=at(4))
    assert res.status == COMPLETED and res.break_glass == grant.id
    assert w.trailers(res.commit)["Break-Glass"] == grant.id
    consumed = [e for e in w.entries() if e["action"] == "break-glass.consumed"]
    assert len(consumed) == 1
    assert consumed[0]["details"]["grant"] == grant.id
    assert consumed[0]["details"]["commit"] == res.commit
    after = [e["action"] for e in w.entries()][-2:]
    assert after == ["break-glass.consumed", "promotion.completed"]  # one transaction
    gate("paper", B, at(5), rc=3)  # used up

    # another tag in the same hour is blocked again; so is the used grant's tag elsewhere
    assert promote(ctx, "beta", C, now=at(6)).status == COMPLETED
    res = promote(ctx, "paper", C, now=at(7))
    assert res.status == BLOCKED and f"market is open until {close}" in res.reasons[0]

    # an expired grant does not help (validity 1h, expiry exclusive)
    grant2 = grant_break_glass(
        ctx.audit, config, "paper", C, "second hotfix for the same outage", BOB, now=at(8)
    )
    gate("paper", C, at(8 + 59), rc=0)
    res = promote(ctx, "paper", C, now=at(8 + 60))
    assert res.status == BLOCKED and f"market is open until {close}" in res.reasons[0]
    assert grant2.id not in json.dumps([e["details"] for e in w.entries()][-2:])
    assert w.tag("paper") == B

    assert w.json("audit", "verify")["ok"] is True
    row = {r["name"]: r for r in w.json("status", "--at", at(70).isoformat())["stages"]}["paper"]
    assert row["tag"] == B and row["last_promotion"]["break_glass"] == grant.id


# --- 4. stage switches ----------------------------------------------------------------------


def _kargo_sources(text: str) -> dict[str, object]:
    out = {}
    for doc in YAML(typ="safe").load_all(text):
        if doc and doc.get("kind") == "Stage":
            out[doc["metadata"]["name"]] = doc["spec"]["requestedFreight"][0]["sources"]
    return out


def test_story_stage_switches(world: World) -> None:
    w = world
    w.inttest(A)
    w.promote("beta", A)
    assert _kargo_sources((w.repo / STAGES_YAML).read_text())["live"] == {"stages": ["paper"]}

    # paper off: beta's tag goes straight to live, and Kargo's wiring changed in that commit
    w.run("stages", "disable", "paper")
    commit = w.head()
    files = w.changed_files(commit)
    assert "pipeline.yaml" in files and STAGES_YAML in files
    assert not any(f.startswith("apps/stonks-oracle/") and f.endswith("values.yaml") for f in files)
    assert _kargo_sources(w.git("show", f"{commit}:{STAGES_YAML}"))["live"] == {"stages": ["beta"]}
    w.run("approve", "--stage", "live", "--tag", A, "--notes", "paper is off today", actor=BOB)
    res = w.promote("live", A)
    assert res["status"] == "completed" and res["from_stage"] == "beta"
    assert w.trailers(w.head())["From-Stage"] == "beta"
    assert w.tag("paper") == "" and w.tag("live") == A

    # live off: nothing is promoted anywhere
    before = {s: w.tag(s) for s in VALUES}
    n = len(w.entries())
    w.run("stages", "disable", "live")
    assert not any("values.yaml" in f for f in w.changed_files(w.head()))
    assert {s: w.tag(s) for s in VALUES} == before
    assert [e["action"] for e in w.entries()[n:]] == ["stage.disabled"]
    w.run("approve", "--stage", "live", "--tag", C, "--notes", "for the disabled stage", actor=BOB)
    assert w.promote("live", C, rc=3)["reasons"][0] == "stage live is disabled"

    # both back on: live again needs what paper runs
    w.run("stages", "enable", "live")
    w.run("stages", "enable", "paper")
    assert _kargo_sources((w.repo / STAGES_YAML).read_text())["live"] == {"stages": ["paper"]}
    w.inttest(B)
    w.promote("beta", B)
    w.run("approve", "--stage", "live", "--tag", B, "--notes", "ready", actor=BOB)
    res = w.promote("live", B, rc=3)
    assert res["reasons"] == [
        f"{B} is not what paper runs (nothing): promote it to paper first "
        "(paper is enabled and is not skipped)"
    ]
    w.promote("paper", B)
    assert w.promote("live", B)["from_stage"] == "paper"

    # integration-test off: beta takes any well-formed tag (untested, even a failed one)
    w.run("stages", "disable", "integration-test")
    assert SWITCHES in w.changed_files(w.head())
    assert json.loads((w.repo / SWITCHES).read_text())["integration-test"] is False
    res = w.promote("beta", E)
    assert res["status"] == "completed" and res["from_stage"] == "ci"
    w.inttest(F, "failed")
    assert w.promote("beta", F)["status"] == "completed"
    w.run("promote", "--stage", "beta", "--tag", "E5F6A7B", rc=2)
    # back on: the gate is back for new tags
    w.run("stages", "enable", "integration-test")
    assert w.promote("beta", D, rc=3)["reasons"] == [
        f"{D} has no integration-test result (integration-test is enabled)"
    ]
    w.run("render", "--check")
    assert w.json("audit", "verify")["ok"] is True
    assert w.git("status", "--porcelain").strip() == ""


# --- 5. push and concurrency ------------------------------------------------------------------


def test_story_push_over_a_concurrent_push(world: World) -> None:
    w = world
    bare = w.tmp / "remote.git"
    w.git("init", "-q", "--bare", "-b", "main", str(bare))
    w.git("remote", "add", "origin", str(bare))
    w.git("push", "-q", "-u", "origin", "main")
    other = w.tmp / "other"
    w.git("clone", "-q", str(bare), str(other), cwd=w.tmp)
    w.git("config", "user.email", "other@example.com", cwd=other)
    w.git("config", "user.name", "Other", cwd=other)
    (other / "NOTES.md").write_text("someone else's change\n")
    w.git("add", "NOTES.md", cwd=other)
    w.git("commit", "-qm", "docs: a concurrent change", cwd=other)
    w.git("push", "-q", "origin", "main", cwd=other)
    theirs = w.head(cwd=other)

    w.inttest(A)
    res = w.json("promote", "--stage", "beta", "--tag", A, "--push")
    assert res["status"] == "completed" and res["pushed"] is True
    remote_head = w.git("rev-parse", "main", cwd=bare).strip()
    assert res["commit"] == remote_head == w.head()
    assert w.git("rev-parse", f"{remote_head}^", cwd=bare).strip() == theirs
    assert w.trailers(remote_head)["Image-Tag"] == A
    done = [e for e in w.entries() if e["action"] == "promotion.completed"]
    assert done[-1]["details"]["commit"] == remote_head

    # the other clone promotes beta too (Kargo, say): a rebase conflict restores our branch
    w.git("pull", "-q", "--rebase", "origin", "main", cwd=other)
    path = other / VALUES["beta"]
    path.write_text(path.read_text().replace(A, B))
    w.git("commit", "-qam", f"promote(beta): {B}", cwd=other)
    w.git("push", "-q", "origin", "main", cwd=other)
    w.inttest(C)
    head = w.head()
    res = w.json("promote", "--stage", "beta", "--tag", C, "--push", rc=1)
    assert res["status"] == "failed" and "rebase" in res["message"]
    assert w.head() == head and w.tag("beta") == A
    assert w.git("status", "--porcelain").strip() == ""
    assert w.actions()[-1] == "promotion.failed"
    assert w.git("rev-parse", "main", cwd=bare).strip() == w.head(cwd=other)
    assert w.json("audit", "verify")["ok"] is True


def test_story_concurrent_promotions_serialize(world: World) -> None:
    w = world
    for tag in (A, B, C):
        w.inttest(tag)
    w.promote("beta", A)
    w.promote("paper", A)
    w.run("approve", "--stage", "live", "--tag", A, "--notes", "ship it", actor=BOB)
    start = w.head()
    jobs = [("beta", B), ("beta", C), ("live", A)]
    procs = [
        subprocess.Popen(
            w.cmd("promote", "--stage", stage, "--tag", tag, "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=w.env(),
        )
        for stage, tag in jobs
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert [r["status"] for r in results] == ["completed"] * 3
    commits = w.commits(start)
    assert len(commits) == 3 and sorted(commits) == sorted(r["commit"] for r in results)
    for commit in commits:
        assert len(w.changed_files(commit)) == 1
    assert w.tag("live") == A and w.tag("beta") in (B, C)
    assert w.json("audit", "verify")["ok"] is True
    # requested and completed are written under the repository lock: never interleaved
    assert w.actions()[-6:] == ["promotion.requested", "promotion.completed"] * 3
    assert w.git("status", "--porcelain").strip() == ""


def _waits_for_lock(pid: int, lock: Path, timeout: float = 30.0) -> None:
    """Until process `pid` has the repository lock file open (it then waits for the lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock):
                        return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never opened {lock}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the lock wait")
def test_story_stage_enabled_while_a_promotion_waits_is_not_skipped(world: World) -> None:
    """`stages enable paper` commits while `promote --stage live` waits for the repository
    lock: the promotion must judge by the pipeline as it is once it holds the lock, so it may
    not take beta's tag past the now-enabled paper."""
    w = world
    w.inttest(A)
    w.promote("beta", A)
    w.run("stages", "disable", "paper")
    w.run("approve", "--stage", "live", "--tag", A, "--notes", "ship it", actor=BOB)
    lock = w.repo / ".git" / gitrepo.LOCK_NAME
    with gitrepo.repo_lock(w.repo):
        proc = subprocess.Popen(
            w.cmd("promote", "--stage", "live", "--tag", A, "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=w.env(),
        )
        _waits_for_lock(proc.pid, lock)
        # what `pipectl stages enable paper` commits (it would wait for this lock itself)
        path = w.repo / "pipeline.yaml"
        text = set_scalar_text(read_text_exact(path), ["stages", 3, "enabled"], True, str(path))
        write_atomic(path, text)
        write(w.repo, render_all(load_config(path), w.repo))
        w.git("add", "-A")
        w.git("commit", "-qm", "stages(paper): enable")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    res = json.loads(out)
    assert res["from_stage"] == "paper"
    assert res["reasons"] == [
        f"{A} is not what paper runs (nothing): promote it to paper first "
        "(paper is enabled and is not skipped)"
    ]
    assert w.tag("live") == ""
