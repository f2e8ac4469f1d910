"""Kargo promotion steps: the CRDs accept any `config`; the upstream step schemas do not.

Every step of every Stage promotion template and PromotionTask is checked:
- `uses` names a built-in step with a pinned schema, and its `config` validates against
  `step-schemas/<uses>-config.json` (which $refs common.json etc., resolved locally);
- `task` steps name a PromotionTask that exists in the same namespace, and every task var
  without a default is supplied;
- `${{ }}` expressions are balanced, and the http step's expressions (evaluated by the step
  itself) are NOT wrapped in `${{ }}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipectl.errors import BadInput
from pipectl.validate.docs import Document, Failure
from pipectl.validate.upstream import Upstream

_BASE = "https://schemas.invalid/kargo/step-schemas/"
_HTTP_EXPRESSIONS = ("successExpression", "failureExpression", "errorExpression")


class StepSchemas:
    def __init__(self, upstream: Upstream) -> None:
        try:
            from jsonschema import Draft202012Validator
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012
        except ImportError as exc:
            raise BadInput(
                f"pipectl check needs jsonschema>=4.18 to validate Kargo step configs ({exc})"
            ) from None

        self._validator_cls = Draft202012Validator
        resources = []
        self.schemas: dict[str, dict[str, Any]] = {}
        for rel in upstream.files("kargo", ".json", under="step-schemas"):
            name = rel.rsplit("/", 1)[1]
            with upstream.path(rel).open(encoding="utf-8") as fh:
                schema = json.load(fh)
            self.schemas[name] = schema
            resources.append(
                (_BASE + name, Resource.from_contents(schema, default_specification=DRAFT202012))
            )
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}

    def validator(self, uses: str):
        name = f"{uses}-config.json"
        if name not in self.schemas:
            return None
        if name not in self._validators:
            schema = {**self.schemas[name], "$id": _BASE + name}
            self._validators[name] = self._validator_cls(schema, registry=self.registry)
        return self._validators[name]


def _steps(doc: Document) -> tuple[list[Any], list[Any]] | None:
    """(steps, template vars) of a Stage or PromotionTask, else None."""
    if not doc.api_version.startswith("kargo.akuity.io/"):
        return None
    if doc.kind == "Stage":
        template = (doc.spec.get("promotionTemplate") or {}).get("spec") or {}
        return list(template.get("steps") or []), list(template.get("vars") or [])
    if doc.kind in ("PromotionTask", "ClusterPromotionTask"):
        return list(doc.spec.get("steps") or []), list(doc.spec.get("vars") or [])
    return None


def iter_steps(docs: Sequence[Document]) -> Iterator[tuple[Document, int, dict[str, Any]]]:
    for doc in docs:
        found = _steps(doc)
        if found is None:
            continue
        for i, step in enumerate(found[0]):
            if isinstance(step, dict):
                yield doc, i, step


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")


def _balanced(text: str) -> bool:
    depth = 0
    for token in re.findall(r"\$\{\{|\}\}", text):
        depth += 1 if token == "${{" else -1
        if depth < 0 or depth > 1:
            return False
    return depth == 0


class VerdictCache:
    """Step configs already found valid against the same pinned schemas (one empty file each).

    Keyed by the canonical JSON of (step, config) inside a directory keyed by the upstream
    hashes and the jsonschema version, so an unchanged config skips jsonschema entirely.
    """

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory

    def _path(self, uses: str, config: Any) -> Path | None:
        if self.dir is None:
            return None
        blob = json.dumps([uses, config], sort_keys=True, separators=(",", ":"), default=str)
        return self.dir / hashlib.sha256(blob.encode()).hexdigest()

    def known_valid(self, uses: str, config: Any) -> bool:
        path = self._path(uses, config)
        return path is not None and path.exists()

    def remember(self, uses: str, config: Any) -> None:
        path = self._path(uses, config)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def check_steps(
    docs: Sequence[Document],
    schemas: Callable[[], StepSchemas],
    verdicts: VerdictCache | None = None,
) -> tuple[list[Failure], int]:
    """Failures, and how many step configs were checked against their schema."""
    failures: list[Failure] = []
    validated = 0
    verdicts = verdicts or VerdictCache(None)
    loaded: list[StepSchemas] = []

    def step_schemas() -> StepSchemas:
        if not loaded:
            loaded.append(schemas())
        return loaded[0]

    tasks = {(d.namespace, d.name): d for d in docs if d.kind == "PromotionTask"}
    for doc in docs:
        found = _steps(doc)
        if found is None:
            continue
        steps, template_vars = found
        aliases: dict[str, int] = {}
        for i, step in enumerate(steps):
            where = f"step {i + 1}"
            if not isinstance(step, dict):
                failures.append(doc.fail(f"{where}: not a mapping", "steps"))
                continue
            alias = step.get("as")
            if alias:
                where = f"step {i + 1} ({alias})"
                if alias in aliases:
                    failures.append(
                        doc.fail(f"{where}: alias also used by step {aliases[alias]}", "steps")
                    )
                aliases[alias] = i + 1
            uses, task = step.get("uses"), step.get("task")
            if bool(uses) == bool(task):
                failures.append(
                    doc.fail(f"{where}: needs exactly one of `uses` or `task`", "steps")
                )
                continue
            for path, text in _strings(step.get("config"), "config"):
                if not _balanced(text):
                    failures.append(doc.fail(f"{where}: {path}: unbalanced ${{{{ }}}}", "steps"))
            if task:
                failures += _check_task_ref(doc, where, step, template_vars, tasks)
                continue
            config = step.get("config") or {}
            failures += _policy(doc, where, str(uses), config)
            validated += 1
            if verdicts.known_valid(str(uses), config):
                continue
            validator = step_schemas().validator(str(uses))
            if validator is None:
                failures.append(
                    doc.fail(f"{where}: unknown step {uses!r} (no pinned step schema)", "steps")
                )
                continue
            errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
            for error in errors:
                loc = "config" + "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path
                )
                failures.append(doc.fail(f"{where}: {uses}: {loc}: {error.message}", "steps"))
            if not errors:
                verdicts.remember(str(uses), config)
    return failures, validated


def _check_task_ref(
    doc: Document,
    where: str,
    step: dict[str, Any],
    template_vars: list[Any],
    tasks: dict[tuple[str, str], Document],
) -> list[Failure]:
    ref = step["task"] if isinstance(step["task"], dict) else {}
    if ref.get("kind", "PromotionTask") != "PromotionTask":
        return []  # ClusterPromotionTasks live outside this tree
    task = tasks.get((doc.namespace, str(ref.get("name"))))
    if task is None:
        return [
            doc.fail(
                f"{where}: PromotionTask {ref.get('name')!r} not found in "
                f"namespace {doc.namespace!r}",
                "steps",
            )
        ]
    given = {v.get("name") for v in (step.get("vars") or []) + template_vars if isinstance(v, dict)}
    missing = [
        v.get("name")
        for v in task.spec.get("vars") or []
        if isinstance(v, dict) and "value" not in v and v.get("name") not in given
    ]
    if missing:
        return [
            doc.fail(
                f"{where}: PromotionTask {task.name!r} needs var(s) {', '.join(sorted(missing))}",
                "steps",
            )
        ]
    return []


def _policy(doc: Document, where: str, uses: str, config: dict[str, Any]) -> list[Failure]:
    """Pitfalls the schemas allow (see ../shared/NOTES.md)."""
    out = []
    if not isinstance(config, dict):
        return out
    if uses == "git-push" and "branch" in config:
        out.append(doc.fail(f"{where}: git-push takes `targetBranch`, not `branch`", "policy"))
    if uses == "argocd-update":
        for app in config.get("apps") or []:
            for source in (app or {}).get("sources") or []:
                if isinstance(source, dict) and "desiredRevision" in source:
                    out.append(
                        doc.fail(
                            f"{where}: argocd-update must not set desiredRevision (all stages"
                            " share one branch; every other stage would turn Unhealthy)",
                            "policy",
                        )
                    )
    if uses == "http":
        for key in _HTTP_EXPRESSIONS:
            if "${{" in str(config.get(key, "")):
                out.append(
                    doc.fail(
                        f"{where}: http {key} is evaluated by the step: no ${{{{ }}}}", "policy"
                    )
                )
        for output in config.get("outputs") or []:
            if isinstance(output, dict) and "${{" in str(output.get("fromExpression", "")):
                out.append(
                    doc.fail(
                        f"{where}: http outputs[].fromExpression takes no ${{{{ }}}}", "policy"
                    )
                )
    return out
