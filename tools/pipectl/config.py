"""Load and validate pipeline.yaml, the one source of truth for the pipeline.

Validation is strict: an unknown key, a missing key, a wrong type or a bad value anywhere is a
ConfigError whose one-line message names the file and the key path, and nothing runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from pipectl.errors import BadInput, ConfigError

__all__ = [
    "CALENDARS",
    "DEPLOY_STAGES",
    "STAGE_ORDER",
    "Gates",
    "Market",
    "PipelineConfig",
    "Stage",
    "load_config",
]

STAGE_ORDER: tuple[str, ...] = ("ci", "integration-test", "beta", "paper", "live")
DEPLOY_STAGES: tuple[str, ...] = ("beta", "paper", "live")
CALENDARS: tuple[str, ...] = ("nyse", "weekdays")
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

DEFAULT_TIMEZONE = "America/New_York"
DEFAULT_OPEN = "09:30"
DEFAULT_CLOSE = "16:00"
DEFAULT_CALENDAR = "nyse"
DEFAULT_BREAK_GLASS_VALIDITY = "1h"
DEFAULT_AUDIT_LOG = ".pipectl/audit.jsonl"

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_TAG_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class Gates:
    market_hours: bool = False
    approval: bool = False
    integration_test: bool = False


@dataclass(frozen=True)
class Stage:
    name: str
    enabled: bool
    namespace: str | None
    values: str | None
    gates: Gates

    @property
    def deploys(self) -> bool:
        """True for stages that deploy (they have a values file)."""
        return self.values is not None


@dataclass(frozen=True)
class Market:
    timezone: str
    open: time
    close: time
    calendar: str

    @property
    def tz(self):  # -> zoneinfo.ZoneInfo (imported lazily; ZoneInfo caches instances)
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class PipelineConfig:
    path: Path
    version: int
    repository_url: str
    branch: str
    image_registry: str
    tag_key: str
    market: Market
    break_glass_validity: timedelta
    audit_log: str
    stages: tuple[Stage, ...]

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def deploy_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.deploys)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise BadInput(f"unknown stage {name!r} (expected one of: {', '.join(self.stage_names)})")

    def _index(self, name: str) -> int:
        return self.stages.index(self.stage(name))

    def previous_enabled(self, name: str) -> Stage | None:
        """The nearest enabled stage before `name`, or None."""
        for s in reversed(self.stages[: self._index(name)]):
            if s.enabled:
                return s
        return None

    def next_enabled(self, name: str) -> Stage | None:
        """The nearest enabled stage after `name`, or None."""
        for s in self.stages[self._index(name) + 1 :]:
            if s.enabled:
                return s
        return None


# --- loading -------------------------------------------------------------------------------


class _Checker:
    """Typed access to the parsed YAML that raises ConfigError naming file and key path."""

    def __init__(self, file_label: str) -> None:
        self.file = file_label

    def fail(self, key_path: str, problem: str) -> ConfigError:
        where = f"{self.file}: {key_path}: " if key_path else f"{self.file}: "
        return ConfigError(where + problem)

    def mapping(
        self,
        value: Any,
        key_path: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key_path, f"expected a mapping, got {_kind(value)}")
        allowed = set(required) | set(optional)
        for key in value:
            if not isinstance(key, str):
                raise self.fail(key_path, f"keys must be strings, got {key!r}")
            if key not in allowed:
                raise self.fail(
                    _join(key_path, key),
                    f"unknown key (expected one of: {', '.join(sorted(allowed))})",
                )
        for key in required:
            if key not in value:
                raise self.fail(_join(key_path, key), "missing required key")
        return value

    def string(self, value: Any, key_path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key_path, f"expected a string, got {_kind(value)}")
        if not value.strip():
            raise self.fail(key_path, "must not be empty")
        if value != value.strip():
            raise self.fail(key_path, "must not have leading or trailing whitespace")
        return value

    def boolean(self, value: Any, key_path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key_path, f"expected true or false, got {_kind(value)}")
        return value


def _join(key_path: str, key: str) -> str:
    return f"{key_path}.{key}" if key_path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _read_yaml(path: Path, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read ({exc.strerror or exc})") from None

    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        problem = problem.splitlines()[0]
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{label}: YAML syntax error: {where}{problem}") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ConfigError(f"{label}: YAML error: {first}") from None


def _parse_hhmm(c: _Checker, value: Any, key_path: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        raise c.fail(key_path, f'expected a quoted "HH:MM" string, got {_kind(value)}')
    text = c.string(value, key_path)
    m = _HHMM.fullmatch(text)
    if not m:
        raise c.fail(key_path, f'{text!r} is not a 24-hour "HH:MM" time')
    return time(int(m.group(1)), int(m.group(2)))


def _parse_market(c: _Checker, raw: Any) -> Market:
    data = c.mapping(raw, "market", (), ("timezone", "open", "close", "calendar"))
    tz_name = c.string(data.get("timezone", DEFAULT_TIMEZONE), "market.timezone")
    _check_timezone(c, tz_name)
    open_t = _parse_hhmm(c, data.get("open", DEFAULT_OPEN), "market.open")
    close_t = _parse_hhmm(c, data.get("close", DEFAULT_CLOSE), "market.close")
    if open_t >= close_t:
        raise c.fail(
            "market.close",
            f"{close_t:%H:%M} must be after market.open {open_t:%H:%M}",
        )
    calendar = c.string(data.get("calendar", DEFAULT_CALENDAR), "market.calendar")
    if calendar not in CALENDARS:
        raise c.fail(
            "market.calendar",
            f"unknown calendar {calendar!r} (expected one of: {', '.join(CALENDARS)})",
        )
    return Market(timezone=tz_name, open=open_t, close=close_t, calendar=calendar)


def _check_timezone(c: _Checker, name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise c.fail("market.timezone", f"unknown timezone {name!r} (an IANA name)") from None


def _parse_duration(c: _Checker, value: Any, key_path: str) -> timedelta:
    from pipectl.timeutil import parse_duration

    text = c.string(value, key_path)
    try:
        td = parse_duration(text)
    except BadInput as exc:
        raise c.fail(key_path, str(exc)) from None
    if td <= timedelta(0):
        raise c.fail(key_path, f"{text!r} must be longer than zero")
    return td


def _parse_relpath(c: _Checker, value: Any, key_path: str) -> str:
    text = c.string(value, key_path)
    if "\\" in text:
        raise c.fail(key_path, f"{text!r}: use forward slashes")
    p = PurePosixPath(text)
    if p.is_absolute() or text.startswith("~"):
        raise c.fail(key_path, f"{text!r} must be relative to the repository root")
    if ".." in p.parts:
        raise c.fail(key_path, f"{text!r} must not contain '..'")
    if text.endswith("/"):
        raise c.fail(key_path, f"{text!r} must name a file, not a directory")
    return str(p)


def _parse_stages(c: _Checker, raw: Any) -> tuple[Stage, ...]:
    if not isinstance(raw, list):
        raise c.fail("stages", f"expected a list, got {_kind(raw)}")
    stages: list[Stage] = []
    seen: dict[str, int] = {}
    namespaces: dict[str, str] = {}
    values_files: dict[str, str] = {}
    for i, item in enumerate(raw):
        kp = f"stages[{i}]"
        data = c.mapping(item, kp, ("name", "enabled"), ("namespace", "values", "gates"))
        name = c.string(data["name"], f"{kp}.name")
        if name not in STAGE_ORDER:
            raise c.fail(
                f"{kp}.name",
                f"unknown stage {name!r} (expected one of: {', '.join(STAGE_ORDER)})",
            )
        if name in seen:
            raise c.fail(f"{kp}.name", f"duplicate stage {name!r} (also stages[{seen[name]}])")
        seen[name] = i
        if i >= len(STAGE_ORDER) or STAGE_ORDER[i] != name:
            expected = STAGE_ORDER[i] if i < len(STAGE_ORDER) else "no more stages"
            raise c.fail(
                f"{kp}.name",
                f"stage {name!r} out of order: expected {expected!r} here "
                f"(order: {', '.join(STAGE_ORDER)})",
            )
        enabled = c.boolean(data["enabled"], f"{kp}.enabled")

        namespace: str | None = None
        values: str | None = None
        if name in DEPLOY_STAGES:
            for key in ("namespace", "values"):
                if key not in data:
                    raise c.fail(f"{kp}.{key}", f"missing required key (stage {name!r} deploys)")
            namespace = c.string(data["namespace"], f"{kp}.namespace")
            if not _DNS_LABEL.fullmatch(namespace):
                raise c.fail(f"{kp}.namespace", f"{namespace!r} is not a Kubernetes namespace name")
            if namespace in namespaces:
                other = namespaces[namespace]
                raise c.fail(f"{kp}.namespace", f"{namespace!r} is also used by stage {other!r}")
            namespaces[namespace] = name
            values = _parse_relpath(c, data["values"], f"{kp}.values")
            if values in values_files:
                raise c.fail(
                    f"{kp}.values", f"{values!r} is also used by stage {values_files[values]!r}"
                )
            values_files[values] = name
        else:
            for key in ("namespace", "values"):
                if key in data:
                    raise c.fail(
                        f"{kp}.{key}",
                        f"stage {name!r} does not deploy (only {', '.join(DEPLOY_STAGES)} do)",
                    )

        gates_raw = data.get("gates", {})
        gkp = f"{kp}.gates"
        if gates_raw is None:
            gates_raw = {}
        g = c.mapping(gates_raw, gkp, (), ("market_hours", "approval", "integration_test"))
        gates = Gates(
            market_hours=c.boolean(g.get("market_hours", False), f"{gkp}.market_hours"),
            approval=c.boolean(g.get("approval", False), f"{gkp}.approval"),
            integration_test=c.boolean(g.get("integration_test", False), f"{gkp}.integration_test"),
        )
        stages.append(Stage(name, enabled, namespace, values, gates))

    if len(stages) != len(STAGE_ORDER):
        missing = [s for s in STAGE_ORDER if s not in seen]
        raise c.fail("stages", f"missing stage(s): {', '.join(missing)} (every stage is listed)")
    return tuple(stages)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate pipeline.yaml; raises ConfigError naming the file and key path."""
    path = Path(path)
    label = str(path)
    c = _Checker(label)
    raw = _read_yaml(path, label)
    if raw is None:
        raise ConfigError(f"{label}: empty file")
    top = c.mapping(
        raw,
        "",
        ("version", "repository", "image", "stages"),
        ("market", "break_glass", "audit"),
    )

    version = top["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise c.fail("version", f"expected an integer, got {_kind(version)}")
    if version not in SUPPORTED_VERSIONS:
        raise c.fail(
            "version",
            f"unsupported version {version} (supported: {', '.join(map(str, SUPPORTED_VERSIONS))})",
        )

    repo = c.mapping(top["repository"], "repository", ("url", "branch"))
    repository_url = c.string(repo["url"], "repository.url")
    branch = c.string(repo["branch"], "repository.branch")
    if any(ch.isspace() for ch in branch) or branch.startswith("-"):
        raise c.fail("repository.branch", f"{branch!r} is not a branch name")

    image = c.mapping(top["image"], "image", ("registry", "tag_key"))
    registry = c.string(image["registry"], "image.registry")
    if any(ch.isspace() for ch in registry) or registry.endswith("/"):
        raise c.fail("image.registry", f"{registry!r} is not an image registry path")
    tag_key = c.string(image["tag_key"], "image.tag_key")
    if not _TAG_KEY.fullmatch(tag_key):
        raise c.fail("image.tag_key", f"{tag_key!r} is not a dotted key path (e.g. image.tag)")

    market = _parse_market(c, top.get("market", {}))

    bg = c.mapping(top.get("break_glass", {}), "break_glass", (), ("validity",))
    validity = _parse_duration(
        c, bg.get("validity", DEFAULT_BREAK_GLASS_VALIDITY), "break_glass.validity"
    )

    audit = c.mapping(top.get("audit", {}), "audit", (), ("log",))
    audit_log = c.string(audit.get("log", DEFAULT_AUDIT_LOG), "audit.log")

    stages = _parse_stages(c, top["stages"])

    return PipelineConfig(
        path=path,
        version=version,
        repository_url=repository_url,
        branch=branch,
        image_registry=registry,
        tag_key=tag_key,
        market=market,
        break_glass_validity=validity,
        audit_log=audit_log,
        stages=stages,
    )
