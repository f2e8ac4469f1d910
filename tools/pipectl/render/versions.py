"""gitops/versions.env: the pinned chart and tool versions, every one an exact X.Y.Z."""

from __future__ import annotations

import re
from pathlib import Path

from pipectl.errors import ConfigError

VERSION_KEYS: tuple[str, ...] = (
    "ARGOCD_CHART_VERSION",
    "ARGOCD_VERSION",
    "KARGO_VERSION",
    "ARC_VERSION",
    "PIPECTL_VERSION",
    "KUBERNETES_VERSION",
    "KUBECONFORM_VERSION",
)
VERSIONS_FILE = "gitops/versions.env"
_VERSION_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=([0-9A-Za-z][0-9A-Za-z.+_-]*)")
_EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")


def load_versions(repo: Path) -> dict[str, str]:
    """Parse gitops/versions.env (KEY=VALUE lines, # comments); every VERSION_KEYS entry needed."""
    path = repo / VERSIONS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{VERSIONS_FILE}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{VERSIONS_FILE}: cannot read ({exc})") from None
    versions: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _VERSION_LINE.fullmatch(line)
        if not m:
            raise ConfigError(f"{VERSIONS_FILE}:{number}: expected KEY=VALUE, got {line!r}")
        key, value = m.groups()
        if key in versions:
            raise ConfigError(f"{VERSIONS_FILE}:{number}: {key} is set twice")
        versions[key] = value
    for key in VERSION_KEYS:
        if key not in versions:
            raise ConfigError(f"{VERSIONS_FILE}: {key} is missing")
        if not _EXACT_VERSION.fullmatch(versions[key]):
            raise ConfigError(
                f"{VERSIONS_FILE}: {key}={versions[key]} is not an exact version (X.Y.Z)"
            )
    return versions
