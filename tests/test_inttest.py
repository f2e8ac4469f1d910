"""inttest: results parsing (pure) and `pipectl inttest record` (audit I/O, nothing on error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipectl.audit import AuditLog
from pipectl.cli import main
from pipectl.errors import BadInput
from pipectl.inttest import check_tag, newest_result, parse_results

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_passed_top_level() -> None:
    r = parse_results({"passed": 12, "failed": 0, "errors": 0, "skipped": 2, "total": 14}, 0)
    assert r.passed and r.exit_code == 0
    assert r.counts == {"passed": 12, "failed": 0, "errors": 0, "skipped": 2, "total": 14}
    assert r.action == "inttest.passed"
    assert r.details() == {**r.counts, "exit_code": 0}


def test_summary_container_aliases_and_defaults() -> None:
    # pytest-json-report style: zero counts omitted, `error`, `exitcode`.
    r = parse_results({"exitcode": 0, "summary": {"passed": 3, "total": 3}})
    assert r.passed and r.counts["failed"] == 0 and r.counts["errors"] == 0
    r = parse_results({"counts": {"passed": 3, "error": 1}}, 0)
    assert not r.passed and r.counts["errors"] == 1 and r.counts["total"] == 4
    r = parse_results({"totals": {"passed": 1}, "exit_code": 0})
    assert r.passed


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"passed": 5, "failed": 1, "errors": 0}, 0),  # a failure
        ({"passed": 5, "failed": 0, "errors": 2}, 0),  # an error
        ({"passed": 0, "failed": 0, "errors": 0, "skipped": 4}, 0),  # nothing ran
        ({"passed": 5, "failed": 0, "errors": 0}, 1),  # non-zero exit
        ({"passed": 5, "failed": 0, "errors": 0, "exit_code": 3}, None),
    ],
)
def test_failed_verdicts(obj: dict, code: int | None) -> None:
    r = parse_results(obj, code)
    assert not r.passed
    assert r.action == "inttest.failed"


@pytest.mark.parametrize(
    ("obj", "code", "message"),
    [
        ([1, 2], 0, "expected a JSON object"),
        ({"failed": 0, "errors": 0}, 0, "missing count passed"),
        ({"passed": -1, "failed": 0, "errors": 0}, 0, "non-negative integer"),
        ({"passed": 1.5, "failed": 0, "errors": 0}, 0, "non-negative integer"),
        ({"passed": "3", "failed": 0, "errors": 0}, 0, "non-negative integer"),
        ({"passed": True, "failed": 0, "errors": 0}, 0, "non-negative integer"),
        ({"passed": 3, "failed": 1, "errors": 0, "total": 3}, 0, "total is 3"),
        ({"passed": 3, "errors": 0, "error": 1}, 0, "given twice"),
        ({"summary": {"passed": 1}, "passed": 1}, 0, "both at the top level"),
        ({"summary": {"passed": 1}, "counts": {"passed": 1}}, 0, "more than one"),
        ({"summary": [1]}, 0, "must be an object"),
        ({"passed": 3, "exit_code": 0}, 1, "disagrees"),
        ({"passed": 3, "exit_code": "0"}, None, "must be an integer"),
        ({"passed": 3, "exit_code": 0, "exitcode": 0}, None, "both exit_code and exitcode"),
        ({"passed": 3}, None, "no exit code"),
        ({"passed": 3}, "0", "not an integer"),
    ],
)
def test_bad_results(obj: object, code: object, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_results(obj, code)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tag", ["", "abc123", "ABC1234", "g123456", "a" * 41, "abc1234\n", None, 1234567]
)
def test_bad_tags(tag: object) -> None:
    with pytest.raises(BadInput, match="not a git SHA"):
        check_tag(tag)


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pipeline.yaml").write_text(
        (Path(__file__).resolve().parents[1] / "pipeline.yaml").read_text()
    )
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PIPECTL_AUDIT_LOG", str(audit))
    monkeypatch.setenv("PIPECTL_ACTOR", "ci@example.com")
    return {"repo": repo, "audit": audit, "tmp": tmp_path}


def test_cli_records_pass_and_fail(env: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    results = env["tmp"] / "inttest-results.json"
    results.write_text(json.dumps({"summary": {"passed": 7, "failed": 0, "errors": 0}}))
    rc = _run(
        "--repo",
        str(env["repo"]),
        "inttest",
        "record",
        "--results",
        str(results),
        "--tag",
        SHA,
        "--exit-code",
        "0",
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "passed for" in out and "eligible for beta" in out
    results.write_text(json.dumps({"passed": 6, "failed": 1, "errors": 0, "exit_code": 1}))
    rc = _run(
        "--repo",
        str(env["repo"]),
        "inttest",
        "record",
        "--results",
        str(results),
        "--tag",
        "abcdef1",
    )
    assert rc == 0
    assert "FAILED" in capsys.readouterr().out
    log = AuditLog(env["audit"])
    entries = log.entries()
    assert [(e.action, e.tag, e.actor, e.stage) for e in entries] == [
        ("inttest.passed", SHA, "ci@example.com", "integration-test"),
        ("inttest.failed", "abcdef1", "ci@example.com", "integration-test"),
    ]
    assert entries[0].details == {
        "passed": 7,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "total": 7,
        "exit_code": 0,
        "source": "inttest-results.json",
    }
    assert log.verify().ok
    newest = newest_result(entries)
    assert newest is not None and newest.tag == "abcdef1"
    assert newest_result([]) is None


@pytest.mark.parametrize(
    ("content", "tag", "extra", "message"),
    [
        (None, SHA, [], "results file not found"),
        ("{not json", SHA, [], "not valid JSON"),
        (
            '{"passed": 3, "failed": 1, "errors": 0, "total": 3}',
            SHA,
            ["--exit-code", "0"],
            "total is 3",
        ),
        ('{"passed": 3, "failed": 0, "errors": 0}', "HEAD", ["--exit-code", "0"], "not a git SHA"),
        ('{"passed": 3, "exit_code": 0}', SHA, ["--exit-code", "2"], "disagrees"),
        ('{"passed": -3}', SHA, ["--exit-code", "0"], "non-negative"),
    ],
)
def test_cli_bad_input_records_nothing(
    env: dict[str, Path],
    capsys: pytest.CaptureFixture,
    content: str | None,
    tag: str,
    extra: list[str],
    message: str,
) -> None:
    results = env["tmp"] / "inttest-results.json"
    if content is not None:
        results.write_text(content)
    rc = _run(
        "--repo",
        str(env["repo"]),
        "inttest",
        "record",
        "--results",
        str(results),
        "--tag",
        tag,
        *extra,
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("pipectl: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not env["audit"].exists() or AuditLog(env["audit"]).entries() == []
