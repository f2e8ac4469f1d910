"""`pipectl status`: what each stage runs, whether it is enabled, how it got there, and the
market state; with `--cluster`, what Kargo and Argo CD say.

Sources: deploy stages' tags come from their values files at HEAD (what Argo CD deploys);
`ci` and `integration-test` show the newest integration-test result in the audit log; the
last promotion of a deploy stage is the newest commit that changed its tag (trailers
written by `pipectl promote`, or a plain commit such as Kargo's), joined with the
`promotion.completed` audit entry that names that commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipectl import gitrepo
from pipectl.errors import ConfigError
from pipectl.inttest import newest_result
from pipectl.values_file import tag_from_text

# How far back to look for the commit that last changed a stage's tag.
LOG_DEPTH = 50


def deployed_tag(repo, config, stage, rev: str = "HEAD") -> str:
    """The tag in `stage`'s values file at `rev` ("" = nothing deployed yet)."""
    text = gitrepo.show(repo, rev, stage.values)
    if text is None:
        raise ConfigError(f"{stage.values} does not exist at {rev}")
    return tag_from_text(text, config.tag_key, f"{stage.values}@{rev}")


def _tag_at(repo, config, relpath: str, rev: str) -> str | None:
    text = gitrepo.show(repo, rev, relpath)
    if text is None:
        return None
    try:
        return tag_from_text(text, config.tag_key, relpath)
    except ConfigError:
        return None


def last_promotion(repo, config, stage, entries: Sequence[Any]) -> dict[str, Any] | None:
    """The newest commit that changed `stage`'s tag, described from trailers + audit."""
    for item in gitrepo.log(repo, [stage.values], max_count=LOG_DEPTH):
        trailers = item.trailers
        ours = trailers.get("Pipeline-Stage") == stage.name and "Image-Tag" in trailers
        if not ours:
            before = _tag_at(repo, config, stage.values, f"{item.commit}^")
            after = _tag_at(repo, config, stage.values, item.commit)
            if before == after or (before is None and not after):
                continue  # an edit of another key, or the file's creation: not a promotion
        audit = next(
            (
                e
                for e in reversed(entries)
                if e.action == "promotion.completed" and e.details.get("commit") == item.commit
            ),
            None,
        )
        grant = trailers.get("Break-Glass", "none")
        return {
            "commit": item.commit,
            "time": audit.time if audit else item.time,
            "committed_at": item.time,
            "by": trailers.get("Promoted-By") or (audit.actor if audit else item.author),
            "author": item.author,
            "subject": item.subject,
            "notes": item.notes or (audit.notes if audit else "") or "",
            "tag": trailers.get("Image-Tag") or _tag_at(repo, config, stage.values, item.commit),
            "from_stage": trailers.get("From-Stage"),
            "break_glass": None if grant in ("", "none") else grant,
            "audit_id": audit.id if audit else trailers.get("Audit-Id"),
            "via": "pipectl" if ours else "commit",
        }
    return None


def _inttest_view(entry: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "tag": entry.tag,
        "result": "passed" if entry.action == "inttest.passed" else "failed",
        "time": entry.time,
        "by": entry.actor,
        "counts": {k: v for k, v in entry.details.items() if k != "source"},
    }


def collect(ctx, now: datetime, cluster: bool = False, api: Any = None) -> dict[str, Any]:
    """The status document (`pipectl status --json`, `GET /api/v1/status`)."""
    from pipectl.market import MarketCalendar

    config = ctx.config
    repo = ctx.repo
    entries = ctx.audit.entries()
    newest = newest_result(entries)
    newest_passed = newest_result(e for e in entries if e.action == "inttest.passed")
    stages = []
    for stage in config.stages:
        row: dict[str, Any] = {"name": stage.name, "enabled": stage.enabled}
        if stage.values is None:
            row["tag"] = newest.tag if newest else None
            row["inttest"] = _inttest_view(newest)
            if stage.name == "integration-test":
                row["last_passed"] = _inttest_view(newest_passed)
        else:
            tag = deployed_tag(repo, config, stage)
            row["tag"] = tag or None
            row["values"] = stage.values
            row["namespace"] = stage.namespace
            row["last_promotion"] = last_promotion(repo, config, stage, entries)
        stages.append(row)
    doc: dict[str, Any] = {
        "commit": gitrepo.head(repo),
        "branch": gitrepo.current_branch(repo),
        "market": MarketCalendar(config.market).status(now).to_json(),
        "stages": stages,
    }
    if cluster:
        from pipectl.cluster import read_cluster

        seen = read_cluster([s["name"] for s in stages], api=api)
        for row in stages:
            info = seen.get(row["name"])
            if info is None:
                continue
            row["cluster"] = info
            row["drift"] = _drift(row, info)
    return doc


def _drift(row: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """Where Git and the cluster disagree (empty when they match)."""
    out = []
    kargo = info.get("kargo")
    if row.get("values") is not None:
        if kargo and "error" not in kargo and row["tag"] and kargo.get("tag") != row["tag"]:
            out.append(f"Kargo freight tag {kargo.get('tag')} != values tag {row['tag']}")
        argo = info.get("argocd")
        if argo is None:
            out.append("Argo CD Application not found")
        elif "error" not in argo and argo.get("sync") != "Synced":
            out.append(f"Argo CD sync {argo.get('sync')}")
    return out


def format_text(doc: dict[str, Any]) -> str:
    m = doc["market"]
    lines = []
    if m["open"]:
        lines.append(f"market: OPEN, closes {m['next_close']} ({m['seconds_to_close']}s left)")
    else:
        lines.append(f"market: closed, opens {m['next_open']}")
    branch = doc["branch"] or "(detached)"
    lines.append(f"repository: {branch} @ {doc['commit'][:12]}")
    lines.append("")
    lines.append(f"{'STAGE':<17} {'ENABLED':<8} {'TAG':<14} LAST CHANGE")
    for row in doc["stages"]:
        enabled = "yes" if row["enabled"] else "no"
        tag = (row["tag"] or "-")[:12]
        if row.get("values") is None:
            view = row.get("inttest")
            last = f"inttest {view['result']} {view['time']} by {view['by']}" if view else "-"
            if row["name"] == "ci":
                last = "(newest tag with an integration-test result)" if view else "-"
            if row["name"] != "ci" and not row["enabled"]:
                last += "  [disabled: beta takes any built tag]"
        else:
            if row["tag"] is None:
                tag = "(none)"
            p = row.get("last_promotion")
            if p:
                last = f"{p['time']} by {p['by']}"
                if p.get("from_stage"):
                    last += f" from {p['from_stage']}"
                if p.get("break_glass"):
                    last += f" BREAK-GLASS {p['break_glass']}"
                if p.get("notes"):
                    first = p["notes"].splitlines()[0]
                    last += f' "{first[:60]}"'
            else:
                last = "-"
        lines.append(f"{row['name']:<17} {enabled:<8} {tag:<14} {last}")
        info = row.get("cluster")
        if info:
            parts = []
            kargo = info.get("kargo")
            if kargo is None and row["name"] != "ci":
                parts.append("kargo: no Stage")
            elif kargo and "error" in kargo:
                parts.append(f"kargo: {kargo['error']}")
            elif kargo:
                parts.append(f"kargo: {kargo.get('tag') or '-'} ({kargo.get('health') or '?'})")
            if "argocd" in info:
                argo = info["argocd"]
                if argo is None:
                    parts.append("argocd: no Application")
                elif "error" in argo:
                    parts.append(f"argocd: {argo['error']}")
                else:
                    parts.append(f"argocd: {argo['sync']}/{argo['health']}")
            lines.append(f"{'':<17} {'':<8} {'':<14} " + "; ".join(parts))
            for d in row.get("drift") or []:
                lines.append(f"{'':<17} {'':<8} {'':<14} DRIFT: {d}")
    return "\n".join(lines)
