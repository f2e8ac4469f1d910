#!/usr/bin/env python3
"""Read the pipeline's stage switches for the stonks-oracle CI workflow.

The workflow's first job checks out the pipelines repository and runs

    python3 stage_switches.py --file apps/stonks-oracle/stage-switches.json \
        --github-output "$GITHUB_OUTPUT" --summary "$GITHUB_STEP_SUMMARY"

`stage-switches.json` is rendered from pipeline.yaml (`{"ci": bool, "integration-test": bool,
...}`). This script writes `ci=true|false` and `inttest=true|false` to the step outputs and
reports every disabled stage visibly: a `::notice::` annotation, a log line and a line in the
job summary. A missing or malformed file is an error (exit 2), never a silent skip.

Standard library only, Python >= 3.10 (the ARC runner image's python3 is enough).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The switches this workflow honours: stage name in pipeline.yaml -> step output name.
STAGES: dict[str, str] = {"ci": "ci", "integration-test": "inttest"}


class SwitchError(Exception):
    """The switches file cannot be trusted; the workflow must stop."""


def read_switches(path: Path) -> dict[str, bool]:
    """Return {stage: enabled} for the stages in STAGES, or raise SwitchError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SwitchError(f"{path}: not found (is it rendered from pipeline.yaml?)") from None
    except OSError as exc:
        raise SwitchError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SwitchError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise SwitchError(f"{path}: expected a JSON object of stage -> true/false")
    switches: dict[str, bool] = {}
    for stage in STAGES:
        if stage not in data:
            raise SwitchError(f"{path}: stage {stage!r} is missing")
        value = data[stage]
        if not isinstance(value, bool):
            raise SwitchError(f"{path}: stage {stage!r} must be true or false, got {value!r}")
        switches[stage] = value
    return switches


# What a disabled stage skips. A disabled stage is skipped and the pipeline goes on, so a
# disabled ci still builds the images (the integration test and beta need them).
SKIPPED: dict[str, str] = {
    "ci": "skipped (no lint or tests); images are still built on main",
    "integration-test": "skipped",
}


def disabled_messages(switches: dict[str, bool]) -> list[str]:
    """One human line per stage this run will not execute because of the switches."""
    return [
        f"stage {stage} disabled in pipeline.yaml — {SKIPPED[stage]}"
        for stage in STAGES
        if not switches[stage]
    ]


def summary_markdown(switches: dict[str, bool], messages: list[str]) -> str:
    lines = ["### Pipeline stage switches", ""]
    lines += [f"- `{stage}`: {'enabled' if on else 'disabled'}" for stage, on in switches.items()]
    if messages:
        lines.append("")
        lines += [f"> **{message}**" for message in messages]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", required=True, type=Path, help="stage-switches.json")
    parser.add_argument("--github-output", type=Path, help="append outputs here ($GITHUB_OUTPUT)")
    parser.add_argument("--summary", type=Path, help="append the summary ($GITHUB_STEP_SUMMARY)")
    args = parser.parse_args(argv)

    try:
        switches = read_switches(args.file)
    except SwitchError as exc:
        print(f"::error title=Stage switches::{exc}")
        print(f"stage_switches: error: {exc}", file=sys.stderr)
        return 2

    messages = disabled_messages(switches)
    outputs = "".join(
        f"{STAGES[stage]}={'true' if on else 'false'}\n" for stage, on in switches.items()
    )
    if args.github_output:
        with args.github_output.open("a", encoding="utf-8") as fh:
            fh.write(outputs)
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as fh:
            fh.write(summary_markdown(switches, messages))

    for stage, on in switches.items():
        print(f"{stage}: {'enabled' if on else 'disabled'}")
    for message in messages:
        print(f"::notice title=Stage disabled::{message}")
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
