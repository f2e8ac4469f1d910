"""pipectl check: the GitOps tree passes; each negative case fails naming its file.

Reads the pinned upstream mirror from PIPECTL_UPSTREAM_DIR (default ../shared/upstream) and
needs kubeconform 0.7.0 (PATH or ~/go/bin); each test works on a copy of the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pipectl.config import load_config
from pipectl.errors import BadInput
from pipectl.validate import CheckReport, run_check
from pipectl.validate.kubeconform import find_kubeconform
from pipectl.validate.schemas import convert_crd_schema

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "manifests"
STAGES = "gitops/kargo/project/rendered/stages.yaml"
TASK = "gitops/kargo/project/rendered/promotion-task.yaml"
INFRA = "gitops/apps/rendered/infra.yaml"
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def upstream_dir() -> Path:
    path = Path(os.environ.get("PIPECTL_UPSTREAM_DIR", REPO.parent / "shared" / "upstream"))
    if not (path / "SHA256SUMS").is_file():
        pytest.skip(f"no upstream mirror at {path}")
    return path


@pytest.fixture(scope="session")
def kubeconform() -> str:
    try:
        return find_kubeconform()
    except BadInput as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schema-cache")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pipeline.yaml", "pyproject.toml"):
        shutil.copy2(REPO / name, repo / name)
    for name in ("gitops", "apps"):
        shutil.copytree(REPO / name, repo / name)
    return repo


def check(repo: Path, kubeconform: str, cache: Path, upstream: Path | None = None) -> CheckReport:
    config = load_config(repo / "pipeline.yaml")
    return run_check(repo, config, upstream or upstream_dir(), kubeconform, cache)


def messages(report: CheckReport) -> list[str]:
    return [str(f) for f in report.failures]


def edit(repo: Path, rel: str, old: str, new: str, count: int = 1) -> None:
    path = repo / rel
    text = path.read_text()
    assert text.count(old) >= count, (rel, old)
    path.write_text(text.replace(old, new, count))


def add_fixture(repo: Path, name: str, where: str = "gitops/console") -> str:
    shutil.copy2(FIXTURES / name, repo / where / name)
    return f"{where}/{name}"


def assert_fails(report: CheckReport, *fragments: str) -> None:
    assert not report.ok
    text = "\n".join(messages(report))
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


# --- the real tree ---------------------------------------------------------------------------


def test_the_tree_passes(kubeconform: str, cache: Path) -> None:
    report = check(REPO, kubeconform, cache)
    assert report.ok, "\n".join(messages(report))
    assert report.documents >= 40
    assert report.step_configs == 8  # 2 (integration-test: gate, inttest) + 6 in the task
    assert report.values_files == 4
    kinds = {f for f in report.timings}
    assert {"upstream", "parse", "schemas", "steps", "policy", "kubeconform"} <= kinds


def test_schemas_are_cached_by_upstream_hashes(
    tree: Path, kubeconform: str, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh-cache"
    first = check(tree, kubeconform, fresh)
    second = check(tree, kubeconform, fresh)
    assert first.ok and second.ok
    assert first.schemas_generated > 20
    assert second.schemas_generated == 0
    assert len(list((fresh / "schemas").iterdir())) == 1


# --- the negative cases the issue names --------------------------------------------------------


def test_unknown_field_in_a_stage_fails_naming_the_file(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    rel = add_fixture(tree, "stage-unknown-field.yaml", "gitops/kargo/project")
    assert_fails(check(tree, kubeconform, cache), rel, "Stage/canary", "autoPromote")


def test_unknown_field_in_a_rendered_stage_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, STAGES, "  requestedFreight:\n", "  requestedFreigth: []\n  requestedFreight:\n")
    assert_fails(
        check(tree, kubeconform, cache), STAGES, "Stage/integration-test", "requestedFreigth"
    )


def test_branch_in_git_push_fails_naming_the_file(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    rel = add_fixture(tree, "git-push-branch.yaml", "gitops/kargo/project")
    report = check(tree, kubeconform, cache)
    assert_fails(
        report, rel, "PromotionTask/push-with-branch", "targetBranch", "'branch' was unexpected"
    )


def test_secret_with_data_fails_naming_the_file(tree: Path, kubeconform: str, cache: Path) -> None:
    rel = add_fixture(tree, "secret-with-data.yaml")
    assert_fails(check(tree, kubeconform, cache), rel, "Secret/leaked-token", "Secret with data")


def test_pv_without_retain_fails_naming_the_file(tree: Path, kubeconform: str, cache: Path) -> None:
    rel = add_fixture(tree, "pv-without-retain.yaml", "gitops/bootstrap")
    assert_fails(
        check(tree, kubeconform, cache), rel, "PersistentVolume/pipelines-scratch", "Retain"
    )


# --- upstream pins -----------------------------------------------------------------------------


def test_tampered_upstream_file_fails_before_anything_uses_it(
    tree: Path, kubeconform: str, cache: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "upstream"
    shutil.copytree(upstream_dir(), mirror)
    crd = mirror / "kargo-v1.11.2" / "kargo.akuity.io_stages.yaml"
    crd.write_text(crd.read_text().replace("requestedFreight", "requestedFreightX", 1))
    report = check(tree, kubeconform, cache, mirror)
    assert_fails(report, str(crd), "SHA-256 mismatch")
    assert report.documents == 0  # nothing else ran


def test_missing_upstream_mirror_fails(
    tree: Path, kubeconform: str, cache: Path, tmp_path: Path
) -> None:
    report = check(tree, kubeconform, cache, tmp_path / "nowhere")
    assert_fails(report, "SHA256SUMS", "upstream mirror not found")


def test_versions_without_pinned_upstream_fail(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, "gitops/versions.env", "ARGOCD_VERSION=3.4.4", "ARGOCD_VERSION=3.4.5")
    assert_fails(check(tree, kubeconform, cache), "no pinned files for argocd (argo-cd-v3.4.5/")


# --- Kargo steps -------------------------------------------------------------------------------


def test_unknown_field_in_a_step_config_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, TASK, "        timeout: 10s\n", "        timeout: 10s\n        retries: 3\n")
    assert_fails(
        check(tree, kubeconform, cache), TASK, "step 1 (gate): http", "'retries' was unexpected"
    )


def test_bad_inttest_step_config_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    """The integration-test Stage's waiting step is checked against the upstream http schema."""
    edit(
        tree, STAGES, "            pollInterval: 30s\n", "            pollInterval: half a minute\n"
    )
    assert_fails(check(tree, kubeconform, cache), STAGES, "step 2 (inttest): http", "pollInterval")


def test_desired_revision_in_argocd_update_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(
        tree,
        TASK,
        "            namespace: argocd\n",
        "            namespace: argocd\n            sources:\n"
        "              - repoURL: https://github.com/celesrenata/pipelines.git\n"
        "                desiredRevision: abc123\n",
    )
    assert_fails(check(tree, kubeconform, cache), TASK, "must not set desiredRevision")


def test_unknown_step_and_missing_task_var_fail(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, TASK, "    - uses: git-clone\n", "    - uses: git-klone\n")
    edit(tree, STAGES, "            - name: fromStage\n              value: paper\n", "")
    report = check(tree, kubeconform, cache)
    assert_fails(report, "unknown step 'git-klone'", "Stage/live", "needs var(s) fromStage")


def test_wrapped_http_expression_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(
        tree,
        TASK,
        "successExpression: response.status == 200",
        "successExpression: ${{ response.status == 200 }} &&",
    )
    assert_fails(check(tree, kubeconform, cache), TASK, "evaluated by the step")


# --- Argo CD, Helm, policy --------------------------------------------------------------------


def test_chart_versions_must_be_exact_and_match_versions_env(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    edit(tree, INFRA, "targetRevision: 1.11.2", "targetRevision: 1.11.*")
    edit(tree, INFRA, "targetRevision: 0.14.2", "targetRevision: 0.14.1")
    report = check(tree, kubeconform, cache)
    assert_fails(
        report,
        f"{INFRA} [doc 1 Application/kargo]: source 1 (ghcr.io/akuity/kargo-charts): chart kargo "
        "needs an exact version",
        "Application/arc-controller",
        "0.14.1 differs from ARC_VERSION=0.14.2",
    )


def test_head_revision_and_missing_values_file_fail(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    (tree / "gitops/arc/runners-values.yaml").unlink()
    edit(tree, "gitops/root.yaml", "targetRevision: main", "targetRevision: HEAD")
    report = check(tree, kubeconform, cache)
    assert_fails(
        report,
        "values file gitops/arc/runners-values.yaml: file not found",
        "gitops/root.yaml [doc 1 Application/pipelines]",
        "targetRevision 'HEAD'",
    )


def test_secret_value_in_helm_values_fails(tree: Path, kubeconform: str, cache: Path) -> None:
    path = tree / "gitops/kargo/values.yaml"
    path.write_text(
        path.read_text().replace(
            "    tokenTTL: 24h\n", "    tokenTTL: 24h\n    passwordHash: $2a$10$abc\n"
        )
    )
    assert_fails(
        check(tree, kubeconform, cache), "gitops/kargo/values.yaml", "api.adminAccount.passwordHash"
    )


def test_broken_values_yaml_fails_naming_it(tree: Path, kubeconform: str, cache: Path) -> None:
    (tree / "gitops/arc/controller-values.yaml").write_text("flags: [unclosed\n")
    assert_fails(check(tree, kubeconform, cache), "gitops/arc/controller-values.yaml: invalid YAML")


def test_infra_application_may_not_target_app_namespaces(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    edit(tree, INFRA, "    namespace: arc-runners\n", "    namespace: stonks-oracle-beta\n")
    assert_fails(
        check(tree, kubeconform, cache),
        "Application/arc-runners",
        "Application in pipeline-infra targets 'stonks-oracle-beta'",
    )


def test_pipeline_objects_may_not_live_in_app_namespaces(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    edit(
        tree,
        "gitops/console/service.yaml",
        "namespace: pipeline-console",
        "namespace: stonks-oracle",
    )
    assert_fails(
        check(tree, kubeconform, cache), "gitops/console/service.yaml", "never places objects"
    )


def test_live_application_rules(tree: Path, kubeconform: str, cache: Path) -> None:
    rel = "gitops/apps/rendered/stonks-oracle.yaml"
    path = tree / rel
    head, live = path.read_text().split("  name: stonks-oracle-live\n")
    live = live.replace("kargo-stonks-oracle:live", "kargo-stonks-oracle:paper")
    live = live.replace(
        "sync-wave: '1'\n", "sync-wave: '1'\n  finalizers:\n    - " + FINALIZER + "\n", 1
    )
    path.write_text(head + "  name: stonks-oracle-live\n" + live)
    assert_fails(
        check(tree, kubeconform, cache),
        "Application/stonks-oracle-live",
        "expected 'kargo-stonks-oracle:live'",
        "live must not carry resources-finalizer",
    )


def test_infra_project_must_deny_app_namespaces(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(
        tree,
        "gitops/apps/rendered/projects.yaml",
        "      namespace: '!stonks-oracle*'\n",
        "      namespace: kube-system\n",
    )
    assert_fails(check(tree, kubeconform, cache), "AppProject/pipeline-infra", "must deny")


def test_app_project_may_create_only_its_own_namespaces(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    # Without a name, the app project could adopt (and prune) Namespace argocd or
    # kargo-stonks-oracle if the app chart ever carried one: destinations do not guard
    # cluster-scoped objects.
    edit(
        tree,
        "gitops/apps/rendered/projects.yaml",
        "      kind: Namespace\n      name: stonks-oracle*\n  syncWindows:",
        "      kind: Namespace\n  syncWindows:",
    )
    assert_fails(
        check(tree, kubeconform, cache),
        "AppProject/stonks-oracle",
        "may hold only Namespaces named stonks-oracle*",
    )


def test_infra_project_may_not_create_app_namespaces(
    tree: Path, kubeconform: str, cache: Path
) -> None:
    edit(
        tree,
        "gitops/apps/rendered/projects.yaml",
        "  clusterResourceBlacklist:\n    - group: ''\n      kind: Namespace\n"
        "      name: stonks-oracle*\n",
        "",
    )
    assert_fails(
        check(tree, kubeconform, cache),
        "AppProject/pipeline-infra",
        "must deny Namespace stonks-oracle*",
    )


def test_ingress_needs_tls_from_ca_issuer(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, "gitops/console/ingress.yaml", "cert-manager.io/cluster-issuer: ca-issuer", "x: y")
    edit(
        tree,
        "gitops/console/ingress.yaml",
        "        - pipeline.celestium.life\n",
        "        - other.celestium.life\n",
    )
    assert_fails(
        check(tree, kubeconform, cache),
        "gitops/console/ingress.yaml [doc 1 Ingress/pipeline-console]",
        "cluster-issuer must be ca-issuer",
        "'pipeline.celestium.life' has no TLS entry",
    )


def test_warehouse_old_tag_filters_fail(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(
        tree,
        "gitops/kargo/project/rendered/warehouse.yaml",
        "cacheByTag: true",
        "cacheByTag: true\n        allowTags: ^v",
    )
    assert_fails(check(tree, kubeconform, cache), "Warehouse/stonks-oracle", "allowTagsRegexes")


def test_tag_key_must_exist_in_stage_values(tree: Path, kubeconform: str, cache: Path) -> None:
    edit(tree, "apps/stonks-oracle/paper/values.yaml", "    tag: ", "    tagg: ")
    assert_fails(
        check(tree, kubeconform, cache),
        "apps/stonks-oracle/paper/values.yaml",
        "no scalar global.image.tag",
    )


def test_non_object_documents_fail(tree: Path, kubeconform: str, cache: Path) -> None:
    (tree / "gitops/console/notes.yaml").write_text("just: a mapping\n---\n- a list\n")
    report = check(tree, kubeconform, cache)
    assert_fails(
        report,
        "gitops/console/notes.yaml [doc 1]: not a Kubernetes object",
        "[doc 2]: document is not a mapping",
    )


# --- CRD conversion ---------------------------------------------------------------------------


def test_crd_conversion_is_strict_where_the_crd_is() -> None:
    converted = convert_crd_schema(
        {
            "type": "object",
            "description": "dropped",
            "properties": {
                "description": {"type": "string", "nullable": True},
                "port": {"x-kubernetes-int-or-string": True},
                "config": {"x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "open": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"a": {"type": "string"}},
                },
            },
        }
    )
    assert converted == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": ["string", "null"]},
            "port": {"type": ["integer", "string"]},
            "config": {},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "open": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }


# --- the CLI -----------------------------------------------------------------------------------


def _cli(repo: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PIPECTL_UPSTREAM_DIR": str(upstream_dir()),
        "PIPECTL_CACHE_DIR": str(cache),
    }
    return subprocess.run(
        [sys.executable, "-m", "pipectl.cli", "--repo", str(repo), "check", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cli_exit_codes_and_messages(tree: Path, kubeconform: str, cache: Path) -> None:
    ok = _cli(tree, cache, "--kubeconform", kubeconform)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("check passed:")
    rel = add_fixture(tree, "secret-with-data.yaml")
    bad = _cli(tree, cache, "--kubeconform", kubeconform)
    assert bad.returncode == 1
    assert f"FAIL {rel} [doc 1 Secret/leaked-token]: Secret with data" in bad.stderr
    assert "pipectl: error: check failed: 1 problem(s)" in bad.stderr
    missing = _cli(tree, cache, "--kubeconform", str(tree / "no-such-binary"))
    assert missing.returncode == 2
    assert "not an executable file" in missing.stderr
