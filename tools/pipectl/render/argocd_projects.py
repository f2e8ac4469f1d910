"""Argo CD AppProjects: pipeline infrastructure vs. the application, market-hours sync windows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipectl.render.emit import dump_docs
from pipectl.render.metadata import labels, stage_app_name, sync_wave
from pipectl.render.names import (
    APP_NAMESPACE_GLOB,
    APP_PROJECT,
    APP_REPO,
    ARC_CHART_REPO,
    ARGOCD_NS,
    IN_CLUSTER,
    INFRA_PROJECT,
    KARGO_CHART_REPO,
)

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig


def _duration(minutes: int) -> str:
    hours, mins = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{mins}m" if mins else "")
    return text or "0m"


def app_projects(config: PipelineConfig) -> str:
    market = config.market
    open_minutes = market.open.hour * 60 + market.open.minute
    close_minutes = market.close.hour * 60 + market.close.minute
    gated = [s for s in config.deploy_stages if s.gates.market_hours]
    windows = []
    if gated:
        windows.append(
            {
                "kind": "deny",
                "schedule": f"{market.open.minute} {market.open.hour} * * 1-5",
                "duration": _duration(close_minutes - open_minutes),
                "timeZone": market.timezone,
                "applications": [stage_app_name(s.name) for s in gated],
                "manualSync": True,
                "description": (
                    "market hours: no automated sync of "
                    + ", ".join(s.name for s in gated)
                    + " (second line behind the pipeline gate; manual/Kargo syncs stay"
                    " possible for break-glass)"
                ),
            }
        )
    infra = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {
            "name": INFRA_PROJECT,
            "namespace": ARGOCD_NS,
            "labels": labels(),
            "annotations": sync_wave(-3),
        },
        "spec": {
            "description": "Pipeline infrastructure: Kargo, ARC, the pipeline console",
            "sourceRepos": [config.repository_url, KARGO_CHART_REPO, ARC_CHART_REPO],
            "destinations": [
                {"server": IN_CLUSTER, "namespace": "*"},
                {"server": "*", "namespace": f"!{APP_NAMESPACE_GLOB}"},
            ],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            # Namespaces are cluster-scoped, so the deny destination does not cover them.
            "clusterResourceBlacklist": [
                {"group": "", "kind": "Namespace", "name": APP_NAMESPACE_GLOB}
            ],
        },
    }
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {
            "name": APP_PROJECT,
            "namespace": ARGOCD_NS,
            "labels": labels(),
            "annotations": sync_wave(-3),
        },
        "spec": {
            "description": "stonks-oracle stages beta, paper, live; only stonks-oracle* namespaces",
            "sourceRepos": [APP_REPO, config.repository_url],
            "destinations": [
                {"server": IN_CLUSTER, "namespace": "stonks-oracle"},
                {"server": IN_CLUSTER, "namespace": "stonks-oracle-*"},
            ],
            # CreateNamespace for its own namespaces only: never argocd, kargo-stonks-oracle, ...
            "clusterResourceWhitelist": [
                {"group": "", "kind": "Namespace", "name": APP_NAMESPACE_GLOB}
            ],
            "syncWindows": windows,
        },
    }
    intro = (
        "Two AppProjects isolate the pipeline from the application it deploys:\n"
        f"- {INFRA_PROJECT}: anywhere EXCEPT {APP_NAMESPACE_GLOB} (deny destination, and no\n"
        f"  Namespace object named {APP_NAMESPACE_GLOB});\n"
        f"- {APP_PROJECT}: ONLY {APP_NAMESPACE_GLOB} (destinations and the only Namespace objects\n"
        "  it may create), so it cannot touch a pipeline namespace.\n"
        "Deny sync windows cover the market-hours stages during the session (Mon-Fri,\n"
        "market.open..market.close in market.timezone; Argo CD knows no holidays, the gate does)."
    )
    return dump_docs([("", infra), ("", app)], intro)
