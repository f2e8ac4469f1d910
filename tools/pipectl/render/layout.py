"""Which file every renderer writes: the rendered paths and `render_all`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipectl.render.argocd_apps import infra_applications, root_application, stage_applications
from pipectl.render.argocd_projects import app_projects
from pipectl.render.console import console_config_map, console_deployment
from pipectl.render.kargo_project import project_config, promotion_task, stages, warehouse
from pipectl.render.switches import stage_switches
from pipectl.render.versions import load_versions

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig

# Directories whose whole content `pipectl render` owns (extra files there are stale).
RENDERED_DIRS: tuple[str, ...] = (
    "gitops/apps/rendered",
    "gitops/kargo/project/rendered",
    "gitops/console/rendered",
)
ROOT_APP = "gitops/root.yaml"
STAGE_SWITCHES = "apps/stonks-oracle/stage-switches.json"


def render_all(config: PipelineConfig, repo: Path) -> dict[str, str]:
    """Every rendered file: {path relative to the repository root: text}. Deterministic."""
    versions = load_versions(Path(repo))
    files = {
        ROOT_APP: root_application(config),
        "gitops/apps/rendered/projects.yaml": app_projects(config),
        "gitops/apps/rendered/infra.yaml": infra_applications(config, versions),
        "gitops/apps/rendered/stonks-oracle.yaml": stage_applications(config),
        "gitops/kargo/project/rendered/project-config.yaml": project_config(config),
        "gitops/kargo/project/rendered/warehouse.yaml": warehouse(config),
        "gitops/kargo/project/rendered/promotion-task.yaml": promotion_task(config),
        "gitops/kargo/project/rendered/stages.yaml": stages(config),
        "gitops/console/rendered/pipeline-config.yaml": console_config_map(config),
        "gitops/console/rendered/deployment.yaml": console_deployment(config, versions),
        STAGE_SWITCHES: stage_switches(config),
    }
    return dict(sorted(files.items()))
