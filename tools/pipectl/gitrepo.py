"""Small Git plumbing for promotions: a per-repository lock, one-purpose commits with
trailers, reading trailers back, and a push that survives a concurrent push.

Everything runs the `git` binary (the user's config, hooks and credentials apply) with
`GIT_TERMINAL_PROMPT=0` so nothing ever waits for a password on a terminal.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipectl.errors import EXIT_FAILED, PipectlError

LOCK_NAME = "pipectl.lock"
DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_PUSH_ATTEMPTS = 3
_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_TRAILER_LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*: ")


class GitError(PipectlError):
    """A git command failed; the message names the command and git's own words."""

    exit_code = EXIT_FAILED


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
    if extra:
        env.update(extra)
    return env


def git(
    repo: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run `git -C repo args...`; with check, a non-zero exit raises GitError."""
    cmd = ["git", "-C", str(repo), *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {_first_line(proc)}")
    return proc


def _first_line(proc: subprocess.CompletedProcess[str]) -> str:
    for stream in (proc.stderr, proc.stdout):
        lines = [ln.strip() for ln in (stream or "").splitlines() if ln.strip()]
        # git prints hints after the real error; prefer a line that says what went wrong.
        for ln in lines:
            if ln.startswith(("fatal:", "error:", "!")):
                return ln
        if lines:
            return lines[0]
    return f"exit status {proc.returncode}"


def git_common_dir(repo: Path) -> Path:
    proc = git(repo, "rev-parse", "--git-common-dir", check=False)
    if proc.returncode != 0:
        raise GitError(f"{repo} is not a git repository")
    path = Path(proc.stdout.strip())
    return path if path.is_absolute() else (repo / path).resolve()


@contextmanager
def repo_lock(repo: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Exclusive lock on `<git dir>/pipectl.lock`: pipectl processes (and threads, each with
    its own descriptor) that change the repository run one at a time. Not re-entrant."""
    path = git_common_dir(repo) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise GitError(
                        f"another pipectl process holds {path} (waited {timeout:.0f}s)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "--verify", "HEAD^{commit}").stdout.strip()


def current_branch(repo: Path) -> str | None:
    """The checked-out branch name, or None on a detached HEAD."""
    proc = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def path_dirty(repo: Path, relpath: str) -> bool:
    """True if `relpath` differs from HEAD in the index or the working tree (or is untracked)."""
    out = git(repo, "status", "--porcelain=v1", "--untracked-files=all", "--", relpath).stdout
    return bool(out.strip())


def show(repo: Path, rev: str, relpath: str) -> str | None:
    """File contents at `rev`, or None when the path does not exist there."""
    proc = git(repo, "show", f"{rev}:{relpath}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def _one_line(value: str) -> str:
    return " ".join(value.split())


def format_message(subject: str, body: str, trailers: Sequence[tuple[str, str]]) -> str:
    """Subject, blank line, body (if any), blank line, `Key: value` trailers."""
    subject = _one_line(subject)
    if not subject:
        raise PipectlError("commit subject is empty")
    parts = [subject]
    body = body.strip("\n")
    if body.strip():
        parts.append(body)
    lines = []
    for key, value in trailers:
        if not _TRAILER_KEY.match(key):
            raise PipectlError(f"bad trailer key {key!r}")
        lines.append(f"{key}: {_one_line(value) or 'none'}")
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def commit_paths(
    repo: Path,
    paths: Sequence[str],
    subject: str,
    body: str = "",
    trailers: Sequence[tuple[str, str]] = (),
) -> str:
    """Commit exactly `paths` (their working-tree content), leaving anything else anyone has
    staged untouched; returns the new commit id."""
    if not paths:
        raise PipectlError("nothing to commit: no paths given")
    git(repo, "add", "--", *paths)
    message = format_message(subject, body, trailers)
    git(
        repo,
        "commit",
        "--quiet",
        "--cleanup=whitespace",
        "-F",
        "-",
        "--only",
        "--",
        *paths,
        input=message,
    )
    return head(repo)


@dataclass(frozen=True)
class LogEntry:
    commit: str
    time: str  # committer date, strict ISO 8601
    author: str  # "Name <email>"
    subject: str
    notes: str  # the body without the trailer block
    trailers: dict[str, str] = field(default_factory=dict)


_FIELDS = ("%H", "%cI", "%an <%ae>", "%s", "%b", "%(trailers:only,unfold)")


def log(
    repo: Path,
    relpaths: Sequence[str] = (),
    rev: str = "HEAD",
    max_count: int | None = None,
) -> list[LogEntry]:
    """Commits reachable from `rev` (newest first), optionally only those touching paths."""
    fmt = "%x1f".join(_FIELDS)
    args = ["log", "-z", f"--format={fmt}"]
    if max_count is not None:
        args.append(f"--max-count={max_count}")
    args.extend([rev, "--", *relpaths])
    if rev == "HEAD" and git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False).returncode:
        return []  # unborn branch: no commits yet
    proc = git(repo, *args, check=False)
    if proc.returncode != 0:
        raise GitError(f"git log failed: {_first_line(proc)}")
    entries = []
    for record in proc.stdout.split("\0"):
        if not record.strip():
            continue
        commit, when, author, subject, body, trailer_text = record.split("\x1f")
        trailers: dict[str, str] = {}
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                trailers[key.strip()] = value.strip()
        entries.append(
            LogEntry(
                commit=commit.strip(),
                time=when,
                author=author,
                subject=subject,
                notes=_strip_trailers(body, bool(trailers)),
                trailers=trailers,
            )
        )
    return entries


def _strip_trailers(body: str, has_trailers: bool) -> str:
    body = body.strip("\n")
    if not has_trailers:
        return body
    paragraphs = body.split("\n\n")
    last = [ln for ln in paragraphs[-1].splitlines() if ln.strip()]
    if last and all(_TRAILER_LINE.match(ln) or ln[:1] in " \t" for ln in last):
        paragraphs.pop()
    return "\n\n".join(paragraphs).strip("\n")


def upstream_remote(repo: Path, branch: str) -> str:
    """The remote `branch` tracks, else `origin`."""
    proc = git(repo, "config", "--get", f"branch.{branch}.remote", check=False)
    remote = proc.stdout.strip()
    return remote if proc.returncode == 0 and remote and remote != "." else "origin"


def _rebase_in_progress(repo: Path) -> bool:
    gd = Path(git(repo, "rev-parse", "--absolute-git-dir").stdout.strip())
    return (gd / "rebase-merge").exists() or (gd / "rebase-apply").exists()


def restore_branch(repo: Path, commit: str) -> None:
    """Move the checked-out branch back to `commit` (abort a rebase first); `--keep` refuses
    rather than overwrite someone's uncommitted change in a file it would have to reset."""
    if _rebase_in_progress(repo):
        git(repo, "rebase", "--abort", check=False)
    git(repo, "reset", "--quiet", "--keep", commit)


@dataclass(frozen=True)
class PushResult:
    commit: str  # HEAD as pushed (after any rebase)
    attempts: int
    rebased: bool


_NON_FF = ("non-fast-forward", "fetch first", "stale info")


def _push_rejection(proc: subprocess.CompletedProcess[str]) -> tuple[bool, str]:
    """(retryable, reason) from `git push --porcelain` output."""
    for line in proc.stdout.splitlines():
        if line.startswith("!"):
            reason = line.split("\t")[-1].strip()
            return any(word in reason for word in _NON_FF), reason
    return False, _first_line(proc)


def push_with_retry(
    repo: Path,
    remote: str,
    branch: str,
    restore_to: str,
    attempts: int = DEFAULT_PUSH_ATTEMPTS,
    timeout: float = 120.0,
) -> PushResult:
    """Push HEAD to `remote`'s `branch`. A non-fast-forward rejection fetches, rebases the
    local commits onto the remote branch and tries again, at most `attempts` pushes in all.
    On final failure the checked-out branch is reset to `restore_to` and GitError raised."""
    if attempts < 1:
        raise PipectlError("push attempts must be at least 1")
    rebased = False
    reason = ""
    for attempt in range(1, attempts + 1):
        proc = git(
            repo,
            "push",
            "--porcelain",
            remote,
            f"HEAD:refs/heads/{branch}",
            check=False,
            timeout=timeout,
        )
        if proc.returncode == 0:
            return PushResult(commit=head(repo), attempts=attempt, rebased=rebased)
        retryable, reason = _push_rejection(proc)
        if not retryable or attempt == attempts:
            break
        fetch = git(repo, "fetch", "--quiet", remote, branch, check=False, timeout=timeout)
        if fetch.returncode != 0:
            reason = f"fetch failed: {_first_line(fetch)}"
            break
        rebase = git(repo, "rebase", "--quiet", "--autostash", "FETCH_HEAD", check=False)
        if rebase.returncode != 0:
            reason = f"rebase onto {remote}/{branch} failed: {_first_line(rebase)}"
            break
        rebased = True
    try:
        restore_branch(repo, restore_to)
    except GitError as exc:
        raise GitError(
            f"push to {remote} {branch} failed ({reason}) and restoring the branch to "
            f"{restore_to[:12]} failed too: {exc}"
        ) from None
    raise GitError(
        f"push to {remote} {branch} failed after {attempt} attempt(s): {reason}; "
        f"local branch restored to {restore_to[:12]}"
    )
