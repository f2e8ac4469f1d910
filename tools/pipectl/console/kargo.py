"""Cluster mode: promotions become Kargo `Promotion` objects (kargo.akuity.io/v1alpha1).

Kargo's own API builds a Promotion from the Stage's `promotionTemplate`; creating one through
the Kubernetes API means doing the same: the Stage's template steps and vars, the Freight that
carries the tag (from the Stage's requested Warehouse), and a unique name. The Promotion then
runs the Stage's steps, whose `http` step asks this console's `/api/v1/gate` — so the gate
decision, and the consumption of a break-glass grant, happen exactly as for any Kargo
promotion.

The `kubernetes` package is imported only when a backend is built from the environment.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pipectl.errors import BadInput, PipectlError

GROUP = "kargo.akuity.io"
VERSION = "v1alpha1"
DEFAULT_NAMESPACE = "kargo-stonks-oracle"
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case (DNS-safe)


class KargoError(PipectlError):
    """The Kubernetes API refused or failed; the message says which object and why."""


def _ulid(now_ms: int | None = None) -> str:
    """A ULID-shaped, time-ordered id (10 chars of milliseconds + 16 random), lower case."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    stamp = "".join(_B32[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    rand = secrets.randbits(80)
    tail = "".join(_B32[(rand >> (5 * i)) & 31] for i in reversed(range(16)))
    return stamp + tail


def _api_error(exc: Exception, what: str) -> KargoError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, str | bytes) and body:
        import json

        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
    text = f"{what}: HTTP {status} {reason}" if status else f"{what}: {reason}: {exc}"
    if message:
        text += f": {message}"
    return KargoError(text)


def freight_has_tag(freight: dict[str, Any], tag: str) -> bool:
    return any((img or {}).get("tag") == tag for img in freight.get("images") or [])


def _origins(stage_obj: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for req in (stage_obj.get("spec") or {}).get("requestedFreight") or []:
        origin = (req or {}).get("origin") or {}
        if origin.get("kind") and origin.get("name"):
            out.append({"kind": origin["kind"], "name": origin["name"]})
    return out


def pick_freight(freights: list[dict[str, Any]], stage_obj: dict[str, Any], tag: str) -> str:
    """The newest Freight from one of the Stage's requested origins that carries `tag`."""
    origins = _origins(stage_obj)
    matches = []
    for f in freights:
        origin = f.get("origin") or {}
        if origins and {"kind": origin.get("kind"), "name": origin.get("name")} not in origins:
            continue
        if freight_has_tag(f, tag):
            matches.append(f)
    if not matches:
        names = ", ".join(f"{o['kind']}/{o['name']}" for o in origins) or "any origin"
        raise BadInput(f"no Kargo Freight from {names} carries image tag {tag}")
    matches.sort(key=lambda f: (f.get("metadata") or {}).get("creationTimestamp") or "")
    return matches[-1]["metadata"]["name"]


def promotion_body(
    stage_obj: dict[str, Any], freight: str, namespace: str, name: str
) -> dict[str, Any]:
    """A Promotion as Kargo's API would build it from the Stage's promotionTemplate."""
    template = ((stage_obj.get("spec") or {}).get("promotionTemplate") or {}).get("spec") or {}
    steps = template.get("steps") or []
    if not steps:
        stage = (stage_obj.get("metadata") or {}).get("name")
        raise KargoError(f"Kargo Stage {stage} has no promotionTemplate steps")
    spec: dict[str, Any] = {
        "stage": stage_obj["metadata"]["name"],
        "freight": freight,
        "steps": steps,
    }
    if template.get("vars"):
        spec["vars"] = template["vars"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Promotion",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "pipeline-console"},
        },
        "spec": spec,
    }


def promotion_name(stage: str, freight: str, ulid: str | None = None) -> str:
    """`<stage>.<ulid>.<freight[:7]>`, the shape Kargo gives Promotions (≤ 253 chars)."""
    return f"{stage}.{ulid or _ulid()}.{freight[:7]}".lower()


class KargoBackend:
    """Creates Promotions and reads Stages/Applications through a CustomObjectsApi."""

    def __init__(self, custom_api: Any, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.api = custom_api
        self.namespace = namespace

    @classmethod
    def from_environment(cls, namespace: str = DEFAULT_NAMESPACE) -> KargoBackend:
        from pipectl.cluster import custom_objects_api

        return cls(custom_objects_api("cluster mode"), namespace)

    def _get_stage(self, stage: str) -> dict[str, Any]:
        try:
            return self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "stages", stage
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise BadInput(f"no Kargo Stage {stage!r} in {self.namespace}") from None
            raise _api_error(exc, f"reading Kargo Stage {stage}") from None

    def _freights(self) -> list[dict[str, Any]]:
        try:
            listed = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "freights"
            )
        except Exception as exc:
            raise _api_error(exc, "listing Kargo Freight") from None
        return list((listed or {}).get("items") or [])

    def create_promotion(self, stage: str, tag: str) -> dict[str, str]:
        """Create the Promotion of `tag` into `stage`; returns its name and Freight."""
        stage_obj = self._get_stage(stage)
        freight = pick_freight(self._freights(), stage_obj, tag)
        name = promotion_name(stage, freight)
        body = promotion_body(stage_obj, freight, self.namespace, name)
        try:
            created = self.api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "promotions", body
            )
        except Exception as exc:
            raise _api_error(exc, f"creating Kargo Promotion {name}") from None
        meta = (created or {}).get("metadata") or {}
        return {"promotion": meta.get("name") or name, "freight": freight}

    def read(self, stages: list[str]) -> dict[str, dict[str, Any]]:
        """Kargo Stage and Argo CD Application summaries (pipectl.cluster)."""
        from pipectl.cluster import read_cluster

        return read_cluster(stages, api=self.api)
