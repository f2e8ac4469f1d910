"""What each console route does, as calls of the modules the CLI uses.

The console holds no promotion rule of its own: the gate decision is `pipectl.gate`, approvals
and break-glass grants are `pipectl.breakglass`, promotions are `pipectl.promotion` (local
mode: Git commits) or Kargo Promotions (cluster mode, `pipectl.console.kargo`), stage switches
are `pipectl.stages_edit`, integration-test results are `pipectl.inttest` (recorded) and
`pipectl.policy` (read back), the pipeline view is `pipectl.status`. This module parses and
validates request input, passes the caller's identity as the audit actor, and shapes the
answers as JSON.

Caches (never a decision): the parsed config (re-read when pipeline.yaml's stat changes), the
market calendar per config, the audit log's parsed entries (`AuditLog` re-reads only what was
appended, under its own lock), and the last `verify` result per audit file state.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipectl.console.server import HTTPError, Request, Response, json_response
from pipectl.errors import BadInput, PipectlError

Clock = Callable[[], datetime]

MAX_TEXT = 4000  # notes and justifications
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
GATE_PARAMS = frozenset({"stage", "tag", "promotion", "actor"})


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Stat:
    ino: int
    dev: int
    size: int
    mtime_ns: int


def _stat(path: Path) -> _Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _Stat(st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise HTTPError(400, f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise HTTPError(400, f"{key!r} must be a string")
    if len(value) > MAX_TEXT:
        raise HTTPError(400, f"{key!r} is longer than {MAX_TEXT} characters")
    return value.strip()


def _only_keys(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise HTTPError(400, f"unexpected field(s): {', '.join(extra)}")


class ConsoleAPI:
    """One per console process. `clock` is injectable so tests can pin the market state."""

    def __init__(
        self,
        *,
        repo: Path,
        config_path: Path | None,
        audit_path: Path,
        mode: str = "local",
        clock: Clock = system_clock,
        local_user: str = "local",
        push: bool = False,
        public_url: str | None = None,
        cluster: Any = None,
        pull_interval: float = 30.0,
    ) -> None:
        if mode not in ("local", "cluster"):
            raise BadInput(f"--mode {mode!r}: expected local or cluster")
        if mode == "cluster" and cluster is None:
            raise BadInput("cluster mode needs a Kubernetes backend")
        self.repo = Path(repo)
        self.config_path = Path(config_path) if config_path else self.repo / "pipeline.yaml"
        self.audit_path = Path(audit_path)
        self.mode = mode
        self.clock = clock
        self.local_user = local_user
        self.push = push
        self.public_url = public_url.rstrip("/") if public_url else None
        self.cluster = cluster
        self.pull_interval = pull_interval
        self._lock = threading.Lock()  # guards the caches below
        self._mutate = threading.Lock()  # one mutation (commit/push/Kargo object) at a time
        self._config: tuple[_Stat | None, Any] | None = None
        self._calendars: dict[Any, Any] = {}
        self._verify: tuple[_Stat | None, Any] | None = None
        self._pulled = -1e9  # time.monotonic() of the last `git pull` (cluster mode)
        self._env = dict(os.environ)  # Contexts share one copy (not one per request)
        from pipectl.audit import AuditLog

        self.audit_log = AuditLog(self.audit_path, clock=self._audit_clock)
        self.config()  # a bad pipeline.yaml stops the start, with the loader's message

    def _audit_clock(self) -> datetime:
        return self.clock()

    # -- cached inputs ---------------------------------------------------------------------

    def config(self):  # -> PipelineConfig
        from pipectl.config import load_config

        key = _stat(self.config_path)
        with self._lock:
            if self._config is not None and key is not None and self._config[0] == key:
                return self._config[1]
        config = load_config(self.config_path)
        with self._lock:
            self._config = (key, config)
        return config

    def calendar(self, config):  # -> MarketCalendar
        from pipectl.market import MarketCalendar

        with self._lock:
            cal = self._calendars.get(config.market)
            if cal is None:
                cal = self._calendars[config.market] = MarketCalendar(config.market)
            return cal

    def verify(self):  # -> VerifyResult
        key = _stat(self.audit_path)
        with self._lock:
            if self._verify is not None and self._verify[0] == key:
                return self._verify[1]
        result = self.audit_log.verify()
        with self._lock:
            self._verify = (key, result)
        return result

    def context(self, actor: str):
        """A CLI Context for one request, sharing the cached config and audit log."""
        from pipectl.context import Context

        ctx = Context(
            repo=self.repo,
            config_path=self.config_path,
            audit_log_override=str(self.audit_path),
            actor_override=actor,
            env=self._env,
        )
        # Context's lazy attributes are cached_property values: hand it ours.
        ctx.__dict__["config"] = self.config()
        ctx.__dict__["audit_path"] = self.audit_path
        ctx.__dict__["audit"] = self.audit_log
        return ctx

    def link(self, fragment: str = "") -> str:
        base = self.public_url or ""
        return f"{base}/{fragment}" if fragment else f"{base}/"

    # -- routes: reading -------------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        return json_response(200, {"ok": True})

    def stages(self, request: Request) -> Response:
        _no_query(request)
        config = self.config()
        return json_response(
            200,
            {
                "stages": [
                    {
                        "name": s.name,
                        "enabled": s.enabled,
                        "namespace": s.namespace,
                        "values": s.values,
                        "gates": {
                            "market_hours": s.gates.market_hours,
                            "approval": s.gates.approval,
                            "integration_test": s.gates.integration_test,
                        },
                    }
                    for s in config.stages
                ]
            },
        )

    def audit(self, request: Request) -> Response:
        query = request.query()
        _only_keys(query, {"stage", "limit"})
        stage = query.get("stage")
        if stage is not None:
            self._known_stage(stage)
        limit = 1000
        if "limit" in query:
            raw = query["limit"]
            if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= 100_000:
                raise HTTPError(400, "'limit' must be a whole number from 1 to 100000")
            limit = int(raw)
        from pipectl.audit import AuditCorrupt

        try:
            entries = self.audit_log.entries()
            unreadable = None
        except AuditCorrupt as exc:
            entries, unreadable = [], str(exc)
        if stage is not None:
            entries = [e for e in entries if e.stage == stage]
        total = len(entries)
        shown = entries[-limit:]
        payload = {
            "entries": [e.to_dict() for e in shown],
            "total": total,
            "truncated": total > len(shown),
            "verify": self.verify().to_json(),
        }
        if unreadable:
            payload["error"] = unreadable
        return json_response(200, payload)

    def status(self, request: Request) -> Response:
        _no_query(request)
        from pipectl import status as status_mod

        config = self.config()
        now = self.clock()
        try:
            self.sync_repo()
            pull_error = None
        except PipectlError as exc:  # show what the clone has, and say it may be behind
            pull_error = str(exc)
        ctx = self.context(request.principal.actor)
        try:
            doc = status_mod.collect(ctx, now)
        except PipectlError as exc:  # e.g. an unreadable audit log: say so, do not guess
            raise HTTPError(500, str(exc)) from None
        if self.mode == "cluster":
            doc["pull_error"] = pull_error
        if self.cluster is not None:
            doc["cluster_error"] = None
            try:
                seen = self.cluster.read([s.name for s in config.stages])
            except PipectlError as exc:
                seen, doc["cluster_error"] = {}, str(exc)
            for row in doc["stages"]:
                if row["name"] in seen:
                    row["cluster"] = seen[row["name"]]
        return json_response(200, self._status_view(doc, config, now))

    def _status_view(self, doc: dict[str, Any], config, now: datetime) -> dict[str, Any]:
        """`pipectl status --json` plus what the page shows: stage gates, the source stage,
        a suggested tag (the source stage's), the market line, and `audit verify`."""
        rows = {row["name"]: row for row in doc["stages"]}
        for stage in config.stages:
            row = rows[stage.name]
            source = config.previous_enabled(stage.name)
            row["deploys"] = stage.deploys
            row["gates"] = {
                "market_hours": stage.gates.market_hours,
                "approval": stage.gates.approval,
                "integration_test": stage.gates.integration_test,
            }
            row["from_stage"] = source.name if source else None
            row["candidate_tag"] = _source_tag(rows.get(source.name)) if source else None
            last = row.get("last_promotion")
            if last:
                last.setdefault("actor", last.get("by"))
            argo = (row.get("cluster") or {}).get("argocd")
            row["argocd"] = argo if argo and "error" not in argo else None
        doc["market"] = self._market_view(config, now)
        doc["now"] = _iso(now)
        doc["mode"] = self.mode
        doc["audit_verify"] = self.verify().to_json()
        return doc

    def _market_view(self, config, now: datetime) -> dict[str, Any]:
        from pipectl.timeutil import humanize_seconds

        status = self.calendar(config).status(now)
        view = status.to_json()
        regular = _minutes(config.market.close) - _minutes(config.market.open)
        length = (status.next_close - status.next_open).total_seconds() / 60
        if status.open and status.session is not None:
            length = (status.session.close - status.session.open).total_seconds() / 60
        view["timezone"] = config.market.timezone
        view["half_day"] = bool(status.open and length < regular)
        view["next_half_day"] = bool(not status.open and length < regular)
        view["seconds_to_open"] = (
            None if status.open else max(0, int((status.next_open - now).total_seconds()))
        )
        if status.open:
            view["message"] = (
                "OPEN — promotions blocked, closes in "
                f"{humanize_seconds(status.seconds_to_close or 0)}"
            )
        else:
            view["message"] = f"CLOSED — promotions allowed, next open {view['next_open']}"
        return view

    def sync_repo(self, *, force: bool = False) -> None:
        """Cluster mode: fast-forward the console's clone — before a read at most every
        `pull_interval`, before a change always (`force`)."""
        if self.mode != "cluster":
            return
        import time

        from pipectl import gitrepo

        with self._lock:
            due = force or time.monotonic() - self._pulled >= self.pull_interval
            if due:
                self._pulled = time.monotonic()
        if not due:
            return
        with self._mutate, gitrepo.repo_lock(self.repo):
            gitrepo.git(self.repo, "pull", "--ff-only", "-q")

    # -- routes: the gate ------------------------------------------------------------------

    def gate(self, request: Request) -> Response:
        """`GET /api/v1/gate?stage=&tag=&promotion=&actor=`: `pipectl.gate.evaluate` with
        record=True — every call is audited (with the Kargo promotion name and actor) and an
        allowed decision consumes the break-glass grant that lifted the market block. HTTP 200
        either way; 400 (and nothing written) when the question itself is malformed."""
        from pipectl import gate

        query = request.query()
        unknown = sorted(set(query) - GATE_PARAMS)
        if unknown:
            raise HTTPError(400, f"unexpected query parameter(s): {', '.join(unknown)}")
        stage = query.get("stage", "")
        if not stage:
            raise HTTPError(400, "'stage' is required")
        self._known_stage(stage)
        tag = query.get("tag", "")
        if not tag:
            raise HTTPError(400, "'tag' is required")
        if not gate.valid_tag(tag):
            raise HTTPError(400, f"tag {tag[:64]!r} is not a git SHA (7-40 lower-case hex digits)")
        promotion = query.get("promotion") or None
        if promotion is not None and not _K8S_NAME.fullmatch(promotion):
            raise HTTPError(400, "'promotion' is not a Kubernetes object name")
        claimed = query.get("actor") or None
        if claimed is not None and (len(claimed) > 256 or not claimed.isprintable()):
            raise HTTPError(400, "'actor' must be printable and at most 256 characters")
        principal = request.principal
        if principal.kind == "kargo":
            actor, source = (f"kargo:{claimed}" if claimed else principal.actor), "kargo"
        else:
            actor, source = principal.actor, "console"
        ctx = self.context(actor)
        decision = gate.evaluate(
            ctx, stage, tag, self.clock(), record=True, actor=actor, source=source,
            promotion=promotion,
        )  # fmt: skip
        body = decision.to_json()
        body["message"] = decision.message()
        body["links"] = self._gate_links(decision)
        return json_response(200, body)

    def _gate_links(self, decision) -> list[dict[str, str]]:
        if not self.public_url:
            return []
        anchor = f"#stage-{decision.stage}"
        links = [{"title": f"Pipeline console: {decision.stage}", "url": self.link(anchor)}]
        if not decision.allowed and decision.market_open:
            links.append(
                {
                    "title": f"Break-glass for {decision.stage} (console)",
                    "url": self.link(f"?break-glass={decision.tag}{anchor}"),
                }
            )
        links.append({"title": "Audit history", "url": self.link(f"{anchor}-history")})
        return links

    # -- routes: promotions ----------------------------------------------------------------

    def _promotion_input(self, body: dict[str, Any], extra: set[str]):
        _only_keys(body, {"stage", "tag", "notes", *extra})
        stage_name = body.get("stage")
        if not isinstance(stage_name, str) or not stage_name:
            raise HTTPError(400, "'stage' is required")
        stage = self._known_stage(stage_name)
        if stage.values is None:
            config = self.config()
            deploy = ", ".join(s.name for s in config.deploy_stages)
            raise HTTPError(400, f"stage {stage.name} does not deploy; promote to one of: {deploy}")
        tag = _tag(body.get("tag"))
        notes = _text(body, "notes")
        if stage.gates.approval and not notes:
            raise HTTPError(
                400, f"{stage.name} needs notes: they are recorded as the approval for {tag}"
            )
        return stage, tag, notes

    def promote(self, request: Request) -> Response:
        """`POST /api/v1/promote` {stage, tag, notes}. Stages with the approval gate (live)
        need notes, recorded as the approval (`pipectl approve`) before promoting. Local mode:
        `pipectl.promotion.promote` (a commit); cluster mode: a Kargo Promotion."""
        from pipectl import breakglass

        stage, tag, notes = self._promotion_input(request.json(), set())
        actor = request.principal.actor
        with _as_http():
            self.sync_repo(force=True)
        with self._mutate, _as_http():
            if stage.gates.approval:
                breakglass.record_approval(
                    self.audit_log, self.config(), stage.name, tag, notes, actor
                )
            return self._promote(actor, stage, tag, notes, self.clock())

    def break_glass(self, request: Request) -> Response:
        """`POST /api/v1/break-glass` {stage, tag, justification, confirm, notes?}: `confirm`
        must be the stage name. Asks the gate first whether a grant (and, for live, the
        approval in `notes`) would let the promotion through; only then records them and
        performs that one promotion, which consumes the grant."""
        from pipectl import breakglass

        body = request.json()
        stage, tag, notes = self._promotion_input(body, {"justification", "confirm"})
        confirm = body.get("confirm")
        if confirm != stage.name:
            raise HTTPError(400, f"type the stage name {stage.name!r} in 'confirm' to break glass")
        justification = _text(body, "justification", required=True)
        actor = request.principal.actor
        config = self.config()
        try:
            breakglass.check_break_glass(config, stage.name, tag, justification)
            if stage.gates.approval:
                breakglass.check_approval(config, stage.name, tag, notes)
        except BadInput as exc:
            raise HTTPError(400, str(exc)) from None
        with _as_http():
            self.sync_repo(force=True)
        with self._mutate, _as_http():
            if self.mode == "local":
                from pipectl.status import deployed_tag

                if deployed_tag(self.repo, config, stage) == tag:
                    raise HTTPError(409, f"{stage.name} already runs {tag}; nothing to promote")
            now = self.clock()
            entries = self.audit_log.entries()
            plain = self._decide(config, entries, stage.name, tag, now)
            if plain.allowed:
                raise HTTPError(
                    409, f"{tag} may go to {stage.name} without break-glass; use Promote"
                )
            what_if = self._decide(
                config,
                [*entries, *_hypothetical(config, stage, tag, now, actor, notes)],
                stage.name,
                tag,
                now,
            )
            reasons = list(what_if.reasons) + self._source_reasons(config, stage, tag, entries)
            if reasons:
                raise HTTPError(
                    409,
                    "break-glass would not help: " + "; ".join(reasons),
                    blocked=True,
                    reasons=reasons,
                    break_glass_possible=False,
                )
            if stage.gates.approval:
                breakglass.record_approval(self.audit_log, config, stage.name, tag, notes, actor)
            grant = breakglass.grant_break_glass(
                self.audit_log, config, stage.name, tag, justification, actor, now
            )
            response = self._promote(actor, stage, tag, notes, self.clock(), grant=grant.id)
        return response

    def _decide(self, config, entries, stage: str, tag: str, now: datetime):
        from pipectl import gate

        return gate.decide(config, self.calendar(config), entries, stage, tag, now)

    def _source_reasons(self, config, stage, tag: str, entries) -> list[str]:
        """Local mode: `pipectl.promotion.source_reasons` (the tag must be what the source
        stage runs). In cluster mode Kargo enforces where Freight may come from."""
        if self.mode != "local":
            return []
        from pipectl import gitrepo, promotion
        from pipectl.values_file import tag_from_text

        source = config.previous_enabled(stage.name)
        source_tag = None
        if source is not None and source.values is not None:
            text = gitrepo.show(self.repo, "HEAD", source.values)
            source_tag = tag_from_text(text or "", config.tag_key, source.values)
        return promotion.source_reasons(source, tag, source_tag, entries)

    def _promote(
        self, actor: str, stage, tag: str, notes: str | None, now: datetime, grant=None
    ) -> Response:
        """Run the promotion at `now` (caller holds `_mutate`) and shape the answer."""
        if self.mode == "cluster":
            return self._promote_cluster(actor, stage, tag, notes, now, grant)
        from pipectl import promotion

        ctx = self.context(actor)
        result = promotion.promote(ctx, stage.name, tag, notes or "", push=self.push, now=now)
        body = result.to_json()
        if result.status == promotion.BLOCKED:
            body.update(self._blocked_extra(stage, tag, result.reasons, now))
            return json_response(409, {"error": result.message, **body})
        if result.status == promotion.FAILED:
            return json_response(502, {"error": result.message, **body})
        return json_response(200, body)

    def _blocked_extra(self, stage, tag: str, reasons: list[str], now: datetime) -> dict:
        """Whether a break-glass grant would let this through: ask the gate (at the same
        instant) with a hypothetical grant, never written, and compare with every reason."""
        config = self.config()
        entries = self.audit_log.entries()
        plain = self._decide(config, entries, stage.name, tag, now)
        what_if = self._decide(
            config, [*entries, *_hypothetical(config, stage, tag, now, "-", None)],
            stage.name, tag, now,
        )  # fmt: skip
        lifted = set(plain.reasons) - set(what_if.reasons)
        possible = bool(lifted) and not (set(reasons) - lifted)
        return {"blocked": True, "reasons": list(reasons), "break_glass_possible": possible}

    def _promote_cluster(self, actor: str, stage, tag: str, notes, now, grant) -> Response:
        """Ask the gate (read-only) so a blocked promotion is explained at once; otherwise
        create the Kargo Promotion, whose gate step asks `/api/v1/gate` again (recorded,
        consuming `grant`), and audit `promotion.requested` naming it."""
        config = self.config()
        entries = self.audit_log.entries()
        decision = self._decide(config, entries, stage.name, tag, now)
        from_stage = config.previous_enabled(stage.name)
        common = {
            "actor": actor,
            "stage": stage.name,
            "from_stage": from_stage.name if from_stage else None,
            "tag": tag,
        }
        if not decision.allowed:
            reasons = list(decision.reasons)
            blocked = self.audit_log.append(
                action="promotion.blocked",
                details={"reasons": reasons, "mode": "cluster"},
                **common,
            )
            extra = self._blocked_extra(stage, tag, reasons, now)
            return json_response(
                409,
                {
                    "error": f"promotion of {tag} to {stage.name} blocked: " + "; ".join(reasons),
                    "status": "blocked",
                    "audit_id": blocked.id,
                    **extra,
                },
            )
        created = self.cluster.create_promotion(stage.name, tag)
        entry = self.audit_log.append(
            action="promotion.requested",
            notes=notes or None,
            details={
                "mode": "cluster",
                "kargo_promotion": created["promotion"],
                "freight": created["freight"],
                "break_glass": grant,
            },
            **common,
        )
        message = (
            f"Kargo Promotion {created['promotion']} created for {tag} → {stage.name}"
            + (f" (break-glass {grant})" if grant else "")
            + "; Kargo asks the gate again and performs it"
        )
        return json_response(
            202,
            {
                "status": "requested",
                "stage": stage.name,
                "tag": tag,
                "promotion": created["promotion"],
                "freight": created["freight"],
                "audit_id": entry.id,
                "break_glass": grant,
                "message": message,
            },
        )

    # -- routes: changes ------------------------------------------------------------------

    def set_stage(self, request: Request) -> Response:
        """`POST /api/v1/stages/<name>` {"enabled": bool}: `pipectl stages enable|disable`."""
        from pipectl import stages_edit

        name = request.params["name"]
        self._known_stage(name)
        body = request.json()
        _only_keys(body, {"enabled"})
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise HTTPError(400, "'enabled' must be true or false")
        with _as_http():
            self.sync_repo(force=True)
        ctx = self.context(request.principal.actor)
        with self._mutate, _as_http():
            change = stages_edit.set_enabled(ctx, name, enabled, push=self.push)
        return json_response(200, change.to_json())

    # -- routes: CI ------------------------------------------------------------------------

    def inttest(self, request: Request) -> Response:
        """`POST /api/v1/inttest` {"tag", "exit_code"?, "results"}: same parsing and rules as
        `pipectl inttest record`; nothing is recorded unless everything parses."""
        from pipectl import inttest

        body = request.json()
        _only_keys(body, {"tag", "exit_code", "results"})
        if "results" not in body:
            raise HTTPError(400, "'results' is required (the inttest-results.json object)")
        exit_code = body.get("exit_code")
        try:
            tag = inttest.check_tag(body.get("tag"))
            result = inttest.parse_results(body["results"], exit_code)
            entry = inttest.record(
                self.audit_log, request.principal.actor, tag, result, source="api"
            )
        except BadInput as exc:
            raise HTTPError(400, str(exc)) from None
        return json_response(
            201,
            {
                "recorded": entry.id,
                "action": entry.action,
                "tag": tag,
                "passed": result.passed,
                "counts": result.counts,
                "exit_code": result.exit_code,
            },
        )

    def inttest_result(self, request: Request) -> Response:
        """`GET /api/v1/inttest?tag=<sha>`: the tag's newest integration-test result
        (`pipectl.policy.inttest_result`, the latest run wins) and the entry that recorded it;
        `result` and `entry` are null while none is recorded. Read-only: nothing is audited
        (Kargo's integration-test Stage polls this until CI reports). 400 for a malformed
        question; 500 when the audit log cannot be read."""
        from pipectl import policy
        from pipectl.audit import AuditCorrupt
        from pipectl.gate import valid_tag

        query = request.query()
        unknown = sorted(set(query) - {"tag"})
        if unknown:
            raise HTTPError(400, f"unexpected query parameter(s): {', '.join(unknown)}")
        tag = query.get("tag", "")
        if not tag:
            raise HTTPError(400, "'tag' is required")
        if not valid_tag(tag):
            raise HTTPError(400, f"tag {tag[:64]!r} is not a git SHA (7-40 lower-case hex digits)")
        try:
            entries = self.audit_log.entries()
        except AuditCorrupt as exc:
            raise HTTPError(500, str(exc)) from None
        entry = policy.inttest_entry(entries, tag)
        recorded = None
        if entry is not None:
            recorded = {
                "id": entry.id,
                "time": entry.time,
                "actor": entry.actor,
                "action": entry.action,
                "details": entry.details,
            }
        result = policy.inttest_result(entries, tag)
        return json_response(200, {"tag": tag, "result": result, "entry": recorded})

    def _known_stage(self, name: str):
        config = self.config()
        if name not in config.stage_names:
            raise HTTPError(
                400,
                f"unknown stage {name[:64]!r} (expected one of: {', '.join(config.stage_names)})",
            )
        return config.stage(name)


@contextmanager
def _as_http() -> Iterator[None]:
    """The modules' errors as HTTP answers: bad or conflicting input 409, anything else
    (git, Kubernetes) 502 with its one-line message. A blocked gate is a result, not an
    error: the routes answer it themselves."""
    try:
        yield
    except BadInput as exc:
        raise HTTPError(409, str(exc)) from None
    except PipectlError as exc:
        raise HTTPError(502, str(exc)) from None


def _hypothetical(config, stage, tag: str, now: datetime, actor: str, notes: str | None):
    """Audit entries that are never written: a break-glass grant (and, for a stage with the
    approval gate, the approval the request carries) as they would be recorded at `now`, so
    the gate itself can say whether they would let the promotion through."""
    from pipectl.audit import Entry, format_time

    def entry(action: str, **fields: Any) -> Entry:
        base = {
            "id": f"hypothetical-{action}",
            "time": format_time(now),
            "actor": actor,
            "action": action,
            "stage": stage.name,
            "from_stage": None,
            "tag": tag,
            "notes": None,
            "justification": None,
            "details": {},
            "prev": "",
            "hash": "",
        }
        base.update(fields)
        return Entry(**base)

    out = [
        entry(
            "break-glass.granted",
            justification="hypothetical",
            details={"expires": format_time(now + config.break_glass_validity)},
        )
    ]
    if stage.gates.approval and notes:
        out.append(entry("approval.granted", notes=notes))
    return out


def _iso(at: datetime) -> str:
    from pipectl.timeutil import iso

    return iso(at)


def _minutes(t) -> int:
    return t.hour * 60 + t.minute


def _source_tag(row: dict[str, Any] | None) -> str | None:
    """The tag the source stage holds (for integration-test: the newest passed one)."""
    if row is None:
        return None
    passed = row.get("last_passed")
    if passed:
        return passed.get("tag")
    return row.get("tag")


def _no_query(request: Request) -> None:
    if request.query_string:
        query = request.query()
        if query:
            raise HTTPError(400, f"unexpected query parameter(s): {', '.join(sorted(query))}")


def _tag(value: Any, key: str = "tag") -> str:
    if not isinstance(value, str) or not value:
        raise HTTPError(400, f"{key!r} is required")
    from pipectl.gate import valid_tag

    if not valid_tag(value):
        raise HTTPError(400, f"{key!r} must be 7 to 40 lower-case hex characters (a git sha)")
    return value


__all__ = ["ConsoleAPI", "PipectlError", "system_clock"]
