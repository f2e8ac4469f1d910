"""pipectl.config: the real pipeline.yaml loads, and every invalid variant of a tmp copy is a
ConfigError whose one line names the file and the key path."""

from __future__ import annotations

import copy
import dataclasses
from datetime import time, timedelta
from pathlib import Path

import pytest
from pipectl.config import STAGE_ORDER, Gates, load_config
from pipectl.errors import BadInput, ConfigError
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "pipeline.yaml"


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    return y


BASE = _yaml().load(SOURCE.read_text(encoding="utf-8"))


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "pipeline.yaml"
    with path.open("w", encoding="utf-8") as fh:
        _yaml().dump(data, fh)
    return path


def variant(tmp_path: Path, mutate) -> Path:
    data = copy.deepcopy(BASE)
    mutate(data)
    return write(tmp_path, data)


def stage(data, name):
    return next(s for s in data["stages"] if s["name"] == name)


# --- the real file -------------------------------------------------------------------------


def test_real_pipeline_yaml_loads():
    cfg = load_config(SOURCE)
    assert cfg.path == SOURCE
    assert cfg.version == 1
    assert cfg.repository_url == "https://github.com/celesrenata/pipelines.git"
    assert cfg.branch == "main"
    assert cfg.image_registry == "ghcr.io/celesrenata/stonks-oracle"
    assert cfg.tag_key == "global.image.tag"
    assert cfg.market.timezone == "America/New_York"
    assert cfg.market.open == time(9, 30)
    assert cfg.market.close == time(16, 0)
    assert cfg.market.calendar == "nyse"
    assert str(cfg.market.tz) == "America/New_York"
    assert cfg.break_glass_validity == timedelta(hours=1)
    assert cfg.audit_log == ".pipectl/audit.jsonl"
    assert cfg.stage_names == STAGE_ORDER
    assert [s.name for s in cfg.deploy_stages] == ["beta", "paper", "live"]
    assert cfg.stage("beta").gates == Gates(integration_test=True)
    assert cfg.stage("paper").gates == Gates(market_hours=True)
    assert cfg.stage("live").gates == Gates(market_hours=True, approval=True)
    assert cfg.stage("live").namespace == "stonks-oracle"
    assert cfg.stage("live").values == "apps/stonks-oracle/live/values.yaml"
    assert cfg.stage("ci").namespace is None and cfg.stage("ci").values is None
    assert not cfg.stage("ci").deploys and cfg.stage("beta").deploys


def test_accepts_str_path(monkeypatch):
    monkeypatch.chdir(REPO)
    assert load_config("pipeline.yaml").stage_names == STAGE_ORDER


def test_frozen():
    cfg = load_config(SOURCE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.branch = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stages[0].enabled = False  # type: ignore[misc]


def test_unknown_stage_lookup_names_valid_stages():
    cfg = load_config(SOURCE)
    with pytest.raises(BadInput, match=r"unknown stage 'prod' \(expected one of: ci, "):
        cfg.stage("prod")
    with pytest.raises(BadInput, match="unknown stage"):
        cfg.previous_enabled("prod")


def test_previous_and_next_enabled(tmp_path):
    cfg = load_config(SOURCE)
    assert cfg.previous_enabled("ci") is None
    assert cfg.previous_enabled("beta").name == "integration-test"
    assert cfg.next_enabled("beta").name == "paper"
    assert cfg.next_enabled("live") is None

    def disable(data):
        stage(data, "integration-test")["enabled"] = False
        stage(data, "paper")["enabled"] = False

    cfg = load_config(variant(tmp_path, disable))
    assert cfg.previous_enabled("beta").name == "ci"
    assert cfg.previous_enabled("live").name == "beta"
    assert cfg.next_enabled("ci").name == "beta"
    assert cfg.next_enabled("beta").name == "live"
    # a disabled stage still has neighbours
    assert cfg.previous_enabled("paper").name == "beta"
    assert cfg.next_enabled("paper").name == "live"
    assert [s.name for s in cfg.deploy_stages] == ["beta", "paper", "live"]


def test_defaults_for_optional_sections(tmp_path):
    def strip(data):
        del data["market"], data["break_glass"], data["audit"]
        del stage(data, "beta")["gates"]

    cfg = load_config(variant(tmp_path, strip))
    assert cfg.market.timezone == "America/New_York"
    assert (cfg.market.open, cfg.market.close) == (time(9, 30), time(16, 0))
    assert cfg.market.calendar == "nyse"
    assert cfg.break_glass_validity == timedelta(hours=1)
    assert cfg.audit_log == ".pipectl/audit.jsonl"
    assert cfg.stage("beta").gates == Gates()


def test_partial_market_and_weekdays(tmp_path):
    def edit(data):
        data["market"] = {"calendar": "weekdays", "close": "15:00"}
        data["break_glass"]["validity"] = "1h30m"
        data["audit"]["log"] = "/var/lib/pipectl/audit/audit.jsonl"

    cfg = load_config(variant(tmp_path, edit))
    assert cfg.market.calendar == "weekdays"
    assert cfg.market.open == time(9, 30) and cfg.market.close == time(15, 0)
    assert cfg.break_glass_validity == timedelta(minutes=90)
    assert cfg.audit_log == "/var/lib/pipectl/audit/audit.jsonl"


def test_exact_message_for_unknown_gate_key(tmp_path):
    path = variant(tmp_path, lambda d: stage(d, "live")["gates"].update(market_hour=True))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: stages[4].gates.market_hour: unknown key "
        "(expected one of: approval, integration_test, market_hours)"
    )
    assert info.value.exit_code == 2


def _set(path: str, value):
    """Mutator setting a dotted path (list indices as [n]) to value."""

    def mutate(data):
        node = data
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _del(path: str):
    def mutate(data):
        node = data
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]]

    return mutate


def _stages(fn):
    def mutate(data):
        data["stages"] = fn(data["stages"])

    return mutate


INVALID = [
    # unknown keys at every level
    ("top-unknown", _set("stage", []), "stage", "unknown key (expected one of: audit, break_glass"),
    ("repo-unknown", _set("repository.urls", "x"), "repository.urls", "unknown key"),
    ("image-unknown", _set("image.tag", "x"), "image.tag", "unknown key"),
    ("market-unknown", _set("market.tz", "UTC"), "market.tz", "unknown key"),
    ("bg-unknown", _set("break_glass.valid", "1h"), "break_glass.valid", "unknown key"),
    ("audit-unknown", _set("audit.path", "x"), "audit.path", "unknown key"),
    ("stage-unknown", _set("stages[1].enable", True), "stages[1].enable", "unknown key"),
    # missing required keys
    ("no-version", _del("version"), "version", "missing required key"),
    ("no-repository", _del("repository"), "repository", "missing required key"),
    ("no-url", _del("repository.url"), "repository.url", "missing required key"),
    ("no-branch", _del("repository.branch"), "repository.branch", "missing required key"),
    ("no-image", _del("image"), "image", "missing required key"),
    ("no-registry", _del("image.registry"), "image.registry", "missing required key"),
    ("no-tag-key", _del("image.tag_key"), "image.tag_key", "missing required key"),
    ("no-stages", _del("stages"), "stages", "missing required key"),
    ("no-name", _del("stages[2].name"), "stages[2].name", "missing required key"),
    ("no-enabled", _del("stages[2].enabled"), "stages[2].enabled", "missing required key"),
    ("no-namespace", _del("stages[3].namespace"), "stages[3].namespace", "missing required key"),
    ("no-values", _del("stages[4].values"), "stages[4].values", "missing required key"),
    # wrong types
    ("version-str", _set("version", "1"), "version", "expected an integer"),
    ("version-bool", _set("version", True), "version", "expected an integer"),
    ("version-2", _set("version", 2), "version", "unsupported version 2"),
    ("repo-list", _set("repository", ["x"]), "repository", "expected a mapping, got a list"),
    ("url-int", _set("repository.url", 5), "repository.url", "expected a string"),
    ("url-empty", _set("repository.url", " "), "repository.url", "must not be empty"),
    ("branch-space", _set("repository.branch", "ma in"), "repository.branch", "not a branch"),
    ("registry-slash", _set("image.registry", "ghcr.io/x/"), "image.registry", "not an image"),
    ("tag-key-bad", _set("image.tag_key", "global..tag"), "image.tag_key", "dotted key path"),
    ("market-null", _set("market", None), "market", "expected a mapping, got null"),
    ("enabled-str", _set("stages[0].enabled", "yes"), "stages[0].enabled", "expected true or"),
    ("gate-str", _set("stages[4].gates.approval", "true"), "stages[4].gates.approval", "true or"),
    ("gates-list", _set("stages[3].gates", ["market_hours"]), "stages[3].gates", "a mapping"),
    ("stages-map", _set("stages", {"ci": True}), "stages", "expected a list, got a mapping"),
    ("stage-str", _set("stages[0]", "ci"), "stages[0]", "expected a mapping, got a string"),
    ("name-int", _set("stages[0].name", 1), "stages[0].name", "expected a string"),
    ("audit-null", _set("audit.log", None), "audit.log", "expected a string, got null"),
    # stage set and order
    (
        "swapped",
        _stages(lambda s: [s[0], s[1], s[2], s[4], s[3]]),
        "stages[3].name",
        "stage 'live' out of order: expected 'paper' here",
    ),
    ("no-ci", _stages(lambda s: s[1:]), "stages[0].name", "out of order: expected 'ci'"),
    ("no-live", _stages(lambda s: s[:4]), "stages", "missing stage(s): live"),
    ("empty-stages", _stages(lambda s: []), "stages", "missing stage(s): ci, integration-test"),
    ("dup-beta", _stages(lambda s: [*s[:3], s[2], *s[3:]]), "stages[3].name", "duplicate stage"),
    ("dup-live", _stages(lambda s: [*s, s[4]]), "stages[5].name", "duplicate stage 'live'"),
    ("unknown-stage", _set("stages[2].name", "prod"), "stages[2].name", "unknown stage 'prod'"),
    # market
    ("open-short", _set("market.open", "9:30"), "market.open", "is not a 24-hour"),
    ("open-24", _set("market.open", "24:00"), "market.open", "is not a 24-hour"),
    ("open-60", _set("market.open", "09:60"), "market.open", "is not a 24-hour"),
    ("open-nocolon", _set("market.open", "0930"), "market.open", "is not a 24-hour"),
    ("open-seconds", _set("market.open", "09:30:00"), "market.open", "is not a 24-hour"),
    ("open-int", _set("market.open", 570), "market.open", 'quoted "HH:MM"'),
    ("close-before", _set("market.close", "09:00"), "market.close", "must be after market.open"),
    ("close-equal", _set("market.close", "09:30"), "market.close", "must be after market.open"),
    ("tz-unknown", _set("market.timezone", "Mars/Olympus"), "market.timezone", "unknown tim"),
    ("tz-path", _set("market.timezone", "../etc/passwd"), "market.timezone", "unknown tim"),
    ("tz-empty", _set("market.timezone", ""), "market.timezone", "must not be empty"),
    ("calendar", _set("market.calendar", "lse"), "market.calendar", "unknown calendar 'lse'"),
    ("calendar-case", _set("market.calendar", "NYSE"), "market.calendar", "unknown calendar"),
    # break-glass validity
    ("validity-zero", _set("break_glass.validity", "0s"), "break_glass.validity", "longer than"),
    ("validity-0h0m", _set("break_glass.validity", "0h0m"), "break_glass.validity", "longer th"),
    ("validity-neg", _set("break_glass.validity", "-1h"), "break_glass.validity", "negative"),
    ("validity-day", _set("break_glass.validity", "1d"), "break_glass.validity", "not a durat"),
    ("validity-bare", _set("break_glass.validity", "60"), "break_glass.validity", "not a durat"),
    ("validity-int", _set("break_glass.validity", 3600), "break_glass.validity", "a string"),
    # deploy stages, namespaces and values paths
    ("ci-namespace", _set("stages[0].namespace", "x"), "stages[0].namespace", "does not deploy"),
    ("it-values", _set("stages[1].values", "a.yaml"), "stages[1].values", "does not deploy"),
    ("ns-bad", _set("stages[2].namespace", "Stonks_Beta"), "stages[2].namespace", "namespace n"),
    (
        "ns-dup",
        _set("stages[3].namespace", "stonks-oracle"),
        "stages[4].namespace",
        "'stonks-oracle' is also used by stage 'paper'",
    ),
    ("values-abs", _set("stages[2].values", "/etc/v.yaml"), "stages[2].values", "be relative"),
    ("values-home", _set("stages[2].values", "~/v.yaml"), "stages[2].values", "be relative"),
    ("values-dotdot", _set("stages[2].values", "apps/../../v.yaml"), "stages[2].values", "'..'"),
    ("values-dir", _set("stages[2].values", "apps/beta/"), "stages[2].values", "name a file"),
    ("values-bslash", _set("stages[2].values", "apps\\v.yaml"), "stages[2].values", "forward"),
    (
        "values-dup",
        _set("stages[3].values", "apps/stonks-oracle/beta/values.yaml"),
        "stages[3].values",
        "also used by stage 'beta'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "key_path", "fragment"),
    [pytest.param(m, k, f, id=i) for i, m, k, f in INVALID],
)
def test_invalid_config(tmp_path, mutate, key_path, fragment):
    path = variant(tmp_path, mutate)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert fragment in message, message
    assert "\n" not in message
    assert path.read_bytes() == before


def _raw(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "pipeline.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("version: 1\nstages: [ci\n", "YAML syntax error: line "),
        ("version: 1\nversion: 1\n", 'line 2, column 1: found duplicate key "version"'),
        ("  - a\n b: c\n", "YAML syntax error: line "),
        ("", "empty file"),
        ("# only a comment\n", "empty file"),
        ("- ci\n- beta\n", "expected a mapping, got a list"),
        (b"version: 1\nname: \xff\xfe\n", "not UTF-8 text"),
    ],
)
def test_unreadable_or_malformed_yaml(tmp_path, content, fragment):
    path = _raw(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{path}: file not found$"):
        load_config(path)


def test_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_unquoted_yaml12_times_are_strings(tmp_path):
    text = (
        SOURCE.read_text(encoding="utf-8").replace('"09:30"', "09:30").replace('"16:00"', "16:00")
    )
    assert 'open: "09:30"' not in text
    cfg = load_config(_raw(tmp_path, text))
    assert cfg.market.open == time(9, 30)


def test_comments_and_layout_of_real_file_are_irrelevant(tmp_path):
    # The tmp copy written by the YAML dumper (no comments) loads to the same config.
    a = load_config(SOURCE)
    b = load_config(write(tmp_path, BASE))
    assert dataclasses.replace(a, path=b.path) == b
