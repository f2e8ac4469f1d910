"""Heavy imports stay off the paths that do not need them: the gate, market, audit and
promotion commands never load the Kubernetes client, the web console or the HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("kubernetes", "pipectl.console", "http.server", "playwright", "jsonschema")

PROBE = """
import json, sys
from pipectl.cli import main
heavy = tuple(sys.argv.pop(1).split(","))
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def loaded_by(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            ",".join(HEAVY),
            "--repo",
            str(REPO),
            "--audit-log",
            str(audit),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"]


@pytest.mark.parametrize(
    "args",
    [
        ("gate", "--stage", "paper", "--tag", "0123abc", "--at", "2026-12-05T15:00:00Z", "--json"),
        ("market", "status", "--at", "2026-12-04T15:00:00Z", "--json"),
        ("audit", "verify", "--json"),
        ("stages", "list", "--json"),
        ("status", "--json"),
        ("promote", "--help"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_command_stays_light(tmp_path, args):
    code, loaded = loaded_by(tmp_path, *args)
    assert code in (0, 3), code
    assert loaded == [], f"{' '.join(args)} imported {loaded}"


def test_the_probe_sees_heavy_imports(tmp_path):
    # The same probe must notice a command that does load the Kubernetes client (no cluster
    # here, so it fails after importing it) — otherwise the tests above would be blind.
    code, loaded = loaded_by(tmp_path, "status", "--cluster", "--json")
    assert code != 0
    assert "kubernetes" in loaded, loaded
