"""Metadata every rendered object shares: labels, Argo CD sync waves, stage Application names."""

from __future__ import annotations


def labels(**extra: str) -> dict[str, str]:
    return {**extra, "app.kubernetes.io/part-of": "pipelines"}


def sync_wave(n: int) -> dict[str, str]:
    return {"argocd.argoproj.io/sync-wave": str(n)}


def stage_app_name(stage: str) -> str:
    return f"stonks-oracle-{stage}"
