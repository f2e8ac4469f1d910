"""`pipectl stages enable|disable S`: flip one stage's `enabled:` in the repository's
pipeline.yaml (a byte-exact round-trip edit), re-render every file that depends on it, and
commit pipeline.yaml with the rendered files in ONE commit, then audit
`stage.enabled|stage.disabled`.

Always the repository's own `pipeline.yaml` is edited (the console runs with `--config`
pointing at a ConfigMap copy; the change reaches that copy through Git). Disabling or
enabling a stage changes configuration only: it never promotes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipectl import gitrepo
from pipectl.errors import BadInput, PipectlError
from pipectl.values_file import read_text_exact, set_scalar_text, write_atomic

PIPELINE_FILE = "pipeline.yaml"


@dataclass(frozen=True)
class StageChange:
    status: str  # "changed" | "noop"
    stage: str
    enabled: bool
    commit: str | None = None
    audit_id: str | None = None
    files: list[str] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "stage": self.stage,
            "enabled": self.enabled,
            "commit": self.commit,
            "audit_id": self.audit_id,
            "files": self.files,
            "message": self.message,
        }


def _renderer():
    """`pipectl.render.render_all`, or a loud error: a stage switch without re-rendering
    would leave Kargo/Argo CD/CI wiring that disagrees with pipeline.yaml."""
    try:
        from pipectl.render import render_all
    except ImportError as exc:
        raise PipectlError(
            f"cannot re-render the stage-dependent files (pipectl.render: {exc}); "
            "nothing was changed"
        ) from None
    return render_all


def _stage_index(text: str, name: str, origin: str) -> int:
    from pipectl.values_file import get_value

    stages = get_value(text, ["stages"], origin)
    for i, item in enumerate(stages or []):
        if isinstance(item, dict) and item.get("name") == name:
            return i
    raise BadInput(f"unknown stage {name!r}")


def set_enabled(ctx, name: str, enabled: bool, push: bool = False) -> StageChange:
    """Enable or disable stage `name`; see the module docstring."""
    from pipectl.config import load_config

    repo: Path = ctx.repo
    path = repo / PIPELINE_FILE
    render_all = _renderer()
    verb = "enable" if enabled else "disable"
    with gitrepo.repo_lock(repo):
        config = load_config(path)
        stage = config.stage(name)
        if stage.enabled == enabled:
            return StageChange(
                status="noop",
                stage=name,
                enabled=enabled,
                message=f"stage {name} is already {verb}d; nothing to do",
            )
        branch = gitrepo.current_branch(repo)
        if branch is None:
            raise BadInput("HEAD is detached; check out a branch before changing stages")
        if push and branch != config.branch:
            raise BadInput(f"--push needs branch {config.branch} checked out (on {branch})")
        if gitrepo.path_dirty(repo, PIPELINE_FILE):
            raise BadInput(f"{PIPELINE_FILE} has uncommitted changes; commit or revert them first")

        old_text = read_text_exact(path)
        idx = _stage_index(old_text, name, str(path))
        new_text = set_scalar_text(old_text, ["stages", idx, "enabled"], enabled, str(path))
        start = gitrepo.head(repo)
        written: dict[Path, str | None] = {}  # original contents, None = did not exist
        try:
            write_atomic(path, new_text)
            written[path] = old_text
            new_config = load_config(path)
            rendered = render_all(new_config, repo)
            changed = []
            for rel, text in sorted(rendered.items()):
                target = repo / rel
                before = read_text_exact(target) if target.exists() else None
                if before == text:
                    continue
                if gitrepo.path_dirty(repo, rel):
                    raise BadInput(f"{rel} has uncommitted changes; commit or revert them first")
                changed.append(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                written[target] = before
                write_atomic(target, text)
            files = [PIPELINE_FILE, *changed]
            actor = ctx.actor
            commit = gitrepo.commit_paths(
                repo,
                files,
                f"stages({name}): {verb}",
                "",
                [("Pipeline-Stage", name), ("Changed-By", actor)],
            )
        except BaseException:
            for target, before in written.items():
                if before is None:
                    target.unlink(missing_ok=True)
                else:
                    write_atomic(target, before)
            raise
        if push:
            remote = gitrepo.upstream_remote(repo, branch)
            commit = gitrepo.push_with_retry(repo, remote, branch, restore_to=start).commit
        entry = ctx.audit.append(
            action="stage.enabled" if enabled else "stage.disabled",
            actor=actor,
            stage=name,
            details={"commit": commit, "files": files, "pushed": push},
        )
    return StageChange(
        status="changed",
        stage=name,
        enabled=enabled,
        commit=commit,
        audit_id=entry.id,
        files=files,
        message=f"stage {name} {verb}d in {commit[:12]} ({len(files)} file(s))",
    )
