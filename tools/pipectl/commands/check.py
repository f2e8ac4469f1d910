"""`pipectl check [--upstream DIR] [--kubeconform PATH]`: validate the GitOps tree offline.

kubeconform -strict over every manifest (core schemas from kubernetes-validate, CRD schemas
generated from the pinned upstream CRDs, each upstream file verified against SHA256SUMS
first), every Kargo step config against its upstream schema, Helm values and chart pins,
and the policy rules. Exit 0 when clean, 1 naming every failure, 2 on bad input.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from pipectl.errors import EXIT_FAILED, PipectlError


@click.command()
@click.option(
    "--upstream",
    "upstream_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mirror of the pinned upstream files with SHA256SUMS "
    "(default: env PIPECTL_UPSTREAM_DIR, else <repo>/../shared/upstream).",
)
@click.option("--kubeconform", metavar="PATH", help="kubeconform binary (default: PATH, ~/go/bin).")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Generated-schema cache (default: $PIPECTL_CACHE_DIR or ~/.cache/pipectl).",
)
@click.option("--timings", is_flag=True, help="Print the time each phase took.")
@click.pass_context
def check(
    ctx: click.Context,
    upstream_dir: Path | None,
    kubeconform: str | None,
    cache_dir: Path | None,
    timings: bool,
) -> None:
    """Validate gitops/ offline: kubeconform, Kargo step schemas, Helm values, policy."""
    from pipectl.validate import run_check
    from pipectl.validate.upstream import default_upstream_dir

    start = time.perf_counter()
    repo = ctx.obj.repo
    report = run_check(
        repo,
        ctx.obj.config,
        upstream_dir or default_upstream_dir(repo),
        kubeconform=kubeconform,
        cache_root=cache_dir,
    )
    elapsed = time.perf_counter() - start
    for failure in report.failures:
        click.echo(f"FAIL {failure}", err=True)
    if timings:
        for phase, seconds in report.timings.items():
            click.echo(f"  {phase:<12} {seconds * 1000:8.1f} ms")
    summary = (
        f"{report.documents} objects in {report.files} manifest files, "
        f"{report.step_configs} Kargo step configs, {report.values_files} values files"
    )
    if report.schemas_generated:
        summary += f", {report.schemas_generated} schemas generated"
    if report.failures:
        raise PipectlError(
            f"check failed: {len(report.failures)} problem(s) ({summary}; {elapsed:.2f} s)",
            exit_code=EXIT_FAILED,
        )
    click.echo(f"check passed: {summary} in {elapsed:.2f} s")
