"""Names fixed by docs/design.md: namespaces, projects, repositories, URLs, Kargo objects."""

from __future__ import annotations

IN_CLUSTER = "https://kubernetes.default.svc"
ARGOCD_NS = "argocd"
KARGO_NS = "kargo"
KARGO_PROJECT = "kargo-stonks-oracle"
CONSOLE_NS = "pipeline-console"
CONSOLE_HOST = "pipeline.celestium.life"
CONSOLE_URL = f"https://{CONSOLE_HOST}"
CONSOLE_IMAGE = "ghcr.io/celesrenata/pipelines/pipectl"
CONSOLE_API = f"http://pipeline-console.{CONSOLE_NS}.svc.cluster.local:8080/api/v1"
GATE_URL = f"{CONSOLE_API}/gate"
INTTEST_URL = f"{CONSOLE_API}/inttest"
GATE_TOKEN_SECRET = "pipeline-gate-token"
# The integration-test Stage waits for CI's verdict: polled this often, for at most this long.
INTTEST_POLL_INTERVAL = "30s"
INTTEST_WAIT = "3h"

INFRA_PROJECT = "pipeline-infra"
APP_PROJECT = "stonks-oracle"
APP_REPO = "https://github.com/celesrenata/stonks-oracle.git"
APP_CHART_PATH = "infra/helm/stonks-oracle"
APP_CHART_REVISION = "main"
APP_RELEASE = "stonks-oracle"
APP_NAMESPACE_GLOB = "stonks-oracle*"

KARGO_CHART_REPO = "ghcr.io/akuity/kargo-charts"
ARC_CHART_REPO = "ghcr.io/actions/actions-runner-controller-charts"

WAREHOUSE = "stonks-oracle"
# All 14 images share the git-SHA tag; the Warehouse watches one of them.
REPRESENTATIVE_IMAGE = "query-api"
PROMOTION_TASK = "gated-promotion"
KARGO_STAGES: tuple[str, ...] = ("integration-test", "beta", "paper", "live")
AUTO_PROMOTE: tuple[str, ...] = ("integration-test", "beta")
FINALIZER = "resources-finalizer.argocd.argoproj.io"
