"""The Kargo Project's objects: ProjectConfig (auto-promotion), Warehouse, the gated
PromotionTask, and the Stages wired through the enabled stages of pipeline.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipectl.render.emit import Doc, dump_docs
from pipectl.render.kargo_steps import TAG_EXPRESSION, gate_step, inttest_step
from pipectl.render.metadata import labels, stage_app_name
from pipectl.render.names import (
    ARGOCD_NS,
    AUTO_PROMOTE,
    CONSOLE_URL,
    GATE_TOKEN_SECRET,
    GATE_URL,
    INTTEST_POLL_INTERVAL,
    INTTEST_URL,
    INTTEST_WAIT,
    KARGO_PROJECT,
    KARGO_STAGES,
    PROMOTION_TASK,
    REPRESENTATIVE_IMAGE,
    WAREHOUSE,
)

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig, Stage


def _kargo_upstream(config: PipelineConfig, name: str) -> str | None:
    """Nearest enabled Kargo stage before `name` (ci is not a Kargo Stage), or None."""
    prev = config.previous_enabled(name)
    while prev is not None and prev.name not in KARGO_STAGES:
        prev = config.previous_enabled(prev.name)
    return prev.name if prev is not None else None


def _image_repo(config: PipelineConfig) -> str:
    return f"{config.image_registry}/{REPRESENTATIVE_IMAGE}"


def _common_vars(config: PipelineConfig) -> list[dict[str, str]]:
    return [
        {"name": "gateURL", "value": GATE_URL},
        {"name": "imageRepo", "value": _image_repo(config)},
    ]


COMMIT_MESSAGE = """\
promote(${{ ctx.stage }}): ${{ imageFrom(vars.imageRepo).Tag }}

Kargo promotion ${{ ctx.promotion }} requested by ${{ ctx.meta.promotion.actor }},
allowed by the pipeline gate: ${{ task.outputs.gate.message }}

Pipeline-Stage: ${{ ctx.stage }}
Image-Tag: ${{ imageFrom(vars.imageRepo).Tag }}
From-Stage: ${{ vars.fromStage }}
Promoted-By: ${{ ctx.meta.promotion.actor }}
Break-Glass: ${{ task.outputs.gate.breakGlass }}
Kargo-Promotion: ${{ ctx.promotion }}
"""


def promotion_task(config: PipelineConfig) -> str:
    task = {
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "PromotionTask",
        "metadata": {"name": PROMOTION_TASK, "namespace": KARGO_PROJECT, "labels": labels()},
        "spec": {
            "vars": [
                *_common_vars(config),
                {"name": "repoURL", "value": config.repository_url},
                {"name": "branch", "value": config.branch},
                {"name": "tagKey", "value": config.tag_key},
                {"name": "valuesFile"},
                {"name": "argocdApp"},
                {"name": "fromStage"},
            ],
            "steps": [
                gate_step(),
                {
                    "uses": "git-clone",
                    "as": "clone",
                    "config": {
                        "repoURL": "${{ vars.repoURL }}",
                        "checkout": [{"branch": "${{ vars.branch }}", "path": "./repo"}],
                    },
                },
                {
                    "uses": "yaml-update",
                    "as": "update-tag",
                    "config": {
                        "path": "./repo/${{ vars.valuesFile }}",
                        "updates": [
                            {
                                "key": "${{ vars.tagKey }}",
                                "value": TAG_EXPRESSION,
                            }
                        ],
                    },
                },
                {
                    "uses": "git-commit",
                    "as": "commit",
                    "config": {"path": "./repo", "message": COMMIT_MESSAGE},
                },
                {
                    "uses": "git-push",
                    "as": "push",
                    "config": {"path": "./repo", "targetBranch": "${{ vars.branch }}"},
                },
                {
                    "uses": "argocd-update",
                    "as": "sync",
                    # No desiredRevision: every stage shares one branch, so a pinned revision
                    # would make every other stage's Application look out of date.
                    "config": {"apps": [{"name": "${{ vars.argocdApp }}", "namespace": ARGOCD_NS}]},
                },
            ],
        },
    }
    intro = (
        "One promotion, every deploying stage: ask the pipeline gate first (blocked -> the\n"
        "promotion fails for good, its message carries the reason and the time to close),\n"
        "then change ONLY the tag key in the stage's values file, commit (the message names\n"
        "the actor), push to the branch Argo CD watches, and sync the stage's Application.\n"
        f"The gate token comes from the Secret {GATE_TOKEN_SECRET} in this namespace (key\n"
        "`token`, label kargo.akuity.io/cred-type: generic), created by runmefirst.sh."
    )
    return dump_docs([("", task)], intro)


def stages(config: PipelineConfig) -> str:
    docs: list[Doc] = []
    for name in KARGO_STAGES:
        stage = config.stage(name)
        upstream = _kargo_upstream(config, name)
        sources: dict[str, Any] = {"stages": [upstream]} if upstream else {"direct": True}
        if name == "integration-test":
            steps: list[dict[str, Any]] = [gate_step(), inttest_step()]
            template_vars = [*_common_vars(config), {"name": "inttestURL", "value": INTTEST_URL}]
        else:
            previous = config.previous_enabled(name)
            steps = [
                {
                    "task": {"name": PROMOTION_TASK, "kind": "PromotionTask"},
                    "as": "promote",
                    "vars": [
                        {"name": "valuesFile", "value": stage.values or ""},
                        {"name": "argocdApp", "value": stage_app_name(name)},
                        {"name": "fromStage", "value": previous.name if previous else "none"},
                    ],
                }
            ]
            template_vars = []
        spec: dict[str, Any] = {
            "requestedFreight": [
                {"origin": {"kind": "Warehouse", "name": WAREHOUSE}, "sources": sources}
            ],
            "promotionTemplate": {"spec": {"steps": steps}},
        }
        if template_vars:
            spec["promotionTemplate"]["spec"] = {"vars": template_vars, "steps": steps}
        body = {
            "apiVersion": "kargo.akuity.io/v1alpha1",
            "kind": "Stage",
            "metadata": {
                "name": name,
                "namespace": KARGO_PROJECT,
                "labels": labels(
                    **{"pipelines.celestium.life/enabled": str(stage.enabled).lower()}
                ),
            },
            "spec": spec,
        }
        docs.append((_stage_comment(stage, upstream), body))
    intro = (
        "Kargo Stages, wired through the ENABLED stages of pipeline.yaml: each takes Freight\n"
        "from the nearest enabled stage before it (or straight from the Warehouse). A disabled\n"
        "stage keeps its Stage (and its Argo CD Application) but nothing flows through it and it\n"
        "is never auto-promoted; the gate refuses promotions into it."
    )
    return dump_docs(docs, intro)


def _stage_comment(stage: Stage, upstream: str | None) -> str:
    state = "enabled" if stage.enabled else "DISABLED in pipeline.yaml"
    source = f"from {upstream}" if upstream else "directly from the Warehouse"
    lines = [f"{stage.name}: {state}; Freight {source}."]
    if stage.name == "integration-test":
        lines += [
            "Nothing to deploy: the CI workflow runs the integration test on the ARC runners and",
            "reports the result to the console (POST /api/v1/inttest) when the run has ended.",
            "This Stage's promotion first asks the gate for integration-test (audited with the",
            "promotion name; fails closed while the stage is disabled), then WAITS for CI's",
            "verdict: the `inttest` step asks GET /api/v1/inttest?tag=<tag> every "
            f"{INTTEST_POLL_INTERVAL}.",
            "- passed: the promotion succeeds and the Freight becomes available to beta (which",
            "  is auto-promoted; beta's gate requires the pass as well);",
            "- failed, or the question refused (400/401/403): the promotion fails for good;",
            "  promote the tag into integration-test again once a run has passed;",
            "- no result yet, 404/405 (endpoint not served yet), 408/429, 5xx: keep waiting,",
            f"  for at most {INTTEST_WAIT} (retry.timeout), then the step fails.",
            "While integration-test is disabled, beta takes Freight straight from the Warehouse.",
        ]
    return "\n".join(lines)


def project_config(config: PipelineConfig) -> str:
    policies = []
    for name in KARGO_STAGES:
        auto = name in AUTO_PROMOTE and config.stage(name).enabled
        policies.append({"stageSelector": {"name": name}, "autoPromotionEnabled": auto})
    body = {
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "ProjectConfig",
        "metadata": {"name": KARGO_PROJECT, "namespace": KARGO_PROJECT, "labels": labels()},
        "spec": {
            "promotionPolicies": policies,
            "stageLinks": [
                {
                    "title": "Pipeline console",
                    "url": CONSOLE_URL,
                    "description": (
                        "Gate decisions, market window, approvals, break-glass and the audit log"
                    ),
                }
            ],
        },
    }
    intro = (
        "Auto-promotion only where it is safe: integration-test and beta (while enabled).\n"
        "paper and live are promoted by a person (Kargo UI, console or pipectl), through the gate."
    )
    return dump_docs([("", body)], intro)


def warehouse(config: PipelineConfig) -> str:
    body = {
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "Warehouse",
        "metadata": {"name": WAREHOUSE, "namespace": KARGO_PROJECT, "labels": labels()},
        "spec": {
            "interval": "5m0s",
            "freightCreationPolicy": "Automatic",
            "subscriptions": [
                {
                    "image": {
                        "repoURL": _image_repo(config),
                        "imageSelectionStrategy": "NewestBuild",
                        "allowTagsRegexes": ["^[0-9a-f]{7,40}$"],
                        "cacheByTag": True,
                        "discoveryLimit": 10,
                    }
                }
            ],
        },
    }
    intro = (
        "New Freight for every git-SHA tag CI pushes. All 14 images share the tag, so one\n"
        f"representative image ({REPRESENTATIVE_IMAGE}) is watched; `:latest` never matches.\n"
        "SHA tags are immutable, so metadata is cached by tag; only the newest few are listed."
    )
    return dump_docs([("", body)], intro)
