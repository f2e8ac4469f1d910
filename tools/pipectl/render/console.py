"""The pipeline console: its ConfigMap (pipeline.yaml) and its Deployment."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipectl.errors import ConfigError
from pipectl.render.emit import dump_docs
from pipectl.render.metadata import labels
from pipectl.render.names import CONSOLE_IMAGE, CONSOLE_NS, CONSOLE_URL

if TYPE_CHECKING:
    from pipectl.config import PipelineConfig


def _git_clone_url(config: PipelineConfig) -> str:
    url = config.repository_url
    if not url.startswith("https://"):
        raise ConfigError(f"{config.path}: repository.url: the console clones over HTTPS: {url!r}")
    return "https://$(GIT_USERNAME):$(GIT_PASSWORD)@" + url.removeprefix("https://")


def console_config_map(config: PipelineConfig) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "pipeline-config", "namespace": CONSOLE_NS, "labels": labels()},
        "data": {"pipeline.yaml": _config_text(config)},
    }
    return dump_docs(
        [("", body)], "pipeline.yaml for the console (--config /etc/pipectl/pipeline.yaml)."
    )


def _config_text(config: PipelineConfig) -> str:
    try:
        return Path(config.path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{config.path}: cannot read ({exc})") from None


def console_deployment(config: PipelineConfig, versions: Mapping[str, str]) -> str:
    image = f"{CONSOLE_IMAGE}:{versions['PIPECTL_VERSION']}"
    config_hash = hashlib.sha256(_config_text(config).encode()).hexdigest()
    security = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
    }
    git_identity = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "GIT_CONFIG_COUNT", "value": "2"},
        {"name": "GIT_CONFIG_KEY_0", "value": "user.name"},
        {"name": "GIT_CONFIG_VALUE_0", "value": "pipeline console"},
        {"name": "GIT_CONFIG_KEY_1", "value": "user.email"},
        {"name": "GIT_CONFIG_VALUE_1", "value": "pipeline-console@celestium.life"},
    ]
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "pipeline-console",
            "namespace": CONSOLE_NS,
            "labels": labels(**{"app.kubernetes.io/name": "pipeline-console"}),
        },
        "spec": {
            # One writer of the repository clone and the audit log.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "pipeline-console"}},
            "template": {
                "metadata": {
                    "labels": labels(**{"app.kubernetes.io/name": "pipeline-console"}),
                    # The config is mounted with subPath (no live update): roll on change.
                    "annotations": {"pipelines.celestium.life/pipeline-config-sha256": config_hash},
                },
                "spec": {
                    "serviceAccountName": "pipeline-console",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [
                        {
                            "name": "clone-repo",
                            "image": image,
                            # The kubelet expands $(GIT_USERNAME)/$(GIT_PASSWORD) from the env
                            # below; the credentials stay in the pod (memory-backed emptyDir).
                            "command": [
                                "/bin/git",
                                "clone",
                                "--branch",
                                config.branch,
                                "--single-branch",
                                _git_clone_url(config),
                                "/var/lib/pipectl/repo",
                            ],
                            "env": [
                                _secret_env("GIT_USERNAME", "git-creds", "username"),
                                _secret_env("GIT_PASSWORD", "git-creds", "password"),
                                *git_identity,
                            ],
                            "securityContext": security,
                            "resources": _resources(),
                            "volumeMounts": [
                                {"name": "repo", "mountPath": "/var/lib/pipectl/repo"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "containers": [
                        {
                            "name": "console",
                            "image": image,
                            "args": [
                                "--repo",
                                "/var/lib/pipectl/repo",
                                "--config",
                                "/etc/pipectl/pipeline.yaml",
                                "serve",
                                "--host",
                                "0.0.0.0",
                                "--port",
                                "8080",
                                "--mode",
                                "cluster",
                                "--htpasswd",
                                "/etc/pipectl/htpasswd/htpasswd",
                                "--kargo-token-file",
                                "/etc/pipectl/tokens/kargo-token",
                                "--ci-token-file",
                                "/etc/pipectl/tokens/ci-token",
                                # No --trusted-proxy: Traefik authenticates nobody and passes a
                                # client's X-Forwarded-User through unchanged, and every pod
                                # (Traefik, ARC runners) is in 10.42.0.0/16, so trusting the pod
                                # network would let anyone name themselves. Users sign in with
                                # HTTP Basic against --htpasswd; Kargo and CI use bearer tokens.
                                "--public-url",
                                CONSOLE_URL,
                            ],
                            "env": [
                                {
                                    "name": "PIPECTL_AUDIT_LOG",
                                    "value": "/var/lib/pipectl/audit/audit.jsonl",
                                },
                                *git_identity,
                            ],
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "readinessProbe": {**probe, "periodSeconds": 10},
                            "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 4},
                            "securityContext": security,
                            "resources": _resources(memory_limit="512Mi"),
                            "volumeMounts": [
                                {"name": "repo", "mountPath": "/var/lib/pipectl/repo"},
                                {"name": "audit", "mountPath": "/var/lib/pipectl/audit"},
                                {
                                    "name": "config",
                                    "mountPath": "/etc/pipectl/pipeline.yaml",
                                    "subPath": "pipeline.yaml",
                                    "readOnly": True,
                                },
                                {
                                    "name": "htpasswd",
                                    "mountPath": "/etc/pipectl/htpasswd",
                                    "readOnly": True,
                                },
                                {
                                    "name": "tokens",
                                    "mountPath": "/etc/pipectl/tokens",
                                    "readOnly": True,
                                },
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "repo", "emptyDir": {"medium": "Memory", "sizeLimit": "128Mi"}},
                        {
                            "name": "audit",
                            "persistentVolumeClaim": {"claimName": "pipeline-audit"},
                        },
                        {"name": "config", "configMap": {"name": "pipeline-config"}},
                        {
                            "name": "htpasswd",
                            "secret": {
                                "secretName": "pipeline-console-htpasswd",
                                "defaultMode": 0o440,
                            },
                        },
                        {
                            "name": "tokens",
                            "secret": {
                                "secretName": "pipeline-console-tokens",
                                "defaultMode": 0o440,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }
    intro = (
        "The pipeline console (docs/design.md, console runtime contract): non-root uid 10001,\n"
        "read-only root filesystem, the audit log on the NFS claim pipeline-audit, Secrets by\n"
        "name only (git-creds, pipeline-console-htpasswd, pipeline-console-tokens; created by\n"
        "runmefirst.sh). The initContainer clones the repository the console reads and commits to."
    )
    return dump_docs([("", body)], intro)


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _resources(memory_limit: str = "256Mi") -> dict[str, Any]:
    return {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": memory_limit},
    }
