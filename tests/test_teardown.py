"""runmelast.sh, run for real against fake kubectl/helm (tests/fakes), and the rebuild after it.

The fake models what makes a teardown dangerous: Argo CD's cascading finalizer, self-heal
re-creating what a parent Application still manages, namespaces and Kargo Projects taking
their contents with them. Every object the fake deletes, directly or by cascade, is recorded,
so "nothing of the application is deleted" is checked on what happened, not on the argv.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from fakes.harness import (
    APP_NAMESPACES,
    NFS_DATA,
    REPO,
    Harness,
    Run,
    first_index,
    is_call,
    load_yaml_docs,
)

ROOT_APP = load_yaml_docs(REPO / "gitops" / "root.yaml")[0]["metadata"]["name"]
STORAGE = load_yaml_docs(REPO / "gitops" / "bootstrap" / "storage.yaml")
PVS = sorted(d["metadata"]["name"] for d in STORAGE if d["kind"] == "PersistentVolume")
KARGO_PROJECT = "kargo-stonks-oracle"
KARGO_EXPORTS = "volume1/Kubernetes/pipelines/kargo/exports"
ARGOCD_EXPORTS = "volume1/Kubernetes/pipelines/argocd/exports"
STAGE_APPS = ("stonks-oracle-beta", "stonks-oracle-paper", "stonks-oracle-live")
APP_NS = re.compile(r"^stonks-oracle")


def freight(name: str, alias: str, tag: str) -> dict:
    return {
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "Freight",
        "metadata": {
            "name": name,
            "namespace": KARGO_PROJECT,
            "labels": {"kargo.akuity.io/alias": alias},
            "uid": f"uid-{alias}",
        },
        "alias": alias,
        "origin": {"kind": "Warehouse", "name": "stonks-oracle"},
        "images": [{"repoURL": "ghcr.io/celesrenata/stonks-oracle/api", "tag": tag}],
        "status": {"verifiedIn": {"beta": {}}},
    }


def kargo_at_work(d: dict) -> None:
    """What Kargo adds while the pipeline runs: Freight and a Promotion."""
    d["objects"] += [
        freight("a" * 40, "wise-otter", "1a2b3c4"),
        freight("b" * 40, "calm-heron", "5d6e7f8"),
        {
            "apiVersion": "kargo.akuity.io/v1alpha1",
            "kind": "Promotion",
            "metadata": {"name": "beta.01j.1a2b3c4", "namespace": KARGO_PROJECT, "uid": "p1"},
            "spec": {"stage": "beta", "freight": "a" * 40},
        },
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A snapshot of the cluster after runmefirst.sh, with Kargo at work."""
    h = Harness(tmp_path_factory.mktemp("installed"))
    run = h.bootstrap()
    assert run.rc == 0, run.err
    h.edit(kargo_at_work)
    return h.snapshot()


@pytest.fixture
def h(tmp_path: Path, installed: tuple[str, Path]) -> Harness:
    h = Harness(tmp_path)
    h.restore(installed)
    return h


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory, installed: tuple[str, Path]) -> dict:
    """Teardown, teardown again, then the rebuild: bootstrap and bootstrap again."""
    h = Harness(tmp_path_factory.mktemp("cycle"))
    h.restore(installed)
    out: dict = {"h": h, "before": h.state(), "nfs_data": (h.nfs / NFS_DATA).read_bytes()}
    out["teardown"] = h.teardown()
    out["after_teardown"] = h.state()
    out["teardown2"] = h.teardown()
    out["bootstrap"] = h.bootstrap()
    out["bootstrap2"] = h.bootstrap(secrets=False)
    return out


def deleted(run: Run) -> list[str]:
    return [d for c in run.calls for d in c.get("deleted", [])]


def app_call(c: dict, verb: str, app: str) -> bool:
    return is_call(c, "kubectl", verb, "applications.argoproj.io", app)


# ---- the teardown ----------------------------------------------------------------------------


def test_teardown_succeeds_with_numbered_steps(cycle):
    run = cycle["teardown"]
    assert run.rc == 0, run.err
    steps = [int(i) for i in re.findall(r"^==> \[(\d+)/9\] ", run.out, re.M)]
    assert steps == list(range(1, 10))


def test_export_is_written_before_anything_is_removed(cycle):
    calls = cycle["teardown"].calls
    writes = [i for i, c in enumerate(calls) if is_call(c, "kubectl", "exec")]
    marks = [i for i, c in enumerate(calls) if is_call(c, "kubectl", "annotate")]
    first_removal = first_index(
        calls,
        lambda c: (
            c["mutating"]
            and c["verb"] in ("delete", "patch", "uninstall")
            and "pipeline-state-io" not in c["argv"]
        ),
    )
    assert len(writes) == 2 and len(marks) == 2
    assert max(writes + marks) < first_removal


def test_export_holds_kargo_and_argocd_state_and_no_secret(cycle):
    h = cycle["h"]
    (kargo,) = list((h.nfs / KARGO_EXPORTS).iterdir())
    (argo,) = list((h.nfs / ARGOCD_EXPORTS).iterdir())
    assert re.fullmatch(r"\d{8}T\d{6}Z", kargo.name) and argo.name == kargo.name
    assert {p.name for p in kargo.iterdir()} == {
        "MANIFEST",
        "SHA256SUMS",
        "stages.yaml",
        "freights.yaml",
        "freights.json",
        "promotions.yaml",
    }
    assert {p.name for p in argo.iterdir()} == {
        "MANIFEST",
        "SHA256SUMS",
        "applications.yaml",
        "appprojects.yaml",
        "settings.yaml",
    }
    for d in (kargo, argo):
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=d, check=True, capture_output=True)
        for f in d.iterdir():
            assert not re.search(r"^\s*kind: Secret\s*$", f.read_text(), re.M), f
    names = {
        f["metadata"]["name"] for f in json.loads((kargo / "freights.json").read_text())["items"]
    }
    assert names == {"a" * 40, "b" * 40}
    stages = load_yaml_docs(kargo / "stages.yaml")[0]["items"]
    assert {s["metadata"]["name"] for s in stages} == {"integration-test", "beta", "paper", "live"}
    assert "beta.01j.1a2b3c4" in (kargo / "promotions.yaml").read_text()
    apps = load_yaml_docs(argo / "applications.yaml")[0]["items"]
    assert {a["metadata"]["name"] for a in apps} >= {ROOT_APP, *STAGE_APPS}
    assert "argocd-rbac-cm" in (argo / "settings.yaml").read_text()
    assert "kargo-stonks-oracle" in (kargo / "MANIFEST").read_text()
    # the teardown never even reads a Secret
    for c in cycle["teardown"].calls:
        assert not any(a in ("secret", "secrets") for a in c["argv"]), c["argv"]
    pv = next(
        o for o in cycle["after_teardown"]["objects"] if o["metadata"]["name"] == "pipelines-kargo"
    )
    assert pv["metadata"]["annotations"]["pipelines.celestium.life/last-export"] == kargo.name


def test_the_application_keeps_running(cycle):
    h = cycle["h"]
    state = cycle["after_teardown"]
    for ns in APP_NAMESPACES:
        kinds = {
            o["kind"]
            for o in state["objects"]
            if o["metadata"].get("namespace") == ns or o["metadata"]["name"] == ns
        }
        assert {"Namespace", "Deployment", "Secret"} <= kinds, ns
    for d in deleted(cycle["teardown"]):
        kind, ns, name = d.split("/", 2)
        assert not APP_NS.match(ns), d
        assert not (kind == "Namespace" and APP_NS.match(name)), d
        assert kind != "PersistentVolume", d
    assert h.state().get("self_healed", []) == []


def test_no_delete_names_an_application_namespace_or_a_volume(cycle):
    for run in (cycle["teardown"], cycle["teardown2"]):
        for c in run.calls:
            if c.get("verb") not in ("delete", "uninstall"):
                continue
            argv = c["argv"]
            assert not any(a in ("pv", "persistentvolume", "persistentvolumes") for a in argv)
            for i, a in enumerate(argv[:-1]):
                if a in ("-n", "--namespace"):
                    assert not APP_NS.match(argv[i + 1]), argv
            if "namespace" in argv:
                assert not APP_NS.match(argv[argv.index("namespace") + 1]), argv
            for t in c["targets"]:
                if c["tool"] == "helm":  # a release: namespace/name
                    assert not APP_NS.match(t.split("/")[0]), t
                    continue
                kind, ns, name = t.split("/", 2)
                assert not APP_NS.match(ns) and kind != "PersistentVolume", t
                assert not (kind == "Namespace" and APP_NS.match(name)), t


def test_stage_applications_lose_their_finalizers_before_deletion(cycle):
    calls = cycle["teardown"].calls
    before = {
        o["metadata"]["name"]: o for o in cycle["before"]["objects"] if o["kind"] == "Application"
    }
    for app in STAGE_APPS:
        delete = first_index(calls, lambda c, a=app: app_call(c, "delete", a))
        if before[app]["metadata"].get("finalizers"):
            drop = first_index(calls, lambda c, a=app: app_call(c, "patch", a))
            assert calls[drop]["argv"][-1] == '[{"op":"remove","path":"/metadata/finalizers"}]'
            assert drop < delete
        assert "--wait=false" in calls[delete]["argv"]
    assert before["stonks-oracle-beta"]["metadata"]["finalizers"]  # the model has one to drop


def test_removal_order_runners_controller_kargo_apps_argocd_namespaces(cycle):
    calls = cycle["teardown"].calls
    freeze = first_index(calls, lambda c: app_call(c, "patch", ROOT_APP))
    stages = max(first_index(calls, lambda c, a=a: app_call(c, "delete", a)) for a in STAGE_APPS)
    order = [
        freeze,
        stages,
        first_index(calls, lambda c: app_call(c, "delete", "arc-runners")),
        first_index(calls, lambda c: app_call(c, "delete", "arc-controller")),
        first_index(calls, lambda c: app_call(c, "delete", "kargo-stonks-oracle")),
        first_index(calls, lambda c: app_call(c, "delete", "kargo")),
        first_index(calls, lambda c: app_call(c, "delete", "pipeline-console")),
        first_index(calls, lambda c: app_call(c, "delete", ROOT_APP)),
        first_index(calls, lambda c: is_call(c, "helm", "uninstall", "argocd")),
        first_index(calls, lambda c: is_call(c, "kubectl", "delete", "namespace")),
    ]
    assert order == sorted(order)
    # the runners went while the ARC controller still ran: their finalizer was honoured
    runner_gone = deleted(cycle["teardown"]).index(
        "AutoscalingRunnerSet/arc-runners/self-hosted-gremlin"
    )
    controller_gone = deleted(cycle["teardown"]).index(
        "Deployment/arc-systems/arc-gha-rs-controller"
    )
    assert runner_gone < controller_gone


def test_pipeline_is_gone_and_volumes_stay_released(cycle):
    h = cycle["h"]
    state = cycle["after_teardown"]
    names = {o["metadata"]["name"] for o in state["objects"] if o["kind"] == "Namespace"}
    assert names == set(APP_NAMESPACES)
    assert not [o for o in state["objects"] if o["kind"] == "Application"]
    assert state["helm_releases"] == {}
    pvs = {o["metadata"]["name"]: o for o in state["objects"] if o["kind"] == "PersistentVolume"}
    assert sorted(pvs) == PVS
    for pv in pvs.values():
        assert pv["status"]["phase"] == "Released"
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["claimRef"]["name"]
    assert (h.nfs / NFS_DATA).read_bytes() == cycle["nfs_data"]
    assert "PV pipelines-audit: Released, Retain" in cycle["teardown"].out


def test_second_teardown_succeeds_and_changes_nothing(cycle):
    run = cycle["teardown2"]
    assert run.rc == 0, run.err
    assert run.mutations == []
    assert "==> nothing to change" in run.out
    assert len(list((cycle["h"].nfs / KARGO_EXPORTS).iterdir())) == 1


# ---- the rebuild after it --------------------------------------------------------------------


def test_rebuild_reattaches_the_released_volumes(cycle):
    run = cycle["bootstrap"]
    assert run.rc == 0, run.err
    h = cycle["h"]
    patches = [c for c in run.calls if is_call(c, "kubectl", "patch", "pv")]
    assert sorted(c["argv"][c["argv"].index("pv") + 1] for c in patches) == PVS
    for c in patches:
        # Only the gone claim's uid goes: the volume stays reserved for the same claim name.
        assert c["argv"][-4:] == [
            "--type",
            "merge",
            "-p",
            '{"spec":{"claimRef":{"uid":null,"resourceVersion":null}}}',
        ]
    storage = first_index(
        run.calls,
        lambda c: is_call(c, "kubectl", "apply", str(REPO / "gitops/bootstrap/storage.yaml")),
    )
    assert max(run.calls.index(c) for c in patches) < storage
    before = {
        o["metadata"]["name"]: o["metadata"]["uid"]
        for o in cycle["before"]["objects"]
        if o["kind"] == "PersistentVolume"
    }
    for d in STORAGE:
        if d["kind"] != "PersistentVolumeClaim":
            continue
        pvc = h.get("PersistentVolumeClaim", d["metadata"]["name"], d["metadata"]["namespace"])
        pv = h.get("PersistentVolume", d["spec"]["volumeName"])
        assert pv["metadata"]["uid"] == before[pv["metadata"]["name"]]  # the same volume
        assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
        assert pvc["status"]["phase"] == "Bound"
    assert (h.nfs / NFS_DATA).read_bytes() == cycle["nfs_data"]


def test_rebuild_restores_the_exported_freight(cycle):
    h = cycle["h"]
    (export,) = list((h.nfs / KARGO_EXPORTS).iterdir())
    got = {f["metadata"]["name"]: f for f in h.objects("Freight", KARGO_PROJECT)}
    assert set(got) == {"a" * 40, "b" * 40}
    for f in got.values():
        assert f["metadata"]["annotations"]["pipelines.celestium.life/restored-from"] == export.name
        assert "verifiedIn" not in f.get("status", {})
    assert got["a" * 40]["alias"] == "wise-otter"
    pv = h.get("PersistentVolume", "pipelines-kargo")
    assert pv["metadata"]["annotations"]["pipelines.celestium.life/restored-export"] == export.name


def test_rebuild_is_idempotent(cycle):
    run = cycle["bootstrap2"]
    assert run.rc == 0, run.err
    assert run.mutations == []
    assert "==> nothing to change" in run.out


# ---- dry run, refusals, half-installed clusters ------------------------------------------------


def test_dry_run_prints_the_ordered_plan_and_changes_nothing(h):
    before = h.state_path.read_bytes()
    run = h.teardown("--dry-run")
    assert run.rc == 0, run.err
    assert run.mutations == [] and h.state_path.read_bytes() == before
    lines = [ln.strip()[6:] for ln in run.out.splitlines() if ln.strip().startswith("would ")]
    expected = [
        "start pod kargo/pipeline-state-io",
        "write the kargo export to PV pipelines-kargo",
        "write the argocd export to PV pipelines-argocd",
        f"stop automated sync of Application {ROOT_APP}",
        "drop the finalizers of Application stonks-oracle-beta",
        "delete Application stonks-oracle-beta without cascade",
        "delete Application stonks-oracle-live without cascade",
        "delete Application arc-runners and what it deployed",
        "delete Application arc-controller and what it deployed",
        "delete Application kargo-stonks-oracle and what it deployed",
        "delete Kargo Project kargo-stonks-oracle",
        "delete Application kargo and what it deployed",
        "delete Application pipeline-console and what it deployed",
        f"delete Application {ROOT_APP} and what it deployed",
        "helm uninstall argocd -n argocd",
        "delete namespace argocd",
        "delete namespace kargo-stonks-oracle",
    ]
    i = 0
    for want in expected:
        while i < len(lines) and not lines[i].startswith(want):
            i += 1
        assert i < len(lines), f"{want!r} missing or out of order in:\n" + "\n".join(lines)
    assert "==> dry run:" in run.out and "nothing was changed" in run.out


def test_no_terminal_and_no_yes_refuses(h):
    run = h.run("runmelast.sh")
    assert run.rc == 2 and run.mutations == []
    assert "no terminal to ask on; pass --yes" in run.err


def test_unsafe_cases_orphan_the_app_and_stop_before_namespaces(h):
    """An Application managing something of the application is not cascaded; a claimed
    volume without Retain stops the teardown before any namespace (and claim) goes."""

    def unsafe(d: dict) -> None:
        for o in d["objects"]:
            if o["kind"] == "Application" and o["metadata"]["name"] == "pipeline-console":
                o["status"]["resources"].append(
                    {"kind": "Secret", "namespace": "stonks-oracle", "name": "stonks-oracle-db"}
                )
            if o["kind"] == "PersistentVolume" and o["metadata"]["name"] == "pipelines-audit":
                o["spec"]["persistentVolumeReclaimPolicy"] = "Delete"

    h.edit(unsafe)
    run = h.teardown()
    assert (
        "Application pipeline-console manages Secret stonks-oracle/stonks-oracle-db in an "
        "application namespace: removing it WITHOUT cascade" in run.err
    )
    assert h.get("Secret", "stonks-oracle-db", "stonks-oracle") is not None
    assert h.get("Application", "pipeline-console", "argocd") is None
    assert run.rc == 1
    assert "PV pipelines-audit (claimed in pipeline-console) has reclaim policy 'Delete'" in run.err
    assert not any(is_call(c, "kubectl", "delete", "namespace") for c in run.calls)
    assert h.get("PersistentVolumeClaim", "pipeline-audit", "pipeline-console") is not None


def test_keep_namespaces_keeps_secrets_and_claims(h):
    run = h.teardown("--keep-namespaces")
    assert run.rc == 0, run.err
    assert not any(is_call(c, "kubectl", "delete", "namespace") for c in run.calls)
    assert h.get("Secret", "repo-creds-github", "argocd") is not None
    assert h.get("PersistentVolume", "pipelines-audit")["status"]["phase"] == "Bound"


def test_half_installed_clusters_tear_down_cleanly(tmp_path):
    # nothing of the pipeline at all
    h = Harness(tmp_path / "empty")
    run = h.teardown()
    assert run.rc == 0, run.err
    assert run.mutations == [] and "==> nothing to change" in run.out
    # namespaces, volumes and Argo CD, but the root Application never applied
    h = Harness(tmp_path / "half")
    h.edit(lambda d: d.update(rollout_fail=["Deployment/argocd/argocd-server"]))
    assert h.bootstrap().rc == 1
    h.edit(lambda d: d.update(rollout_fail=[]))
    run = h.teardown()
    assert run.rc == 0, run.err
    assert any(is_call(c, "helm", "uninstall") for c in run.calls)
    names = {o["metadata"]["name"] for o in h.objects("Namespace")}
    assert names == set(APP_NAMESPACES)
    assert "no Kargo project kargo-stonks-oracle: no Kargo state to export" in run.out


def test_the_fake_models_the_dangers_the_teardown_avoids(h):
    """Deleting a stage Application as is cascades into the app and is undone by self-heal."""
    env = h.env()
    p = subprocess.run(
        [
            "kubectl",
            "--context",
            "gremlin",
            "delete",
            "applications.argoproj.io",
            "stonks-oracle-beta",
            "-n",
            "argocd",
            "--wait=false",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert h.get("Deployment", "stonks-oracle-api", "stonks-oracle-beta") is None
    assert h.get("Application", "stonks-oracle-beta", "argocd") is not None  # re-created
    assert h.state()["self_healed"] == ["Application/argocd/stonks-oracle-beta"]


def test_without_a_running_argocd_controller_nothing_is_cascaded(h):
    """A cascading delete would wait forever for a controller that is not there."""

    def scale_down(d: dict) -> None:
        for o in d["objects"]:
            if (
                o["kind"] == "StatefulSet"
                and o["metadata"]["name"] == "argocd-application-controller"
            ):
                o["status"]["readyReplicas"] = 0

    h.edit(scale_down)
    run = h.teardown("--timeout", "5")
    assert run.rc == 0, run.err
    assert "Argo CD cannot delete now: its application controller is not running" in run.err
    assert not any(
        is_call(c, "kubectl", "patch", "applications.argoproj.io")
        and "resources-finalizer" in c["argv"][-1]
        and '"add"' in c["argv"][-1]
        for c in run.calls
    )
    assert h.objects("Application") == []
    for ns in APP_NAMESPACES:
        assert h.get("Deployment", "stonks-oracle-api", ns) is not None


def test_a_failed_read_stops_the_teardown_instead_of_reading_as_empty(h):
    """kubectl failing inside `$(...)` read by a here-string or `< <(...)` is invisible to
    `set -e`: the Application list and the Retain check must not read a failure as "none"."""
    h.edit(
        lambda d: d.update(
            fail_calls=[{"tool": "kubectl", "match": "spec.destination.namespace", "times": 1}]
        )
    )
    run = h.teardown()
    assert run.rc == 1
    assert "kubectl get applications -n argocd failed" in run.err
    removals = [
        c
        for c in run.calls
        if c.get("verb") in ("delete", "uninstall", "patch") and "pod" not in c["argv"]
    ]
    assert removals == []
    assert h.get("Application", "stonks-oracle-live", "argocd") is not None

    h.edit(
        lambda d: d.update(
            fail_calls=[{"tool": "kubectl", "match": "get pvc -n pipeline-console -o", "times": 1}]
        )
    )
    run = h.teardown()
    assert run.rc == 1
    assert "kubectl get pvc -n pipeline-console failed" in run.err
    assert not any(is_call(c, "kubectl", "delete", "namespace") for c in run.calls)
    assert h.get("PersistentVolumeClaim", "pipeline-audit", "pipeline-console") is not None


def test_a_finished_state_pod_from_an_earlier_run_is_replaced(h):
    """An interrupted earlier run can leave the state pod behind; past its deadline it is
    Failed, `apply` would leave it so and the Ready wait would time out."""

    def leftover(d: dict) -> None:
        for ns in ("argocd", "kargo"):
            d["objects"].append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "pipeline-state-io", "namespace": ns, "uid": f"old-{ns}"},
                    "spec": {"containers": [{"name": "io", "image": "busybox"}]},
                    "status": {
                        "phase": "Failed",
                        "conditions": [{"type": "Ready", "status": "False"}],
                    },
                }
            )

    h.edit(leftover)
    run = h.teardown()
    assert run.rc == 0, run.err
    assert "remove the finished pod" in run.out
    first_delete = next(
        i for i, c in enumerate(run.calls) if is_call(c, "kubectl", "delete", "pod")
    )
    first_apply = next(i for i, c in enumerate(run.calls) if is_call(c, "kubectl", "apply"))
    assert first_delete < first_apply
