"""apps/stonks-oracle/stage-switches.json: which stages the CI workflow runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig


def stage_switches(config: PipelineConfig) -> str:
    # JSON has no comments: this file carries no header (the CI workflow parses it strictly).
    return json.dumps({s.name: s.enabled for s in config.stages}, indent=2) + "\n"
