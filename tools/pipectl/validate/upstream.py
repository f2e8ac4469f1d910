"""The pinned upstream files (CRDs, Kargo step-config schemas), verified before any use.

The mirror directory (CI: ../shared/upstream; the flake: a store path fetched by URL + hash)
holds `<component>-<version>/...` and a SHA256SUMS listing every file. Nothing is read that is
not listed there, and nothing listed is used before its hash matches.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipectl.errors import BadInput
from pipectl.validate.docs import Failure

SUMS = "SHA256SUMS"


def default_upstream_dir(repo: Path) -> Path:
    env = os.environ.get("PIPECTL_UPSTREAM_DIR")
    return Path(env) if env else repo.parent / "shared" / "upstream"


def component_dirs(versions: Mapping[str, str]) -> dict[str, str]:
    """Upstream directory per component, named by the pinned versions."""
    return {
        "argocd": f"argo-cd-v{versions['ARGOCD_VERSION']}",
        "kargo": f"kargo-v{versions['KARGO_VERSION']}",
        "arc": f"arc-{versions['ARC_VERSION']}",
    }


@dataclass(frozen=True)
class Upstream:
    root: Path
    sums: dict[str, str]  # relative path -> sha256, all verified
    components: dict[str, str]

    def files(self, component: str, suffix: str = "", under: str = "") -> list[str]:
        prefix = self.components[component] + "/" + (under.strip("/") + "/" if under else "")
        return sorted(
            p
            for p in self.sums
            if p.startswith(prefix) and p.endswith(suffix) and "/" not in p[len(prefix) :]
        )

    def path(self, rel: str) -> Path:
        if rel not in self.sums:
            raise BadInput(f"{rel}: not pinned in {self.root / SUMS}")
        return self.root / rel

    def key(self) -> str:
        """A digest of every pinned hash: changes whenever any upstream byte changes."""
        text = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(self.sums.items()))
        return hashlib.sha256(text.encode()).hexdigest()


def parse_sums(text: str, label: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise BadInput(f"{label}:{number}: expected '<sha256>  <path>'")
        sha, rel = parts[0].lower(), parts[1].strip().lstrip("*").removeprefix("./")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise BadInput(f"{label}:{number}: path {rel!r} leaves the mirror")
        sums[rel] = sha
    return sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(root: Path, versions: Mapping[str, str]) -> tuple[Upstream | None, list[Failure]]:
    """Hash every file SHA256SUMS lists; any mismatch or missing file is a failure naming it."""
    sums_path = root / SUMS
    label = str(sums_path)
    if not sums_path.is_file():
        return None, [
            Failure(
                label,
                "upstream mirror not found (set --upstream or PIPECTL_UPSTREAM_DIR)",
                check="upstream",
            )
        ]
    try:
        sums = parse_sums(sums_path.read_text(encoding="utf-8"), label)
    except BadInput as exc:
        return None, [Failure(label, str(exc).removeprefix(label + ": "), check="upstream")]
    failures = []
    for rel, expected in sorted(sums.items()):
        path = root / rel
        try:
            actual = _sha256(path)
        except FileNotFoundError:
            failures.append(
                Failure(str(path), "listed in SHA256SUMS but missing", check="upstream")
            )
            continue
        except OSError as exc:
            failures.append(Failure(str(path), f"cannot read: {exc}", check="upstream"))
            continue
        if actual != expected:
            failures.append(
                Failure(
                    str(path),
                    f"SHA-256 mismatch: {actual} (pinned {expected}); refusing to use it",
                    check="upstream",
                )
            )
    components = component_dirs(versions)
    for name, directory in components.items():
        if not any(rel.startswith(directory + "/") for rel in sums):
            failures.append(
                Failure(
                    label,
                    f"no pinned files for {name} ({directory}/, from versions.env)",
                    check="upstream",
                )
            )
    if failures:
        return None, failures
    return Upstream(root, sums, components), []
