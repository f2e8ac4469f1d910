"""A small fake Kubernetes cluster behind fake `kubectl`, `helm` and `curl` executables.

The bootstrap/teardown tests run the real runmefirst.sh/runmelast.sh with the executables in
this directory first on PATH. Each call is appended as one JSON line to $FAKE_CLUSTER_LOG
(argv, verb, whether it mutates, the objects it targeted, exit code); the cluster is the JSON
file $FAKE_CLUSTER_STATE and mutating calls update it.

What the fake models, because the scripts' correctness depends on it:
- objects keyed by (kind, namespace, name); CRD-backed kinds fail like kubectl when their CRD
  is missing; namespaced objects cannot be created in a missing namespace;
- `kubectl diff` exit codes (0 same, 1 differs, 2 error) with apply's merge semantics;
- finalizers: an object with finalizers only gets a deletionTimestamp; the Argo CD
  `resources-finalizer` cascades to the Application's `status.resources` while Argo CD runs
  (helm release `argocd` installed); Kargo's finalizer clears while Kargo's controller runs;
- Argo CD self-heal: a resource deleted while an automated self-healing Application (not
  itself being deleted) lists it in `status.resources` is re-created, as Argo CD would;
- namespaces delete their contents; a Kargo Project deletes its namespace; PVCs bind to the
  PV named by `volumeName` unless the PV's claimRef names another claim; deleting a claim
  leaves the PV `Released` with its claimRef;
- `kubectl exec` runs the command locally with paths under a volume mount rewritten to the
  NFS directory of the PV behind the pod's claim (`nfs_root` + `spec.nfs.path`).

Anything the scripts pass that the fake does not model fails with exit 64, so a script cannot
silently depend on behaviour nobody checked.
"""

from __future__ import annotations

# Imports are kept to what every call needs: the fake starts once per kubectl/helm call.
import copy
import fcntl
import json
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: it costs every call
if TYPE_CHECKING:
    from typing import Any

UNSUPPORTED = 64
ARGO_FINALIZER = "resources-finalizer.argocd.argoproj.io"
KARGO_FINALIZER = "kargo.akuity.io/finalizer"
ARC_FINALIZER = "autoscalingrunnerset.actions.github.com/finalizer"


class Unsupported(Exception):
    """The script used something the fake does not model."""


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- resource types


class Kind:
    def __init__(
        self,
        kind: str,
        api_version: str,
        plural: str,
        namespaced: bool,
        crd: str | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.api_version = api_version
        self.plural = plural
        self.namespaced = namespaced
        self.crd = crd
        self.aliases = aliases

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def type_name(self) -> str:
        return f"{self.singular}.{self.group}" if self.group else self.singular


KINDS = [
    Kind("Namespace", "v1", "namespaces", False, aliases=("ns",)),
    Kind("PersistentVolume", "v1", "persistentvolumes", False, aliases=("pv",)),
    Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims", True, aliases=("pvc",)),
    Kind("Secret", "v1", "secrets", True),
    Kind("ConfigMap", "v1", "configmaps", True, aliases=("cm",)),
    Kind("Pod", "v1", "pods", True, aliases=("po",)),
    Kind("Service", "v1", "services", True, aliases=("svc",)),
    Kind("ServiceAccount", "v1", "serviceaccounts", True, aliases=("sa",)),
    Kind("Deployment", "apps/v1", "deployments", True, aliases=("deploy",)),
    Kind("StatefulSet", "apps/v1", "statefulsets", True, aliases=("sts",)),
    Kind(
        "CustomResourceDefinition",
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        False,
        aliases=("crd", "crds"),
    ),
    Kind(
        "Application",
        "argoproj.io/v1alpha1",
        "applications",
        True,
        "applications.argoproj.io",
        ("app", "apps"),
    ),
    Kind("AppProject", "argoproj.io/v1alpha1", "appprojects", True, "appprojects.argoproj.io"),
    Kind(
        "ApplicationSet",
        "argoproj.io/v1alpha1",
        "applicationsets",
        True,
        "applicationsets.argoproj.io",
    ),
    Kind("Project", "kargo.akuity.io/v1alpha1", "projects", False, "projects.kargo.akuity.io"),
    Kind(
        "ProjectConfig",
        "kargo.akuity.io/v1alpha1",
        "projectconfigs",
        True,
        "projectconfigs.kargo.akuity.io",
    ),
    Kind("Stage", "kargo.akuity.io/v1alpha1", "stages", True, "stages.kargo.akuity.io"),
    Kind("Freight", "kargo.akuity.io/v1alpha1", "freights", True, "freights.kargo.akuity.io"),
    Kind("Promotion", "kargo.akuity.io/v1alpha1", "promotions", True, "promotions.kargo.akuity.io"),
    Kind("Warehouse", "kargo.akuity.io/v1alpha1", "warehouses", True, "warehouses.kargo.akuity.io"),
    Kind(
        "AutoscalingRunnerSet",
        "actions.github.com/v1alpha1",
        "autoscalingrunnersets",
        True,
        "autoscalingrunnersets.actions.github.com",
    ),
]
BY_KIND = {k.kind: k for k in KINDS}


def resolve_type(name: str) -> Kind:
    """A kubectl resource argument (`pv`, `applications.argoproj.io`, `deployment.apps`)."""
    low = name.lower()
    for k in KINDS:
        names = {k.singular, k.plural, *k.aliases}
        if k.group:
            names |= {f"{k.singular}.{k.group}", f"{k.plural}.{k.group}"}
        if low in names:
            # Short names of CRD kinds are ambiguous on a real cluster (e.g. `project`):
            # the scripts must use the fully qualified name for Kargo's cluster-scoped Project.
            if k.kind == "Project" and low in {"project", "projects"}:
                raise Unsupported("use projects.kargo.akuity.io, `project` is ambiguous")
            return k
    raise Unsupported(f"resource type {name!r}")


def kind_of(obj: dict) -> Kind:
    k = BY_KIND.get(obj.get("kind", ""))
    if k is None:
        av = obj.get("apiVersion", "v1")
        k = Kind(obj["kind"], av, obj["kind"].lower() + "s", "namespace" in obj["metadata"])
    return k


# --------------------------------------------------------------------------- state


def _now(state: dict) -> str:
    state["clock"] = state.get("clock", 0) + 1
    return f"2026-08-13T12:{state['clock'] // 60 % 60:02d}:{state['clock'] % 60:02d}Z"


class Cluster:
    def __init__(self, data: dict) -> None:
        self.data = data

    # objects ---------------------------------------------------------------
    @property
    def objects(self) -> list[dict]:
        return self.data.setdefault("objects", [])

    def find(self, kind: str, ns: str, name: str) -> dict | None:
        for o in self.objects:
            md = o["metadata"]
            if o["kind"] == kind and md.get("namespace", "") == ns and md["name"] == name:
                return o
        return None

    def list(self, kind: str, ns: str | None) -> list[dict]:
        out = [o for o in self.objects if o["kind"] == kind]
        if ns is not None:
            out = [o for o in out if o["metadata"].get("namespace", "") == ns]
        return sorted(
            out, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    def has_crd(self, k: Kind) -> bool:
        return k.crd is None or self.find("CustomResourceDefinition", "", k.crd) is not None

    def require_crd(self, k: Kind, as_typed: str) -> None:
        if not self.has_crd(k):
            raise CliError(f'error: the server doesn\'t have a resource type "{as_typed}"')

    def namespace_ok(self, k: Kind, ns: str) -> None:
        if not k.namespaced:
            return
        nso = self.find("Namespace", "", ns)
        if nso is None:
            raise CliError(f'Error from server (NotFound): namespaces "{ns}" not found')
        if nso["metadata"].get("deletionTimestamp"):
            raise CliError(
                f"Error from server (Forbidden): unable to create new content in namespace {ns} "
                "because it is being terminated"
            )

    def add(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        self.data["uid"] = self.data.get("uid", 0) + 1
        md["uid"] = f"uid-{self.data['uid']}"
        md.setdefault("creationTimestamp", _now(self.data))
        md.pop("deletionTimestamp", None)
        md.pop("resourceVersion", None)
        default_status(obj)
        self.objects.append(obj)
        return obj

    # controllers -----------------------------------------------------------
    def running(self, what: str) -> bool:
        if what == "argocd":
            sts = self.find("StatefulSet", "argocd", "argocd-application-controller")
            return sts is not None and sts.get("status", {}).get("readyReplicas", 0) >= 1
        if what == "kargo":
            return self.find("Deployment", "kargo", "kargo-controller") is not None
        if what == "arc":
            return self.find("Deployment", "arc-systems", "arc-gha-rs-controller") is not None
        raise AssertionError(what)

    def delete(self, obj: dict, deleted: list[str]) -> bool:
        """Delete one object as the API server and the controllers would.

        Returns True when the object is gone, False when a finalizer holds it."""
        if obj not in self.objects:
            return True
        md = obj["metadata"]
        md.setdefault("deletionTimestamp", _now(self.data))
        if obj["kind"] == "Namespace":
            obj.setdefault("status", {})["phase"] = "Terminating"
            ns = md["name"]
            for o in [o for o in self.objects if o["metadata"].get("namespace") == ns]:
                self.delete(o, deleted)
            if any(o["metadata"].get("namespace") == ns for o in self.objects):
                return False
        self.run_finalizers(obj, deleted)
        if md.get("finalizers"):
            return False
        self.remove(obj, deleted)
        return True

    def run_finalizers(self, obj: dict, deleted: list[str]) -> None:
        fins = obj["metadata"].get("finalizers") or []
        if ARGO_FINALIZER in fins and self.running("argocd"):
            for ref in obj.get("status", {}).get("resources", []):
                target = self.find(ref["kind"], ref.get("namespace", ""), ref["name"])
                if target is not None:
                    self.delete(target, deleted)
            fins.remove(ARGO_FINALIZER)
        if KARGO_FINALIZER in fins and self.running("kargo"):
            fins.remove(KARGO_FINALIZER)
        if ARC_FINALIZER in fins and self.running("arc"):
            fins.remove(ARC_FINALIZER)
        if not fins:
            obj["metadata"].pop("finalizers", None)

    def remove(self, obj: dict, deleted: list[str]) -> None:
        self.objects.remove(obj)
        md = obj["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        deleted.append(f"{obj['kind']}/{ns}/{name}")
        if obj["kind"] == "PersistentVolumeClaim":
            for pv in self.list("PersistentVolume", None):
                ref = pv["spec"].get("claimRef") or {}
                if ref.get("namespace") == ns and ref.get("name") == name:
                    pv.setdefault("status", {})["phase"] = "Released"
        if obj["kind"] == "CustomResourceDefinition":
            for k in KINDS:
                if k.crd == name:
                    for o in c_list_all(self, k.kind):
                        if o in self.objects:
                            self.objects.remove(o)
                            deleted.append(
                                f"{o['kind']}/{o['metadata'].get('namespace', '')}/"
                                f"{o['metadata']['name']}"
                            )
        if obj["kind"] == "Project":
            keep = (md.get("annotations") or {}).get("kargo.akuity.io/keep-namespace") == "true"
            nso = self.find("Namespace", "", name)
            if nso is not None and not keep:
                self.delete(nso, deleted)
        self.self_heal(obj)

    def self_heal(self, gone: dict) -> None:
        """Argo CD re-creates what a self-healing Application manages."""
        if not self.running("argocd"):
            return
        md = gone["metadata"]
        if md.get("namespace"):
            nso = self.find("Namespace", "", md["namespace"])
            if nso is None or nso["metadata"].get("deletionTimestamp"):
                return
        for app in self.list("Application", None):
            if app["metadata"].get("deletionTimestamp"):
                continue
            automated = (app.get("spec", {}).get("syncPolicy") or {}).get("automated")
            if not (isinstance(automated, dict) and automated.get("selfHeal")):
                continue
            for ref in app.get("status", {}).get("resources", []):
                if (
                    ref["kind"] == gone["kind"]
                    and ref.get("namespace", "") == md.get("namespace", "")
                    and ref["name"] == md["name"]
                ):
                    revived = copy.deepcopy(gone)
                    revived["metadata"].pop("deletionTimestamp", None)
                    self.data.setdefault("self_healed", []).append(
                        f"{gone['kind']}/{md.get('namespace', '')}/{md['name']}"
                    )
                    self.add(revived)
                    return

    def reconcile(self) -> None:
        """Bind claims to volumes; finish deletions that controllers can now finish."""
        for pvc in self.list("PersistentVolumeClaim", None):
            if pvc.get("status", {}).get("phase") == "Bound":
                continue
            pv = self.find("PersistentVolume", "", pvc["spec"].get("volumeName", ""))
            if pv is None:
                continue
            ref = pv["spec"].get("claimRef")
            md = pvc["metadata"]
            if ref and not (
                ref.get("namespace") == md["namespace"]
                and ref.get("name") == md["name"]
                and ref.get("uid") in (None, md["uid"])
            ):
                continue
            pv["spec"]["claimRef"] = {
                "kind": "PersistentVolumeClaim",
                "namespace": md["namespace"],
                "name": md["name"],
                "uid": md["uid"],
            }
            pv.setdefault("status", {})["phase"] = "Bound"
            pvc.setdefault("status", {})["phase"] = "Bound"
        for pv in self.list("PersistentVolume", None):
            # No claimRef, or one without a uid (pre-bound to a claim by name): Available.
            ref = pv["spec"].get("claimRef")
            if (not ref or not ref.get("uid")) and pv.get("status", {}).get("phase") != "Bound":
                pv.setdefault("status", {})["phase"] = "Available"
        deleted: list[str] = []
        for o in list(self.objects):
            if o["metadata"].get("deletionTimestamp") and o in self.objects:
                if o["kind"] == "Namespace":
                    ns = o["metadata"]["name"]
                    if not any(x["metadata"].get("namespace") == ns for x in self.objects):
                        self.run_finalizers(o, deleted)
                        if not o["metadata"].get("finalizers"):
                            self.remove(o, deleted)
                    continue
                self.run_finalizers(o, deleted)
                if not o["metadata"].get("finalizers"):
                    self.remove(o, deleted)


def c_list_all(c: Cluster, kind: str) -> list[dict]:
    """Every object of a kind: they go with their CRD, finalizers or not."""
    return [o for o in c.objects if o["kind"] == kind]


def default_status(obj: dict) -> None:
    st = obj.setdefault("status", {})
    kind = obj["kind"]
    if kind == "Namespace":
        st.setdefault("phase", "Active")
    elif kind == "PersistentVolume":
        st.setdefault("phase", "Bound" if obj["spec"].get("claimRef") else "Available")
    elif kind == "PersistentVolumeClaim":
        st.setdefault("phase", "Pending")
    elif kind == "Pod":
        st.setdefault("phase", "Running")
        st.setdefault("conditions", [{"type": "Ready", "status": "True"}])
    if not st:
        obj.pop("status")


class open_cluster:  # used like a function: `with open_cluster(write) as c`
    """The cluster under an exclusive lock; saved on exit when the call may write."""

    def __init__(self, write: bool) -> None:
        self.write = write
        self.path = os.environ["FAKE_CLUSTER_STATE"]

    def __enter__(self) -> Cluster:
        self.lock = open(self.path + ".lock", "a")  # closed in __exit__
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        with open(self.path) as fh:
            self.cluster = Cluster(json.load(fh))
        return self.cluster

    def __exit__(self, *exc: object) -> None:
        # Like the API server: what succeeded before an error stays done. Reads leave the
        # file as it is.
        try:
            if self.write:
                self.cluster.reconcile()
                with open(self.path + ".tmp", "w") as fh:
                    json.dump(self.cluster.data, fh, separators=(",", ":"))
                os.replace(self.path + ".tmp", self.path)
        finally:
            self.lock.close()


def log_call(record: dict) -> None:
    log = os.environ.get("FAKE_CLUSTER_LOG")
    if not log:
        return
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- YAML / JSON


def read_text(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _yaml() -> Any:  # imported on use: most calls never parse YAML, and the fake should start fast
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True)


def load_docs(text: str) -> list[dict]:
    docs: list[dict] = []
    for d in _yaml().load_all(text):
        if d is None:
            continue
        if not isinstance(d, dict) or "kind" not in d:
            raise CliError("error: error validating data: a document has no kind")
        if d["kind"] == "List":
            docs.extend(d.get("items") or [])
        else:
            docs.append(d)
    return docs


def dump_yaml(obj: Any) -> str:
    import io

    y = _yaml()
    y.default_flow_style = False
    buf = io.StringIO()
    y.dump(obj, buf)
    return buf.getvalue()


def merge(live: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386); also apply's view of a manifest over a live object."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(live) if isinstance(live, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def is_subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            is_subset(v, have.get(k)) for k, v in want.items() if k != "status"
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(a, b) for a, b in zip(want, have, strict=True))
        )
    return want == have


def json_patch(obj: dict, ops: list[dict]) -> dict:
    out = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.get(p)
            if parent is None:
                raise CliError(
                    "The request is invalid: the server rejected our request due to an error "
                    f"in our request (path {op['path']} does not exist)"
                )
        last = parts[-1]
        if op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            elif last in parent:
                del parent[last]
            else:
                raise CliError(
                    "The request is invalid: the server rejected our request due to an error "
                    f"in our request (remove: {op['path']} does not exist)"
                )
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                else:
                    parent.insert(int(last), op["value"])
            else:
                parent[last] = op["value"]
        else:
            raise Unsupported(f"json patch op {op['op']}")
    return out


# --------------------------------------------------------------------------- JSONPath


def _unescape(s: str) -> str:
    return s.encode().decode("unicode_escape")


def jp_template(tpl: str) -> list:
    """Parse a kubectl JSONPath template into (text|expr|range) nodes."""
    root: list = []
    stack = [root]
    i = 0
    while i < len(tpl):
        j = tpl.find("{", i)
        if j < 0:
            stack[-1].append(("text", tpl[i:]))
            break
        if j > i:
            stack[-1].append(("text", tpl[i:j]))
        k, quote = j + 1, None
        while k < len(tpl):
            c = tpl[k]
            if quote:
                if c == "\\":
                    k += 1
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "}":
                break
            k += 1
        inner = tpl[j + 1 : k].strip()
        i = k + 1
        if inner.startswith("range "):
            node = ("range", inner[6:].strip(), [])
            stack[-1].append(node)
            stack.append(node[2])
        elif inner == "end":
            stack.pop()
        elif inner[:1] in "\"'":
            stack[-1].append(("text", _unescape(inner[1:-1])))
        else:
            stack[-1].append(("expr", inner))
    return root


def jp_steps(path: str) -> list:
    import re

    steps: list = []
    i = 0
    if path[:1] in "$@":
        i = 1
    while i < len(path):
        c = path[i]
        if c == ".":
            i += 1
            name = ""
            while i < len(path) and path[i] not in ".[":
                if path[i] == "\\" and i + 1 < len(path):
                    name += path[i + 1]
                    i += 2
                    continue
                name += path[i]
                i += 1
            steps.append(("all",) if name == "*" else ("field", name))
        elif c == "[":
            depth, k = 0, i
            while k < len(path):
                if path[k] == "[":
                    depth += 1
                elif path[k] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            inner = path[i + 1 : k]
            i = k + 1
            if inner == "*":
                steps.append(("all",))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(("index", int(inner)))
            elif inner.startswith("?(") and inner.endswith(")"):
                m = re.fullmatch(r"\s*(@[^=!<>]*?)\s*(==|!=)\s*(.+?)\s*", inner[2:-1])
                if m:
                    lit = m.group(3)
                    val: Any = lit[1:-1] if lit[:1] in "\"'" else json.loads(lit)
                    steps.append(("filter", jp_steps(m.group(1)), m.group(2), val))
                else:
                    steps.append(("filter", jp_steps(inner[2:-1].strip()), "exists", None))
            else:
                raise Unsupported(f"jsonpath subscript [{inner}]")
        else:
            raise Unsupported(f"jsonpath {path!r}")
    return steps


def jp_eval(steps: list, node: Any) -> list:
    cur = [node]
    for st in steps:
        nxt: list = []
        for n in cur:
            if st[0] == "field":
                if isinstance(n, dict) and st[1] in n:
                    nxt.append(n[st[1]])
            elif st[0] == "all":
                if isinstance(n, list):
                    nxt.extend(n)
                elif isinstance(n, dict):
                    nxt.extend(n.values())
            elif st[0] == "index":
                if isinstance(n, list) and -len(n) <= st[1] < len(n):
                    nxt.append(n[st[1]])
            elif st[0] == "filter":
                for item in n if isinstance(n, list) else []:
                    got = jp_eval(st[1], item)
                    if st[2] == "exists":
                        ok = bool(got)
                    elif st[2] == "==":
                        ok = bool(got) and got[0] == st[3]
                    else:
                        ok = not got or got[0] != st[3]
                    if ok:
                        nxt.append(item)
        cur = nxt
    return cur


def jp_format(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    if v is None:
        return ""
    return str(v)


def jp_render(nodes: list, data: Any) -> str:
    out = []
    for n in nodes:
        if n[0] == "text":
            out.append(n[1])
        elif n[0] == "expr":
            out.append(" ".join(jp_format(v) for v in jp_eval(jp_steps(n[1]), data)))
        else:
            for item in jp_eval(jp_steps(n[1]), data):
                out.append(jp_render(n[2], item))
    return "".join(out)


# --------------------------------------------------------------------------- arg parsing

VALUE_FLAGS = {
    "--context": "context",
    "-n": "namespace",
    "--namespace": "namespace",
    "-o": "output",
    "--output": "output",
    "-f": "filename",
    "--filename": "filename",
    "-l": "selector",
    "--selector": "selector",
    "--timeout": "timeout",
    "--for": "for",
    "--type": "type",
    "-p": "patch",
    "--patch": "patch",
    "--request-timeout": "request_timeout",
    "--raw": "raw",
    "--cascade": "cascade",
    "--dry-run": "dry_run",
    "-c": "container",
    "--container": "container",
}
BOOL_FLAGS = {
    "--ignore-not-found": "ignore_not_found",
    "--overwrite": "overwrite",
    "--all": "all",
    "-A": "all_namespaces",
    "--all-namespaces": "all_namespaces",
    "-i": "stdin",
    "--stdin": "stdin",
    "--wait": "wait",
}


class Args:
    def __init__(self) -> None:
        self.pos: list[str] = []
        self.opts: dict[str, Any] = {}
        self.command: list[str] = []


def parse_args(argv: list[str], value_flags: dict, bool_flags: dict) -> Args:
    a = Args()
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            a.command = argv[i + 1 :]
            break
        name, eq, val = tok.partition("=")
        if tok.startswith("-") and name in value_flags:
            key = value_flags[name]
            if not eq:
                if i + 1 >= len(argv):
                    raise Unsupported(f"flag {name} needs a value")
                i += 1
                val = argv[i]
            if key == "filename":
                a.opts.setdefault(key, []).append(val)
            else:
                a.opts[key] = val
        elif tok.startswith("-") and name in bool_flags:
            a.opts[bool_flags[name]] = val.lower() != "false" if eq else True
        elif tok.startswith("-o") and len(tok) > 2 and "output" in value_flags.values():
            a.opts["output"] = tok[2:]
        elif tok.startswith("-") and tok != "-":
            raise Unsupported(f"flag {tok}")
        else:
            a.pos.append(tok)
        i += 1
    return a


# --------------------------------------------------------------------------- kubectl

MUTATING_KUBECTL = {"apply", "create", "delete", "patch", "annotate", "label", "replace", "exec"}
READONLY_KUBECTL = {"get", "diff", "wait", "config", "version", "rollout"}


class Kubectl:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.a = parse_args(argv, VALUE_FLAGS, BOOL_FLAGS)
        self.verb = self.a.pos[0] if self.a.pos else ""
        self.targets: list[str] = []
        self.deleted: list[str] = []
        self.out: list[str] = []
        self.err: list[str] = []
        self.docs: list[dict] | None = None

    @property
    def mutating(self) -> bool:
        if self.verb == "rollout":
            return len(self.a.pos) > 1 and self.a.pos[1] != "status"
        if self.a.opts.get("dry_run") in ("client", "server"):
            return False
        return self.verb in MUTATING_KUBECTL

    def ns(self) -> str:
        return self.a.opts.get("namespace", "default")

    def run(self) -> int:
        if self.verb not in MUTATING_KUBECTL | READONLY_KUBECTL:
            raise Unsupported(f"kubectl {self.verb}")
        if self.verb == "config":
            return self.config()
        if self.verb == "version":
            self.out.append("Client Version: v1.35.0-fake")
            return 0
        # Read manifests (stdin too) before taking the cluster lock: the command feeding
        # stdin may itself be calling kubectl.
        self.read_files()
        with open_cluster(self.mutating) as c:
            ctx = self.a.opts.get("context", c.data.get("current_context"))
            if ctx not in c.data.get("contexts", []):
                raise CliError(f'error: context "{ctx}" does not exist')
            if not c.data.get("reachable", True):
                raise CliError(
                    "Unable to connect to the server: dial tcp 192.168.42.2:6443: "
                    "connect: connection refused"
                )
            if self.verb == "exec":
                return self.exec(c)
            return getattr(self, "do_" + self.verb)(c)

    # -- config / reads ------------------------------------------------------
    def config(self) -> int:
        with open_cluster(False) as c:
            sub = self.a.pos[1:] if len(self.a.pos) > 1 else []
            if sub == ["current-context"]:
                cur = c.data.get("current_context")
                if not cur:
                    raise CliError("error: current-context is not set")
                self.out.append(cur)
                return 0
            if sub == ["get-contexts"] and self.a.opts.get("output") == "name":
                # Like kubectl (Go, unbuffered stdout): sorted, one write per name; a reader
                # that has gone (`| grep -q`) kills it with SIGPIPE, exit 141 under pipefail.
                import time

                for i, name in enumerate(sorted(c.data.get("contexts", []))):
                    if i:
                        time.sleep(0.05)
                    try:
                        sys.stdout.write(name + "\n")
                        sys.stdout.flush()
                    except BrokenPipeError:
                        log_call(
                            {"tool": "kubectl", "argv": self.argv, "verb": "config"}
                            | {"mutating": False, "rc": 141, "targets": [], "deleted": []}
                        )
                        os._exit(141)
                return 0
        raise Unsupported(f"kubectl config {sub}")

    def selected(self, c: Cluster, k: Kind, names: list[str], typed: str) -> list[dict]:
        c.require_crd(k, typed)
        ns = None if (self.a.opts.get("all_namespaces") or not k.namespaced) else self.ns()
        if names:
            found = []
            for n in names:
                o = c.find(k.kind, ns or "", n)
                if o is None:
                    if not self.a.opts.get("ignore_not_found"):
                        raise CliError(f'Error from server (NotFound): {k.plural} "{n}" not found')
                    continue
                found.append(o)
            return found
        objs = c.list(k.kind, ns)
        sel = self.a.opts.get("selector")
        if sel:
            want = dict(p.split("=", 1) for p in sel.split(","))
            objs = [
                o
                for o in objs
                if all((o["metadata"].get("labels") or {}).get(kk) == v for kk, v in want.items())
            ]
        return objs

    def print_objects(self, objs: list[dict], single: bool) -> None:
        fmt = self.a.opts.get("output", "")
        data: Any = (
            objs[0]
            if single and len(objs) == 1
            else {"apiVersion": "v1", "kind": "List", "items": objs, "metadata": {}}
        )
        if fmt == "name":
            for o in objs:
                self.out.append(f"{kind_of(o).type_name()}/{o['metadata']['name']}")
        elif fmt == "json":
            self.out.append(json.dumps(data, indent=4))
        elif fmt == "yaml":
            self.out.append(dump_yaml(data).rstrip("\n"))
        elif fmt.startswith("jsonpath="):
            text = jp_render(jp_template(fmt[len("jsonpath=") :]), data)
            if text:
                sys.stdout.write(text)
        elif fmt == "":
            if objs:
                self.out.append("NAME")
                self.out.extend(o["metadata"]["name"] for o in objs)
        else:
            raise Unsupported(f"-o {fmt}")

    def do_get(self, c: Cluster) -> int:
        if "raw" in self.a.opts:
            if self.a.opts["raw"] not in ("/readyz", "/healthz", "/livez"):
                raise Unsupported(f"--raw {self.a.opts['raw']}")
            self.out.append("ok")
            return 0
        if "filename" in self.a.opts:
            docs = self.read_files()
            found = []
            for d in docs:
                k = kind_of(d)
                ns = d["metadata"].get("namespace", self.ns()) if k.namespaced else ""
                o = c.find(k.kind, ns, d["metadata"]["name"])
                if o is None:
                    if not self.a.opts.get("ignore_not_found"):
                        raise CliError(
                            f'Error from server (NotFound): {k.plural} "{d["metadata"]["name"]}"'
                            " not found"
                        )
                    continue
                found.append(o)
            # kubectl prints a lone object found through one file as itself, not as a List
            # (builder: singleItemImplied for one path that is not stdin; get: len(infos) == 1).
            files = self.a.opts["filename"]
            self.print_objects(found, single=files != ["-"] and len(files) == 1)
            return 0
        if len(self.a.pos) < 2:
            raise Unsupported("kubectl get without a type")
        types = self.a.pos[1]
        names = self.a.pos[2:]
        if "/" in types:
            types, _, n = types.partition("/")
            names = [n, *names]
        objs = []
        for t in types.split(","):
            objs.extend(self.selected(c, resolve_type(t), names, t))
        self.print_objects(objs, single=len(names) == 1 and "," not in types)
        return 0

    def read_files(self) -> list[dict]:
        if self.docs is None:
            self.docs = []
            for f in self.a.opts.get("filename", []):
                text = sys.stdin.read() if f == "-" else read_text(f)
                self.docs.extend(load_docs(text))
        return copy.deepcopy(self.docs)

    def do_diff(self, c: Cluster) -> int:
        # kubectl always hands the live and merged objects to `diff -u -N` (or
        # $KUBECTL_EXTERNAL_DIFF); without it on PATH the command fails, exit 2.
        import shutil

        prog = (os.environ.get("KUBECTL_EXTERNAL_DIFF") or "diff").split()[0]
        if shutil.which(prog) is None:
            self.err.append(f'error: failed to run "{prog}": executable file not found in $PATH')
            return 2
        differs = False
        for d in self.read_files():
            k = kind_of(d)
            if not c.has_crd(k):
                self.err.append(f'error: no matches for kind "{k.kind}" in "{k.api_version}"')
                return 2
            ns = d["metadata"].get("namespace", self.ns()) if k.namespaced else ""
            if k.namespaced and c.find("Namespace", "", ns) is None:
                self.err.append(f'Error from server (NotFound): namespaces "{ns}" not found')
                return 2
            live = c.find(k.kind, ns, d["metadata"]["name"])
            if live is None or not is_subset(d, live):
                differs = True
                self.out.append(f"diff -u -N live/{k.kind}.{ns}.{d['metadata']['name']} merged")
        return 1 if differs else 0

    def do_wait(self, c: Cluster) -> int:
        cond = self.a.opts.get("for", "")
        if len(self.a.pos) != 2 or "/" not in self.a.pos[1]:
            raise Unsupported("kubectl wait takes exactly one TYPE/NAME")
        typed, _, name = self.a.pos[1].partition("/")
        k = resolve_type(typed)
        if cond == "delete" and not c.has_crd(k):
            return 0
        c.require_crd(k, typed)
        o = c.find(k.kind, self.ns() if k.namespaced else "", name)
        if cond == "delete":
            if o is None:
                return 0
            self.err.append(f"error: timed out waiting for the condition on {k.plural}/{name}")
            return 1
        if o is None:
            raise CliError(f'Error from server (NotFound): {k.plural} "{name}" not found')
        if cond.startswith("condition="):
            want = cond[len("condition=") :]
            conds = o.get("status", {}).get("conditions", [])
            if any(x["type"] == want and x["status"] == "True" for x in conds):
                self.out.append(f"{k.type_name()}/{name} condition met")
                return 0
        elif cond.startswith("jsonpath="):
            import re

            m = re.fullmatch(r"jsonpath=(\{.*\})=(.*)", cond)
            if not m:
                raise Unsupported(f"--for={cond}")
            if jp_render(jp_template(m.group(1)), o) == m.group(2):
                self.out.append(f"{k.type_name()}/{name} condition met")
                return 0
        else:
            raise Unsupported(f"--for={cond}")
        self.err.append(f"error: timed out waiting for the condition on {k.plural}/{name}")
        return 1

    def do_rollout(self, c: Cluster) -> int:
        if self.a.pos[1:2] != ["status"] or len(self.a.pos) != 3:
            raise Unsupported("kubectl rollout other than status TYPE/NAME")
        typed, _, name = self.a.pos[2].partition("/")
        k = resolve_type(typed)
        key = f"{k.kind}/{self.ns()}/{name}"
        if c.find(k.kind, self.ns(), name) is None:
            raise CliError(f'Error from server (NotFound): {k.plural}.apps "{name}" not found')
        if key in c.data.get("rollout_fail", []):
            self.err.append(f"error: timed out waiting for the rollout of {key}")
            return 1
        self.out.append(f'{k.singular} "{name}" successfully rolled out')
        return 0

    # -- writes --------------------------------------------------------------
    def check_dry_run(self) -> None:
        if self.a.opts.get("dry_run"):
            raise Unsupported("the scripts do their own dry run; kubectl --dry-run is not modelled")

    def do_apply(self, c: Cluster, create: bool = False) -> int:
        self.check_dry_run()
        docs = self.read_files()
        errors: list[str] = []
        for d in docs:
            try:
                self.apply_one(c, d, create)
            except CliError as e:
                errors.append(str(e))
        if errors:
            raise CliError("\n".join(errors))
        return 0

    def apply_one(self, c: Cluster, d: dict, create: bool) -> None:
        k = kind_of(d)
        if not c.has_crd(k):
            raise CliError(
                f'error: resource mapping not found for name: "{d["metadata"]["name"]}": '
                f'no matches for kind "{k.kind}" in version "{k.api_version}"\n'
                "ensure CRDs are installed first"
            )
        md = d.setdefault("metadata", {})
        if k.namespaced:
            md.setdefault("namespace", self.ns())
            c.namespace_ok(k, md["namespace"])
        else:
            md.pop("namespace", None)
        key = f"{k.kind}/{md.get('namespace', '')}/{md['name']}"
        self.targets.append(key)
        live = c.find(k.kind, md.get("namespace", ""), md["name"])
        if live is None:
            c.add(d)
            self.out.append(f"{k.type_name()}/{md['name']} created")
            # What Argo CD does with an applied Application (when it runs): the objects
            # listed under on_apply[key] appear; an entry for the applied object itself
            # gives it a status.
            for child in c.data.get("on_apply", {}).get(key, []) if c.running("argocd") else []:
                cmd = child["metadata"]
                ckey = (child["kind"], cmd.get("namespace", ""), cmd["name"])
                if ckey == (k.kind, md.get("namespace", ""), md["name"]):
                    live = c.find(*ckey)
                    live["status"] = copy.deepcopy(child.get("status", {}))
                elif c.find(*ckey) is None:
                    c.add(child)
        elif create:
            raise CliError(
                f'Error from server (AlreadyExists): {k.plural} "{md["name"]}" already exists'
            )
        else:
            merged = merge(live, d)
            if merged == live:
                self.out.append(f"{k.type_name()}/{md['name']} unchanged")
            else:
                live.clear()
                live.update(merged)
                self.out.append(f"{k.type_name()}/{md['name']} configured")

    def do_create(self, c: Cluster) -> int:
        if "filename" not in self.a.opts:
            raise Unsupported("kubectl create other than -f")
        return self.do_apply(c, create=True)

    def one_target(self, c: Cluster) -> tuple[Kind, dict | None, str]:
        if len(self.a.pos) < 2:
            raise Unsupported(f"kubectl {self.verb} without a target")
        typed = self.a.pos[1]
        names = self.a.pos[2:]
        if "/" in typed:
            typed, _, n = typed.partition("/")
            names = [n, *names]
        if len(names) != 1:
            raise Unsupported(f"kubectl {self.verb} on {len(names)} names")
        k = resolve_type(typed)
        c.require_crd(k, typed)
        ns = self.ns() if k.namespaced else ""
        self.targets.append(f"{k.kind}/{ns}/{names[0]}")
        return k, c.find(k.kind, ns, names[0]), names[0]

    def do_patch(self, c: Cluster) -> int:
        self.check_dry_run()
        k, o, name = self.one_target(c)
        if o is None:
            raise CliError(f'Error from server (NotFound): {k.plural} "{name}" not found')
        patch = json.loads(self.a.opts["patch"])
        ptype = self.a.opts.get("type", "strategic")
        if ptype == "json":
            new = json_patch(o, patch)
        elif ptype == "merge":
            new = merge(o, patch)
        else:
            raise Unsupported(f"--type {ptype}")
        o.clear()
        o.update(new)
        self.out.append(f"{k.type_name()}/{name} patched")
        if o["metadata"].get("deletionTimestamp") and not o["metadata"].get("finalizers"):
            c.remove(o, self.deleted)
        return 0

    def do_annotate(self, c: Cluster) -> int:
        self.check_dry_run()
        pairs = [p for p in self.a.pos[2:] if "=" in p]
        self.a.pos = [p for p in self.a.pos if "=" not in p]
        k, o, name = self.one_target(c)
        if o is None:
            raise CliError(f'Error from server (NotFound): {k.plural} "{name}" not found')
        ann = o["metadata"].setdefault("annotations", {})
        for p in pairs:
            key, _, val = p.partition("=")
            if key in ann and ann[key] != val and not self.a.opts.get("overwrite"):
                raise CliError(f"error: --overwrite is false but found the annotation {key}")
            ann[key] = val
        self.out.append(f"{k.type_name()}/{name} annotated")
        return 0

    def do_label(self, c: Cluster) -> int:
        raise Unsupported("kubectl label")

    def do_replace(self, c: Cluster) -> int:
        raise Unsupported("kubectl replace")

    def do_delete(self, c: Cluster) -> int:
        self.check_dry_run()
        if "cascade" in self.a.opts:
            raise Unsupported("--cascade: Argo CD's finalizer decides the cascade here")
        k, o, name = self.one_target(c)
        if o is None:
            if self.a.opts.get("ignore_not_found"):
                return 0
            raise CliError(f'Error from server (NotFound): {k.plural} "{name}" not found')
        gone = c.delete(o, self.deleted)
        self.out.append(f'{k.type_name()} "{name}" deleted')
        if not gone and self.a.opts.get("wait", True):
            self.err.append(f"error: timed out waiting for the deletion of {k.plural}/{name}")
            return 1
        return 0

    def exec(self, c: Cluster) -> int:
        if len(self.a.pos) != 2 or not self.a.command:
            raise Unsupported("kubectl exec POD -- COMMAND")
        pod = c.find("Pod", self.ns(), self.a.pos[1])
        self.targets.append(f"Pod/{self.ns()}/{self.a.pos[1]}")
        if pod is None:
            raise CliError(f'Error from server (NotFound): pods "{self.a.pos[1]}" not found')
        if pod.get("status", {}).get("phase") != "Running":
            raise CliError("error: unable to upgrade connection: container not found")
        mounts: dict[str, str] = {}
        nfs_root = c.data["nfs_root"]
        vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        for ctr in pod["spec"]["containers"]:
            for m in ctr.get("volumeMounts", []):
                claim = vols[m["name"]]["persistentVolumeClaim"]["claimName"]
                pvc = c.find("PersistentVolumeClaim", self.ns(), claim)
                if pvc is None or pvc.get("status", {}).get("phase") != "Bound":
                    raise CliError("error: pod volume not bound")
                pv = c.find("PersistentVolume", "", pvc["spec"]["volumeName"])
                local = os.path.join(nfs_root, pv["spec"]["nfs"]["path"].lstrip("/"))
                os.makedirs(local, exist_ok=True)
                mounts[m["mountPath"].rstrip("/")] = local
        cmd = []
        for arg in self.a.command:
            for mp, local in mounts.items():
                if arg == mp or arg.startswith(mp + "/"):
                    arg = local + arg[len(mp) :]
                    break
            cmd.append(arg)
        import subprocess

        stdin = None if self.a.opts.get("stdin") else subprocess.DEVNULL
        return subprocess.run(cmd, stdin=stdin, check=False).returncode


# --------------------------------------------------------------------------- helm

HELM_VALUE_FLAGS = {
    "--kube-context": "context",
    "-n": "namespace",
    "--namespace": "namespace",
    "-o": "output",
    "--output": "output",
    "--max": "max",
    "--version": "version",
    "-f": "values",
    "--values": "values",
    "--description": "description",
    "--timeout": "timeout",
}
HELM_BOOL_FLAGS = {"--install": "install", "--short": "short"}

# What installing the argo-cd chart creates (names as with release `argocd`).
ARGOCD_CHART_OBJECTS = [
    ("CustomResourceDefinition", "applications.argoproj.io"),
    ("CustomResourceDefinition", "appprojects.argoproj.io"),
    ("CustomResourceDefinition", "applicationsets.argoproj.io"),
    ("Deployment", "argocd-server"),
    ("Deployment", "argocd-repo-server"),
    ("Deployment", "argocd-redis"),
    ("Deployment", "argocd-applicationset-controller"),
    ("StatefulSet", "argocd-application-controller"),
    ("ConfigMap", "argocd-cm"),
    ("ConfigMap", "argocd-rbac-cm"),
]


class Helm:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.a = parse_args(argv, HELM_VALUE_FLAGS, HELM_BOOL_FLAGS)
        self.verb = self.a.pos[0] if self.a.pos else ""
        self.targets: list[str] = []
        self.deleted: list[str] = []
        self.out: list[str] = []
        self.err: list[str] = []

    @property
    def mutating(self) -> bool:
        return self.verb in {"install", "upgrade", "uninstall", "rollback", "delete"}

    def run(self) -> int:
        if self.verb == "version":
            self.out.append("v4.3.2+fake")
            return 0
        if self.verb not in {"history", "upgrade", "uninstall", "status"}:
            raise Unsupported(f"helm {self.verb}")
        with open_cluster(self.mutating) as c:
            ctx = self.a.opts.get("context", c.data.get("current_context"))
            if ctx not in c.data.get("contexts", []):
                raise CliError(f'Error: kubernetes cluster unreachable: context "{ctx}" not found')
            if not c.data.get("reachable", True):
                raise CliError("Error: kubernetes cluster unreachable")
            ns = self.a.opts.get("namespace", "default")
            rels = c.data.setdefault("helm_releases", {})
            name = self.a.pos[1]
            key = f"{ns}/{name}"
            self.targets.append(key)
            rel = rels.get(key)
            if self.verb == "history":
                if rel is None:
                    raise CliError("Error: release: not found")
                if self.a.opts.get("output") != "json":
                    raise Unsupported("helm history without -o json")
                self.out.append(
                    json.dumps(
                        [
                            {
                                k: rel[k]
                                for k in (
                                    "revision",
                                    "updated",
                                    "status",
                                    "chart",
                                    "app_version",
                                    "description",
                                )
                            }
                        ]
                    )
                )
                return 0
            if self.verb == "status":
                if rel is None:
                    raise CliError("Error: release: not found")
                self.out.append(f"NAME: {name}\nSTATUS: {rel['status']}")
                return 0
            if self.verb == "uninstall":
                if rel is None:
                    raise CliError(
                        f"Error: uninstall: Release not loaded: {name}: release: not found"
                    )
                for kind, n in rel["objects"]:
                    o = c.find(kind, "" if kind == "CustomResourceDefinition" else ns, n)
                    if o is not None and kind != "CustomResourceDefinition":
                        c.delete(o, self.deleted)
                del rels[key]
                self.out.append(f'release "{name}" uninstalled')
                return 0
            return self.upgrade(c, rels, rel, key, name, ns)

    def upgrade(
        self, c: Cluster, rels: dict, rel: dict | None, key: str, name: str, ns: str
    ) -> int:
        if not self.a.opts.get("install") or len(self.a.pos) != 3:
            raise Unsupported("helm upgrade other than --install NAME CHART")
        chart = self.a.pos[2].rstrip("/").rsplit("/", 1)[-1]
        version = self.a.opts.get("version")
        if not version:
            raise Unsupported("helm upgrade without a pinned --version")
        values = self.a.opts.get("values")
        if values:
            _yaml().load(read_text(values))
        if c.find("Namespace", "", ns) is None:
            raise CliError(f'Error: create: failed to create: namespaces "{ns}" not found')
        objs = ARGOCD_CHART_OBJECTS if chart == "argo-cd" else []
        for kind, n in objs:
            k = BY_KIND[kind]
            o_ns = ns if k.namespaced else ""
            if c.find(kind, o_ns, n) is None:
                md = {"name": n, **({"namespace": o_ns} if o_ns else {})}
                st = {"readyReplicas": 1} if kind in ("Deployment", "StatefulSet") else {}
                c.add(
                    {
                        "apiVersion": k.api_version,
                        "kind": kind,
                        "metadata": md,
                        "spec": {},
                        **({"status": st} if st else {}),
                    }
                )
        rels[key] = {
            "name": name,
            "namespace": ns,
            "revision": (rel or {}).get("revision", 0) + 1,
            "updated": _now(c.data),
            "status": "deployed",
            "chart": f"{chart}-{version}",
            "app_version": "v3.4.4" if chart == "argo-cd" else version,
            "description": self.a.opts.get("description", "Install complete"),
            "objects": [list(x) for x in objs],
        }
        self.out.append(f'Release "{name}" has been upgraded. Happy Helming!')
        return 0


# --------------------------------------------------------------------------- curl


def run_curl(argv: list[str]) -> tuple[int, str]:
    fmt = ""
    url = ""
    i = 0
    while i < len(argv):
        t = argv[i]
        if t in ("-w", "--write-out", "-o", "--output", "--max-time", "-m", "--connect-timeout"):
            if t in ("-w", "--write-out"):
                fmt = argv[i + 1]
            i += 2
            continue
        if t.startswith("-") and set(t[1:]) <= set("skSLf"):
            i += 1
            continue
        if t.startswith("-"):
            raise Unsupported(f"curl flag {t}")
        url = t
        i += 1
    import re

    m = re.match(r"https?://([^/:]+)", url)
    if not m:
        raise Unsupported(f"curl url {url!r}")
    codes = json.loads(read_text(os.environ["FAKE_CLUSTER_STATE"])).get("http_codes", {})
    code = int(codes.get(m.group(1), 200))
    out = fmt.replace("%{http_code}", f"{code:03d}").replace("\\n", "\n")
    sys.stdout.write(out)
    return (7 if code == 0 else 0), m.group(1)


# --------------------------------------------------------------------------- entry point


def injected_failure(tool: str, argv: list[str]) -> str | None:
    """A transient API error the test asked for: state `fail_calls`, a list of
    {"tool", "match" (a substring of the space-joined argv), "times"}. Real kubectl and helm
    exit 1 on a server error, with nothing on stdout."""
    path = os.environ["FAKE_CLUSTER_STATE"]
    if '"fail_calls"' not in read_text(path):
        return None
    with open(path + ".lock", "a") as lock:  # no reconcile: a failed call changes nothing
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(read_text(path))
        joined = " ".join(argv)
        for f in data.get("fail_calls", []):
            if f["tool"] == tool and f["match"] in joined and f.get("times", 1) > 0:
                f["times"] = f.get("times", 1) - 1
                with open(path + ".tmp", "w") as fh:
                    json.dump(data, fh, separators=(",", ":"))
                os.replace(path + ".tmp", path)
                return "Error from server (InternalError): etcdserver: request timed out"
    return None


def main(tool: str) -> int:
    argv = sys.argv[1:]
    record: dict[str, Any] = {"tool": tool, "argv": argv}
    rc = 0
    failure = injected_failure(tool, argv)
    if failure is not None:
        print(failure, file=sys.stderr)
        record.update(rc=1, mutating=False, injected=True)
        log_call(record)
        return 1
    try:
        if tool == "curl":
            record["mutating"] = False
            rc, host = run_curl(argv)
            record["targets"] = [host]
        else:
            runner = Kubectl(argv) if tool == "kubectl" else Helm(argv)
            record["verb"] = runner.verb
            record["mutating"] = runner.mutating
            try:
                rc = runner.run()
            finally:
                record["targets"] = runner.targets
                record["deleted"] = runner.deleted
                for line in runner.out:
                    print(line)
                for line in runner.err:
                    print(line, file=sys.stderr)
    except Unsupported as e:
        print(f"fake {tool}: unsupported: {e}", file=sys.stderr)
        rc = UNSUPPORTED
    except CliError as e:
        print(str(e), file=sys.stderr)
        rc = e.code
    record["rc"] = rc
    log_call(record)
    return rc
