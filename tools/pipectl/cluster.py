"""What the cluster says (`pipectl status --cluster`): Kargo Stages and Argo CD Applications.

The `kubernetes` client is imported only here, and only when a cluster is actually read.
The summaries are pure functions over the API objects, so they are tested on recorded
responses; `read_cluster` does the I/O (a kubeconfig, or the in-cluster service account).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from pipectl.errors import PipectlError

KARGO_GROUP = "kargo.akuity.io"
KARGO_VERSION = "v1alpha1"
KARGO_PROJECT = "kargo-stonks-oracle"  # the Kargo Project and its namespace
ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
ARGOCD_NAMESPACE = "argocd"
KARGO_STAGES = ("integration-test", "beta", "paper", "live")
APP_STAGES = ("beta", "paper", "live")


def application_name(stage: str) -> str:
    return f"stonks-oracle-{stage}"


def kargo_stage_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """Current freight of a Kargo Stage: `status.freightHistory[0]` (newest first)."""
    status = obj.get("status") or {}
    history = status.get("freightHistory") or []
    out: dict[str, Any] = {
        "freight": None,
        "tag": None,
        "images": [],
        "health": (status.get("health") or {}).get("status"),
        "last_promotion": None,
    }
    if history:
        current = history[0] or {}
        items = current.get("items") or {}
        names = []
        for origin in sorted(items):
            ref = items[origin] or {}
            if ref.get("name"):
                names.append(ref["name"])
            for image in ref.get("images") or []:
                out["images"].append(
                    {"origin": origin, "repoURL": image.get("repoURL"), "tag": image.get("tag")}
                )
        out["freight"] = names[0] if len(names) == 1 else (names or None)
        tags = sorted({i["tag"] for i in out["images"] if i["tag"]})
        out["tag"] = tags[0] if len(tags) == 1 else (tags or None)
    last = status.get("lastPromotion")
    if last:
        out["last_promotion"] = {
            "name": last.get("name"),
            "finished_at": last.get("finishedAt"),
            "phase": (last.get("status") or {}).get("phase"),
        }
    return out


def argocd_app_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """Sync and health of an Argo CD Application (multi-source apps carry `revisions`)."""
    status = obj.get("status") or {}
    sync = status.get("sync") or {}
    operation = status.get("operationState") or {}
    return {
        "sync": sync.get("status"),
        "health": (status.get("health") or {}).get("status"),
        "revision": sync.get("revision") or sync.get("revisions"),
        "operation": operation.get("phase"),
    }


def custom_objects_api(purpose: str = "--cluster"):  # -> kubernetes.client.CustomObjectsApi
    """The Kubernetes custom-objects client, from the in-cluster config inside a pod or the
    kubeconfig elsewhere. `purpose` names the feature in the one-line error."""
    try:
        from kubernetes import client, config
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise PipectlError(f"{purpose} needs the kubernetes client: {exc}") from None
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except Exception as exc:  # kubernetes raises ConfigException and plain OSErrors
        raise PipectlError(f"{purpose}: no usable kubeconfig or in-cluster config: {exc}") from None
    return client.CustomObjectsApi()


def _get(api: Any, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        return {"error": f"{plural}/{name}: HTTP {exc.status} {exc.reason or ''}".strip()}
    except Exception as exc:  # connection refused, TLS, timeouts
        return {"error": f"{plural}/{name}: {type(exc).__name__}: {exc}"}


def read_cluster(stages: Iterable[str], api: Any = None) -> dict[str, dict[str, Any]]:
    """Per stage: `kargo` (Stage summary, None when absent) and, for app stages, `argocd`
    (Application summary, None when absent). An API error becomes an `error` string."""
    api = api if api is not None else custom_objects_api()
    result: dict[str, dict[str, Any]] = {}
    for stage in stages:
        entry: dict[str, Any] = {}
        if stage in KARGO_STAGES:
            obj = _get(api, KARGO_GROUP, KARGO_VERSION, KARGO_PROJECT, "stages", stage)
            entry["kargo"] = obj if obj is None or "error" in obj else kargo_stage_summary(obj)
        if stage in APP_STAGES:
            name = application_name(stage)
            obj = _get(api, ARGO_GROUP, ARGO_VERSION, ARGOCD_NAMESPACE, "applications", name)
            entry["argocd"] = obj if obj is None or "error" in obj else argocd_app_summary(obj)
        if entry:
            result[stage] = entry
    return result
