"""pipectl status: tags at HEAD, last promotion from trailers + audit, inttest, --cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _gitfix import commit_file, git, pipeline_repo
from pipectl import gitrepo
from pipectl.audit import AuditLog
from pipectl.context import Context
from pipectl.status import collect, format_text
from pipectl.values_file import set_tag

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cluster"
UPSTREAM = Path(
    os.environ.get(
        "PIPECTL_UPSTREAM_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "upstream"
    )
)
OPEN = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday 11:00 New York (EDT)
TAG_A = "abc1234def5678"
TAG_B = "9f8e7d6c5b4a3"


def _ctx(repo: Path, audit: Path) -> Context:
    return Context(repo=repo, audit_log_override=str(audit), actor_override="alice@example.com")


@pytest.fixture
def world(tmp_path: Path) -> dict:
    repo = pipeline_repo(tmp_path / "repo")
    audit_path = tmp_path / "audit.jsonl"
    log = AuditLog(audit_path)
    log.append(
        action="inttest.passed",
        actor="ci",
        stage="integration-test",
        tag=TAG_A,
        details={
            "passed": 4,
            "failed": 0,
            "errors": 0,
            "skipped": 0,
            "total": 4,
            "exit_code": 0,
            "source": "inttest-results.json",
        },
    )
    log.append(
        action="inttest.failed",
        actor="ci",
        stage="integration-test",
        tag="deadbee",
        details={"passed": 3, "failed": 1, "errors": 0, "skipped": 0, "total": 4, "exit_code": 1},
    )
    # A promotion as pipectl writes it: trailers + promotion.completed naming the commit.
    values = "apps/stonks-oracle/beta/values.yaml"
    set_tag(repo / values, "global.image.tag", TAG_A)
    requested = log.append(
        action="promotion.requested",
        actor="alice@example.com",
        stage="beta",
        from_stage="integration-test",
        tag=TAG_A,
    )
    sha = gitrepo.commit_paths(
        repo,
        [values],
        f"promote(beta): {TAG_A}",
        "first beta\nsecond line",
        [
            ("Pipeline-Stage", "beta"),
            ("Image-Tag", TAG_A),
            ("From-Stage", "integration-test"),
            ("Promoted-By", "alice@example.com"),
            ("Break-Glass", "none"),
            ("Audit-Id", requested.id),
        ],
    )
    completed = log.append(
        action="promotion.completed",
        actor="alice@example.com",
        stage="beta",
        from_stage="integration-test",
        tag=TAG_A,
        notes="first beta\nsecond line",
        details={"commit": sha},
    )
    # A plain commit (as Kargo's git-commit step makes) that changes paper's tag.
    paper = repo / "apps/stonks-oracle/paper/values.yaml"
    set_tag(paper, "global.image.tag", TAG_B)
    git(repo, "add", "apps/stonks-oracle/paper/values.yaml")
    git(repo, "commit", "-qm", "updated apps/stonks-oracle/paper/values.yaml")
    kargo_sha = git(repo, "rev-parse", "HEAD").strip()
    # A hand edit of another key must not count as a promotion.
    live = repo / "apps/stonks-oracle/live/values.yaml"
    commit_file(
        repo,
        "apps/stonks-oracle/live/values.yaml",
        live.read_text().replace("stonks-tls", "stonks-live-tls"),
        "live: tls secret",
    )
    # Uncommitted working-tree edits are not what Argo CD deploys: status reads HEAD.
    set_tag(repo / values, "global.image.tag", "ffffffff")
    return {
        "repo": repo,
        "audit": audit_path,
        "sha": sha,
        "completed": completed,
        "requested": requested,
        "kargo_sha": kargo_sha,
    }


def test_status_document(world: dict) -> None:
    doc = collect(_ctx(world["repo"], world["audit"]), OPEN)
    assert doc["commit"] == git(world["repo"], "rev-parse", "HEAD").strip()
    assert doc["branch"] == "main"
    assert doc["market"]["open"] is True and doc["market"]["seconds_to_close"] == 5 * 3600
    rows = {r["name"]: r for r in doc["stages"]}
    assert [r["name"] for r in doc["stages"]] == ["ci", "integration-test", "beta", "paper", "live"]
    assert all(r["enabled"] for r in doc["stages"])
    assert rows["ci"]["tag"] == "deadbee"
    assert rows["integration-test"]["inttest"]["result"] == "failed"
    assert rows["integration-test"]["last_passed"]["tag"] == TAG_A
    assert rows["integration-test"]["last_passed"]["counts"]["passed"] == 4
    beta = rows["beta"]
    assert beta["tag"] == TAG_A  # HEAD, not the dirty working tree
    p = beta["last_promotion"]
    assert p["commit"] == world["sha"]
    assert p["by"] == "alice@example.com"
    assert p["notes"] == "first beta\nsecond line"
    assert p["from_stage"] == "integration-test"
    assert p["break_glass"] is None
    assert p["audit_id"] == world["completed"].id
    assert p["time"] == world["completed"].time
    assert p["via"] == "pipectl"
    paper = rows["paper"]
    assert paper["tag"] == TAG_B
    assert paper["last_promotion"]["commit"] == world["kargo_sha"]
    assert paper["last_promotion"]["via"] == "commit"
    assert paper["last_promotion"]["tag"] == TAG_B
    assert paper["last_promotion"]["by"] == "Test Author <author@example.com>"
    assert rows["live"]["tag"] is None
    assert rows["live"]["last_promotion"] is None  # the TLS edit is not a promotion
    text = format_text(doc)
    assert "market: OPEN" in text
    assert f"beta              yes      {TAG_A[:12]}" in text
    assert "live              yes      (none)         -" in text
    assert '"first beta"' in text


def test_break_glass_and_disabled_stage(world: dict) -> None:
    repo = world["repo"]
    values = "apps/stonks-oracle/live/values.yaml"
    set_tag(repo / values, "global.image.tag", TAG_B)
    gitrepo.commit_paths(
        repo,
        [values],
        f"promote(live): {TAG_B}",
        "",
        [
            ("Pipeline-Stage", "live"),
            ("Image-Tag", TAG_B),
            ("From-Stage", "paper"),
            ("Promoted-By", "bob@example.com"),
            ("Break-Glass", "bg-123"),
            ("Audit-Id", "x"),
        ],
    )
    text = (repo / "pipeline.yaml").read_text()
    (repo / "pipeline.yaml").write_text(
        text.replace(
            "  - name: integration-test\n    enabled: true",
            "  - name: integration-test\n    enabled: false",
        )
    )
    doc = collect(_ctx(repo, world["audit"]), datetime(2026, 3, 14, 15, 0, tzinfo=UTC))
    rows = {r["name"]: r for r in doc["stages"]}
    assert rows["integration-test"]["enabled"] is False
    live = rows["live"]["last_promotion"]
    assert live["break_glass"] == "bg-123" and live["by"] == "bob@example.com"
    assert live["audit_id"] == "x" and live["notes"] == ""
    assert doc["market"]["open"] is False  # a Saturday
    out = format_text(doc)
    assert "BREAK-GLASS bg-123" in out and "market: closed" in out
    assert "[disabled" in out


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class FakeApi:
    """Answers get_namespaced_custom_object from the recorded fixtures."""

    def __init__(self, missing: set[str] = frozenset(), forbidden: set[str] = frozenset()):
        self.calls: list[tuple] = []
        self.missing = missing
        self.forbidden = forbidden

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        from kubernetes.client.exceptions import ApiException

        self.calls.append((group, version, namespace, plural, name))
        if name in self.forbidden:
            raise ApiException(status=403, reason="Forbidden")
        prefix = "kargo-stage-" if plural == "stages" else "argocd-application-"
        short = name.removeprefix("stonks-oracle-")
        path = FIXTURES / f"{prefix}{short}.json"
        if name in self.missing or not path.exists():
            raise ApiException(status=404, reason="Not Found")
        return json.loads(path.read_text())


def test_cluster_view(world: dict, mocker) -> None:
    api = FakeApi(forbidden={"stonks-oracle-live"})
    loader = mocker.patch("pipectl.cluster.custom_objects_api", return_value=api)
    doc = collect(_ctx(world["repo"], world["audit"]), OPEN, cluster=True)
    loader.assert_called_once_with()
    rows = {r["name"]: r for r in doc["stages"]}
    assert ("kargo.akuity.io", "v1alpha1", "kargo-stonks-oracle", "stages", "beta") in api.calls
    assert ("argoproj.io", "v1alpha1", "argocd", "applications", "stonks-oracle-paper") in api.calls
    assert "cluster" not in rows["ci"]  # ci is not a Kargo stage
    beta = rows["beta"]["cluster"]
    assert beta["kargo"]["tag"] == TAG_A  # freightHistory[0], not the older entry
    assert beta["kargo"]["freight"] == "4b2f1c0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    assert beta["kargo"]["last_promotion"]["phase"] == "Succeeded"
    assert beta["argocd"] == {
        "sync": "Synced",
        "health": "Healthy",
        "revision": [
            "5d4c3b2a19081726354453627180910a0b0c0d0e",
            "0e0d0c0b0a9180726354453627180910a2b3c4d5",
        ],
        "operation": "Succeeded",
    }
    assert rows["beta"]["drift"] == []
    assert rows["paper"]["drift"] == ["Argo CD sync OutOfSync"]
    assert rows["paper"]["cluster"]["kargo"]["health"] == "Progressing"
    live = rows["live"]["cluster"]
    assert live["kargo"]["tag"] is None and live["kargo"]["freight"] is None
    assert live["argocd"] == {"error": "applications/stonks-oracle-live: HTTP 403 Forbidden"}
    text = format_text(doc)
    assert "argocd: Synced/Healthy" in text
    assert "DRIFT: Argo CD sync OutOfSync" in text
    assert "argocd: applications/stonks-oracle-live: HTTP 403 Forbidden" in text


def test_cluster_drift_when_kargo_disagrees(world: dict, mocker) -> None:
    api = FakeApi(missing={"stonks-oracle-beta"})
    mocker.patch("pipectl.cluster.custom_objects_api", return_value=api)
    repo = world["repo"]
    set_tag(repo / "apps/stonks-oracle/beta/values.yaml", "global.image.tag", "1234abcd")
    git(repo, "commit", "-qam", "manual beta bump")
    doc = collect(_ctx(repo, world["audit"]), OPEN, cluster=True)
    beta = {r["name"]: r for r in doc["stages"]}["beta"]
    assert beta["drift"] == [
        f"Kargo freight tag {TAG_A} != values tag 1234abcd",
        "Argo CD Application not found",
    ]


def test_cluster_without_config_is_a_clear_error(world: dict, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(world["repo"] / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    from pipectl.errors import PipectlError

    with pytest.raises(PipectlError, match="no usable kubeconfig"):
        collect(_ctx(world["repo"], world["audit"]), OPEN, cluster=True)


def test_status_cli_never_imports_kubernetes(world: dict) -> None:
    code = (
        "import sys\n"
        "from pipectl.cli import main\n"
        "try:\n"
        "    main(['--repo', sys.argv[1], '--audit-log', sys.argv[2], 'status', '--json',\n"
        "          '--at', '2026-03-10T11:00:00-04:00'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('KUBE', any(m.split('.')[0] == 'kubernetes' for m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(world["repo"]), str(world["audit"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out[: out.rindex("}") + 1])
    assert doc["market"]["open"] is True
    assert out.strip().endswith("KUBE False")


def _crd_schema(path: Path) -> dict:
    from ruamel.yaml import YAML

    docs = [d for d in YAML(typ="safe").load_all(path.read_text()) if d]
    [version] = [v for v in docs[0]["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize(
    ("crd", "pattern"),
    [
        ("kargo-v1.11.2/kargo.akuity.io_stages.yaml", "kargo-stage-*.json"),
        ("argo-cd-v3.4.4/application-crd.yaml", "argocd-application-*.json"),
    ],
)
def test_fixtures_match_the_upstream_crds(crd: str, pattern: str) -> None:
    import jsonschema

    path = UPSTREAM / crd
    if not path.exists():
        pytest.skip(f"upstream CRD not available at {path}")
    validator = jsonschema.Draft7Validator(_crd_schema(path))
    files = sorted(FIXTURES.glob(pattern))
    assert files
    for f in files:
        assert [e.message for e in validator.iter_errors(json.loads(f.read_text()))] == [], f
