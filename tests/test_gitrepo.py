"""gitrepo: lock, single-path commits with trailers, trailer parsing, push with rebase/retry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from _gitfix import add_bare_remote, clone, commit_file, git, init_repo
from pipectl import gitrepo
from pipectl.gitrepo import GitError


def test_commit_paths_commits_only_the_named_path(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"a.txt": "a\n", "b.txt": "b\n"})
    (repo / "a.txt").write_text("a2\n")
    (repo / "b.txt").write_text("b2\n")
    git(repo, "add", "b.txt")  # someone else's staged change must stay staged, uncommitted
    sha = gitrepo.commit_paths(
        repo,
        ["a.txt"],
        "promote(paper): abc1234",
        "Why: looks good.\nSecond line.",
        [("Pipeline-Stage", "paper"), ("Break-Glass", "")],
    )
    assert git(repo, "show", "--name-only", "--format=", sha).split() == ["a.txt"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["b.txt"]
    [entry] = gitrepo.log(repo, ["a.txt"], max_count=1)
    assert entry.commit == sha
    assert entry.subject == "promote(paper): abc1234"
    assert entry.notes == "Why: looks good.\nSecond line."
    assert entry.trailers == {"Pipeline-Stage": "paper", "Break-Glass": "none"}
    assert entry.author == "Test Author <author@example.com>"


def test_new_file_and_several_paths(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("a2\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "new.txt").write_text("n\n")
    sha = gitrepo.commit_paths(repo, ["a.txt", "sub/new.txt"], "two", "")
    assert sorted(git(repo, "show", "--name-only", "--format=", sha).split()) == [
        "a.txt",
        "sub/new.txt",
    ]
    [entry] = gitrepo.log(repo, max_count=1)
    assert entry.notes == "" and entry.trailers == {}


def test_message_format_and_trailer_hygiene() -> None:
    msg = gitrepo.format_message(
        "  promote(live):\n abc ", "\nnotes\n\n", [("Promoted-By", "a\nb"), ("X", "1")]
    )
    assert msg == "promote(live): abc\n\nnotes\n\nPromoted-By: a b\nX: 1\n"
    with pytest.raises(gitrepo.PipectlError):
        gitrepo.format_message("s", "", [("Bad Key", "v")])
    with pytest.raises(gitrepo.PipectlError):
        gitrepo.format_message(" \n", "", [])


def test_notes_that_look_like_trailers_survive(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("b\n")
    gitrepo.commit_paths(repo, ["a.txt"], "s", "Ticket: OPS-1\n# not a comment", [("K", "v")])
    [entry] = gitrepo.log(repo, max_count=1)
    assert entry.notes == "Ticket: OPS-1\n# not a comment"
    assert entry.trailers == {"K": "v"}


def test_log_on_empty_repo_and_branch_state(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert gitrepo.log(repo) == []
    repo2 = init_repo(tmp_path / "r")
    assert gitrepo.current_branch(repo2) == "main"
    git(repo2, "checkout", "-q", "--detach")
    assert gitrepo.current_branch(repo2) is None
    with pytest.raises(GitError, match="not a git repository"):
        gitrepo.git_common_dir(tmp_path)


def test_path_dirty_and_show(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"a.txt": "a\n"})
    assert not gitrepo.path_dirty(repo, "a.txt")
    (repo / "a.txt").write_text("changed\n")
    assert gitrepo.path_dirty(repo, "a.txt")
    git(repo, "add", "a.txt")
    assert gitrepo.path_dirty(repo, "a.txt")  # staged counts too
    assert gitrepo.show(repo, "HEAD", "a.txt") == "a\n"
    assert gitrepo.show(repo, "HEAD", "nope.txt") is None


_HOLDER = """
import sys, time
from pathlib import Path
from pipectl.gitrepo import repo_lock
with repo_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_repo_lock_serializes_processes(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(repo), "0.6"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(GitError, match="another pipectl process holds"),
            gitrepo.repo_lock(repo, timeout=0.1),
        ):
            pass
        start = time.monotonic()
        with gitrepo.repo_lock(repo, timeout=10):
            waited = time.monotonic() - start
        assert waited > 0.2  # it had to wait for the holder to finish
    finally:
        holder.wait(timeout=10)
    assert (repo / ".git" / "pipectl.lock").exists()


def _remote_setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo = init_repo(tmp_path / "local", {"a.txt": "a\n", "c.txt": "c\n", "other.txt": "o\n"})
    bare = add_bare_remote(repo, tmp_path / "remote.git")
    other = clone(bare, tmp_path / "other")
    return repo, bare, other


def test_push_fast_forward(tmp_path: Path) -> None:
    repo, bare, _ = _remote_setup(tmp_path)
    before = gitrepo.head(repo)
    sha = commit_file(repo, "a.txt", "a2\n", "mine")
    result = gitrepo.push_with_retry(repo, "origin", "main", restore_to=before)
    assert result == gitrepo.PushResult(commit=sha, attempts=1, rebased=False)
    assert git(bare, "rev-parse", "main").strip() == sha


def test_push_rebases_over_a_concurrent_push(tmp_path: Path) -> None:
    repo, bare, other = _remote_setup(tmp_path)
    before = gitrepo.head(repo)
    theirs = commit_file(other, "other.txt", "o2\n", "theirs")
    git(other, "push", "-q", "origin", "main")
    (repo / "untracked-scratch").write_text("keep me\n")
    (repo / "c.txt").write_text("uncommitted work\n")  # survives the rebase (autostash)
    mine = commit_file(repo, "a.txt", "a2\n", "mine")
    result = gitrepo.push_with_retry(repo, "origin", "main", restore_to=before)
    assert result.attempts == 2 and result.rebased
    assert result.commit != mine  # rebased onto theirs
    assert git(bare, "rev-parse", "main").strip() == result.commit
    assert git(repo, "rev-parse", "HEAD~1").strip() == theirs
    assert (repo / "other.txt").read_text() == "o2\n"
    assert (repo / "untracked-scratch").read_text() == "keep me\n"
    assert (repo / "c.txt").read_text() == "uncommitted work\n"


def test_push_gives_up_after_bounded_attempts_and_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, bare, other = _remote_setup(tmp_path)
    before = gitrepo.head(repo)
    commit_file(repo, "a.txt", "a2\n", "mine")
    pushes = []
    real_git = gitrepo.git

    def racing_git(r: Path, *args: str, **kw):  # another writer wins every race
        if args and args[0] == "push":
            pushes.append(1)
            commit_file(other, "other.txt", f"o{len(pushes)}\n", f"theirs {len(pushes)}")
            git(other, "push", "-q", "origin", "main")
        return real_git(r, *args, **kw)

    monkeypatch.setattr(gitrepo, "git", racing_git)
    with pytest.raises(GitError, match=r"after 3 attempt\(s\).*restored"):
        gitrepo.push_with_retry(repo, "origin", "main", restore_to=before, attempts=3)
    assert len(pushes) == 3
    monkeypatch.undo()
    assert gitrepo.head(repo) == before
    assert gitrepo.current_branch(repo) == "main"
    assert (repo / "a.txt").read_text() == "a\n"
    assert not (repo / ".git" / "rebase-merge").exists()
    assert git(bare, "log", "--format=%s", "main").split("\n")[0] == "theirs 3"


def test_push_conflict_restores(tmp_path: Path) -> None:
    repo, _bare, other = _remote_setup(tmp_path)
    before = gitrepo.head(repo)
    commit_file(other, "a.txt", "theirs\n", "theirs")
    git(other, "push", "-q", "origin", "main")
    commit_file(repo, "a.txt", "mine\n", "mine")
    with pytest.raises(GitError, match="rebase onto origin/main failed"):
        gitrepo.push_with_retry(repo, "origin", "main", restore_to=before)
    assert gitrepo.head(repo) == before
    assert (repo / "a.txt").read_text() == "a\n"
    assert gitrepo.current_branch(repo) == "main"


def test_push_rejected_by_hook_is_final(tmp_path: Path) -> None:
    repo, bare, _ = _remote_setup(tmp_path)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = gitrepo.head(repo)
    commit_file(repo, "a.txt", "a2\n", "mine")
    with pytest.raises(GitError, match=r"after 1 attempt\(s\)"):
        gitrepo.push_with_retry(repo, "origin", "main", restore_to=before)
    assert gitrepo.head(repo) == before


def test_upstream_remote(tmp_path: Path) -> None:
    repo, _, _ = _remote_setup(tmp_path)
    assert gitrepo.upstream_remote(repo, "main") == "origin"
    git(repo, "remote", "add", "mirror", str(tmp_path / "remote.git"))
    git(repo, "config", "branch.main.remote", "mirror")
    assert gitrepo.upstream_remote(repo, "main") == "mirror"
    assert gitrepo.upstream_remote(repo, "nobranch") == "origin"
