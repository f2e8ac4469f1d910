"""JSON schemas for kubeconform, generated offline and cached.

- Core Kubernetes kinds: kubernetes-validate's `v<K8S>-local-strict/<kind>-<group>-<ver>.json`.
  Those carry `$id` and `$ref: "/api/_definitions.json#/$defs/..."`, which kubeconform would
  try to fetch; each needed kind is rewritten into one self-contained file (`$defs` holds only
  the definitions it reaches).
- Custom resources: `spec.versions[].schema.openAPIV3Schema` of the pinned CRDs, converted
  to JSON Schema (nullable, int-or-string, preserve-unknown-fields) and made strict:
  `additionalProperties: false` wherever the CRD lists properties and does not preserve
  unknown fields, exactly what -strict does for core kinds. `metadata` is checked against
  the core ObjectMeta.

Everything lands under <cache>/<key>/ where key digests the upstream hashes, the Kubernetes
version, the kubernetes-validate version and this generator's version, so a repeated run
only reads files, and any change to an input makes a fresh directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipectl.errors import BadInput
from pipectl.validate.docs import load_yaml_all
from pipectl.validate.upstream import Upstream

GENERATOR_VERSION = "1"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE_REF = re.compile(r"^/api/_definitions\.json#/\$defs/(.+)$")
_DROP = {
    "description",
    "example",
    "externalDocs",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
}
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions"}

# kubeconform -schema-location templates, relative to the cache directory.
CORE_TEMPLATE = "core/{{ .ResourceKind }}{{ .KindSuffix }}.json"
CRD_TEMPLATE = "crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"


def default_cache_root() -> Path:
    env = os.environ.get("PIPECTL_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "pipectl"


def _kubernetes_validate() -> tuple[Path, str]:
    # Locate the package without importing it (its import pulls in jsonschema and more).
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    spec = find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("kubernetes-validate is not installed (pip install kubernetes-validate)")

    versions = []
    for dist in ("kubernetes-validate", "jsonschema"):
        try:
            versions.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - vendored without metadata
            versions.append(f"{dist}==unknown")
    kv_version = ",".join(versions)
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "kubernetes-json-schema", kv_version


def kind_suffix(api_version: str) -> str:
    """kubeconform's {{.KindSuffix}}: -<first label of group>-<version>, or -<version>."""
    group_parts = api_version.split("/")
    suffix = "-" + group_parts[0].split(".")[0].lower()
    if len(group_parts) > 1:
        suffix += "-" + group_parts[1].lower()
    return suffix


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"), sort_keys=True)
    os.replace(tmp, path)


class SchemaStore:
    """The cache directory for one set of inputs; fills itself on demand."""

    def __init__(self, upstream: Upstream, kubernetes_version: str, cache_root: Path) -> None:
        self.upstream = upstream
        self.kubernetes_version = kubernetes_version
        self.kv_root, kv_version = _kubernetes_validate()
        key_input = json.dumps(
            {
                "generator": GENERATOR_VERSION,
                "upstream": upstream.key(),
                "kubernetes": kubernetes_version,
                "packages": kv_version,
            },
            sort_keys=True,
        )
        self.key = hashlib.sha256(key_input.encode()).hexdigest()[:24]
        self.dir = cache_root / "schemas" / self.key
        self.core_source = self.kv_root / f"v{kubernetes_version}-local-strict"
        self._definitions: dict[str, Any] | None = None
        self.generated = 0  # files written by this run (0 = everything came from the cache)

    # -- templates handed to kubeconform
    @property
    def locations(self) -> list[str]:
        return [str(self.dir / CORE_TEMPLATE), str(self.dir / CRD_TEMPLATE)]

    # -- core kinds
    def _defs(self) -> dict[str, Any]:
        if self._definitions is None:
            path = self.core_source / "_definitions.json"
            with path.open(encoding="utf-8") as fh:
                self._definitions = json.load(fh)["$defs"]
        return self._definitions

    def core_file(self, kind: str, api_version: str) -> str:
        return f"{kind.lower()}{kind_suffix(api_version)}.json"

    def ensure_core(self, kinds: Iterable[tuple[str, str]]) -> None:
        if not self.core_source.is_dir():
            raise BadInput(
                f"kubernetes-validate has no schemas for Kubernetes {self.kubernetes_version} "
                f"({self.core_source}); change KUBERNETES_VERSION in gitops/versions.env"
            )
        for kind, api_version in sorted(set(kinds)):
            name = self.core_file(kind, api_version)
            target = self.dir / "core" / name
            source = self.core_source / name
            if target.exists() or not source.exists():
                continue  # cached, or not a core kind (the CRD location serves it)
            with source.open(encoding="utf-8") as fh:
                schema = json.load(fh)
            _write_json(target, self._inline(schema))
            self.generated += 1

    def _inline(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Rewrite /api/_definitions.json refs to local #/$defs ones and bundle the closure."""
        defs = self._defs()
        needed: dict[str, Any] = {}

        def rewrite(node: Any) -> Any:
            if isinstance(node, dict):
                out = {}
                for k, v in node.items():
                    if k == "$id":
                        continue
                    if k == "$ref" and isinstance(v, str):
                        m = _CORE_REF.match(v)
                        name = m.group(1) if m else v.removeprefix("#/$defs/")
                        if m or v.startswith("#/$defs/"):
                            if name not in needed:
                                needed[name] = None
                                needed[name] = rewrite(defs[name])
                            out[k] = f"#/$defs/{name}"
                            continue
                    out[k] = rewrite(v)
                return out
            if isinstance(node, list):
                return [rewrite(x) for x in node]
            return node

        body = rewrite(schema)
        body["$schema"] = SCHEMA_DIALECT
        body["$defs"] = needed
        return body

    def object_meta(self) -> dict[str, Any]:
        bundle = self._inline({"$ref": f"/api/_definitions.json#/$defs/{OBJECT_META}"})
        return bundle["$defs"]

    # -- custom resources
    def ensure_crds(self) -> None:
        marker = self.dir / "crds.complete"
        if marker.exists():
            return
        meta_defs = self.object_meta()
        for component in ("argocd", "kargo", "arc"):
            for rel in self.upstream.files(component, ".yaml"):
                for doc in load_yaml_all(self.upstream.path(rel).read_text(encoding="utf-8")):
                    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                        self._write_crd(doc, meta_defs)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.upstream.key() + "\n", encoding="utf-8")

    def _write_crd(self, crd: dict[str, Any], meta_defs: dict[str, Any]) -> None:
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec.get("versions", []):
            openapi = (version.get("schema") or {}).get("openAPIV3Schema")
            if not openapi:
                continue
            body = convert_crd_schema(openapi)
            props = body.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            props["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
            body["additionalProperties"] = False
            body["$schema"] = SCHEMA_DIALECT
            body["$defs"] = meta_defs
            target = self.dir / "crds" / group / f"{kind.lower()}_{version['name']}.json"
            _write_json(target, body)
            self.generated += 1


def convert_crd_schema(node: Any) -> Any:
    """OpenAPI v3 (structural CRD schema) -> strict JSON Schema."""
    if isinstance(node, list):
        return [convert_crd_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: convert_crd_schema(sub) for name, sub in value.items()}
        else:
            out[key] = convert_crd_schema(value)
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.pop("x-kubernetes-int-or-string", False) and "anyOf" not in out:
        out["type"] = ["integer", "string"]
    if out.pop("nullable", False):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            out["type"] = [*t, "null"]
    types = out.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object and "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
