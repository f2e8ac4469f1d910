"""runmefirst.sh, run for real against fake kubectl/helm/curl (tests/fakes).

The fakes record every call and keep a small cluster; these tests read both. PATH holds
only the fakes and the tools the flake's app wrapper provides, so a missing runtime input
fails here as it would under `nix run .#bootstrap`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import bcrypt
import pytest
from fakes.harness import (
    APP_NAMESPACES,
    CONTEXT,
    PASSWORDS,
    PRIVATE_KEY,
    REPO,
    SECRET_ENV,
    SECRET_VALUES,
    Harness,
    Run,
    first_index,
    is_call,
    load_yaml_docs,
)

STORAGE = load_yaml_docs(REPO / "gitops" / "bootstrap" / "storage.yaml")
NAMESPACES = [
    d["metadata"]["name"] for d in load_yaml_docs(REPO / "gitops/bootstrap/namespaces.yaml")
]
ROOT_APP = load_yaml_docs(REPO / "gitops" / "root.yaml")[0]["metadata"]["name"]
CHART_VERSION = re.search(
    r"^ARGOCD_CHART_VERSION=(\S+)$", (REPO / "gitops/versions.env").read_text(), re.M
).group(1)
REPO_URL = "https://github.com/celesrenata/pipelines.git"
KARGO_PROJECT = "kargo-stonks-oracle"
SECRETS = {
    ("argocd", "repo-creds-github"): {"type", "url", "username", "password"},
    ("kargo", "kargo-api"): {"ADMIN_ACCOUNT_PASSWORD_HASH", "ADMIN_ACCOUNT_TOKEN_SIGNING_KEY"},
    ("arc-runners", "github-app"): {
        "github_app_id",
        "github_app_installation_id",
        "github_app_private_key",
    },
    ("pipeline-console", "pipeline-console-tokens"): {"kargo-token", "ci-token"},
    ("pipeline-console", "pipeline-console-htpasswd"): {"htpasswd"},
    ("pipeline-console", "git-creds"): {"username", "password"},
    (KARGO_PROJECT, "git-creds"): {"repoURL", "username", "password"},
    (KARGO_PROJECT, "pipeline-gate-token"): {"token"},
}


def secret_data(h: Harness, ns: str, name: str) -> dict[str, bytes]:
    s = h.get("Secret", name, ns)
    assert s is not None, f"Secret {ns}/{name} missing"
    return {k: base64.b64decode(v) for k, v in s["data"].items()}


def plan(run: Run) -> list[str]:
    return [
        ln.strip()[len("would ") :]
        for ln in run.out.splitlines()
        if ln.strip().startswith("would ")
    ]


def assert_in_order(lines: list[str], expected: list[str]) -> None:
    """Each expected prefix matches a line, in this order."""
    i = 0
    for want in expected:
        while i < len(lines) and not lines[i].startswith(want):
            i += 1
        assert i < len(lines), f"{want!r} missing or out of order in:\n" + "\n".join(lines)
        i += 1


def applied_file(c: dict, rel: str) -> bool:
    return is_call(c, "kubectl", "apply") and str(REPO / rel) in c["argv"]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# The module's install takes some inputs from --secrets-dir files and the rest from the
# environment, which wins where both are given.
SECRETS_DIR_FILES = {
    "github-app-id": "999\n",  # GITHUB_APP_ID=123456 in the environment wins
    "github-app-private-key.pem": PRIVATE_KEY,
    "git-username": "celesrenata-bot\n",
    "git-token": SECRET_ENV["GIT_TOKEN"] + "\n",
    "kargo-admin-password": PASSWORDS["KARGO_ADMIN_PASSWORD"] + "\n",
    "console-ci-token": "ci-token-from-a-file-0000\n",
}
ENV_INPUTS = {
    k: SECRET_ENV[k]
    for k in ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "CONSOLE_ADMIN_PASSWORD")
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Harness, Run, Run]:
    """One install, then a second run with no secret inputs at all."""
    h = Harness(tmp_path_factory.mktemp("installed"))
    h.secrets_dir.mkdir(mode=0o700)
    for name, text in SECRETS_DIR_FILES.items():
        (h.secrets_dir / name).write_text(text)
    first = h.bootstrap("--secrets-dir", str(h.secrets_dir), secrets=False, env=ENV_INPUTS)
    assert first.rc == 0, first.err
    second = h.bootstrap(secrets=False)
    return h, first, second


@pytest.fixture(scope="module")
def snapshot(installed: tuple[Harness, Run, Run]) -> tuple[str, Path]:
    return installed[0].snapshot()


# ---- a first install ---------------------------------------------------------------------


def test_first_run_prints_numbered_steps_and_counts_changes(installed):
    _, first, _ = installed
    steps = re.findall(r"^==> \[(\d+)/(\d+)\] ", first.out, re.M)
    assert [int(i) for i, _ in steps] == list(range(1, 10))
    assert {n for _, n in steps} == {"9"}
    assert re.search(r"^==> done: \d+ change\(s\)$", first.out, re.M)


def test_install_order_namespaces_volumes_secrets_argocd_root_waits(installed):
    _, first, _ = installed
    calls = first.calls
    ns = first_index(calls, lambda c: applied_file(c, "gitops/bootstrap/namespaces.yaml"))
    kargo_ns = first_index(
        calls, lambda c: c["mutating"] and f"Namespace//{KARGO_PROJECT}" in c["targets"]
    )
    pv = first_index(calls, lambda c: applied_file(c, "gitops/bootstrap/storage.yaml"))
    secret = first_index(calls, lambda c: is_call(c, "kubectl", "create"))
    helm = first_index(calls, lambda c: is_call(c, "helm", "upgrade", "--install"))
    rollout = first_index(calls, lambda c: is_call(c, "kubectl", "rollout", "status"))
    root = first_index(calls, lambda c: applied_file(c, "gitops/root.yaml"))
    wait = first_index(
        calls[root:], lambda c: is_call(c, "kubectl", "get", "applications.argoproj.io")
    )
    curl = first_index(calls, lambda c: c["tool"] == "curl")
    assert ns < kargo_ns < pv < secret < helm < rollout < root < root + wait < curl
    # every Secret is created after every namespace and claim, and before Argo CD
    creates = [i for i, c in enumerate(calls) if is_call(c, "kubectl", "create")]
    assert len(creates) == len(SECRETS) and max(creates) < helm


def test_cluster_holds_what_the_contract_names(installed):
    h, _, _ = installed
    names = {n["metadata"]["name"] for n in h.objects("Namespace")}
    assert set(NAMESPACES) | {KARGO_PROJECT} <= names
    kargo_ns = h.get("Namespace", KARGO_PROJECT)
    assert kargo_ns["metadata"]["labels"]["kargo.akuity.io/project"] == "true"
    for d in STORAGE:
        if d["kind"] == "PersistentVolumeClaim":
            pvc = h.get("PersistentVolumeClaim", d["metadata"]["name"], d["metadata"]["namespace"])
            assert pvc["status"]["phase"] == "Bound"
            pv = h.get("PersistentVolume", d["spec"]["volumeName"])
            assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    rel = h.state()["helm_releases"]["argocd/argocd"]
    assert rel["chart"] == f"argo-cd-{CHART_VERSION}" and rel["status"] == "deployed"
    assert h.get("Application", ROOT_APP, "argocd") is not None


def test_secrets_carry_the_keys_and_values_the_components_read(installed):
    h, _, _ = installed
    for (ns, name), keys in SECRETS.items():
        assert set(secret_data(h, ns, name)) == keys, f"{ns}/{name}"
    repo = secret_data(h, "argocd", "repo-creds-github")
    assert repo["type"] == b"git" and repo["url"] == b"https://github.com/celesrenata"
    assert repo["password"] == SECRET_ENV["GIT_TOKEN"].encode()
    argo = h.get("Secret", "repo-creds-github", "argocd")
    assert argo["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repo-creds"
    kargo_git = h.get("Secret", "git-creds", KARGO_PROJECT)
    assert kargo_git["metadata"]["labels"]["kargo.akuity.io/cred-type"] == "git"
    assert secret_data(h, KARGO_PROJECT, "git-creds")["repoURL"] == REPO_URL.encode()
    assert secret_data(h, "pipeline-console", "git-creds")["username"] == b"celesrenata-bot"
    app = secret_data(h, "arc-runners", "github-app")
    assert app["github_app_id"] == b"123456"
    assert app["github_app_installation_id"] == b"7890123"
    assert app["github_app_private_key"] == PRIVATE_KEY.encode()
    api = secret_data(h, "kargo", "kargo-api")
    assert bcrypt.checkpw(
        PASSWORDS["KARGO_ADMIN_PASSWORD"].encode(), api["ADMIN_ACCOUNT_PASSWORD_HASH"]
    )
    assert re.fullmatch(rb"[0-9a-f]{64}", api["ADMIN_ACCOUNT_TOKEN_SIGNING_KEY"])
    tokens = secret_data(h, "pipeline-console", "pipeline-console-tokens")
    assert re.fullmatch(rb"[0-9a-f]{64}", tokens["kargo-token"])  # generated
    assert tokens["ci-token"] == b"ci-token-from-a-file-0000"  # given, newline dropped
    assert secret_data(h, KARGO_PROJECT, "pipeline-gate-token")["token"] == tokens["kargo-token"]
    user, _, pw_hash = secret_data(h, "pipeline-console", "pipeline-console-htpasswd")[
        "htpasswd"
    ].partition(b":")
    assert user == b"admin"
    assert bcrypt.checkpw(PASSWORDS["CONSOLE_ADMIN_PASSWORD"].encode(), pw_hash.strip())


def test_secret_values_never_reach_an_argv_or_the_output(installed):
    h, first, second = installed
    generated = [
        *secret_data(h, "pipeline-console", "pipeline-console-tokens").values(),
        secret_data(h, "kargo", "kargo-api")["ADMIN_ACCOUNT_TOKEN_SIGNING_KEY"],
    ]
    values = [*SECRET_VALUES, *(g.decode() for g in generated)]
    for run in (first, second):
        argvs = "\n".join(" ".join(c["argv"]) for c in run.calls)
        for v in values:
            assert v not in argvs
            assert v not in run.out and v not in run.err


def test_second_run_changes_nothing_and_needs_no_secret_inputs(installed):
    _, _, second = installed
    assert second.rc == 0, second.err
    assert second.mutations == []
    assert second.out.rstrip().endswith("==> nothing to change")
    assert "nothing to restore" in second.out


def test_reachability_is_checked_with_curl_on_every_host(installed):
    _, first, _ = installed
    urls = [c["argv"][-1] for c in first.calls if c["tool"] == "curl"]
    assert urls == [
        "https://argocd.celestium.life",
        "https://kargo.celestium.life",
        "https://pipeline.celestium.life",
    ]
    assert "https://kargo.celestium.life: HTTP 200" in first.out
    for c in first.calls:
        if c["tool"] == "curl":
            assert c["argv"][c["argv"].index("-w") + 1] == "HTTP %{http_code}\\n"


def test_reachability_names_no_answer_apart_from_an_http_error(h, snapshot):
    """curl writes "HTTP 000" and exits non-zero when nothing answers: that is said plainly."""
    h.restore(snapshot)
    h.edit(
        lambda d: d.update(http_codes={"kargo.celestium.life": 0, "pipeline.celestium.life": 502})
    )
    run = h.bootstrap(secrets=False)
    assert run.rc == 0, run.err
    assert "https://kargo.celestium.life gave no HTTP answer: the connection was refused" in run.err
    assert "https://pipeline.celestium.life answered HTTP 502" in run.err
    assert "https://argocd.celestium.life: HTTP 200" in run.out
    assert "HTTP 000" not in run.out + run.err


def test_first_install_finds_no_export_and_marks_the_volume(installed):
    h, _, _ = installed
    pv = h.get("PersistentVolume", "pipelines-kargo")
    assert pv["metadata"]["annotations"]["pipelines.celestium.life/restored-export"] == "none"
    assert h.objects("Pod") == []  # the state pod is gone again


# ---- dry run -------------------------------------------------------------------------------


def test_dry_run_prints_the_ordered_plan_and_changes_nothing(h):
    before = h.state_path.read_bytes()
    run = h.run("runmefirst.sh", "--dry-run", secrets=True)
    assert run.rc == 0, run.err
    assert run.mutations == []
    assert h.state_path.read_bytes() == before
    assert_in_order(
        plan(run),
        [
            "apply gitops/bootstrap/namespaces.yaml",
            f"apply namespace {KARGO_PROJECT}",
            "apply gitops/bootstrap/storage.yaml",
            "create Secret argocd/repo-creds-github",
            "create Secret kargo/kargo-api",
            "create Secret arc-runners/github-app",
            "create Secret pipeline-console/pipeline-console-tokens",
            "create Secret pipeline-console/pipeline-console-htpasswd",
            "create Secret pipeline-console/git-creds",
            f"create Secret {KARGO_PROJECT}/git-creds",
            f"create Secret {KARGO_PROJECT}/pipeline-gate-token",
            "helm upgrade --install argocd oci://ghcr.io/argoproj/argo-helm/argo-cd --version "
            + CHART_VERSION,
            "wait for every Deployment and StatefulSet in argocd",
            "apply gitops/root.yaml",
            "wait up to 600s for every pipeline Application",
            "look for exports on kargo/pipeline-state",
            "check https://argocd.celestium.life",
        ],
    )
    assert "==> dry run: 13 change(s) would be made; nothing was changed" in run.out


def test_dry_run_on_an_installed_cluster_has_nothing_to_do(installed):
    h, _, _ = installed
    run = h.run("runmefirst.sh", "--dry-run")
    assert run.rc == 0, run.err
    assert run.mutations == []
    assert [p for p in plan(run) if not p.startswith(("wait ", "check "))] == []
    assert "==> dry run: 0 change(s) would be made" in run.out


# ---- preflight refusals: exit before any change ------------------------------------------------


def test_missing_secret_inputs_fail_before_any_change(h):
    before = h.state_path.read_bytes()
    run = h.bootstrap(secrets=False, env={"GITHUB_APP_ID": "not-a-number"})
    assert run.rc == 2
    assert run.mutations == [] and h.state_path.read_bytes() == before
    assert "missing or invalid secret inputs (nothing was changed)" in run.err
    for needle in (
        "set GIT_USERNAME or write <secrets-dir>/git-username",
        "set GIT_TOKEN or write <secrets-dir>/git-token",
        "set KARGO_ADMIN_PASSWORD or write <secrets-dir>/kargo-admin-password",
        "GitHub App id (a number)",
        "set GITHUB_APP_INSTALLATION_ID",
        "set GITHUB_APP_PRIVATE_KEY_FILE",
        "set CONSOLE_ADMIN_PASSWORD",
    ):
        assert needle in run.err
    assert "==> [2/9]" not in run.out


def test_weak_password_and_bad_key_are_refused(h):
    bad_key = h.tmp / "not-a-key.pem"
    bad_key.write_text("hello\n")
    run = h.bootstrap(
        env={"KARGO_ADMIN_PASSWORD": "short", "GITHUB_APP_PRIVATE_KEY_FILE": str(bad_key)}
    )
    assert run.rc == 2 and run.mutations == []
    assert (
        "Kargo admin password (KARGO_ADMIN_PASSWORD / kargo-admin-password) is shorter" in run.err
    )
    assert f"GitHub App private key {bad_key} is not a PEM private key" in run.err


def test_no_terminal_and_no_yes_refuses(h):
    run = h.run("runmefirst.sh", secrets=True)
    assert run.rc == 2 and run.mutations == []
    assert "no terminal to ask on; pass --yes" in run.err


def _run_on_tty(h: Harness, answer: str) -> Run:
    master, slave = os.openpty()
    try:
        os.write(master, answer.encode() + b"\n")
        with os.fdopen(slave, "rb", closefd=False) as tty:
            return h.run("runmefirst.sh", secrets=True, stdin=tty)
    finally:
        os.close(slave)
        os.close(master)


def test_terminal_confirmation_needs_the_context_name(h, snapshot):
    h.restore(snapshot)
    refused = _run_on_tty(h, "yes")
    assert refused.rc == 2 and refused.mutations == []
    assert 'Install the pipeline on kube context "gremlin"?' in refused.err
    assert "not confirmed; nothing was changed" in refused.err
    assert "==> [2/9]" not in refused.out
    accepted = _run_on_tty(h, CONTEXT)
    assert accepted.rc == 0, accepted.err
    assert "==> [9/9] reachability" in accepted.out


def test_unknown_context_unreachable_cluster_and_missing_tool_refuse(h):
    run = h.bootstrap("--context", "prod")
    assert run.rc == 2 and "kube context 'prod' is not in your kubeconfig" in run.err
    h.edit(lambda d: d.update(reachable=False))
    run = h.bootstrap()
    assert run.rc == 1 and "is not reachable" in run.err and run.mutations == []
    h.edit(lambda d: d.update(reachable=True))
    h.remove_tool("helm")
    run = h.bootstrap()
    assert run.rc == 2 and "missing tools: helm" in run.err and run.calls == []


def test_a_lone_released_volume_is_found_and_made_bindable(h):
    """kubectl get -f on a file of which one object exists prints that object bare, not a
    List: the Released PV must still be seen (a half-rebuilt cluster)."""
    pv = json.loads(json.dumps(next(d for d in STORAGE if d["kind"] == "PersistentVolume")))
    pv["spec"]["claimRef"] = {"namespace": "argocd", "name": "pipeline-state", "uid": "gone"}
    pv["status"] = {"phase": "Released"}
    h.edit(lambda d: d["objects"].append(pv))
    run = h.run("runmefirst.sh", "--dry-run", secrets=True)
    assert run.rc == 0, run.err
    name = pv["metadata"]["name"]
    assert f"would make Released PV {name} bindable again" in run.out


def test_a_released_volume_stays_reserved_for_its_own_claim(h):
    """Re-binding keeps the claim's namespace/name on the PV: a stray claim naming the same
    volume is not bound to it, the pipeline's own claim is."""
    pv = json.loads(json.dumps(next(d for d in STORAGE if d["kind"] == "PersistentVolume")))
    name = pv["metadata"]["name"]
    own = next(
        d
        for d in STORAGE
        if d["kind"] == "PersistentVolumeClaim" and d["spec"]["volumeName"] == name
    )
    ns, claim = own["metadata"]["namespace"], own["metadata"]["name"]
    pv["spec"]["claimRef"] = {"namespace": ns, "name": claim, "uid": "gone"}
    pv["status"] = {"phase": "Released"}
    stray = json.loads(json.dumps(own))
    stray["metadata"].update(name="stray", uid="stray-uid")
    h.edit(lambda d: d["objects"].extend([pv, stray]))
    run = h.bootstrap()
    assert run.rc == 0, run.err
    bound = h.get("PersistentVolume", name)
    assert bound["spec"]["claimRef"]["name"] == claim
    assert h.get("PersistentVolumeClaim", claim, ns)["status"]["phase"] == "Bound"
    assert h.get("PersistentVolumeClaim", "stray", ns).get("status", {}).get("phase") != "Bound"


def test_missing_diff_is_refused_not_hidden_behind_reapplies(h):
    """kubectl diff needs `diff`: without it every diff fails (exit 2) and every run would
    re-apply everything and never say "nothing to change"."""
    h.remove_tool("diff")
    run = h.bootstrap()
    assert run.rc == 2 and "missing tools: diff" in run.err and run.calls == []


def test_usage_errors_and_help(h):
    run = h.run("runmefirst.sh", "--bogus")
    assert run.rc == 2 and "unknown argument: --bogus" in run.err
    run = h.run("runmefirst.sh", "--timeout", "soon", "--yes")
    assert run.rc == 2 and "--timeout takes a positive number" in run.err
    run = h.run("runmefirst.sh", "--help")
    assert run.rc == 0 and run.calls == []
    for name in ("GITHUB_APP_PRIVATE_KEY_FILE", "KARGO_ADMIN_PASSWORD", "PIPELINES_ROOT"):
        assert name in run.out


# ---- inputs and existing secrets ---------------------------------------------------------------


def test_existing_secrets_are_kept_as_they_are(h, snapshot):
    h.restore(snapshot)
    h.edit(
        lambda d: next(
            o
            for o in d["objects"]
            if o["kind"] == "Secret" and o["metadata"]["name"] == "repo-creds-github"
        )["data"].update(password=base64.b64encode(b"rotated-by-hand").decode())
    )
    run = h.bootstrap(secrets=False)
    assert run.rc == 0, run.err
    assert run.mutations == []
    assert secret_data(h, "argocd", "repo-creds-github")["password"] == b"rotated-by-hand"
    assert "Secret argocd/repo-creds-github: exists, kept" in run.out


def test_console_tokens_reuse_an_existing_gate_token(h, snapshot):
    h.restore(snapshot)
    gate = secret_data(h, KARGO_PROJECT, "pipeline-gate-token")["token"]
    h.edit(
        lambda d: d["objects"].remove(
            next(
                o
                for o in d["objects"]
                if o["kind"] == "Secret" and o["metadata"]["name"] == "pipeline-console-tokens"
            )
        )
    )
    run = h.bootstrap(secrets=False)
    assert run.rc == 0, run.err
    assert [c["targets"] for c in run.mutations] == [
        ["Secret/pipeline-console/pipeline-console-tokens"]
    ]
    assert secret_data(h, "pipeline-console", "pipeline-console-tokens")["kargo-token"] == gate
    assert "pipeline-gate-token differs" not in run.err


def test_mismatched_gate_token_is_reported(h, snapshot):
    h.restore(snapshot)
    h.edit(
        lambda d: next(
            o
            for o in d["objects"]
            if o["kind"] == "Secret" and o["metadata"]["name"] == "pipeline-gate-token"
        )["data"].update(token=base64.b64encode(b"something-else").decode())
    )
    run = h.bootstrap(secrets=False)
    assert run.rc == 0 and run.mutations == []
    assert "pipeline-gate-token differs from" in run.err


# ---- Argo CD and the waits ------------------------------------------------------------------


def test_argocd_is_upgraded_only_when_the_pin_or_the_values_change(h, snapshot):
    h.restore(snapshot)
    h.edit(lambda d: d["helm_releases"]["argocd/argocd"].update(chart="argo-cd-10.0.0"))
    run = h.bootstrap(secrets=False)
    assert run.rc == 0, run.err
    upgrades = [c for c in run.calls if is_call(c, "helm", "upgrade")]
    assert len(upgrades) == 1 and run.mutations == upgrades
    argv = upgrades[0]["argv"]
    assert argv[argv.index("--version") + 1] == CHART_VERSION
    assert argv[argv.index("-f") + 1] == str(REPO / "gitops/argocd/values.yaml")
    assert "now: argo-cd-10.0.0 deployed" in run.out
    values_sum = hashlib.sha256((REPO / "gitops/argocd/values.yaml").read_bytes()).hexdigest()
    assert argv[argv.index("--description") + 1].endswith(values_sum)
    h.edit(lambda d: d["helm_releases"]["argocd/argocd"].update(description="other values"))
    run = h.bootstrap(secrets=False)
    assert [c["verb"] for c in run.mutations] == ["upgrade"]


def test_waits_name_the_applications_that_are_not_healthy(h):
    def degrade(d: dict) -> None:
        for o in next(iter(d["on_apply"].values())):
            if o["kind"] == "Application" and o["metadata"]["name"] in (
                "arc-runners",
                "stonks-oracle-paper",
            ):
                o["status"]["health"]["status"] = "Degraded"

    h.edit(degrade)
    run = h.bootstrap("--timeout", "1")
    assert run.rc == 1
    assert "not Synced/Healthy: arc-runners (Synced/Degraded)" in run.err
    assert "stonks-oracle-paper" not in run.err  # the app's own stages do not block


def test_argocd_rollout_failure_is_named(h):
    h.edit(lambda d: d.update(rollout_fail=["Deployment/argocd/argocd-repo-server"]))
    run = h.bootstrap("--timeout", "1")
    assert run.rc == 1
    assert "deployment.apps/argocd-repo-server in argocd did not roll out within 1s" in run.err
    assert not any(applied_file(c, "gitops/root.yaml") for c in run.calls)


# ---- restore -------------------------------------------------------------------------------------


def _write_export(h: Harness, ts: str, freights: list[dict]) -> Path:
    d = h.nfs / "volume1/Kubernetes/pipelines/kargo/exports" / ts
    d.mkdir(parents=True)
    (d / "freights.json").write_text(json.dumps({"kind": "List", "items": freights}))
    (d / "MANIFEST").write_text(f"pipeline state export {ts}\n")
    sums = "".join(
        f"{hashlib.sha256((d / n).read_bytes()).hexdigest()}  ./{n}\n"
        for n in ("MANIFEST", "freights.json")
    )
    (d / "SHA256SUMS").write_text(sums)
    return d


def _freight(name: str, alias: str, tag: str) -> dict:
    return {
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "Freight",
        "metadata": {
            "name": name,
            "namespace": KARGO_PROJECT,
            "uid": "old-uid",
            "resourceVersion": "991",
            "labels": {"kargo.akuity.io/alias": alias},
        },
        "alias": alias,
        "origin": {"kind": "Warehouse", "name": "stonks-oracle"},
        "images": [{"repoURL": "ghcr.io/celesrenata/stonks-oracle/api", "tag": tag}],
        "status": {"verifiedIn": {"beta": {}}, "approvedFor": {"live": {}}},
    }


def test_rebuilt_cluster_gets_the_freight_of_the_newest_export(h):
    _write_export(h, "20260701T000000Z", [_freight("a" * 40, "old-alias", "1111111")])
    _write_export(
        h,
        "20260801T093000Z",
        [_freight("b" * 40, "wise-otter", "2222222"), _freight("c" * 40, "calm-heron", "3333333")],
    )
    run = h.bootstrap()
    assert run.rc == 0, run.err
    freight = {f["metadata"]["name"]: f for f in h.objects("Freight", KARGO_PROJECT)}
    assert set(freight) == {"b" * 40, "c" * 40}
    f = freight["b" * 40]
    assert f["alias"] == "wise-otter" and f["images"][0]["tag"] == "2222222"
    assert f["metadata"]["annotations"]["pipelines.celestium.life/restored-from"] == (
        "20260801T093000Z"
    )
    assert f["metadata"]["uid"] != "old-uid" and "verifiedIn" not in f.get("status", {})
    pv = h.get("PersistentVolume", "pipelines-kargo")
    assert pv["metadata"]["annotations"]["pipelines.celestium.life/restored-export"] == (
        "20260801T093000Z"
    )
    assert "re-create 2 Freight from export 20260801T093000Z" in run.out
    again = h.bootstrap(secrets=False)
    assert again.rc == 0 and again.mutations == []


def test_an_export_failing_its_checksums_is_not_restored(h):
    d = _write_export(h, "20260801T093000Z", [_freight("b" * 40, "wise-otter", "2222222")])
    (d / "freights.json").write_text('{"kind": "List", "items": []}')
    run = h.bootstrap()
    assert run.rc == 0, run.err
    assert "fails its SHA256SUMS; not restored" in run.err
    assert h.objects("Freight") == []
    pv = h.get("PersistentVolume", "pipelines-kargo")
    assert "pipelines.celestium.life/restored-export" not in pv["metadata"].get("annotations", {})


# ---- where the scripts find their files ------------------------------------------------------


def test_runs_from_a_read_only_copy_named_by_pipelines_root(h):
    store = h.tmp / "store"
    for rel in ("runmefirst.sh", "runmelast.sh", "pipeline.yaml", "gitops"):
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, store / rel)
        else:
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, store / rel)
    versions = store / "gitops/versions.env"
    versions.write_text(
        versions.read_text().replace(
            f"ARGOCD_CHART_VERSION={CHART_VERSION}", "ARGOCD_CHART_VERSION=10.9.9"
        )
    )
    for p in [store, *store.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        run = h.run(
            "runmefirst.sh",
            "--dry-run",
            secrets=True,
            env={"PIPELINES_ROOT": str(store)},
            script_dir=store,
        )
    finally:
        for p in [store, *store.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert run.rc == 0, run.err
    assert "--version 10.9.9" in run.out
    assert any(str(store / "gitops/bootstrap/namespaces.yaml") in c["argv"] for c in run.calls)
    assert not any(str(REPO) in " ".join(c["argv"]) for c in run.calls)


def test_lib_names_the_namespaces_of_namespaces_yaml():
    out = subprocess.run(
        ["bash", "-c", '. gitops/bootstrap/lib.sh; printf "%s\\n" "${PIPELINE_NAMESPACES[@]}"'],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == NAMESPACES
    assert not any(n.startswith("stonks-oracle") for n in out)
    assert set(APP_NAMESPACES).isdisjoint(out)


def test_shellcheck_is_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    p = subprocess.run(
        ["shellcheck", "-x", "runmefirst.sh", "runmelast.sh", "gitops/bootstrap/lib.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
