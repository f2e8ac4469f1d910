"""The stonks-oracle CI workflow, this repository's flake-check workflow and their helpers.

The workflow files are parsed and their job graph asserted; the `run:` scripts that carry
logic are executed for real (bash, git, a local HTTP server standing in for the console),
and the helper scripts are run as subprocesses against sample files.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
APP_WORKFLOW = REPO / "apps/stonks-oracle/workflows/ci.yaml"
FLAKE_WORKFLOW = REPO / ".github/workflows/flake-check.yaml"
SCRIPTS = REPO / "apps/stonks-oracle/workflows/scripts"
SWITCHES_SCRIPT = SCRIPTS / "stage_switches.py"
REPORT_SCRIPT = SCRIPTS / "inttest_report.py"
ACTIONLINT_CHECK = REPO / "checks/actionlint.sh"

RUNNER_LABEL = "self-hosted-gremlin"
SERVICES = [
    "scheduler",
    "symbol-registry",
    "ingestion",
    "parser",
    "extractor",
    "aggregation",
    "recommendation",
    "risk",
    "broker-adapter",
    "lake-publisher",
    "query-api",
    "trading-engine",
]
IMAGES = [*SERVICES, "dashboard", "superset"]
SHA = "0123456789abcdef0123456789abcdef01234567"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


# ---------------------------------------------------------------- helpers


def load(path: Path) -> dict[str, Any]:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wf() -> dict[str, Any]:
    return load(APP_WORKFLOW)


@pytest.fixture(scope="module")
def flake_wf() -> dict[str, Any]:
    return load(FLAKE_WORKFLOW)


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def step(job: dict[str, Any], *, name: str | None = None, uses: str | None = None) -> dict:
    for s in job["steps"]:
        if name is not None and s.get("name") == name:
            return s
        if uses is not None and str(s.get("uses", "")).split("@")[0] == uses:
            return s
    raise AssertionError(f"no step name={name!r} uses={uses!r}")


def step_index(job: dict[str, Any], target: dict) -> int:
    return next(i for i, s in enumerate(job["steps"]) if s is target)


def render(template: str, values: dict[str, str]) -> str:
    """Substitute `${{ expr }}` from values; an expression not in values fails the test."""

    def sub(match: re.Match[str]) -> str:
        expr = match.group(1)
        assert expr in values, f"unexpected expression {expr!r} in {template!r}"
        return values[expr]

    return EXPR.sub(sub, template)


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a `run:` script the way `shell: bash` does (bash --noprofile --norc -eo pipefail)."""
    path = cwd.parent / f"step-{abs(hash(script))}.sh"
    path.write_text(script, encoding="utf-8")
    full_env = {"PATH": os.environ["PATH"], "HOME": str(cwd.parent), **env}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def read_outputs(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in (APP_WORKFLOW, FLAKE_WORKFLOW):
        for job_id, job in load(path)["jobs"].items():
            yield path.name, job_id, job


# ---------------------------------------------------------------- triggers, runners, graph


def test_triggers_are_push_to_main_and_pull_requests(wf: dict[str, Any]) -> None:
    assert set(wf["on"]) == {"push", "pull_request"}
    assert wf["on"]["push"]["branches"] == ["main"]


def test_every_job_runs_on_the_gremlin_scale_set() -> None:
    jobs = list(all_jobs())
    assert len(jobs) == 6
    for name, job_id, job in jobs:
        assert job["runs-on"] == RUNNER_LABEL, f"{name}:{job_id}"


def test_job_graph(wf: dict[str, Any]) -> None:
    jobs = wf["jobs"]
    assert set(jobs) == {"setup", "python", "frontend", "build", "inttest"}
    assert needs(jobs["python"]) == ["setup"]
    assert needs(jobs["frontend"]) == ["setup"]
    # build needs lint/test; inttest needs build.
    assert {"python", "frontend"} <= set(needs(jobs["build"]))
    assert "build" in needs(jobs["inttest"])


def test_lint_and_test_commands(wf: dict[str, Any]) -> None:
    py = wf["jobs"]["python"]
    fe = wf["jobs"]["frontend"]
    runs_py = [s.get("run", "") for s in py["steps"]]
    assert "ruff check services/" in runs_py
    assert "pytest tests/" in runs_py
    npm = step(fe, name="npm ci")
    vitest = step(fe, name="vitest")
    assert npm["run"] == "npm ci" and npm["working-directory"] == "frontend"
    assert vitest["run"] == "npx vitest run" and vitest["working-directory"] == "frontend"
    assert step_index(fe, npm) < step_index(fe, vitest)


def test_a_lint_or_test_failure_fails_the_run_and_builds_nothing(wf: dict[str, Any]) -> None:
    for job_id in ("python", "frontend"):
        for s in wf["jobs"][job_id]["steps"]:
            assert "continue-on-error" not in s, f"{job_id}: {s}"
            assert "if" not in s, f"{job_id}: a conditional step could hide a failure"
    for job_id in ("build", "inttest"):
        job_if = wf["jobs"][job_id]["if"]
        # Overriding the implicit success() is only safe as !cancelled() plus explicit results.
        for fn in ("always()", "failure()", "success()"):
            assert fn not in job_if, job_id
        assert "continue-on-error" not in wf["jobs"][job_id]
    for failing in ("python", "frontend"):
        ran = simulate(wf, switches=ON, failing={failing})
        assert ran[failing] == "failure"
        assert ran["build"] == ran["inttest"] == "skipped", failing


# ---------------------------------------------------------------- job skipping, simulated
#
# GitHub's rules, evaluated on the workflow's real `if:` expressions: a job-level `if:` without a
# status function gets an implicit `success()`, and `success()` is false when any job in the
# transitive `needs` chain was skipped or failed (actions/runner#2205), so a skipped lint/test
# job would also skip the images and, two levels down, the integration test.

STATUS_FUNCTIONS = ("success()", "failure()", "cancelled()", "always()")
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\))"
    r"|(?P<fn>[a-z]+\(\))|(?P<ref>[A-Za-z_][\w.-]*))"
)


class Expr:
    """A recursive-descent evaluator for the subset of the expression language used in `if:`."""

    def __init__(self, text: str, lookup: dict[str, Any], functions: dict[str, bool]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos, text = 0, text.strip()
        while pos < len(text):
            match = TOKEN.match(text, pos)
            assert match and match.end() > pos, f"cannot parse {text[pos:]!r}"
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.lookup, self.functions, self.i = lookup, functions, 0

    def value(self) -> Any:
        result = self._or()
        assert self.i == len(self.tokens), f"trailing tokens {self.tokens[self.i :]}"
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.i += 1
            right = self._and()
            left = left or right
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self.i += 1
            right = self._cmp()
            left = left and right
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        if self._peek() in ("==", "!="):
            op = self.tokens[self.i][1]
            self.i += 1
            right = self._unary()
            return (left == right) if op == "==" else (left != right)
        return left

    def _unary(self) -> Any:
        kind, tok = self.tokens[self.i]
        self.i += 1
        if tok == "!":
            return not self._unary()
        if tok == "(":
            inner = self._or()
            assert self._peek() == ")"
            self.i += 1
            return inner
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "fn":
            return self.functions[tok]
        assert kind == "ref", tok
        assert tok in self.lookup, f"unknown context {tok!r}"
        return self.lookup[tok]


def simulate(
    wf: dict[str, Any],
    *,
    switches: dict[str, bool],
    event: str = "push",
    ref: str = "refs/heads/main",
    failing: frozenset[str] | set[str] = frozenset(),
) -> dict[str, str]:
    """Each job's result for one run: success, failure (jobs in `failing`) or skipped."""
    jobs = wf["jobs"]
    results: dict[str, str] = {}
    ancestors: dict[str, set[str]] = {}
    outputs = {"ci": str(switches["ci"]).lower(), "inttest": str(switches["inttest"]).lower()}
    pending = list(jobs)
    while pending:
        job_id = next(j for j in pending if set(needs(jobs[j])) <= set(results))
        pending.remove(job_id)
        deps = needs(jobs[job_id])
        ancestors[job_id] = set(deps).union(*(ancestors[d] for d in deps))
        text = str(jobs[job_id].get("if", "")).strip()
        inner = EXPR.fullmatch(text)
        text = inner.group(1) if inner else text
        if not any(fn in text for fn in STATUS_FUNCTIONS):
            text = f"success() && ({text})" if text else "success()"
        lookup: dict[str, Any] = {"github.event_name": event, "github.ref": ref}
        for dep in deps:
            lookup[f"needs.{dep}.result"] = results[dep]
            for key in jobs[dep].get("outputs", {}):
                ran = results[dep] != "skipped"
                lookup[f"needs.{dep}.outputs.{key}"] = (
                    outputs.get(key, "x") if ran and dep == "setup" else ("x" if ran else "")
                )
        functions = {
            "success()": all(results[a] == "success" for a in ancestors[job_id]),
            "failure()": any(results[a] == "failure" for a in ancestors[job_id]),
            "cancelled()": False,
            "always()": True,
        }
        run = bool(Expr(text, lookup, functions).value())
        results[job_id] = ("failure" if job_id in failing else "success") if run else "skipped"
    return results


ON = {"ci": True, "inttest": True}
JOBS = ("setup", "python", "frontend", "build", "inttest")


@pytest.mark.parametrize(
    ("switches", "event", "ran"),
    [
        (ON, "push", JOBS),
        # ci disabled: lint/tests are skipped, the images are still built and tested.
        ({"ci": False, "inttest": True}, "push", ("setup", "build", "inttest")),
        ({"ci": False, "inttest": False}, "push", ("setup", "build")),
        ({"ci": True, "inttest": False}, "push", ("setup", "python", "frontend", "build")),
        (ON, "pull_request", ("setup", "python", "frontend")),
        ({"ci": False, "inttest": True}, "pull_request", ("setup",)),
    ],
)
def test_stage_switches_decide_which_jobs_run(
    wf: dict[str, Any], switches: dict[str, bool], event: str, ran: tuple[str, ...]
) -> None:
    ref = "refs/heads/main" if event == "push" else "refs/pull/7/merge"
    results = simulate(wf, switches=switches, event=event, ref=ref)
    assert {j for j, r in results.items() if r == "success"} == set(ran)
    assert {j for j, r in results.items() if r == "skipped"} == set(JOBS) - set(ran)


@pytest.mark.parametrize("switches", [ON, {"ci": False, "inttest": True}])
def test_a_failed_image_or_setup_stops_everything_after_it(
    wf: dict[str, Any], switches: dict[str, bool]
) -> None:
    results = simulate(wf, switches=switches, failing={"build"})
    assert results["inttest"] == "skipped"
    results = simulate(wf, switches=switches, failing={"setup"})
    assert set(results.values()) == {"failure", "skipped"}
    assert [j for j, r in results.items() if r != "skipped"] == ["setup"]


def test_push_to_another_branch_builds_nothing(wf: dict[str, Any]) -> None:
    results = simulate(wf, switches={"ci": False, "inttest": True}, ref="refs/heads/feature")
    assert results["build"] == results["inttest"] == "skipped"


def test_the_simulator_applies_the_transitive_implicit_success(wf: dict[str, Any]) -> None:
    """The rule the workflow works around, shown on the workflow itself: with the explicit
    results removed from inttest's `if:`, a disabled ci would skip the integration test."""
    jobs = {**wf["jobs"], "inttest": {**wf["jobs"]["inttest"]}}
    jobs["inttest"]["if"] = "needs.setup.outputs.inttest == 'true'"
    results = simulate({"jobs": jobs}, switches={"ci": False, "inttest": True})
    assert results["build"] == "success" and results["inttest"] == "skipped"


def test_images_and_integration_test_run_on_push_to_main_only(wf: dict[str, Any]) -> None:
    for job_id in ("build", "inttest"):
        cond = wf["jobs"][job_id]["if"]
        assert "github.event_name == 'push'" in cond
        assert "github.ref == 'refs/heads/main'" in cond


# ---------------------------------------------------------------- images


def test_exactly_the_fourteen_images_with_both_tags(wf: dict[str, Any]) -> None:
    build = wf["jobs"]["build"]
    include = build["strategy"]["matrix"]["include"]
    assert set(build["strategy"]["matrix"]) == {"include"}, "the image list is the include list"
    names = [entry["name"] for entry in include]
    assert names == IMAGES
    assert len(set(names)) == 14

    by_name = {entry["name"]: entry for entry in include}
    for service in SERVICES:
        assert by_name[service] == {
            "name": service,
            "context": ".",
            "dockerfile": f"services/{service}/Dockerfile",
        }
    assert by_name["dashboard"]["dockerfile"] == "frontend/Dockerfile"
    assert by_name["superset"]["dockerfile"] == "docker/Dockerfile.superset"

    registry = wf["env"]["REGISTRY"]
    pipeline = load(REPO / "pipeline.yaml")
    assert registry == pipeline["image"]["registry"] == "ghcr.io/celesrenata/stonks-oracle"

    push = step(build, uses="docker/build-push-action")
    assert push["with"]["push"] is True
    pushed: set[str] = set()
    for entry in include:
        values = {
            "env.REGISTRY": registry,
            "matrix.name": entry["name"],
            "steps.tag.outputs.tag": SHA,
        }
        tags = render(push["with"]["tags"], values).split()
        assert tags == [f"{registry}/{entry['name']}:{SHA}", f"{registry}/{entry['name']}:latest"]
        assert (
            render(push["with"]["file"], {"matrix.dockerfile": entry["dockerfile"]})
            == (entry["dockerfile"])
        )
        assert (
            render(push["with"]["context"], {"matrix.context": entry["context"]})
            == (entry["context"])
        )
        pushed.update(tags)
    assert len(pushed) == 28


def test_the_sha_is_the_build_output_downstream_jobs_use(wf: dict[str, Any], tmp_path) -> None:
    build = wf["jobs"]["build"]
    assert build["outputs"]["tag"] == "${{ steps.tag.outputs.tag }}"
    tag_step = step(build, name="Image tag (the commit SHA)")
    assert tag_step["id"] == "tag"
    out = tmp_path / "out"
    out.touch()
    result = run_step(tag_step["run"], tmp_path, {"GITHUB_SHA": SHA, "GITHUB_OUTPUT": str(out)})
    assert result.returncode == 0, result.stderr
    assert read_outputs(out) == {"tag": SHA}
    assert wf["jobs"]["inttest"]["env"]["TAG"] == "${{ needs.build.outputs.tag }}"


def test_registry_login_and_buildx_come_before_the_push(wf: dict[str, Any]) -> None:
    build = wf["jobs"]["build"]
    login = step(build, uses="docker/login-action")
    buildx = step(build, uses="docker/setup-buildx-action")
    push = step(build, uses="docker/build-push-action")
    assert login["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert step_index(build, buildx) < step_index(build, push)
    assert step_index(build, login) < step_index(build, push)


# ---------------------------------------------------------------- least privilege


def test_permissions_are_per_job_and_packages_write_only_where_pushing(
    wf: dict[str, Any],
) -> None:
    assert wf["permissions"] == {}
    for job_id, job in wf["jobs"].items():
        perms = job["permissions"]
        assert perms["contents"] == "read", job_id
        if job_id == "build":
            assert perms == {"contents": "read", "packages": "write"}
        else:
            assert "write" not in perms.values(), f"{job_id}: {perms}"
    # Only the build job pushes images.
    for job_id, job in wf["jobs"].items():
        pushes = any(s.get("with", {}).get("push") for s in job["steps"])
        assert pushes == (job_id == "build")


def test_flake_check_workflow(flake_wf: dict[str, Any]) -> None:
    assert set(flake_wf["on"]) == {"push", "pull_request"}
    assert flake_wf["permissions"] == {"contents": "read"}
    (job,) = flake_wf["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    install = step(job, uses="cachix/install-nix-action")
    (run,) = [s["run"].split() for s in job["steps"] if "run" in s]
    assert step_index(job, install) < len(job["steps"]) - 1
    # install-nix-action skips its nix.conf (and flakes) when the image already has Nix, so the
    # command must enable the experimental features itself.
    assert run[:4] == ["nix", "--extra-experimental-features", "'nix-command", "flakes'"]
    assert run[4:6] == ["flake", "check"]


def test_every_action_is_pinned_to_a_commit_with_its_version_noted() -> None:
    seen: dict[str, str] = {}
    count = 0
    for path in (APP_WORKFLOW, FLAKE_WORKFLOW):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(.*)$", line)
            if not match:
                continue
            count += 1
            ref, comment = match.groups()
            assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
            assert re.fullmatch(r"# v\d+\.\d+\.\d+", comment), f"{path.name}: {line.strip()}"
            action, sha = ref.split("@")
            assert seen.setdefault(action, sha) == sha, f"{action} pinned to two commits"
    assert count >= 10
    # The parsed files agree with the line scan (no `uses:` hidden in flow style).
    parsed = [s["uses"] for _, _, job in all_jobs() for s in job["steps"] if "uses" in s]
    assert len(parsed) == count


def test_no_secret_reaches_a_script_or_the_log() -> None:
    for path in (APP_WORKFLOW, FLAKE_WORKFLOW):
        for job_id, job in load(path)["jobs"].items():
            for s in job["steps"]:
                script = s.get("run", "")
                assert "secrets." not in script, f"{path.name}:{job_id}: secret in run:"
                assert "set -x" not in script and "bash -x" not in script
                for key, value in s.get("env", {}).items():
                    if "secrets." in str(value):
                        # A secret in env is only read as "$KEY", never echoed.
                        assert not re.search(rf"echo[^\n]*\${{?{key}\b", script), key


def test_run_steps_get_bash_with_pipefail() -> None:
    """Without `shell: bash` GitHub runs `bash -e {0}` (no pipefail): a failing command on the
    left of a pipe would pass. run_step() above runs the scripts as `shell: bash` does."""
    app = load(APP_WORKFLOW)
    assert app["defaults"]["run"]["shell"] == "bash"
    for path in (APP_WORKFLOW, FLAKE_WORKFLOW):
        data = load(path)
        default = data.get("defaults", {}).get("run", {}).get("shell")
        for job_id, job in data["jobs"].items():
            job_default = job.get("defaults", {}).get("run", {}).get("shell", default)
            for s in job["steps"]:
                script = s.get("run", "")
                if re.search(r"(?<![|])[|](?![|])", script) or script.count("\n") > 1:
                    assert s.get("shell", job_default) == "bash", f"{path.name}:{job_id}: {s}"


def test_concurrency_per_ref_cancelling_only_pull_requests() -> None:
    for path in (APP_WORKFLOW, FLAKE_WORKFLOW):
        conc = load(path)["concurrency"]
        assert "${{ github.ref }}" in conc["group"]
        assert conc["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_checkouts_do_not_keep_credentials() -> None:
    for name, job_id, job in all_jobs():
        for s in job["steps"]:
            if str(s.get("uses", "")).startswith("actions/checkout@"):
                assert s["with"]["persist-credentials"] is False, f"{name}:{job_id}"


# ---------------------------------------------------------------- stage switches


def write_switches(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def run_switches(tmp_path: Path, data: Any) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    switches = write_switches(tmp_path / "stage-switches.json", data)
    out, summary = tmp_path / "out", tmp_path / "summary.md"
    result = subprocess.run(
        [
            sys.executable,
            str(SWITCHES_SCRIPT),
            "--file",
            str(switches),
            "--github-output",
            str(out),
            "--summary",
            str(summary),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, out, summary


ALL_ON = {"ci": True, "integration-test": True, "beta": True, "paper": True, "live": True}


def test_switches_all_enabled(tmp_path: Path) -> None:
    result, out, summary = run_switches(tmp_path, ALL_ON)
    assert result.returncode == 0, result.stderr
    assert read_outputs(out) == {"ci": "true", "inttest": "true"}
    assert "disabled in pipeline.yaml" not in result.stdout + summary.read_text()


@pytest.mark.parametrize(
    ("switches", "outputs", "messages"),
    [
        (
            {"ci": False},
            {"ci": "false", "inttest": "true"},
            [
                "stage ci disabled in pipeline.yaml — skipped (no lint or tests); "
                "images are still built on main",
            ],
        ),
        (
            {"integration-test": False},
            {"ci": "true", "inttest": "false"},
            ["stage integration-test disabled in pipeline.yaml — skipped"],
        ),
        (
            {"ci": False, "integration-test": False},
            {"ci": "false", "inttest": "false"},
            [
                "stage ci disabled in pipeline.yaml — skipped (no lint or tests); "
                "images are still built on main",
                "stage integration-test disabled in pipeline.yaml — skipped",
            ],
        ),
    ],
)
def test_a_disabled_stage_is_reported_visibly(
    tmp_path: Path, switches: dict, outputs: dict, messages: list[str]
) -> None:
    result, out, summary = run_switches(tmp_path, {**ALL_ON, **switches})
    assert result.returncode == 0, result.stderr
    assert read_outputs(out) == outputs
    text = summary.read_text(encoding="utf-8")
    for message in messages:
        assert f"::notice title=Stage disabled::{message}" in result.stdout
        assert message in text
    assert result.stdout.count("::notice") == len(messages)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ("[true, true]", "expected a JSON object"),
        ({"ci": True}, "'integration-test' is missing"),
        ({"ci": "false", "integration-test": True}, "must be true or false"),
        ({"ci": 1, "integration-test": True}, "must be true or false"),
    ],
)
def test_unusable_switches_stop_the_run(tmp_path: Path, content: Any, error: str) -> None:
    if content is None:
        switches = tmp_path / "missing.json"
        out = tmp_path / "out"
        result = subprocess.run(
            [
                *(sys.executable, str(SWITCHES_SCRIPT)),
                "--file",
                str(switches),
                "--github-output",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    else:
        result, out, _ = run_switches(tmp_path, content)
    assert result.returncode == 2
    assert error in result.stderr
    assert "::error title=Stage switches::" in result.stdout
    assert not out.exists(), "nothing may be written for unusable switches"


def test_setup_step_exposes_the_outputs_the_jobs_read(wf: dict[str, Any], tmp_path) -> None:
    """Run the setup job's script against a real git checkout laid out like the pipelines repo."""
    setup = wf["jobs"]["setup"]
    checkout = step(setup, uses="actions/checkout")
    assert checkout["with"]["repository"] == "${{ env.PIPELINES_REPOSITORY }}"
    assert wf["env"]["PIPELINES_REPOSITORY"] == "celesrenata/pipelines"
    assert checkout["with"]["ref"] == "main"
    assert checkout["with"]["path"] == ".pipelines"

    work = tmp_path / "work"
    pipelines = work / ".pipelines"
    scripts = pipelines / "apps/stonks-oracle/workflows/scripts"
    scripts.mkdir(parents=True)
    shutil.copy(SWITCHES_SCRIPT, scripts / SWITCHES_SCRIPT.name)
    write_switches(
        pipelines / "apps/stonks-oracle/stage-switches.json",
        {**ALL_ON, "integration-test": False},
    )
    git = ["git", "-C", str(pipelines), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "switches"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    out, summary = tmp_path / "out", tmp_path / "summary.md"
    out.touch()
    script = step(setup, name="Read stage switches (disabled stages are reported here)")["run"]
    result = run_step(
        script.replace("python3 ", f"{sys.executable} ", 1),
        work,
        {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == 0, result.stderr
    outputs = read_outputs(out)
    assert outputs == {"ci": "true", "inttest": "false", "pipelines-sha": head}
    assert "stage integration-test disabled in pipeline.yaml — skipped" in summary.read_text()

    # Every output the jobs read is one the step writes.
    declared = {
        k: render(v, {f"steps.switches.outputs.{k}": k}) for k, v in setup["outputs"].items()
    }
    assert declared == {k: k for k in outputs}
    conditions = {job_id: job.get("if", "") for job_id, job in wf["jobs"].items()}
    for job_id in ("python", "frontend"):
        assert "needs.setup.outputs.ci == 'true'" in conditions[job_id]
    assert "needs.setup.outputs.ci == 'false'" in conditions["build"]
    assert "needs.setup.outputs.inttest == 'true'" in conditions["inttest"]
    inttest_checkout = step(
        wf["jobs"]["inttest"],
        name="Check out the pipelines repository at the commit the switches came from",
    )
    assert inttest_checkout["with"]["ref"] == "${{ needs.setup.outputs.pipelines-sha }}"


def test_rendered_switches_in_this_repo_are_readable(tmp_path: Path) -> None:
    rendered = REPO / "apps/stonks-oracle/stage-switches.json"
    if not rendered.exists():
        pytest.skip("apps/stonks-oracle/stage-switches.json is not rendered yet (pipectl render)")
    result = subprocess.run(
        [sys.executable, str(SWITCHES_SCRIPT), "--file", str(rendered)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pipeline = load(REPO / "pipeline.yaml")
    enabled = {s["name"]: s["enabled"] for s in pipeline["stages"]}
    for stage in ("ci", "integration-test"):
        state = "enabled" if enabled[stage] else "disabled"
        assert f"{stage}: {state}" in result.stdout


# ---------------------------------------------------------------- inttest results


def report(
    tmp_path: Path, results: Any, exit_code: int | str = 0, tag: str = SHA
) -> tuple[subprocess.CompletedProcess[str], Path, Path, Path]:
    path = tmp_path / "inttest-results.json"
    if isinstance(results, bytes):
        path.write_bytes(results)
    elif isinstance(results, str):
        path.write_text(results, encoding="utf-8")
    elif results is not None:
        path.write_text(json.dumps(results), encoding="utf-8")
    payload, out, summary = tmp_path / "payload.json", tmp_path / "out", tmp_path / "summary.md"
    result = subprocess.run(
        [
            sys.executable,
            str(REPORT_SCRIPT),
            "--results",
            str(path),
            "--exit-code",
            str(exit_code),
            "--tag",
            tag,
            "--payload",
            str(payload),
            "--github-output",
            str(out),
            "--summary",
            str(summary),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, payload, out, summary


PASSED = {"passed": 41, "failed": 0, "skipped": 2, "total": 43, "duration": 312.5}
COLUMNS = ("passed", "failed", "errors", "skipped", "total")


def test_report_passed(tmp_path: Path) -> None:
    result, payload, out, summary = report(tmp_path, PASSED)
    assert result.returncode == 0, result.stderr
    assert read_outputs(out) == {
        "exit-code": "0",
        "status": "passed",
        "passed": "41",
        "failed": "0",
        "errors": "0",
        "skipped": "2",
        "total": "43",
    }
    assert json.loads(payload.read_text()) == {"tag": SHA, "exit_code": 0, "results": PASSED}
    text = summary.read_text()
    assert "Integration test ✅ passed" in text
    assert "| 41 | 0 | 0 | 2 | 43 |" in text
    assert "not eligible" not in text
    assert f"integration test passed for {SHA}" in result.stdout


def test_report_reads_counts_from_a_summary_object(tmp_path: Path) -> None:
    # pytest-json-report style: counts under "summary", "error" singular, exitcode at the top.
    results = {"exitcode": 0, "summary": {"passed": 5, "error": 0, "total": 5, "collected": 5}}
    result, payload, out, _ = report(tmp_path, results)
    assert result.returncode == 0, result.stderr
    outputs = read_outputs(out)
    assert outputs["status"] == "passed"
    assert tuple(outputs[k] for k in COLUMNS) == ("5", "0", "0", "0", "5")
    assert json.loads(payload.read_text())["results"] == results


def test_report_failed_counts_fail_even_when_the_runner_exited_zero(tmp_path: Path) -> None:
    results = {"passed": 40, "failed": 3, "skipped": 0, "total": 43}
    result, payload, out, summary = report(tmp_path, results, exit_code=0)
    assert result.returncode == 0
    outputs = read_outputs(out)
    assert (outputs["exit-code"], outputs["status"], outputs["failed"]) == ("1", "failed", "3")
    # The console gets the runner's exit code and the results, and judges them the same way.
    assert json.loads(payload.read_text()) == {"tag": SHA, "exit_code": 0, "results": results}
    assert "3 failed, 0 errors" in summary.read_text()
    assert "not eligible for beta" in summary.read_text()
    assert "::error title=Integration test failed::" in result.stdout


def test_report_keeps_the_runners_exit_code(tmp_path: Path) -> None:
    results = {"passed": 40, "failed": 3, "total": 43}
    result, payload, out, summary = report(tmp_path, results, exit_code=7)
    assert result.returncode == 0
    outputs = read_outputs(out)
    assert (outputs["exit-code"], outputs["failed"]) == ("7", "3")
    assert json.loads(payload.read_text()) == {"tag": SHA, "exit_code": 7, "results": results}
    assert "run_pipeline.sh exited with 7" in summary.read_text()


def test_report_runner_failure_with_passing_counts_still_fails(tmp_path: Path) -> None:
    _, payload, out, _ = report(tmp_path, PASSED, exit_code=1)
    assert read_outputs(out)["exit-code"] == "1"
    assert json.loads(payload.read_text())["exit_code"] == 1


def test_report_no_test_passed_fails(tmp_path: Path) -> None:
    _, _, out, summary = report(tmp_path, {"passed": 0, "skipped": 4})
    assert read_outputs(out)["exit-code"] == "1"
    assert "no test passed" in summary.read_text()


NOT_EVIDENCE = [
    (None, "inttest-results.json not found"),
    ('{"passed": 3, ', "is not valid JSON"),
    (b"\xff\xfe{", "cannot be read"),
    ("[1, 2]", "is not a JSON object"),
    ({"failed": 0, "total": 0}, "missing count passed"),
    ({"passed": "41", "failed": 0}, "passed must be a non-negative integer"),
    ({"passed": 4, "failed": -1}, "failed must be a non-negative integer"),
    ({"passed": True}, "passed must be a non-negative integer"),
    ({"passed": 4, "failed": 1, "total": 4}, "total is 4 but"),
    ({"passed": 4, "error": 0, "errors": 0}, "given twice"),
    ({"summary": {"passed": 1}, "counts": {"passed": 1}}, "more than one of summary, counts"),
    ({"passed": 1, "summary": {"passed": 1}}, "both at the top level"),
    ({"summary": [1]}, "'summary' must be an object"),
    ({"passed": 4, "exit_code": "0"}, "exit_code must be an integer"),
    ({"passed": 4, "exit_code": 0, "exitcode": 0}, "both exit_code and exitcode"),
    ({"passed": 4, "exit_code": 2}, "exited with 0 but the results' exit_code is 2"),
]


@pytest.mark.parametrize(("results", "reason"), NOT_EVIDENCE)
def test_report_results_that_are_not_evidence_fail_and_are_still_recorded(
    tmp_path: Path, results: Any, reason: str
) -> None:
    result, payload, out, summary = report(tmp_path, results, exit_code=0)
    assert result.returncode == 0, result.stderr
    outputs = read_outputs(out)
    assert (outputs["exit-code"], outputs["status"], outputs["total"]) == ("1", "failed", "")
    body = json.loads(payload.read_text())
    assert body["tag"] == SHA and body["exit_code"] == 0
    assert body["results"]["passed"] == 0
    assert reason in body["results"]["note"]
    assert reason in summary.read_text() and "not eligible for beta" in summary.read_text()


@pytest.mark.parametrize(
    ("exit_code", "tag", "error"),
    [
        ("x", SHA, "--exit-code 'x' is not an integer"),
        (0, "main", "--tag 'main' is not a git SHA"),
        (0, SHA.upper(), "is not a git SHA"),
    ],
)
def test_report_bad_arguments_write_nothing(
    tmp_path: Path, exit_code: Any, tag: str, error: str
) -> None:
    result, payload, out, summary = report(tmp_path, PASSED, exit_code=exit_code, tag=tag)
    assert result.returncode == 2
    assert error in result.stderr
    assert not payload.exists() and not out.exists() and not summary.exists()


VALID_EVIDENCE = [
    PASSED,
    {"passed": 40, "failed": 3, "total": 43},
    {"passed": 3, "errors": 1},
    {"passed": 0, "skipped": 4},
    {"exitcode": 0, "summary": {"passed": 5, "error": 0, "total": 5}},
    {"totals": {"passed": 2, "skipped": 1}, "exit_code": 3},
]


@pytest.mark.parametrize("runner_exit_code", [0, 3])
@pytest.mark.parametrize("results", VALID_EVIDENCE + [r for r, _ in NOT_EVIDENCE])
def test_the_console_accepts_every_body_and_agrees_with_the_verdict(
    tmp_path: Path, results: Any, runner_exit_code: int
) -> None:
    """What the workflow sends is what pipectl.inttest (the console's judge) accepts, and it
    reaches the same verdict; raw results it would refuse are never sent."""
    inttest = pytest.importorskip("pipectl.inttest", reason="pipectl.inttest not in this tree")
    from pipectl.errors import BadInput

    _, payload, out, _ = report(tmp_path, results, exit_code=runner_exit_code)
    body = json.loads(payload.read_text())
    verdict = inttest.parse_results(body["results"], body["exit_code"])
    assert verdict.passed == (read_outputs(out)["status"] == "passed")
    if "note" in body["results"]:
        raw = results if isinstance(results, dict) else None
        if raw is not None:
            with pytest.raises(BadInput):
                inttest.parse_results(raw, runner_exit_code)
    else:
        assert body["results"] == results


# ---------------------------------------------------------------- the inttest job, run for real


class Console(http.server.BaseHTTPRequestHandler):
    """Stands in for the pipeline console's POST /api/v1/inttest."""

    requests: list[dict[str, Any]]
    status = 201

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.requests.append(  # type: ignore[attr-defined]
            {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
        )
        body = json.dumps({"recorded": self.server.status < 400}).encode()  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def console() -> Iterator[http.server.HTTPServer]:
    if shutil.which("curl") is None:
        pytest.fail("curl is not on PATH; the report step under test needs it (nix: pkgs.curl)")
    server = http.server.HTTPServer(("127.0.0.1", 0), Console)
    server.requests = []  # type: ignore[attr-defined]
    server.status = 201  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def inttest_job_env(wf: dict[str, Any], tmp_path: Path, console_url: str, token: str) -> dict:
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    env = {
        k: render(v, {"needs.build.outputs.tag": SHA})
        for k, v in wf["jobs"]["inttest"]["env"].items()
    }
    env["SCRIPTS"] = str(SCRIPTS)
    env |= {
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "PIPELINE_CI_TOKEN": token,
        "PIPELINE_CONSOLE_URL": console_url,
    }
    return env


def fake_app_repo(tmp_path: Path, exit_code: int, results: dict | None) -> Path:
    app = tmp_path / "app"
    runner = app / "infra/inttest/run_pipeline.sh"
    runner.parent.mkdir(parents=True)
    lines = ['[ "$1" = --image-tag ] && [ -n "$2" ] || exit 64', 'echo "testing $2"']
    if results is not None:
        lines.append(f"cat > inttest-results.json <<'EOF'\n{json.dumps(results)}\nEOF")
    lines.append(f"exit {exit_code}")
    runner.write_text("\n".join(lines) + "\n")
    (app / "inttest-results.json").write_text('{"stale": "from an earlier run"}')
    return app


def run_inttest_job(
    wf: dict[str, Any], tmp_path: Path, env: dict[str, str], app: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the inttest job's run: steps in order, as the runner would (outputs threaded)."""
    job = wf["jobs"]["inttest"]
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    outputs: dict[str, dict[str, str]] = {}
    for s in job["steps"]:
        if "run" not in s:
            continue
        out = tmp_path / "out"
        out.write_text("")
        step_env = dict(env)
        for key, value in s.get("env", {}).items():
            if key not in {"PIPELINE_CI_TOKEN", "PIPELINE_CONSOLE_URL"}:
                step_env[key] = EXPR.sub(
                    lambda m: outputs[m.group(1).split(".")[1]][m.group(1).split(".")[3]],
                    value,
                )
        script = s["run"].replace("python3 ", f"{sys.executable} ")
        result = run_step(script, app, step_env)
        done[s["name"]] = result
        if "id" in s:
            outputs[s["id"]] = read_outputs(out)
        if result.returncode != 0:
            break
    return done


RUN, PARSE = "run_pipeline.sh --image-tag (exit code captured)", "Parse inttest-results.json"
POST, ENFORCE = (
    "Report the result to the pipeline console",
    "Fail unless the integration test passed",
)


def test_inttest_job_passes_reports_and_is_eligible(wf, tmp_path, console) -> None:
    url = f"http://127.0.0.1:{console.server_port}/"
    token = "ci-token-s3cr3t"
    app = fake_app_repo(tmp_path, 0, PASSED)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, token), app)
    assert list(steps) == [RUN, PARSE, POST, ENFORCE]
    assert all(r.returncode == 0 for r in steps.values()), {k: r.stderr for k, r in steps.items()}
    assert f"testing {SHA}" in steps[RUN].stdout
    assert f"{SHA} is eligible for beta" in steps[ENFORCE].stdout

    (request,) = console.requests
    assert request["path"] == "/api/v1/inttest"
    assert request["headers"]["Authorization"] == f"Bearer {token}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"tag": SHA, "exit_code": 0, "results": PASSED}
    for result in steps.values():
        assert token not in result.stdout + result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "Integration test ✅ passed" in summary
    assert "reported to the pipeline console" in summary


@pytest.mark.parametrize("token", ['back\\slash"quote', "a+b/c=", "x y#z"])
def test_inttest_job_sends_the_token_byte_for_byte(wf, tmp_path, console, token) -> None:
    url = f"http://127.0.0.1:{console.server_port}"
    app = fake_app_repo(tmp_path, 0, PASSED)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, token), app)
    assert steps[POST].returncode == 0, steps[POST].stderr
    (request,) = console.requests
    assert request["headers"]["Authorization"] == f"Bearer {token}"
    assert token not in steps[POST].stdout + steps[POST].stderr


def test_inttest_job_failure_is_reported_then_fails_the_job(wf, tmp_path, console) -> None:
    url = f"http://127.0.0.1:{console.server_port}"
    results = {"passed": 10, "failed": 2, "total": 12}
    app = fake_app_repo(tmp_path, 3, results)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, "tok"), app)
    # The runner's failure does not stop the job before the report; the last step fails it.
    assert steps[RUN].returncode == 0
    assert steps[PARSE].returncode == 0
    assert steps[POST].returncode == 0
    assert steps[ENFORCE].returncode == 1
    assert (
        "exit code 3" in steps[ENFORCE].stdout and "not eligible for beta" in steps[ENFORCE].stdout
    )
    (request,) = console.requests
    assert json.loads(request["body"]) == {"tag": SHA, "exit_code": 3, "results": results}


def test_inttest_job_without_results_does_not_reuse_a_stale_file(wf, tmp_path, console) -> None:
    url = f"http://127.0.0.1:{console.server_port}"
    app = fake_app_repo(tmp_path, 0, None)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, "tok"), app)
    assert steps[ENFORCE].returncode == 1
    body = json.loads(console.requests[0]["body"])
    # Recorded as a failure at the console: no passing test, and the reason.
    assert body["exit_code"] == 0 and body["results"]["passed"] == 0
    assert "inttest-results.json not found" in body["results"]["note"]
    assert "not eligible for beta" in steps[ENFORCE].stdout


def test_inttest_job_console_rejection_fails_the_job(wf, tmp_path, console) -> None:
    console.status = 401
    url = f"http://127.0.0.1:{console.server_port}"
    app = fake_app_repo(tmp_path, 0, PASSED)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, "wrong"), app)
    assert steps[POST].returncode == 22  # curl --fail-with-body on HTTP >= 400
    assert '{"recorded": false}' in steps[POST].stdout  # the body is shown
    assert ENFORCE not in steps
    assert "wrong" not in steps[POST].stdout + steps[POST].stderr


def test_inttest_job_without_token_fails_before_posting(wf, tmp_path, console) -> None:
    url = f"http://127.0.0.1:{console.server_port}"
    app = fake_app_repo(tmp_path, 0, PASSED)
    steps = run_inttest_job(wf, tmp_path, inttest_job_env(wf, tmp_path, url, ""), app)
    assert steps[POST].returncode == 1
    assert "PIPELINE_CI_TOKEN is not set" in steps[POST].stdout
    assert console.requests == []


def test_inttest_job_wiring(wf: dict[str, Any]) -> None:
    job = wf["jobs"]["inttest"]
    run = step(job, name=RUN)
    assert 'bash infra/inttest/run_pipeline.sh --image-tag "$TAG"' in run["run"]
    assert "if" not in run
    upload = step(job, uses="actions/upload-artifact")
    assert upload["if"] in ("always()", "${{ always() }}", "${{ !cancelled() }}", "!cancelled()")
    assert upload["with"]["path"] == "inttest-results.json" == job["env"]["RESULTS"]
    # Unique per tag and per attempt: a re-run of the job must not collide with its first upload.
    name = render(
        upload["with"]["name"], {"needs.build.outputs.tag": SHA, "github.run_attempt": "2"}
    )
    assert name == f"inttest-results-{SHA}-attempt-2"
    assert "overwrite" not in upload["with"], "every attempt's evidence is kept"
    post = step(job, name=POST)
    assert post["env"]["PIPELINE_CI_TOKEN"] == "${{ secrets.PIPELINE_CI_TOKEN }}"
    url_expr = EXPR.fullmatch(post["env"]["PIPELINE_CONSOLE_URL"].strip())
    assert url_expr is not None
    assert url_expr.group(1).split() == [
        "vars.PIPELINE_CONSOLE_URL",
        "||",
        "'http://pipeline-console.pipeline-console.svc.cluster.local:8080'",
    ]
    assert "--fail-with-body" in post["run"]
    # Order: run -> parse -> upload (always) -> report -> enforce.
    order = [step_index(job, s) for s in (run, step(job, name=PARSE), upload, post)]
    assert order == sorted(order)
    assert step_index(job, step(job, name=ENFORCE)) == len(job["steps"]) - 1


# ---------------------------------------------------------------- actionlint


def actionlint_available() -> bool:
    gobin = Path(os.environ.get("GOBIN", Path.home() / "go/bin"))
    return bool(shutil.which("actionlint") or (gobin / "actionlint").exists()) and bool(
        shutil.which("shellcheck")
    )


needs_actionlint = pytest.mark.skipif(
    not actionlint_available(),
    reason="actionlint and shellcheck are not installed (checks/install-deps.sh installs them)",
)


@needs_actionlint
def test_actionlint_is_clean() -> None:
    result = subprocess.run(
        ["bash", str(ACTIONLINT_CHECK)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "apps/stonks-oracle/workflows/ci.yaml" in result.stdout
    assert ".github/workflows/flake-check.yaml" in result.stdout


@needs_actionlint
@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("runs-on: self-hosted-gremlin", "runs-on: self-hosted-gremlins", "[runner-label]"),
        ('rm -f "$RESULTS"', "rm -f $RESULTS", "SC2086"),
        ("needs.setup.outputs.inttest ==", "needs.setup.outputs.int_test ==", "[expression]"),
    ],
)
def test_actionlint_catches_mistakes_in_the_app_workflow(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    text = APP_WORKFLOW.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "ci.yaml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    result = subprocess.run(
        ["bash", str(ACTIONLINT_CHECK), str(broken)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert complaint in result.stdout
