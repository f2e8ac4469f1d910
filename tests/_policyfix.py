"""Shared pieces for the gate / policy / break-glass tests (not collected): a pipeline.yaml
derived from the repository's own with chosen switches, a controllable clock, real audit logs."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipectl.audit import AuditLog
from pipectl.config import PipelineConfig, load_config
from pipectl.context import Context
from pipectl.market import MarketCalendar
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
TAG = "0123abc"
OTHER_TAG = "fedcba9876"


def write_config(
    path: Path,
    *,
    calendar: str = "nyse",
    validity: str = "1h",
    disabled: tuple[str, ...] = (),
) -> Path:
    """The repository's pipeline.yaml with the gates of the issue set explicitly (paper and
    live: market hours; live: approval; beta: integration test) and chosen switches."""
    yaml = YAML()
    data: Any = yaml.load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    data["market"]["calendar"] = calendar
    data["break_glass"]["validity"] = validity
    gates = {
        "beta": {"integration_test": True},
        "paper": {"market_hours": True},
        "live": {"market_hours": True, "approval": True},
    }
    for stage in data["stages"]:
        stage["enabled"] = stage["name"] not in disabled
        if stage["name"] in gates:
            stage["gates"] = gates[stage["name"]]
    buf = io.StringIO()
    yaml.dump(data, buf)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def load(path: Path) -> PipelineConfig:
    return load_config(path)


class Clock:
    """A settable clock for AuditLog (entry times) and the gate's `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def make_ctx(tmp_path: Path, clock: Clock, **config_kw: Any) -> Context:
    """A real CLI Context over a temp config and audit log, with the audit clock under test
    control (the same way the console injects its clock)."""
    cfg = write_config(tmp_path / "pipeline.yaml", **config_kw)
    log_path = tmp_path / "audit" / "audit.jsonl"
    ctx = Context(repo=tmp_path, config_path=cfg, audit_log_override=str(log_path))
    ctx.__dict__["audit"] = AuditLog(log_path, clock=clock)
    return ctx


def calendar_for(config: PipelineConfig) -> MarketCalendar:
    return MarketCalendar(config.market)
