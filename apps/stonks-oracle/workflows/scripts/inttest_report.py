#!/usr/bin/env python3
"""Turn an integration-test run into a verdict, a job summary and the console's request body.

The stonks-oracle workflow runs `bash infra/inttest/run_pipeline.sh --image-tag <sha>`, keeps its
exit code, and then runs

    python3 inttest_report.py --results inttest-results.json --exit-code "$rc" --tag "$sha" \
        --payload "$RUNNER_TEMP/inttest-payload.json" \
        --github-output "$GITHUB_OUTPUT" --summary "$GITHUB_STEP_SUMMARY"

The results contract is the pipeline console's (`pipectl.inttest`, which judges
`POST /api/v1/inttest`); this script applies the same rules so the workflow and the console
never disagree, without needing pipectl on the runner:
- a JSON object; counts at the top level or inside exactly one of `summary`, `counts`,
  `totals`: `passed` (required), `failed`, `errors` (alias `error`), `skipped` (non-negative
  integers, absent = 0), optional `total` (must equal their sum); optional top-level
  `exit_code` (alias `exitcode`), which must agree with the runner's exit code.
- passed  <=>  exit code 0, failed == errors == 0 and passed > 0.

Results that are not valid evidence (missing file, not JSON, broken counts, exit codes that
disagree) fail the run, and the console still gets a record of the failure: the body then
carries `{"passed": 0, "note": "<why>"}` instead of the file (which is kept as the artifact).

Body: `{"tag": <sha>, "exit_code": <runner exit code>, "results": <object>}`.
Outputs: `exit-code` (0 when passed, else the runner's code, or 1 if that was 0), `status`,
and the counts. Exits 0 once everything is written, whatever the verdict; 2 on bad arguments.
Standard library only, Python >= 3.10.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAG_RE = re.compile(r"^[0-9a-f]{7,40}$")
COUNTS = ("passed", "failed", "errors", "skipped")
ALIASES = {"error": "errors"}
CONTAINERS = ("summary", "counts", "totals")
EXIT_KEYS = ("exit_code", "exitcode")
SUMMARY_COLUMNS = (*COUNTS, "total")


class NotEvidence(Exception):
    """The results cannot be used as evidence of a pass or a failure."""


@dataclass
class Report:
    tag: str
    runner_exit_code: int
    passed: bool
    counts: dict[str, int] | None
    results: dict[str, Any]
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def exit_code(self) -> int:
        if self.passed:
            return 0
        return self.runner_exit_code or 1

    def payload(self) -> dict[str, Any]:
        return {"tag": self.tag, "exit_code": self.runner_exit_code, "results": self.results}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_results(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotEvidence(f"{path.name} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotEvidence(f"{path.name} cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotEvidence(f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def _count_source(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    known = set(COUNTS) | set(ALIASES) | {"total"}
    here = sorted(known & obj.keys())
    nested = [key for key in CONTAINERS if key in obj]
    if len(nested) > 1:
        raise NotEvidence(f"counts in more than one of {', '.join(nested)}")
    if not nested:
        return obj, ""
    box = obj[nested[0]]
    if not isinstance(box, dict):
        raise NotEvidence(f"{nested[0]!r} must be an object")
    if here:
        raise NotEvidence(f"counts both at the top level ({', '.join(here)}) and in {nested[0]!r}")
    return box, f"{nested[0]}."


def extract_counts(obj: dict[str, Any]) -> dict[str, int]:
    """passed, failed, errors, skipped and total, or NotEvidence."""
    source, prefix = _count_source(obj)
    counts: dict[str, int] = {}
    for key, value in source.items():
        name = ALIASES.get(key, key)
        if name not in SUMMARY_COLUMNS:
            continue
        if name in counts:
            raise NotEvidence(f"{prefix}{key} given twice (errors/error)")
        if not _is_int(value) or value < 0:
            raise NotEvidence(f"{prefix}{key} must be a non-negative integer, got {value!r}")
        counts[name] = value
    if "passed" not in counts:
        raise NotEvidence(f"missing count {prefix}passed")
    full = {name: counts.get(name, 0) for name in COUNTS}
    total = sum(full.values())
    if "total" in counts and counts["total"] != total:
        raise NotEvidence(
            f"{prefix}total is {counts['total']} but passed + failed + errors + skipped = {total}"
        )
    full["total"] = total
    return full


def declared_exit_code(obj: dict[str, Any], runner_exit_code: int) -> None:
    present = [key for key in EXIT_KEYS if key in obj]
    if len(present) > 1:
        raise NotEvidence("both exit_code and exitcode given")
    if not present:
        return
    declared = obj[present[0]]
    if not _is_int(declared):
        raise NotEvidence(f"{present[0]} must be an integer, got {declared!r}")
    if declared != runner_exit_code:
        raise NotEvidence(
            f"run_pipeline.sh exited with {runner_exit_code} but the results' "
            f"{present[0]} is {declared}"
        )


def evaluate(tag: str, runner_exit_code: int, results_path: Path) -> Report:
    """The verdict for one run (reads only the results file)."""
    reasons: list[str] = []
    if runner_exit_code != 0:
        reasons.append(f"run_pipeline.sh exited with {runner_exit_code}")
    try:
        results = load_results(results_path)
        if not isinstance(results, dict):
            raise NotEvidence(f"{results_path.name} is not a JSON object")
        counts = extract_counts(results)
        declared_exit_code(results, runner_exit_code)
    except NotEvidence as exc:
        note = f"results not usable: {exc}"
        reasons.append(note)
        return Report(tag, runner_exit_code, False, None, {"passed": 0, "note": note}, reasons)

    if counts["failed"] or counts["errors"]:
        reasons.append(f"{counts['failed']} failed, {counts['errors']} errors")
    if counts["passed"] == 0:
        reasons.append("no test passed")
    passed = not reasons
    return Report(tag, runner_exit_code, passed, counts, results, reasons)


def summary_markdown(report: Report) -> str:
    icon = "✅" if report.passed else "❌"
    lines = [
        f"### Integration test {icon} {report.status}",
        "",
        f"- image tag: `{report.tag}`",
        f"- run_pipeline.sh exit code: `{report.runner_exit_code}`",
    ]
    lines += [f"- failure: {reason}" for reason in report.reasons]
    if report.counts is not None:
        lines += ["", "| " + " | ".join(SUMMARY_COLUMNS) + " |"]
        lines.append("|" + "---|" * len(SUMMARY_COLUMNS))
        lines.append("| " + " | ".join(str(report.counts[k]) for k in SUMMARY_COLUMNS) + " |")
    if not report.passed:
        lines += ["", "This tag is not eligible for beta."]
    return "\n".join(lines) + "\n"


def github_outputs(report: Report) -> str:
    counts = report.counts or {}
    lines = [f"exit-code={report.exit_code}", f"status={report.status}"]
    lines += [f"{key}={counts.get(key, '')}" for key in SUMMARY_COLUMNS]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, type=Path, help="inttest-results.json")
    parser.add_argument("--exit-code", required=True, help="exit code of run_pipeline.sh")
    parser.add_argument("--tag", required=True, help="image tag (git SHA) that was tested")
    parser.add_argument("--payload", type=Path, help="write the console request body here")
    parser.add_argument("--github-output", type=Path, help="append outputs here ($GITHUB_OUTPUT)")
    parser.add_argument("--summary", type=Path, help="append the summary ($GITHUB_STEP_SUMMARY)")
    args = parser.parse_args(argv)

    if not TAG_RE.match(args.tag):
        print(f"inttest_report: error: --tag {args.tag!r} is not a git SHA", file=sys.stderr)
        return 2
    try:
        runner_exit_code = int(args.exit_code)
    except ValueError:
        print(
            f"inttest_report: error: --exit-code {args.exit_code!r} is not an integer",
            file=sys.stderr,
        )
        return 2

    report = evaluate(args.tag, runner_exit_code, args.results)

    if args.payload:
        write_atomic(args.payload, json.dumps(report.payload(), sort_keys=True) + "\n")
    if args.github_output:
        with args.github_output.open("a", encoding="utf-8") as fh:
            fh.write(github_outputs(report))
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as fh:
            fh.write(summary_markdown(report))

    if report.counts is not None:
        print(", ".join(f"{key} {report.counts[key]}" for key in SUMMARY_COLUMNS))
    if report.passed:
        print(f"integration test passed for {report.tag}")
    else:
        why = "; ".join(report.reasons)
        print(f"::error title=Integration test failed::{why} — {report.tag} is not eligible")
    return 0


if __name__ == "__main__":
    sys.exit(main())
