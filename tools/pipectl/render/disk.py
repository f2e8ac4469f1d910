"""The rendered files on disk: which are stale, and writing them all or nothing."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pipectl.render.layout import RENDERED_DIRS, render_all

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig


def _extra_files(repo: Path, rendered: Mapping[str, str]) -> list[str]:
    extra = []
    for d in RENDERED_DIRS:
        base = repo / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file():
                rel = path.relative_to(repo).as_posix()
                if rel not in rendered:
                    extra.append(rel)
    return extra


def stale(config: PipelineConfig, repo: Path) -> list[str]:
    """Rendered files that are missing or differ on disk, and leftovers in rendered dirs."""
    repo = Path(repo)
    rendered = render_all(config, repo)
    out = []
    for rel, text in rendered.items():
        path = repo / rel
        try:
            if path.read_bytes() != text.encode("utf-8"):
                out.append(rel)
        except FileNotFoundError:
            out.append(rel)
    return sorted(out + _extra_files(repo, rendered))


def write(repo: Path, files: Mapping[str, str]) -> list[str]:
    """Write `files` (from render_all) and delete leftovers in rendered dirs; return what changed.

    All new contents go to temporary files first; only when every one is written are they
    moved into place, so a failure leaves the tree as it was.
    """
    repo = Path(repo)
    changed = []
    staged: list[tuple[Path, Path]] = []
    try:
        for rel, text in files.items():
            path = repo / rel
            data = text.encode("utf-8")
            try:
                if path.read_bytes() == data:
                    continue
            except FileNotFoundError:
                pass
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            staged.append((Path(tmp), path))
            changed.append(rel)
    except OSError:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for rel in _extra_files(repo, files):
        (repo / rel).unlink()
        changed.append(rel)
    return sorted(changed)
