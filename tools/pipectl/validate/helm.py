"""Helm charts and values: pinned chart versions, values files that exist and parse."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipectl.validate.docs import Document, Failure, load_yaml_all, values_paths, yaml_error_types
from pipectl.validate.policy import secret_values

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig

_EXACT = re.compile(r"\d+\.\d+\.\d+")
# Chart name -> the versions.env key that pins it.
CHART_PINS = {
    "kargo": "KARGO_VERSION",
    "gha-runner-scale-set-controller": "ARC_VERSION",
    "gha-runner-scale-set": "ARC_VERSION",
    "argo-cd": "ARGOCD_CHART_VERSION",
}


def _parse_values(repo: Path, rel: str) -> tuple[Any, str | None]:
    path = repo / rel
    try:
        docs = load_yaml_all(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "file not found"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read: {exc}"
    except yaml_error_types() as exc:
        return None, "invalid YAML: " + " ".join(str(exc).strip().splitlines()[:3])
    docs = [d for d in docs if d is not None]
    if len(docs) > 1:
        return None, "a values file holds one YAML document"
    data = docs[0] if docs else {}
    if not isinstance(data, dict):
        return None, "a values file must be a mapping"
    return data, None


def check_values_files(repo: Path) -> tuple[list[Failure], int]:
    """Every gitops/**/*values.yaml parses as a mapping and holds no secret value."""
    failures = []
    paths = values_paths(repo)
    for path in paths:
        rel = path.relative_to(repo).as_posix()
        data, problem = _parse_values(repo, rel)
        if problem:
            failures.append(Failure(rel, problem, check="helm"))
            continue
        failures += [Failure(rel, m, check="helm") for m in secret_values(data)]
    return failures, len(paths)


def check_applications(
    docs: Sequence[Document], repo: Path, versions: Mapping[str, str]
) -> list[Failure]:
    failures: list[Failure] = []
    for app in docs:
        if app.kind != "Application" or not app.api_version.startswith("argoproj.io/"):
            continue
        spec = app.spec
        sources = [spec["source"]] if isinstance(spec.get("source"), dict) else []
        sources += [s for s in spec.get("sources") or [] if isinstance(s, dict)]
        if not sources:
            failures.append(app.fail("Application without a source", "helm"))
        has_values_ref = any(s.get("ref") == "values" for s in sources)
        for i, source in enumerate(sources):
            label = f"source {i + 1} ({source.get('repoURL')})"
            revision = str(source.get("targetRevision", "") or "")
            chart = source.get("chart")
            if chart:
                if not _EXACT.fullmatch(revision):
                    failures.append(
                        app.fail(
                            f"{label}: chart {chart} needs an exact version X.Y.Z, "
                            f"not {revision or 'none'!r}",
                            "helm",
                        )
                    )
                elif chart in CHART_PINS and versions.get(CHART_PINS[chart]) != revision:
                    key = CHART_PINS[chart]
                    failures.append(
                        app.fail(
                            f"{label}: chart {chart} {revision} differs from "
                            f"{key}={versions.get(key)} in gitops/versions.env",
                            "helm",
                        )
                    )
            elif revision in ("", "HEAD", "*"):
                failures.append(
                    app.fail(
                        f"{label}: targetRevision {revision or 'unset'!r}: name a branch, "
                        "tag or commit",
                        "helm",
                    )
                )
            helm = source.get("helm") if isinstance(source.get("helm"), dict) else {}
            for value_file in helm.get("valueFiles") or []:
                failures += _check_value_file(app, label, str(value_file), repo, has_values_ref)
            failures += [
                app.fail(f"{label}: helm.valuesObject.{m}", "helm")
                for m in secret_values(helm.get("valuesObject") or {})
            ]
    return failures


def _check_value_file(
    app: Document, label: str, value_file: str, repo: Path, has_values_ref: bool
) -> list[Failure]:
    if not value_file.startswith("$values/"):
        return []  # relative to a chart in another repository: not checkable here
    if not has_values_ref:
        return [app.fail(f"{label}: {value_file} but no source has `ref: values`", "helm")]
    rel = value_file.removeprefix("$values/")
    _, problem = _parse_values(repo, rel)
    if problem:
        return [app.fail(f"{label}: values file {rel}: {problem}", "helm")]
    return []


def check_stage_values(repo: Path, config: PipelineConfig) -> list[Failure]:
    """Kargo's yaml-update (and pipectl promote) only change an EXISTING scalar tag key."""
    failures = []
    for stage in config.deploy_stages:
        rel = stage.values or ""
        data, problem = _parse_values(repo, rel)
        if problem:
            failures.append(Failure(rel, f"values of stage {stage.name}: {problem}", check="helm"))
            continue
        node: Any = data
        for part in config.tag_key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if node is None or isinstance(node, dict | list):
            failures.append(
                Failure(
                    rel,
                    f"no scalar {config.tag_key} (image.tag_key in pipeline.yaml) for "
                    f"promotions to update",
                    check="helm",
                )
            )
        failures += [Failure(rel, m, check="helm") for m in secret_values(data)]
    return failures
