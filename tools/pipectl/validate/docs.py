"""The manifests under gitops/ as parsed documents, and the failure record every check returns.

Helm values files (`*values.yaml`) are not manifests; every other `.yaml`/`.yml` file under
gitops/ is, and each of its documents must be a Kubernetes object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GITOPS = "gitops"


@dataclass(frozen=True)
class Failure:
    """One problem, naming the file (relative to the repository) and, if known, the object."""

    file: str
    message: str
    doc: int | None = None  # 1-based index of the YAML document in the file
    kind: str | None = None
    name: str | None = None
    check: str = ""

    def __str__(self) -> str:
        where = self.file
        obj = "/".join(p for p in (self.kind, self.name) if p)
        if self.doc is not None or obj:
            inner = " ".join(p for p in (f"doc {self.doc}" if self.doc else "", obj) if p)
            where += f" [{inner}]"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Document:
    file: str
    index: int
    body: dict[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "") or "")

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.body.get("spec")
        return spec if isinstance(spec, dict) else {}

    def fail(self, message: str, check: str = "") -> Failure:
        return Failure(self.file, message, self.index, self.kind or None, self.name or None, check)


def load_yaml_all(text: str) -> list[Any]:
    """All documents of a YAML stream (YAML 1.1 rules, as Kubernetes tools read them)."""
    try:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return list(yaml.load_all(text, Loader=loader))
    except ImportError:  # pragma: no cover - PyYAML comes with the kubernetes client
        from ruamel.yaml import YAML

        return list(YAML(typ="safe", pure=True).load_all(text))


def yaml_error_types() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = []
    try:
        import yaml

        errors.append(yaml.YAMLError)
    except ImportError:  # pragma: no cover
        pass
    from ruamel.yaml.error import YAMLError

    errors.append(YAMLError)
    return tuple(errors)


def is_values_file(path: Path) -> bool:
    return path.name.endswith("values.yaml") or path.name.endswith("values.yml")


def gitops_files(repo: Path) -> Iterator[Path]:
    base = repo / GITOPS
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            yield path


def manifest_paths(repo: Path) -> list[Path]:
    return [p for p in gitops_files(repo) if not is_values_file(p)]


def values_paths(repo: Path) -> list[Path]:
    return [p for p in gitops_files(repo) if is_values_file(p)]


def load_manifests(repo: Path) -> tuple[list[Document], list[Failure]]:
    """Parse every manifest file; malformed files and non-object documents are failures."""
    docs: list[Document] = []
    failures: list[Failure] = []
    errors = yaml_error_types()
    for path in manifest_paths(repo):
        rel = path.relative_to(repo).as_posix()
        try:
            parsed = load_yaml_all(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            failures.append(Failure(rel, f"cannot read: {exc}", check="yaml"))
            continue
        except errors as exc:
            first = str(exc).strip().splitlines()
            failures.append(Failure(rel, f"invalid YAML: {' '.join(first[:3])}", check="yaml"))
            continue
        count = 0
        for index, body in enumerate(parsed, start=1):
            if body is None:
                continue
            count += 1
            if not isinstance(body, dict):
                failures.append(Failure(rel, "document is not a mapping", index, check="yaml"))
                continue
            doc = Document(rel, index, body)
            missing = [k for k in ("apiVersion", "kind") if not body.get(k)]
            if missing or not doc.name:
                what = ", ".join(missing + ([] if doc.name else ["metadata.name"]))
                failures.append(doc.fail(f"not a Kubernetes object (missing {what})", "yaml"))
                continue
            docs.append(doc)
        if count == 0:
            failures.append(Failure(rel, "no Kubernetes object in this file", check="yaml"))
    return docs, failures
