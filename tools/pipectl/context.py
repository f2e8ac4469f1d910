"""Per-invocation settings: where the repository, the config and the audit log are, and who acts.

Everything is resolved lazily so a command only pays for what it touches.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipectl.audit import AuditLog
    from pipectl.config import PipelineConfig


@dataclass
class Context:
    repo: Path
    config_path: Path | None = None
    audit_log_override: str | None = None
    actor_override: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def config(self) -> PipelineConfig:
        from pipectl.config import load_config

        return load_config(self.config_path or self.repo / "pipeline.yaml")

    @cached_property
    def audit_path(self) -> Path:
        raw = self.audit_log_override or self.env.get("PIPECTL_AUDIT_LOG") or self.config.audit_log
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.repo / path

    @cached_property
    def audit(self) -> AuditLog:
        from pipectl.audit import AuditLog

        return AuditLog(self.audit_path)

    @cached_property
    def actor(self) -> str:
        return resolve_actor(self.actor_override, self.env, self.repo)


def resolve_actor(explicit: str | None, env: dict[str, str], repo: Path) -> str:
    """--actor, else PIPECTL_ACTOR, else git user.email, else the OS user."""
    for candidate in (explicit, env.get("PIPECTL_ACTOR")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "config", "user.email"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
