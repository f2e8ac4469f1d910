"""Real Git repositories in temp dirs for the promotion/stages/status tests (not collected)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def init_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "author@example.com")
    git(path, "config", "user.name", "Test Author")
    git(path, "config", "commit.gpgsign", "false")
    for rel, text in (files or {"README": "x\n"}).items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "init")
    return path


def pipeline_repo(path: Path) -> Path:
    """A repository holding copies of this project's pipeline.yaml and apps/ tree."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "pipeline.yaml", path / "pipeline.yaml")
    shutil.copytree(REPO_ROOT / "apps", path / "apps")
    (path / ".gitignore").write_text(".pipectl/\n")
    init_repo(path, files={})
    return path


def add_bare_remote(repo: Path, bare: Path) -> Path:
    git(bare.parent, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "-u", "origin", "main")
    return bare


def clone(bare: Path, path: Path) -> Path:
    git(bare.parent, "clone", "-q", str(bare), str(path))
    git(path, "config", "user.email", "other@example.com")
    git(path, "config", "user.name", "Other")
    return path


def commit_file(repo: Path, rel: str, text: str, message: str) -> str:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()
