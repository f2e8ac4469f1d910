"""Run kubeconform -strict over the manifests, offline, against the generated schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipectl.errors import BadInput
from pipectl.validate.docs import Document, Failure


def find_kubeconform(explicit: str | None = None) -> str:
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise BadInput(f"--kubeconform {explicit}: not an executable file")
        return explicit
    found = shutil.which("kubeconform")
    if found:
        return found
    gobin = Path(os.environ.get("GOBIN") or Path.home() / "go" / "bin") / "kubeconform"
    if gobin.is_file() and os.access(gobin, os.X_OK):
        return str(gobin)
    raise BadInput(
        "kubeconform not found on PATH or in ~/go/bin "
        "(go install github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0, or --kubeconform PATH)"
    )


def command(
    binary: str, locations: Sequence[str], kubernetes_version: str, files: Sequence[str]
) -> list[str]:
    cmd = [binary, "-strict", "-output", "json", "-kubernetes-version", kubernetes_version]
    cmd += ["-n", str(max(2, os.cpu_count() or 2))]
    for location in locations:
        cmd += ["-schema-location", location]
    return cmd + list(files)


class Run:
    """A kubeconform process started in the background; `result()` waits for its verdict."""

    def __init__(
        self,
        binary: str,
        locations: Sequence[str],
        kubernetes_version: str,
        repo: Path,
        files: Sequence[str],
    ) -> None:
        self.binary = binary
        self.proc: subprocess.Popen[str] | None = None
        if not files:
            return
        cmd = command(binary, locations, kubernetes_version, files)
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except OSError as exc:
            raise BadInput(f"cannot run kubeconform ({binary}): {exc}") from None

    def result(self, docs: Sequence[Document]) -> list[Failure]:
        if self.proc is None:
            return []
        try:
            stdout, stderr = self.proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise BadInput(f"kubeconform ({self.binary}) took longer than 300 s") from None
        return parse_report(stdout, stderr, self.proc.returncode, docs)


def run(
    binary: str,
    locations: Sequence[str],
    kubernetes_version: str,
    repo: Path,
    files: Sequence[str],
    docs: Sequence[Document],
) -> list[Failure]:
    """kubeconform's verdict on `files` (relative to repo); every non-valid resource fails."""
    return Run(binary, locations, kubernetes_version, repo, files).result(docs)


def parse_report(
    stdout: str, stderr: str, returncode: int, docs: Sequence[Document]
) -> list[Failure]:
    try:
        report = json.loads(stdout or "{}")
    except json.JSONDecodeError:
        detail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise BadInput(f"kubeconform produced no JSON report: {detail[0]}") from None
    failures = []
    for res in report.get("resources") or []:
        status = res.get("status", "")
        if status in ("statusValid", "statusSkipped", "statusEmpty"):
            continue
        rel = res.get("filename", "?")
        kind, name = res.get("kind") or None, res.get("name") or None
        index = _doc_index(docs, rel, kind, name)
        errors = res.get("validationErrors") or []
        detail = _detail(res.get("msg") or "")
        if detail and any(e.get("msg") == "validation failed" for e in errors):
            # Nested causes (through $refs) only say "validation failed"; the message has them.
            failures.append(
                Failure(rel, f"kubeconform: {detail}", index, kind, name, "kubeconform")
            )
        elif errors:
            for err in errors:
                path = err.get("path") or "/"
                failures.append(
                    Failure(
                        rel,
                        f"kubeconform: {path}: {err.get('msg')}",
                        index,
                        kind,
                        name,
                        "kubeconform",
                    )
                )
        else:
            failures.append(
                Failure(
                    rel,
                    f"kubeconform: {res.get('msg') or status}",
                    index,
                    kind,
                    name,
                    "kubeconform",
                )
            )
    if returncode not in (0, 1) and not failures:
        raise BadInput(f"kubeconform failed (exit {returncode}): {stderr.strip()}")
    return failures


def _detail(msg: str) -> str:
    """The part of kubeconform's message after the schema URL: "at '/spec': ..." ."""
    _, sep, rest = msg.partition("' - ")
    return rest.strip() if sep else ""


def _doc_index(
    docs: Sequence[Document], rel: str, kind: str | None, name: str | None
) -> int | None:
    for doc in docs:
        if doc.file == rel and doc.kind == kind and doc.name == name:
            return doc.index
    return None
