#!/usr/bin/env python3
"""Turn an integration-test run into a verdict, a job summary and the console's request body.

The stonks-oracle workflow runs `bash infra/inttest/run_pipeline.sh --image-tag <sha>`, keeps its
exit code, and then runs

    python3 inttest_report.py --results inttest-results.json --exit-code "$rc" --tag "$sha" \
        --payload "$RUNNER_TEMP/inttest-payload.json" \
        --github-output "$GITHUB_OUTPUT" --summary "$GITHUB_STEP_SUMMARY"

Verdict (fail-closed; the exit code of the runner is the authority):
- the runner's exit code is non-zero                     -> failed, that exit code
- the results file is missing, not JSON, not an object   -> failed, exit code 1
- the results carry a non-zero `exit_code`/`exitcode`    -> failed, that exit code
- counts are found and failed + errors > 0 or total == 0 -> failed, exit code 1
- otherwise                                              -> passed, exit code 0
  (results without recognisable counts pass on the exit code alone, with a warning).

Counts are read from the top level or from a `summary`/`counts`/`totals` object (keys
`passed`, `failed`, `skipped`, `errors`/`error`, `total`), or counted from a
`tests`/`results`/`cases` list whose items carry `status`/`outcome`/`result`.

The payload is the body of `POST /api/v1/inttest`:
`{"tag": <sha>, "exit_code": <verdict exit code>, "results": <results object>}` (when the
results are unreadable: `{"error": "<why>"}`). The script exits 0 once everything is written,
whatever the verdict; 2 on bad arguments. The workflow fails the job on a non-zero
`exit-code` output. Standard library only, Python >= 3.10.
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
COUNT_KEYS = ("passed", "failed", "skipped", "errors", "total")
KEY_ALIASES = {"error": "errors"}
SUMMARY_KEYS = ("summary", "counts", "totals")
LIST_KEYS = ("tests", "results", "cases")
STATUS_KEYS = ("status", "outcome", "result")
STATUS_WORDS = {
    "passed": "passed",
    "pass": "passed",
    "ok": "passed",
    "success": "passed",
    "failed": "failed",
    "fail": "failed",
    "failure": "failed",
    "skipped": "skipped",
    "skip": "skipped",
    "error": "errors",
    "errored": "errors",
    "errors": "errors",
}


class BadResults(Exception):
    """The results file cannot be used as evidence."""


@dataclass
class Report:
    tag: str
    runner_exit_code: int
    exit_code: int
    status: str
    counts: dict[str, int] | None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    results: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        results: dict[str, Any]
        if self.results is None:
            results = {"error": "; ".join(self.reasons) or "no results"}
        else:
            results = self.results
        return {"tag": self.tag, "exit_code": self.exit_code, "results": results}


def load_results(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadResults(f"{path.name} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadResults(f"{path.name} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadResults(f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise BadResults(f"{path.name} is not a JSON object")
    return data


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts_from_mapping(data: dict[str, Any]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for key, value in data.items():
        name = KEY_ALIASES.get(key, key)
        if name not in COUNT_KEYS:
            continue
        if not _is_count(value):
            raise BadResults(f"count {key!r} must be a non-negative integer, got {value!r}")
        found[name] = value
    if not found.keys() & {"passed", "failed", "errors", "total"}:
        return None
    return found


def _counts_from_list(items: list[Any]) -> dict[str, int] | None:
    found = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for item in items:
        if not isinstance(item, dict):
            return None
        status = next((item[k] for k in STATUS_KEYS if isinstance(item.get(k), str)), None)
        if status is None:
            return None
        # Unknown words count as failures: nothing unexplained passes.
        found[STATUS_WORDS.get(status.strip().lower(), "failed")] += 1
    return found


def extract_counts(results: dict[str, Any]) -> dict[str, int] | None:
    """Counts with every key of COUNT_KEYS, or None when the results carry none."""
    counts = _counts_from_mapping(results)
    if counts is None:
        for key in SUMMARY_KEYS:
            if isinstance(results.get(key), dict):
                counts = _counts_from_mapping(results[key])
                if counts is not None:
                    break
    if counts is None:
        for key in LIST_KEYS:
            if isinstance(results.get(key), list):
                counts = _counts_from_list(results[key])
                if counts is not None:
                    break
    if counts is None:
        return None
    full = {key: counts.get(key, 0) for key in COUNT_KEYS}
    if "total" not in counts:
        full["total"] = full["passed"] + full["failed"] + full["skipped"] + full["errors"]
    return full


def results_exit_code(results: dict[str, Any]) -> int | None:
    for key in ("exit_code", "exitcode"):
        if key in results:
            value = results[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadResults(f"{key!r} must be an integer, got {value!r}")
            return value
    return None


def evaluate(tag: str, runner_exit_code: int, results_path: Path) -> Report:
    """The verdict for one run (reads only the results file)."""
    reasons: list[str] = []
    warnings: list[str] = []
    results: dict[str, Any] | None = None
    counts: dict[str, int] | None = None
    declared: int | None = None
    usable = True
    exit_code = runner_exit_code

    if runner_exit_code != 0:
        reasons.append(f"run_pipeline.sh exited with {runner_exit_code}")
    try:
        results = load_results(results_path)
        counts = extract_counts(results)
        declared = results_exit_code(results)
    except BadResults as exc:
        reasons.append(str(exc))
        usable = False
        counts = None
        declared = None
        if exit_code == 0:
            exit_code = 1
    if declared is not None and declared != 0:
        reasons.append(f"{results_path.name} reports exit code {declared}")
        if exit_code == 0:
            exit_code = declared
    if counts is not None:
        bad = counts["failed"] + counts["errors"]
        if bad:
            reasons.append(f"{counts['failed']} failed, {counts['errors']} errors")
        elif counts["total"] == 0:
            reasons.append("no tests ran")
        if (bad or counts["total"] == 0) and exit_code == 0:
            exit_code = 1
    elif usable:
        warnings.append(f"no test counts found in {results_path.name}; verdict from exit code")

    return Report(
        tag=tag,
        runner_exit_code=runner_exit_code,
        exit_code=exit_code,
        status="passed" if exit_code == 0 else "failed",
        counts=counts,
        reasons=reasons,
        warnings=warnings,
        results=results,
    )


def summary_markdown(report: Report) -> str:
    icon = "✅" if report.status == "passed" else "❌"
    lines = [
        f"### Integration test {icon} {report.status}",
        "",
        f"- image tag: `{report.tag}`",
        f"- run_pipeline.sh exit code: `{report.runner_exit_code}`",
        f"- verdict exit code: `{report.exit_code}`",
    ]
    if report.counts is not None:
        lines += ["", "| " + " | ".join(COUNT_KEYS) + " |", "|" + "---|" * len(COUNT_KEYS)]
        lines.append("| " + " | ".join(str(report.counts[k]) for k in COUNT_KEYS) + " |")
    lines += [f"- failure: {reason}" for reason in report.reasons]
    lines += [f"- warning: {warning}" for warning in report.warnings]
    if report.status != "passed":
        lines += ["", "This tag is not eligible for beta."]
    return "\n".join(lines) + "\n"


def github_outputs(report: Report) -> str:
    counts = report.counts or {}
    lines = [f"exit-code={report.exit_code}", f"status={report.status}"]
    lines += [f"{key}={counts.get(key, '')}" for key in COUNT_KEYS]
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

    counts = report.counts
    if counts is not None:
        print(", ".join(f"{key} {counts[key]}" for key in COUNT_KEYS))
    for warning in report.warnings:
        print(f"::warning title=Integration test::{warning}")
    if report.status == "passed":
        print(f"integration test passed for {report.tag}")
    else:
        why = "; ".join(report.reasons)
        print(f"::error title=Integration test failed::{why} — {report.tag} is not eligible")
    return 0


if __name__ == "__main__":
    sys.exit(main())
