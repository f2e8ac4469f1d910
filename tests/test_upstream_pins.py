"""The flake fetches the pinned upstream files by URL + hash (checks/upstream.nix); CI reads the
mirror in ../shared/upstream. These tests prove both name the same bytes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENTRY = re.compile(
    r'\{\s*path = "(?P<path>[^"]+)";'
    r'\s*url = "(?P<url>[^"]+)";'
    r'\s*sha256 = "(?P<sha>[0-9a-f]{64})";\s*\}'
)


def upstream_dir() -> Path:
    return Path(os.environ.get("PIPECTL_UPSTREAM_DIR", REPO.parent / "shared" / "upstream"))


def pinned() -> dict[str, tuple[str, str]]:
    text = (REPO / "checks" / "upstream.nix").read_text()
    entries = {m["path"]: (m["url"], m["sha"]) for m in ENTRY.finditer(text)}
    assert text.count("path =") == len(entries), "an entry in checks/upstream.nix did not parse"
    return entries


def mirror_sums() -> dict[str, str]:
    sums_file = upstream_dir() / "SHA256SUMS"
    if not sums_file.exists():
        pytest.skip(f"no upstream mirror at {sums_file}")
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            sha, path = line.split(None, 1)
            sums[path.strip().removeprefix("./")] = sha
    return sums


def test_flake_pins_match_the_mirror_exactly() -> None:
    pins = pinned()
    sums = mirror_sums()
    assert sorted(pins) == sorted(sums)
    for path, (_url, sha) in pins.items():
        assert sha == sums[path], path


def test_each_url_names_the_pinned_release_and_file() -> None:
    for path, (url, _sha) in pinned().items():
        assert url.startswith("https://raw.githubusercontent.com/"), url
        assert url.rsplit("/", 1)[1] == path.rsplit("/", 1)[1], (path, url)
        release = path.split("/", 1)[0]  # e.g. kargo-v1.11.2
        version = release.split("-")[-1]
        assert f"/{version}/" in url or url.count(f"-{version}/") == 1, (path, url)
