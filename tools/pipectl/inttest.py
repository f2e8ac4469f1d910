"""Integration-test results: parse the runner's results, record pass/fail for a tag.

Accepted results (a JSON object; the fields are documented in apps/stonks-oracle/README.md):
counts at the top level or inside exactly one of `summary`, `counts`, `totals`:
`passed` (required), `failed`, `errors` (alias `error`), `skipped` (each a non-negative
integer, absent = 0), optional `total` (must equal passed + failed + errors + skipped),
and optionally `exit_code` (alias `exitcode`) at the top level.

A tag passes when the exit code is 0, failed == errors == 0 and passed > 0. Anything that
cannot be read as that evidence is a BadInput and nothing is recorded.

`parse_results(obj, exit_code)` is pure (the console calls it with the JSON body of
`POST /api/v1/inttest`); `read_results_file` and `record` do the I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipectl.errors import BadInput
from pipectl.gate import valid_tag

if TYPE_CHECKING:
    from pipectl.audit import AuditLog, Entry

COUNTS = ("passed", "failed", "errors", "skipped")
ALIASES = {"error": "errors"}
CONTAINERS = ("summary", "counts", "totals")
EXIT_KEYS = ("exit_code", "exitcode")


def check_tag(tag: Any) -> str:
    """A well-formed image tag: a git SHA, 7 to 40 lower-case hex digits."""
    if not valid_tag(tag):
        raise BadInput(f"tag {tag!r} is not a git SHA (7-40 lower-case hex digits)")
    return tag


@dataclass(frozen=True)
class InttestResult:
    passed: bool
    exit_code: int
    counts: dict[str, int]  # passed, failed, errors, skipped, total

    @property
    def action(self) -> str:
        return "inttest.passed" if self.passed else "inttest.failed"

    def details(self) -> dict[str, Any]:
        return {**self.counts, "exit_code": self.exit_code}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count_source(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    known = set(COUNTS) | set(ALIASES) | {"total"}
    here = sorted(known & obj.keys())
    nested = [k for k in CONTAINERS if k in obj]
    if len(nested) > 1:
        raise BadInput(f"results: counts in more than one of {', '.join(nested)}")
    if nested:
        box = obj[nested[0]]
        if not isinstance(box, dict):
            raise BadInput(f"results: {nested[0]!r} must be an object")
        if here:
            raise BadInput(
                f"results: counts both at the top level ({', '.join(here)}) and in {nested[0]!r}"
            )
        return box, f"{nested[0]}."
    return obj, ""


def parse_results(obj: Any, exit_code: int | None = None) -> InttestResult:
    """The verdict for one run. `exit_code` is the runner's exit code when the caller knows
    it; it must agree with the results' own `exit_code` when both are given."""
    if not isinstance(obj, dict):
        raise BadInput("results: expected a JSON object")
    if exit_code is not None and not _is_int(exit_code):
        raise BadInput(f"exit code {exit_code!r} is not an integer")

    source, prefix = _count_source(obj)
    counts: dict[str, int] = {}
    for key, value in source.items():
        name = ALIASES.get(key, key)
        if name not in (*COUNTS, "total"):
            continue
        if name in counts:
            raise BadInput(f"results: {prefix}{key} given twice (errors/error)")
        if not _is_int(value) or value < 0:
            raise BadInput(f"results: {prefix}{key} must be a non-negative integer, got {value!r}")
        counts[name] = value
    if "passed" not in counts:
        raise BadInput(f"results: missing count {prefix}passed")
    full = {name: counts.get(name, 0) for name in COUNTS}
    total = sum(full.values())
    if "total" in counts and counts["total"] != total:
        raise BadInput(
            f"results: {prefix}total is {counts['total']} but passed + failed + errors + "
            f"skipped = {total}"
        )
    full["total"] = total

    declared = None
    present = [k for k in EXIT_KEYS if k in obj]
    if len(present) > 1:
        raise BadInput("results: both exit_code and exitcode given")
    if present:
        declared = obj[present[0]]
        if not _is_int(declared):
            raise BadInput(f"results: {present[0]} must be an integer, got {declared!r}")
    if exit_code is not None and declared is not None and exit_code != declared:
        raise BadInput(f"exit code {exit_code} disagrees with the results' {present[0]} {declared}")
    code = exit_code if exit_code is not None else declared
    if code is None:
        raise BadInput("no exit code: pass --exit-code or put exit_code in the results")

    passed = code == 0 and full["failed"] == 0 and full["errors"] == 0 and full["passed"] > 0
    return InttestResult(passed=passed, exit_code=code, counts=full)


def read_results_file(path: Path) -> Any:
    """The parsed JSON of a results file (BadInput when missing or malformed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: results file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno})") from None


def record(
    audit: AuditLog,
    actor: str,
    tag: str,
    result: InttestResult,
    source: str | None = None,
) -> Entry:
    """Append `inttest.passed|inttest.failed` for `tag` with the counts in details."""
    check_tag(tag)
    details = result.details()
    if source:
        details["source"] = source
    return audit.append(
        action=result.action, actor=actor, stage="integration-test", tag=tag, details=details
    )


def record_file(
    audit: AuditLog, actor: str, path: Path, tag: str, exit_code: int | None
) -> tuple[InttestResult, Entry]:
    """Validate everything first (tag, file, counts), then record; nothing on any error."""
    check_tag(tag)
    result = parse_results(read_results_file(path), exit_code)
    return result, record(audit, actor, tag, result, source=Path(path).name)


def newest_result(entries: Any) -> Entry | None:
    """The newest `inttest.passed|inttest.failed` entry in `entries` (log order), if any."""
    for entry in reversed(list(entries)):
        if entry.action in ("inttest.passed", "inttest.failed"):
            return entry
    return None
