"""Offline validation of the GitOps tree (`pipectl check`).

Order: versions.env, then the upstream mirror (every pinned file's SHA-256, before anything
reads it), then the manifests (YAML), kubeconform -strict against generated schemas, Kargo
step configs against the upstream step schemas, Helm values and chart pins, policy rules.
Each failure names the file (and document, kind and name).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipectl.validate.docs import Failure

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig

__all__ = ["CheckReport", "Failure", "run_check"]


@dataclass
class CheckReport:
    failures: list[Failure] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    step_configs: int = 0
    values_files: int = 0
    schemas_generated: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _pyproject_version(repo: Path) -> str | None:
    path = repo / "pyproject.toml"
    if not path.is_file():
        return None
    import tomllib

    with path.open("rb") as fh:
        return tomllib.load(fh).get("project", {}).get("version")


def run_check(
    repo: Path,
    config: PipelineConfig,
    upstream_dir: Path,
    kubeconform: str | None = None,
    cache_root: Path | None = None,
) -> CheckReport:
    from pipectl.render import load_versions
    from pipectl.validate import helm, policy, steps, upstream
    from pipectl.validate.docs import load_manifests
    from pipectl.validate.kubeconform import Run, find_kubeconform
    from pipectl.validate.schemas import SchemaStore, default_cache_root

    report = CheckReport()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.timings[name] = now - clock
        clock = now

    versions = load_versions(repo)
    binary = find_kubeconform(kubeconform)
    pinned = _pyproject_version(repo)
    if pinned and pinned != versions["PIPECTL_VERSION"]:
        report.failures.append(
            Failure(
                "gitops/versions.env",
                f"PIPECTL_VERSION={versions['PIPECTL_VERSION']} but "
                f"pyproject.toml version is {pinned} (the console image tag)",
                check="versions",
            )
        )

    mirror, problems = upstream.verify(upstream_dir, versions)
    report.failures += problems
    lap("upstream")
    if mirror is None:
        return report

    docs, problems = load_manifests(repo)
    report.failures += problems
    report.documents = len(docs)
    files = sorted({d.file for d in docs})
    report.files = len(files)
    lap("parse")

    store = SchemaStore(mirror, versions["KUBERNETES_VERSION"], cache_root or default_cache_root())
    store.ensure_crds()
    store.ensure_core((d.kind, d.api_version) for d in docs)
    report.schemas_generated = store.generated
    lap("schemas")
    # kubeconform runs in the background while the Python checks run.
    kubeconform_run = Run(binary, store.locations, versions["KUBERNETES_VERSION"], repo, files)

    step_failures, report.step_configs = steps.check_steps(
        docs, lambda: steps.StepSchemas(mirror), steps.VerdictCache(store.dir / "step-verdicts")
    )
    report.failures += step_failures
    lap("steps")

    values_failures, report.values_files = helm.check_values_files(repo)
    report.failures += values_failures
    report.failures += helm.check_applications(docs, repo, versions)
    report.failures += helm.check_stage_values(repo, config)
    report.failures += policy.check_policy(docs, config)
    lap("policy")
    report.failures += kubeconform_run.result(docs)
    lap("kubeconform")
    return report
