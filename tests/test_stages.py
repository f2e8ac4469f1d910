"""pipectl stages: list, enable/disable as one commit of pipeline.yaml + rendered files."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from _gitfix import add_bare_remote, clone, commit_file, git, pipeline_repo
from pipectl import gitrepo
from pipectl.audit import AuditLog
from pipectl.cli import main
from pipectl.config import load_config
from pipectl.context import Context
from pipectl.errors import BadInput, PipectlError
from pipectl.stages_edit import set_enabled

SWITCHES = "apps/stonks-oracle/stage-switches.json"


def _switches(config, repo) -> dict[str, str]:
    body = {s.name: s.enabled for s in config.stages}
    return {SWITCHES: json.dumps(body, indent=2) + "\n", "gitops/static.txt": "static\n"}


@pytest.fixture
def renderer(monkeypatch: pytest.MonkeyPatch):
    """A stand-in for pipectl.render with the same contract (render_all(config, repo)):
    these tests are about committing what a renderer returns, in one commit."""
    mod = types.ModuleType("pipectl.render")
    mod.render_all = _switches  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipectl.render", mod)
    return mod


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return pipeline_repo(tmp_path / "repo")


def _ctx(repo: Path, tmp: Path) -> Context:
    return Context(
        repo=repo, audit_log_override=str(tmp / "audit.jsonl"), actor_override="ops@example.com"
    )


def test_disable_then_enable(repo: Path, tmp_path: Path, renderer) -> None:
    ctx = _ctx(repo, tmp_path)
    before = (repo / "pipeline.yaml").read_text()
    change = set_enabled(ctx, "paper", False)
    assert change.status == "changed" and change.files == [
        "pipeline.yaml",
        SWITCHES,
        "gitops/static.txt",
    ]
    # one commit with exactly those files
    assert git(repo, "log", "-1", "--format=%s").strip() == "stages(paper): disable"
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(
        change.files
    )
    assert git(repo, "status", "--porcelain").strip() == ""
    # byte-exact edit: exactly one changed line in pipeline.yaml
    diff = git(repo, "diff", "-U0", "HEAD~1", "HEAD", "--", "pipeline.yaml")
    changed = [
        ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    ]
    assert changed == ["-    enabled: true", "+    enabled: false"]
    config = load_config(repo / "pipeline.yaml")
    assert not config.stage("paper").enabled
    assert config.previous_enabled("live").name == "beta"
    assert json.loads((repo / SWITCHES).read_text())["paper"] is False
    [entry] = AuditLog(tmp_path / "audit.jsonl").entries()
    assert entry.action == "stage.disabled" and entry.stage == "paper"
    assert entry.actor == "ops@example.com"
    assert entry.details["commit"] == change.commit == gitrepo.head(repo)

    again = set_enabled(ctx, "paper", False)
    assert again.status == "noop" and "already disabled" in again.message
    assert gitrepo.head(repo) == change.commit

    back = set_enabled(ctx, "paper", True)
    assert back.status == "changed" and back.files == ["pipeline.yaml", SWITCHES]
    assert (repo / "pipeline.yaml").read_text() == before
    log = AuditLog(tmp_path / "audit.jsonl")
    assert [e.action for e in log.entries()] == ["stage.disabled", "stage.enabled"]
    assert log.verify().ok


@pytest.mark.parametrize("stage", ["ci", "integration-test", "live"])
def test_any_stage_can_be_disabled_and_nothing_is_promoted(
    repo: Path, tmp_path: Path, renderer, stage: str
) -> None:
    values = {
        s: (repo / f"apps/stonks-oracle/{s}/values.yaml").read_bytes()
        for s in ("beta", "paper", "live")
    }
    change = set_enabled(_ctx(repo, tmp_path), stage, False)
    assert change.status == "changed"
    assert not load_config(repo / "pipeline.yaml").stage(stage).enabled
    for s, data in values.items():
        assert (repo / f"apps/stonks-oracle/{s}/values.yaml").read_bytes() == data
    touched = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert not any(p.endswith("values.yaml") for p in touched)
    actions = [e.action for e in AuditLog(tmp_path / "audit.jsonl").entries()]
    assert actions == ["stage.disabled"]


def test_missing_renderer_fails_loudly_and_changes_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pipectl.render", None)  # import raises ImportError
    head = gitrepo.head(repo)
    with pytest.raises(PipectlError, match="cannot re-render"):
        set_enabled(_ctx(repo, tmp_path), "paper", False)
    assert gitrepo.head(repo) == head
    assert git(repo, "status", "--porcelain").strip() == ""
    assert not (tmp_path / "audit.jsonl").exists()


def test_render_failure_restores_everything(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(config, repo_path):
        raise PipectlError("renderer exploded")

    mod = types.ModuleType("pipectl.render")
    mod.render_all = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipectl.render", mod)
    head = gitrepo.head(repo)
    with pytest.raises(PipectlError, match="renderer exploded"):
        set_enabled(_ctx(repo, tmp_path), "beta", False)
    assert gitrepo.head(repo) == head
    assert git(repo, "status", "--porcelain").strip() == ""


def test_refusals(repo: Path, tmp_path: Path, renderer) -> None:
    ctx = _ctx(repo, tmp_path)
    with pytest.raises(BadInput, match="unknown stage"):
        set_enabled(ctx, "prod", False)
    (repo / "pipeline.yaml").write_text((repo / "pipeline.yaml").read_text() + "# local\n")
    with pytest.raises(BadInput, match="uncommitted changes"):
        set_enabled(ctx, "beta", False)
    git(repo, "checkout", "-q", "--", "pipeline.yaml")
    # a hand-edited rendered file is not overwritten
    commit_file(repo, SWITCHES, "{}\n", "old switches")
    (repo / SWITCHES).write_text('{"hand": "edit"}\n')
    head = gitrepo.head(repo)
    with pytest.raises(BadInput, match=f"{SWITCHES} has uncommitted changes"):
        set_enabled(ctx, "beta", False)
    assert gitrepo.head(repo) == head
    assert (repo / SWITCHES).read_text() == '{"hand": "edit"}\n'
    assert git(repo, "diff", "--name-only").split() == [SWITCHES]
    git(repo, "checkout", "-q", "--", SWITCHES)
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(BadInput, match="detached"):
        set_enabled(ctx, "beta", False)
    assert not (tmp_path / "audit.jsonl").exists()


def test_push_rebases_over_a_concurrent_push(repo: Path, tmp_path: Path, renderer) -> None:
    bare = add_bare_remote(repo, tmp_path / "remote.git")
    other = clone(bare, tmp_path / "other")
    commit_file(other, "NOTES.md", "someone else\n", "notes")
    git(other, "push", "-q", "origin", "main")
    change = set_enabled(_ctx(repo, tmp_path), "live", False, push=True)
    assert git(bare, "rev-parse", "main").strip() == change.commit == gitrepo.head(repo)
    assert git(bare, "log", "-1", "--format=%s", "main").strip() == "stages(live): disable"
    assert (repo / "NOTES.md").exists()
    [entry] = AuditLog(tmp_path / "audit.jsonl").entries()
    assert entry.details["commit"] == change.commit and entry.details["pushed"] is True


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli(repo: Path, tmp_path: Path, renderer, capsys) -> None:
    common = ["--repo", str(repo), "--audit-log", str(tmp_path / "a.jsonl"), "--actor", "me"]
    assert _run(*common, "stages", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["enabled"], r["source"]) for r in rows] == [
        ("ci", True, None),
        ("integration-test", True, "ci"),
        ("beta", True, "integration-test"),
        ("paper", True, "beta"),
        ("live", True, "paper"),
    ]
    assert rows[4]["gates"] == ["market_hours", "approval"]
    assert _run(*common, "stages", "disable", "integration-test") == 0
    assert "stage integration-test disabled" in capsys.readouterr().out
    assert _run(*common, "stages", "list") == 0
    out = capsys.readouterr().out
    assert "integration-test  no" in out
    assert "beta              yes      ci" in out
    assert _run(*common, "stages", "enable", "integration-test", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "changed"
    assert _run(*common, "stages", "enable", "nope") == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err


def test_with_the_real_renderer_the_commit_leaves_nothing_stale(tmp_path: Path) -> None:
    """pipectl.render itself: copies of pipeline.yaml, apps/ and gitops/ in a temp repo."""
    import shutil

    from _gitfix import REPO_ROOT, init_repo
    from pipectl.render import stale

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(REPO_ROOT / "pipeline.yaml", repo / "pipeline.yaml")
    shutil.copytree(REPO_ROOT / "apps", repo / "apps")
    shutil.copytree(REPO_ROOT / "gitops", repo / "gitops")
    init_repo(repo, files={})
    assert stale(load_config(repo / "pipeline.yaml"), repo) == []
    change = set_enabled(_ctx(repo, tmp_path), "paper", False)
    files = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == sorted(change.files)
    assert "pipeline.yaml" in files and SWITCHES in files
    assert "gitops/kargo/project/rendered/stages.yaml" in files  # live now sources from beta
    assert stale(load_config(repo / "pipeline.yaml"), repo) == []
    assert git(repo, "status", "--porcelain").strip() == ""
    assert json.loads((repo / SWITCHES).read_text())["paper"] is False
    set_enabled(_ctx(repo, tmp_path), "paper", True)
    assert stale(load_config(repo / "pipeline.yaml"), repo) == []
    assert git(repo, "diff", "HEAD~2", "HEAD", "--stat").strip() == ""  # back where it was
