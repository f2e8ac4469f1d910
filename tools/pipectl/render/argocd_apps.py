"""Argo CD Applications: the root app-of-apps, the infrastructure charts and directories,
and one Application per stonks-oracle stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipectl.render.emit import Doc, dump_docs
from pipectl.render.metadata import labels, stage_app_name, sync_wave
from pipectl.render.names import (
    APP_CHART_PATH,
    APP_CHART_REVISION,
    APP_PROJECT,
    APP_RELEASE,
    APP_REPO,
    ARC_CHART_REPO,
    ARGOCD_NS,
    CONSOLE_NS,
    CONSOLE_URL,
    FINALIZER,
    IN_CLUSTER,
    INFRA_PROJECT,
    KARGO_CHART_REPO,
    KARGO_NS,
    KARGO_PROJECT,
)

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig


def root_application(config: PipelineConfig) -> str:
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "pipelines", "namespace": ARGOCD_NS, "labels": labels()},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": config.repository_url,
                "targetRevision": config.branch,
                "path": "gitops/apps",
                "directory": {"recurse": True},
            },
            "destination": {"server": IN_CLUSTER, "namespace": ARGOCD_NS},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "retry": _retry(),
            },
        },
    }
    intro = (
        "The root Application (app-of-apps). runmefirst.sh applies it once Argo CD is up;\n"
        "from then on Argo CD manages everything under gitops/apps/: the AppProjects,\n"
        "the Kargo and ARC charts, the Kargo Project and its objects, the console and the\n"
        "stonks-oracle stage Applications. No finalizer: deleting it orphans the children."
    )
    return dump_docs([("", app)], intro)


def _retry() -> dict[str, Any]:
    return {"limit": 10, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}


def _values_ref(path: str) -> str:
    return f"$values/{path}"


def _this_repo_source(config: PipelineConfig) -> dict[str, Any]:
    return {"repoURL": config.repository_url, "targetRevision": config.branch, "ref": "values"}


def _infra_app_head(name: str, wave: int) -> dict[str, Any]:
    """apiVersion, kind and metadata of a pipeline-infrastructure Application."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": ARGOCD_NS,
            "labels": labels(),
            "annotations": sync_wave(wave),
        },
    }


def _chart_app(
    name: str,
    namespace: str,
    repo: str,
    chart: str,
    version: str,
    release: str,
    values_file: str | None,
    config: PipelineConfig,
    wave: int,
    values_object: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    helm: dict[str, Any] = {"releaseName": release}
    if values_file is not None:
        helm["valueFiles"] = [_values_ref(values_file)]
    if values_object is not None:
        helm["valuesObject"] = dict(values_object)
    return {
        **_infra_app_head(name, wave),
        "spec": {
            "project": INFRA_PROJECT,
            "sources": [
                {
                    "repoURL": repo,
                    "chart": chart,
                    "targetRevision": version,
                    "helm": helm,
                },
                _this_repo_source(config),
            ],
            "destination": {"server": IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                # Big CRDs (ARC's, Kargo's) exceed the client-side apply annotation limit.
                "syncOptions": ["ServerSideApply=true"],
                "retry": _retry(),
            },
        },
    }


def _dir_app(
    name: str, namespace: str, path: str, config: PipelineConfig, wave: int
) -> dict[str, Any]:
    return {
        **_infra_app_head(name, wave),
        "spec": {
            "project": INFRA_PROJECT,
            "source": {
                "repoURL": config.repository_url,
                "targetRevision": config.branch,
                "path": path,
                "directory": {"recurse": True},
            },
            "destination": {"server": IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "retry": _retry()},
        },
    }


def infra_applications(config: PipelineConfig, versions: Mapping[str, str]) -> str:
    arc = versions["ARC_VERSION"]
    docs: list[Doc] = [
        (
            "Kargo, API at https://kargo.celestium.life; admin login: Secret kargo/kargo-api.",
            _chart_app(
                "kargo",
                KARGO_NS,
                KARGO_CHART_REPO,
                "kargo",
                versions["KARGO_VERSION"],
                "kargo",
                "gitops/kargo/values.yaml",
                config,
                wave=-2,
            ),
        ),
        (
            "ARC controller; release 'arc' gives the ServiceAccount arc-gha-rs-controller.",
            _chart_app(
                "arc-controller",
                "arc-systems",
                ARC_CHART_REPO,
                "gha-runner-scale-set-controller",
                arc,
                "arc",
                "gitops/arc/controller-values.yaml",
                config,
                wave=-2,
            ),
        ),
        (
            "Runner scale set self-hosted-gremlin (after the controller and its CRDs).",
            _chart_app(
                "arc-runners",
                "arc-runners",
                ARC_CHART_REPO,
                "gha-runner-scale-set",
                arc,
                "self-hosted-gremlin",
                "gitops/arc/runners-values.yaml",
                config,
                wave=-1,
            ),
        ),
        (
            "Runner scale set self-hosted-gremlin for THIS repository (its `nix flake check`\n"
            "workflow): a runner set serves only the repository in its githubConfigUrl. Same\n"
            "GitHub App and controller; no Docker-in-Docker (nothing here builds images).",
            _chart_app(
                "arc-runners-pipelines",
                "arc-runners",
                ARC_CHART_REPO,
                "gha-runner-scale-set",
                arc,
                "self-hosted-gremlin-pipelines",
                None,
                config,
                wave=-1,
                values_object={
                    "githubConfigUrl": config.repository_url.removesuffix(".git"),
                    "githubConfigSecret": "github-app",  # the same App, installed on both
                    "runnerScaleSetName": "self-hosted-gremlin",
                    "minRunners": 0,
                    "maxRunners": 2,
                    "controllerServiceAccount": {
                        "namespace": "arc-systems",
                        "name": "arc-gha-rs-controller",
                    },
                },
            ),
        ),
        (
            "The Kargo Project's objects: ProjectConfig, Warehouse, PromotionTask, Stages.",
            _dir_app(KARGO_PROJECT, KARGO_PROJECT, "gitops/kargo/project", config, wave=0),
        ),
        (
            f"The pipeline console (pipectl serve) at {CONSOLE_URL}.",
            _dir_app("pipeline-console", CONSOLE_NS, "gitops/console", config, wave=0),
        ),
    ]
    intro = (
        f"Pipeline infrastructure, all in AppProject {INFRA_PROJECT}. Chart versions come from\n"
        "gitops/versions.env; chart values from this repository (the `ref: values` source)."
    )
    return dump_docs(docs, intro)


def stage_applications(config: PipelineConfig) -> str:
    docs: list[Doc] = []
    for stage in config.deploy_stages:
        live = stage.name == "live"
        metadata: dict[str, Any] = {
            "name": stage_app_name(stage.name),
            "namespace": ARGOCD_NS,
            "labels": labels(**{"pipelines.celestium.life/stage": stage.name}),
            "annotations": {
                "kargo.akuity.io/authorized-stage": f"{KARGO_PROJECT}:{stage.name}",
                # The root app never deletes a stage Application, even if it leaves Git.
                "argocd.argoproj.io/sync-options": "Delete=false",
                **sync_wave(1),
            },
        }
        if not live:
            metadata["finalizers"] = [FINALIZER]
        sync_options = [] if live else ["CreateNamespace=true"]
        # Live is never synced automatically: its chart follows the app repo's main branch,
        # so auto-sync would ship a chart change to live with no gate and no approval. Live
        # changes only through a sync that a promotion triggers (Kargo's argocd-update) or an
        # operator's manual sync — both of which the market-hours deny window also governs.
        sync_policy: dict[str, Any] = (
            {} if live else {"automated": {"prune": True, "selfHeal": True}}
        )
        if sync_options:
            sync_policy["syncOptions"] = sync_options
        sync_policy["retry"] = _retry()
        app = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": metadata,
            "spec": {
                "project": APP_PROJECT,
                "sources": [
                    {
                        "repoURL": APP_REPO,
                        "targetRevision": APP_CHART_REVISION,
                        "path": APP_CHART_PATH,
                        "helm": {
                            "releaseName": APP_RELEASE,
                            "valueFiles": [_values_ref(stage.values or "")],
                        },
                    },
                    _this_repo_source(config),
                ],
                "destination": {"server": IN_CLUSTER, "namespace": stage.namespace},
                "syncPolicy": sync_policy,
            },
        }
        # Nothing here depends on stage.enabled: switching a stage off must not change (or
        # tear down) what runs there; only the Kargo wiring changes.
        notes = [f"Stage {stage.name}."]
        if live:
            notes.append(
                "live: no cascading-delete finalizer, no automated sync (only a promotion's\n"
                "argocd-update or an operator's manual sync deploys it), and the namespace\n"
                "is not created here (it is the application's own)."
            )
        docs.append(("\n".join(notes), app))
    intro = (
        "The stonks-oracle stages. Chart from the app repo, values (the image tag) from this\n"
        "repo: a promotion is a commit to the stage's values file. Kargo may sync these\n"
        "Applications only for the Stage named in kargo.akuity.io/authorized-stage.\n"
        "Enabling or disabling a stage never changes this file: a disabled stage keeps running."
    )
    return dump_docs(docs, intro)
