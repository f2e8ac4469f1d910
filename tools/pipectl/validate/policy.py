"""Repository rules kubeconform cannot express (each failure names file, document, object)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pipectl.validate.docs import Document, Failure

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig

INFRA_PROJECT = "pipeline-infra"
APP_PROJECT = "stonks-oracle"
APP_NAMESPACES = "stonks-oracle*"
KARGO_PROJECT = "kargo-stonks-oracle"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
DOMAIN = ".celestium.life"
ISSUER = "ca-issuer"
# Keys whose non-empty value would be a secret in Git (values files, valuesObject, ...).
SECRET_KEYS = {
    "passwordhash",
    "tokensigningkey",
    "admin_account_password_hash",
    "admin_account_token_signing_key",
    "argocdserveradminpassword",
    "github_token",
    "github_app_private_key",
    "password",
    "privatekey",
    "sshprivatekey",
    "token",
}


def _is_app_namespace(ns: str) -> bool:
    return bool(ns) and fnmatch.fnmatchcase(ns, APP_NAMESPACES)


def _sources(app: Document) -> list[dict[str, Any]]:
    spec = app.spec
    found = [spec["source"]] if isinstance(spec.get("source"), dict) else []
    found += [s for s in spec.get("sources") or [] if isinstance(s, dict)]
    return found


def check_policy(docs: Sequence[Document], config: PipelineConfig) -> list[Failure]:
    out: list[Failure] = []
    for doc in docs:
        out += list(_secrets(doc))
        out += list(_persistent_volume(doc))
        out += list(_namespaces(doc))
        out += list(_ingress(doc))
        out += list(_warehouse(doc))
        if doc.kind == "Application" and doc.api_version.startswith("argoproj.io/"):
            out += list(_application(doc, config))
        if doc.kind == "AppProject":
            out += list(_app_project(doc))
        if doc.kind != "Secret":  # a Secret's data is reported once, above
            out += [doc.fail(m, "policy") for m in secret_values(doc.body)]
    names = {(d.kind, d.name) for d in docs}
    for required in (("AppProject", INFRA_PROJECT), ("AppProject", APP_PROJECT)):
        if required not in names:
            out.append(Failure("gitops/", f"no {required[0]} {required[1]!r}", check="policy"))
    return out


def secret_values(node: Any, path: str = "") -> Iterator[str]:
    """Paths of secret-looking keys with a non-empty literal value."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if (
                isinstance(key, str)
                and key.lower() in SECRET_KEYS
                and value not in (None, "", {}, [])
                and not isinstance(value, dict | list)
            ):
                yield f"{here}: a secret value in Git (reference a Secret by name instead)"
            elif key == "githubConfigSecret" and isinstance(value, dict) and value:
                yield f"{here}: inline GitHub credentials (name a Secret instead)"
            else:
                yield from secret_values(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from secret_values(value, f"{path}[{i}]")


def _secrets(doc: Document) -> Iterator[Failure]:
    if doc.kind == "Secret" and doc.api_version == "v1":
        for key in ("data", "stringData"):
            if doc.body.get(key):
                yield doc.fail(
                    f"Secret with {key}: no secret value in Git (runmefirst.sh creates Secrets)",
                    "policy",
                )


def _persistent_volume(doc: Document) -> Iterator[Failure]:
    if doc.kind != "PersistentVolume":
        return
    policy = doc.spec.get("persistentVolumeReclaimPolicy")
    if policy != "Retain":
        yield doc.fail(
            f"persistentVolumeReclaimPolicy is {policy or 'unset'}, must be Retain "
            "(pipeline data outlives the cluster)",
            "policy",
        )
    nfs = doc.spec.get("nfs")
    if isinstance(nfs, dict) and "vers=4.1" not in (doc.spec.get("mountOptions") or []):
        yield doc.fail("NFS volume without mountOptions [vers=4.1]", "policy")


def _namespaces(doc: Document) -> Iterator[Failure]:
    """Nothing of the pipeline lives in the application's namespaces."""
    if _is_app_namespace(doc.namespace):
        yield doc.fail(
            f"namespace {doc.namespace!r}: the pipeline never places objects in {APP_NAMESPACES}",
            "policy",
        )
    if doc.kind == "Namespace" and _is_app_namespace(doc.name):
        yield doc.fail(f"Namespace {doc.name!r} belongs to the application", "policy")


def _app_project(doc: Document) -> Iterator[Failure]:
    dests = [d for d in doc.spec.get("destinations") or [] if isinstance(d, dict)]
    namespaces = [str(d.get("namespace", "")) for d in dests]
    if doc.name == INFRA_PROJECT and f"!{APP_NAMESPACES}" not in namespaces:
        yield doc.fail(
            f"{INFRA_PROJECT} must deny destination namespace !{APP_NAMESPACES}", "policy"
        )
    if doc.name == APP_PROJECT:
        for ns in namespaces:
            if not (ns.startswith("stonks-oracle") and not ns.startswith("!")):
                yield doc.fail(
                    f"{APP_PROJECT} may only deploy to {APP_NAMESPACES}, not {ns!r}", "policy"
                )
    yield from _cluster_namespaces(doc)


def _entries(doc: Document, key: str) -> list[dict[str, str]]:
    found = doc.spec.get(key) or []
    return [{k: str(v) for k, v in e.items()} for e in found if isinstance(e, dict)]


def _names_namespace(entry: dict[str, str]) -> bool:
    return entry.get("group") in ("", "*") and entry.get("kind") in ("Namespace", "*")


def _cluster_namespaces(doc: Document) -> Iterator[Failure]:
    """Namespace objects are cluster-scoped, so destinations do not guard them: the app project
    may manage only Namespaces named stonks-oracle*, the infra project none of those."""
    allowed = _entries(doc, "clusterResourceWhitelist")
    if doc.name == APP_PROJECT:
        for entry in allowed:
            if not (
                entry.get("group") == ""
                and entry.get("kind") == "Namespace"
                and entry.get("name", "").startswith("stonks-oracle")
            ):
                yield doc.fail(
                    f"{APP_PROJECT} clusterResourceWhitelist may hold only Namespaces named "
                    f"{APP_NAMESPACES}, not {entry}",
                    "policy",
                )
    if doc.name == INFRA_PROJECT and any(_names_namespace(e) for e in allowed):
        denied = _entries(doc, "clusterResourceBlacklist")
        if not any(_names_namespace(e) and e.get("name") == APP_NAMESPACES for e in denied):
            yield doc.fail(
                f"{INFRA_PROJECT} may create Namespaces: its clusterResourceBlacklist must deny "
                f"Namespace {APP_NAMESPACES}",
                "policy",
            )


def _application(app: Document, config: PipelineConfig) -> Iterator[Failure]:
    project = app.spec.get("project")
    dest = app.spec.get("destination") or {}
    dest_ns = str(dest.get("namespace", "")) if isinstance(dest, dict) else ""
    if project == INFRA_PROJECT and _is_app_namespace(dest_ns):
        yield app.fail(
            f"Application in {INFRA_PROJECT} targets {dest_ns!r} ({APP_NAMESPACES} is the app's)",
            "policy",
        )
    if project != APP_PROJECT and _is_app_namespace(dest_ns):
        yield app.fail(f"only AppProject {APP_PROJECT} may deploy to {dest_ns!r}", "policy")
    for source in _sources(app):
        if "ref" in source and source.get("repoURL") != config.repository_url:
            yield app.fail(
                f"values source {source.get('repoURL')!r} is not this repository "
                f"({config.repository_url})",
                "policy",
            )
    if project == APP_PROJECT:
        stage = _stage_of(app, config)
        annotations = app.metadata.get("annotations") or {}
        expected = f"{KARGO_PROJECT}:{stage}" if stage else None
        got = annotations.get("kargo.akuity.io/authorized-stage")
        if expected is None:
            yield app.fail(
                f"deploys to {dest_ns!r}, which no stage in pipeline.yaml uses", "policy"
            )
        elif got != expected:
            yield app.fail(
                f"annotation kargo.akuity.io/authorized-stage is {got!r}, expected {expected!r}",
                "policy",
            )
        if stage == "live" and FINALIZER in (app.metadata.get("finalizers") or []):
            yield app.fail(
                f"live must not carry {FINALIZER} (deleting the Application would delete live)",
                "policy",
            )


def _stage_of(app: Document, config: PipelineConfig) -> str | None:
    dest = app.spec.get("destination") or {}
    ns = dest.get("namespace") if isinstance(dest, dict) else None
    for stage in config.deploy_stages:
        if stage.namespace == ns:
            return stage.name
    return None


def _ingress(doc: Document) -> Iterator[Failure]:
    if doc.kind != "Ingress":
        return
    if doc.spec.get("ingressClassName") != "traefik":
        yield doc.fail("ingressClassName must be traefik", "policy")
    annotations = doc.metadata.get("annotations") or {}
    if annotations.get("cert-manager.io/cluster-issuer") != ISSUER:
        yield doc.fail(f"annotation cert-manager.io/cluster-issuer must be {ISSUER}", "policy")
    tls_hosts = {h for t in doc.spec.get("tls") or [] for h in (t or {}).get("hosts") or []}
    for rule in doc.spec.get("rules") or []:
        host = (rule or {}).get("host", "")
        if not str(host).endswith(DOMAIN):
            yield doc.fail(f"host {host!r} is not under {DOMAIN.lstrip('.')}", "policy")
        if host not in tls_hosts:
            yield doc.fail(f"host {host!r} has no TLS entry", "policy")


def _warehouse(doc: Document) -> Iterator[Failure]:
    if doc.kind != "Warehouse":
        return
    for i, sub in enumerate(doc.spec.get("subscriptions") or []):
        image = (sub or {}).get("image") if isinstance(sub, dict) else None
        if not isinstance(image, dict):
            continue
        for key in ("allowTags", "ignoreTags"):
            if key in image:
                yield doc.fail(
                    f"subscriptions[{i}].image.{key} breaks discovery since Kargo 1.11 "
                    f"(use {key}Regexes)",
                    "policy",
                )
