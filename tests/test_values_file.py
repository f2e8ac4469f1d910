"""values_file: byte-exact single-scalar edits, and the per-stage values contract."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from pipectl.errors import BadInput, ConfigError
from pipectl.values_file import read_tag, set_scalar_text, set_tag, tag_from_text
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "apps" / "stonks-oracle"
STAGES = ("beta", "paper", "live")

ODD = """\
# A values file written by hand, with every quirk a human leaves behind.
global:      # trailing comment after a mapping key
    stage: 'paper'   # single quotes
    image:
        registry: "ghcr.io/celesrenata/stonks-oracle"     # double quotes, odd spacing
        # the tag below is what promotions change
        tag:   'abc1234'    #   keep   this comment   exactly
        pullPolicy: IfNotPresent
    env: {BROKER_MODE: paper,   BROKER_PROVIDER: "alpaca"}   # flow mapping
list:
  -   'one'
  - "two"   # quoted in a sequence
  - three
folded: >
  a folded
  block scalar
literal: |-
    keep   this
       indentation
empty_string: ''
weird: "tab\\there \\"quoted\\""
unicode: "caf\u00e9 \u2603"
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _repo_with(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "config", "core.autocrlf", "false")
    path = repo / name
    path.write_bytes(text.replace("\n", newline).encode())
    _git(repo, "add", name)
    _git(repo, "commit", "-qm", "init")
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_round_trip_changes_exactly_one_line(tmp_path: Path, newline: str) -> None:
    path = _repo_with(tmp_path, "values.yaml", ODD, newline)
    before = path.read_bytes()
    old, new = set_tag(path, "global.image.tag", "0123456789abcdef0123456789abcdef01234567")
    assert old != new
    after = path.read_bytes()
    numstat = _git(path.parent, "diff", "--numstat", "--", "values.yaml").split()
    assert numstat[:2] == ["1", "1"]
    diff = subprocess.run(
        ["git", "diff", "-U0", "--", "values.yaml"],
        cwd=path.parent,
        check=True,
        capture_output=True,
    ).stdout.decode()
    changed = [
        ln for ln in diff.split("\n") if ln[:1] in ("+", "-") and ln[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-        tag:   'abc1234'    #   keep   this comment   exactly" + newline.rstrip("\n"),
        "+        tag:   '0123456789abcdef0123456789abcdef01234567'    #   keep   this comment"
        "   exactly" + newline.rstrip("\n"),
    ]
    # Outside the edited line every byte is the same.
    b_lines, a_lines = before.splitlines(True), after.splitlines(True)
    assert len(b_lines) == len(a_lines)
    assert [x for x, y in zip(b_lines, a_lines, strict=True) if x != y] == [b_lines[6]]
    assert read_tag(path, "global.image.tag") == "0123456789abcdef0123456789abcdef01234567"


def test_double_quoted_empty_tag_stays_double_quoted() -> None:
    text = (APP / "paper" / "values.yaml").read_text()
    new = set_scalar_text(text, ["global", "image", "tag"], "deadbeef1", "paper")
    assert '    tag: "deadbeef1"\n' in new
    assert new.replace('"deadbeef1"', '""', 1) == text


@pytest.mark.parametrize(
    ("tag", "written"),
    [
        ("abc1234", "abc1234"),
        ("1234567", '"1234567"'),  # all digits: would load as an int
        ("0123456", '"0123456"'),  # YAML 1.1 octal
        ("0b10101", '"0b10101"'),  # YAML 1.1 binary (Helm's parser)
        ("123e456", '"123e456"'),  # float
    ],
)
def test_plain_scalar_is_quoted_when_needed(tag: str, written: str) -> None:
    text = "global:\n  image:\n    tag: cafe123  # c\n"
    new = set_scalar_text(text, ["global", "image", "tag"], tag, "t")
    assert new == f"global:\n  image:\n    tag: {written}  # c\n"
    assert tag_from_text(new, "global.image.tag", "t") == tag


def test_flow_mapping_value_and_sequence_item() -> None:
    text = ODD
    new = set_scalar_text(text, ["global", "env", "BROKER_MODE"], "live", "t")
    assert "env: {BROKER_MODE: live,   BROKER_PROVIDER:" in new
    new = set_scalar_text(text, ["list", 1], "zwei", "t")
    assert '  - "zwei"   # quoted in a sequence\n' in new
    new = set_scalar_text(text, ["weird"], 'a"b', "t")
    assert 'weird: "a\\"b"\n' in new


def test_bool_scalar() -> None:
    text = "stages:\n  - name: live\n    enabled: true   # the switch\n"
    new = set_scalar_text(text, ["stages", 0, "enabled"], False, "p")
    assert new == "stages:\n  - name: live\n    enabled: false   # the switch\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (["global", "image", "nope"], "does not exist"),
        (["global", "image"], "not a scalar"),
        (["list"], "not a scalar"),
        (["folded"], "block scalar"),
        (["literal"], "block scalar"),
        (["list", 7], "no item"),
    ],
)
def test_refuses_anything_but_an_existing_scalar(path: list, message: str) -> None:
    with pytest.raises((BadInput, ConfigError), match=message):
        set_scalar_text(ODD, path, "x", "t")


def test_refuses_empty_value_anchor_alias_and_multiline() -> None:
    with pytest.raises(BadInput, match="no value"):
        set_scalar_text("a:\n  tag:\n  b: 1\n", ["a", "tag"], "x", "t")
    with pytest.raises(BadInput, match="anchor"):
        set_scalar_text("a: &x v\nb: *x\n", ["a"], "y", "t")
    with pytest.raises(BadInput, match=r"alias|anchor"):
        set_scalar_text("a: &x v\nb: *x\n", ["b"], "y", "t")
    with pytest.raises(BadInput):
        set_scalar_text("a: 'one\n  two'\n", ["a"], "y", "t")
    with pytest.raises(BadInput, match="one line"):
        set_scalar_text("a: b\n", ["a"], "x\ny", "t")
    # explicit null tokens are scalars and may change
    assert set_scalar_text("a: ~  # none\n", ["a"], "abc1234", "t") == "a: abc1234  # none\n"


def test_merged_key_is_refused() -> None:
    text = "base: &b\n  tag: abc1234\nstage:\n  <<: *b\n  other: 1\n"
    with pytest.raises(BadInput):
        set_scalar_text(text, ["stage", "tag"], "def5678", "t")


def test_bad_yaml_and_multi_document() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        set_scalar_text("a: [1,\n", ["a"], "x", "t")
    with pytest.raises(ConfigError, match="exactly one YAML document"):
        set_scalar_text("a: 1\n---\na: 2\n", ["a"], "x", "t")


def test_read_tag_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_tag(tmp_path / "missing.yaml", "global.image.tag")
    p = tmp_path / "v.yaml"
    p.write_text("global:\n  image:\n    tag: 1234567\n")
    with pytest.raises(ConfigError, match="must be a string"):
        read_tag(p, "global.image.tag")
    p.write_text("global:\n  image:\n    tag: ~\n")
    assert read_tag(p, "global.image.tag") == ""


def test_set_tag_is_atomic_and_keeps_mode(tmp_path: Path) -> None:
    p = tmp_path / "v.yaml"
    p.write_text("global:\n  image:\n    tag: ''\n")
    p.chmod(0o640)
    set_tag(p, "global.image.tag", "abc1234")
    assert p.stat().st_mode & 0o777 == 0o640
    assert p.read_text() == "global:\n  image:\n    tag: 'abc1234'\n"
    assert [x.name for x in tmp_path.iterdir()] == ["v.yaml"]
    before = p.read_bytes()
    with pytest.raises(ConfigError):
        set_tag(p, "global.image.nope", "abc1234")
    assert p.read_bytes() == before


# --- the values contract -------------------------------------------------------------


def _schema() -> dict:
    schema = json.loads((APP / "values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _values(stage: str) -> dict:
    return YAML(typ="safe").load((APP / stage / "values.yaml").read_text())


def _errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema())
    return [e.message for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_values_match_the_contract(stage: str) -> None:
    doc = _values(stage)
    assert _errors(doc) == []
    assert doc["global"]["stage"] == stage
    pipeline = YAML(typ="safe").load((REPO / "pipeline.yaml").read_text())
    assert doc["global"]["image"]["registry"] == pipeline["image"]["registry"]
    # The tag key pipeline.yaml names exists and holds "" (nothing deployed yet) or a SHA.
    text = (APP / stage / "values.yaml").read_text()
    assert tag_from_text(text, pipeline["image"]["tag_key"], stage) == ""
    by_name = {s["name"]: s for s in pipeline["stages"]}
    assert by_name[stage]["values"] == f"apps/stonks-oracle/{stage}/values.yaml"


def test_stage_specific_wiring() -> None:
    beta, paper, live = (_values(s) for s in STAGES)
    for doc in (beta, paper):
        assert doc["global"]["env"] == {"BROKER_MODE": "paper", "BROKER_PROVIDER": "alpaca"}
        assert doc["broker"]["credentialsSecret"] == "alpaca-paper-credentials"
    assert live["global"]["env"] == {"BROKER_MODE": "live", "BROKER_PROVIDER": "alpaca"}
    assert live["broker"]["credentialsSecret"] == "alpaca-live-credentials"
    hosts = [d["ingress"]["host"] for d in (beta, paper, live)]
    assert hosts == [
        "stonks-beta.celestium.life",
        "stonks-paper.celestium.life",
        "stonks.celestium.life",
    ]
    assert len({d["ingress"]["tls"]["secretName"] for d in (beta, paper, live)}) == 3


def _mutated(stage: str, dotted: str, value: object) -> dict:
    doc = _values(stage)
    node = doc
    keys = dotted.split("|")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("stage", "key", "value"),
    [
        ("paper", "global|env|BROKER_MODE", "live"),  # paper stage in live mode
        ("beta", "global|env|BROKER_MODE", "live"),
        ("live", "global|env|BROKER_MODE", "paper"),
        ("paper", "broker|credentialsSecret", "alpaca-live-credentials"),
        ("live", "broker|credentialsSecret", "alpaca-paper-credentials"),
        ("paper", "broker|apiKey", "AKXXXXXXXXXXXX"),  # a credential value in Git
        ("paper", "global|image|repository", "evil/image"),  # a second image reference
        ("paper", "global|image|tag", "latest"),
        ("paper", "global|image|tag", "ABC1234"),
        ("paper", "global|image|tag", "abc12"),
        ("paper", "global|image|registry", "ghcr.io/celesrenata/stonks-oracle/"),
        ("paper", "global|env|BROKER_PROVIDER", "ibkr"),
        ("paper", "global|env|LOG_LEVEL", 3),
        ("paper", "ingress|ingressClassName", "nginx"),
        ("paper", "ingress|host", "stonks-paper.example.com"),
        ("paper", "broker|credentialsSecret", "Alpaca_Paper"),
    ],
)
def test_contract_rejects(stage: str, key: str, value: object) -> None:
    assert _errors(_mutated(stage, key, value))


def test_contract_is_open_where_the_chart_may_add_keys() -> None:
    doc = _values("paper")
    doc["resources"] = {"limits": {"memory": "512Mi"}}
    doc["global"]["env"]["LOG_LEVEL"] = "debug"
    doc["ingress"]["paths"] = ["/"]
    doc["global"]["image"]["pullPolicy"] = "Always"
    assert _errors(doc) == []
