"""Test harness: runs the real runmefirst.sh/runmelast.sh against the fake cluster.

PATH holds only the fake kubectl/helm/curl and the tools the flake's `writeShellApplication`
gives the scripts (runtimeInputs), so a script that needs anything else fails here too.
The fake cluster starts from a model of the gremlin cluster: the stonks-oracle application
already running in its namespaces, and an Argo CD that, once installed, syncs the root
Application into the objects under gitops/apps/ of this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

FAKES = Path(__file__).resolve().parent
REPO = FAKES.parents[1]

# What the scripts may run besides kubectl/helm/curl: the flake's runtimeInputs
# (bash, coreutils, gnused, gnugrep, gnutar, diffutils, python3 with bcrypt). `sh`, `ls` and
# `cat` are for the fake's `kubectl exec`, which runs the pod's command locally.
RUNTIME_TOOLS = [
    *("bash", "sh", "base64", "basename", "cat", "chmod", "cp", "cut", "date", "diff", "dirname"),
    *("grep", "head", "ls", "mkdir", "mktemp", "od", "rm", "sed", "sha256sum", "sleep"),
    *("sort", "tail", "tar", "tr"),
]

CONTEXT = "gremlin"
PASSWORDS = {
    "KARGO_ADMIN_PASSWORD": "kargo-admin-pw-0451",
    "CONSOLE_ADMIN_PASSWORD": "console-pw-8812-x",
}
SECRET_ENV = {
    "GITHUB_APP_ID": "123456",
    "GITHUB_APP_INSTALLATION_ID": "7890123",
    "GIT_USERNAME": "celesrenata-bot",
    "GIT_TOKEN": "ghp_fakeTOKENvalue0123456789abcdef",
    **PASSWORDS,
}
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEfakeKEYmaterialAAAAB3NzaC1yc2E\n"
    "-----END RSA PRIVATE KEY-----\n"
)
# Every secret value a run is given; none may appear in an argv or in the output.
SECRET_VALUES = [
    SECRET_ENV["GIT_TOKEN"],
    PASSWORDS["KARGO_ADMIN_PASSWORD"],
    PASSWORDS["CONSOLE_ADMIN_PASSWORD"],
    "MIIEfakeKEYmaterialAAAAB3NzaC1yc2E",
]

APP_NAMESPACES = ("stonks-oracle", "stonks-oracle-beta", "stonks-oracle-paper")
NFS_DATA = "volume1/Kubernetes/pipelines/audit/audit.jsonl"


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in YAML(typ="safe", pure=True).load_all(path.read_text()) if d]


def gitops_docs(sub: str) -> list[dict]:
    docs: list[dict] = []
    for p in sorted((REPO / "gitops" / sub).rglob("*.yaml")):
        docs.extend(load_yaml_docs(p))
    return docs


def ref(obj: dict) -> dict:
    av = obj.get("apiVersion", "v1")
    return {
        "group": av.split("/")[0] if "/" in av else "",
        "version": av.split("/")[-1],
        "kind": obj["kind"],
        "namespace": obj["metadata"].get("namespace", ""),
        "name": obj["metadata"]["name"],
    }


def obj(kind: str, name: str, ns: str | None = None, api: str = "v1", **extra: Any) -> dict:
    md: dict[str, Any] = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": md, **extra}


def crd(name: str) -> dict:
    return obj("CustomResourceDefinition", name, api="apiextensions.k8s.io/v1")


KARGO_CRDS = [
    f"{p}.kargo.akuity.io"
    for p in (
        "projects",
        "projectconfigs",
        "stages",
        "freights",
        "promotions",
        "warehouses",
        "promotiontasks",
        "clusterpromotiontasks",
        "clusterconfigs",
    )
]


def deployed_by(app: dict) -> list[dict]:
    """What syncing one Application puts into the cluster (charts stand in as a few objects)."""
    dest = app["spec"]["destination"]["namespace"]
    name = app["metadata"]["name"]
    if dest == "kargo":
        return [
            *(crd(c) for c in KARGO_CRDS),
            obj("Deployment", "kargo-controller", dest, "apps/v1"),
            obj("Deployment", "kargo-api", dest, "apps/v1"),
        ]
    if dest == "arc-systems":
        return [
            crd("autoscalingrunnersets.actions.github.com"),
            obj("Deployment", "arc-gha-rs-controller", dest, "apps/v1"),
        ]
    if dest == "arc-runners":
        ars = obj(
            "AutoscalingRunnerSet", "self-hosted-gremlin", dest, "actions.github.com/v1alpha1"
        )
        ars["metadata"]["finalizers"] = ["autoscalingrunnerset.actions.github.com/finalizer"]
        return [ars]
    if dest in ("kargo-stonks-oracle", "pipeline-console"):
        sub = "kargo/project" if dest == "kargo-stonks-oracle" else "console"
        out = []
        for d in gitops_docs(sub):
            d["metadata"].setdefault("namespace", dest)
            if d["kind"] == "Stage":
                d["metadata"]["finalizers"] = ["kargo.akuity.io/finalizer"]
            out.append(d)
        return out
    if dest.startswith("stonks-oracle"):
        return [obj("Deployment", "stonks-oracle-api", dest, "apps/v1")]
    return [obj("Deployment", name, dest, "apps/v1")]  # an Application the model does not know


def argocd_sync_of_root(root: dict) -> list[dict]:
    """Objects Argo CD creates when the root Application syncs gitops/apps/ (directory recurse)."""
    out: list[dict] = []
    root_resources = []
    for d in gitops_docs("apps"):
        root_resources.append(ref(d))
        if d["kind"] == "Application":
            deployed = deployed_by(d)
            d["status"] = {
                "sync": {"status": "Synced"},
                "health": {"status": "Healthy"},
                "resources": [ref(x) for x in deployed],
            }
            out.extend(deployed)
        out.append(d)
    me = {k: root[k] for k in ("apiVersion", "kind")}
    me["metadata"] = {"name": root["metadata"]["name"], "namespace": "argocd"}
    me["status"] = {
        "sync": {"status": "Synced"},
        "health": {"status": "Healthy"},
        "resources": root_resources,
    }
    return [me, *out]


def fresh_cluster(nfs_root: Path) -> dict:
    """The gremlin cluster before the pipeline: the application runs in its own namespaces."""
    root = load_yaml_docs(REPO / "gitops" / "root.yaml")[0]
    objects = []
    for ns in APP_NAMESPACES:
        objects.append(obj("Namespace", ns, status={"phase": "Active"}))
        objects.append(obj("Deployment", "stonks-oracle-api", ns, "apps/v1"))
        objects.append(obj("Secret", "stonks-oracle-db", ns, data={"password": "c2VjcmV0"}))
    for i, o in enumerate(objects):
        o["metadata"]["uid"] = f"app-{i}"
    return {
        "contexts": [CONTEXT, "kind-scratch"],
        "current_context": CONTEXT,
        "reachable": True,
        "nfs_root": str(nfs_root),
        "objects": objects,
        "on_apply": {f"Application/argocd/{root['metadata']['name']}": argocd_sync_of_root(root)},
    }


@dataclass
class Run:
    rc: int
    out: str
    err: str
    calls: list[dict]

    @property
    def mutations(self) -> list[dict]:
        return [c for c in self.calls if c["mutating"]]


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.sysbin = tmp / "sysbin"
        self.state_path = tmp / "cluster.json"
        self.log_path = tmp / "calls.jsonl"
        self.nfs = tmp / "nfs"
        self.secrets_dir = tmp / "secrets"
        self.work = tmp / "work"
        for d in (self.bin, self.sysbin, self.nfs, self.work, tmp / "t"):
            d.mkdir(parents=True, exist_ok=True)
        for tool in ("kubectl", "helm", "curl"):
            self.install_fake(tool)
        for tool in RUNTIME_TOOLS:
            found = shutil.which(tool)
            if found is None:
                raise RuntimeError(f"{tool} is not installed; the scripts need it")
            (self.sysbin / tool).symlink_to(found)
        (self.sysbin / "python3").symlink_to(sys.executable)
        self.key_file = tmp / "github-app.pem"
        self.key_file.write_text(PRIVATE_KEY)
        self.key_file.chmod(0o600)
        self.save(fresh_cluster(self.nfs))
        data = self.nfs / NFS_DATA
        data.parent.mkdir(parents=True)
        data.write_text('{"id": 1, "action": "gate.allowed"}\n')

    def snapshot(self) -> tuple[str, Path]:
        """The cluster and its NFS data, to start other tests from."""
        return self.state_path.read_text(), self.nfs

    def restore(self, snap: tuple[str, Path]) -> None:
        text, nfs = snap
        data = json.loads(text)
        data["nfs_root"] = str(self.nfs)
        self.save(data)
        shutil.rmtree(self.nfs)
        shutil.copytree(nfs, self.nfs, symlinks=True)

    def install_fake(self, tool: str) -> None:
        src = (FAKES / tool).read_text().split("\n", 1)[1]
        dst = self.bin / tool
        # -S: no site hooks (PYTHONPATH still finds ruamel); the fake starts once per call.
        dst.write_text(f"#!{sys.executable} -S\n{src}")
        dst.chmod(0o755)

    def remove_tool(self, tool: str) -> None:
        for d in (self.bin, self.sysbin):
            if (d / tool).exists():
                (d / tool).unlink()

    # state ------------------------------------------------------------------------------
    def save(self, data: dict) -> None:
        self.state_path.write_text(json.dumps(data, indent=1, sort_keys=True))

    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def objects(self, kind: str, ns: str | None = None) -> list[dict]:
        return [
            o
            for o in self.state()["objects"]
            if o["kind"] == kind and (ns is None or o["metadata"].get("namespace", "") == ns)
        ]

    def get(self, kind: str, name: str, ns: str = "") -> dict | None:
        for o in self.objects(kind):
            if o["metadata"]["name"] == name and o["metadata"].get("namespace", "") == ns:
                return o
        return None

    def edit(self, fn: Any) -> None:
        data = self.state()
        fn(data)
        self.save(data)

    # runs -------------------------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None, secrets: bool = False) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:{self.sysbin}",
            "HOME": str(self.tmp),
            "TMPDIR": str(self.tmp / "t"),
            "LC_ALL": "C.UTF-8",
            "FAKE_CLUSTER_STATE": str(self.state_path),
            "FAKE_CLUSTER_LOG": str(self.log_path),
            "FAKE_FAKES_DIR": str(FAKES),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "PIPELINES_POLL_SECONDS": "0.05",
        }
        if secrets:
            env.update(SECRET_ENV)
            env["GITHUB_APP_PRIVATE_KEY_FILE"] = str(self.key_file)
        env.update(extra or {})
        return env

    def run(
        self,
        script: str,
        *args: str,
        secrets: bool = False,
        env: dict[str, str] | None = None,
        stdin: Any = subprocess.DEVNULL,
        script_dir: Path = REPO,
    ) -> Run:
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        p = subprocess.run(
            ["bash", str(script_dir / script), *args],
            cwd=self.work,
            env=self.env(env, secrets),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        calls = []
        if self.log_path.exists():
            with self.log_path.open() as fh:
                fh.seek(start)
                calls = [json.loads(line) for line in fh if line.strip()]
        return Run(p.returncode, p.stdout, p.stderr, calls)

    def bootstrap(self, *args: str, **kw: Any) -> Run:
        kw.setdefault("secrets", True)
        return self.run("runmefirst.sh", "--yes", *args, **kw)

    def teardown(self, *args: str, **kw: Any) -> Run:
        return self.run("runmelast.sh", "--yes", *args, **kw)


def first_index(calls: list[dict], pred: Any) -> int:
    for i, c in enumerate(calls):
        if pred(c):
            return i
    raise AssertionError("no such call")


def is_call(c: dict, tool: str, verb: str, *words: str) -> bool:
    return c["tool"] == tool and c.get("verb") == verb and all(w in c["argv"] for w in words)
