"""Render everything that depends on pipeline.yaml (and gitops/versions.env) into plain YAML.

`render_all(config, repo)` is pure apart from reading gitops/versions.env and the config file's
own text: it returns {relative path: file text}, byte-for-byte deterministic. `write` puts the
files in place (all or nothing), `stale` names the files on disk that differ.

What depends on the pipeline config:
- Kargo wiring: each Kargo Stage sources Freight from the nearest ENABLED upstream stage (or
  directly from the Warehouse); auto-promotion only into integration-test and beta, and only
  while they are enabled. A disabled stage keeps its Kargo Stage and its Argo CD Application:
  disabling never tears down or changes a running stage.
- The stage Applications (namespaces, values files), the paper/live sync windows (market
  hours), the console's ConfigMap, the CI workflow's stage switches.
What depends on versions.env: every chart version and the console image tag.

Modules: `layout` (which file comes from which renderer), `disk` (stale, write), `versions`
(versions.env), `emit` (YAML output), `names` and `metadata` (shared by every renderer),
`argocd_projects`, `argocd_apps`, `kargo_project`, `kargo_steps`, `console`, `switches`.
"""

from __future__ import annotations

from pipectl.render.disk import stale, write
from pipectl.render.emit import HEADER, dump_docs
from pipectl.render.layout import RENDERED_DIRS, ROOT_APP, STAGE_SWITCHES, render_all
from pipectl.render.versions import VERSIONS_FILE, load_versions

__all__ = [
    "HEADER",
    "RENDERED_DIRS",
    "ROOT_APP",
    "STAGE_SWITCHES",
    "VERSIONS_FILE",
    "dump_docs",
    "load_versions",
    "render_all",
    "stale",
    "write",
]
