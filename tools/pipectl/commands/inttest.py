"""`pipectl inttest record --results FILE --tag T [--exit-code N] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def inttest() -> None:
    """Integration-test results: a passed tag becomes eligible for beta."""


@inttest.command()
@click.option(
    "--results",
    "results_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The runner's results file (inttest-results.json).",
)
@click.option("--tag", required=True, help="Image tag (git SHA) that was tested.")
@click.option("--exit-code", type=int, help="The runner's exit code (must match the file's).")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded entry as JSON.")
@click.pass_context
def record(
    ctx: click.Context, results_path: Path, tag: str, exit_code: int | None, as_json: bool
) -> None:
    """Record pass/fail for TAG in the audit log (nothing is recorded on bad input)."""
    from pipectl.inttest import record_file

    obj = ctx.obj
    result, entry = record_file(obj.audit, obj.actor, results_path, tag, exit_code)
    if as_json:
        click.echo(json.dumps(entry.to_dict(), indent=2, sort_keys=True))
        return
    c = result.counts
    verdict = "passed" if result.passed else "FAILED"
    click.echo(
        f"integration test {verdict} for {tag}: {c['passed']} passed, {c['failed']} failed, "
        f"{c['errors']} errors, {c['skipped']} skipped (exit code {result.exit_code}); "
        f"recorded {entry.action} {entry.id}"
    )
    if result.passed:
        click.echo(f"{tag} is eligible for beta")
