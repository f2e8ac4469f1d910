"""A real console server on 127.0.0.1 for the console tests (not collected).

`start_console` runs `pipectl.console` in-process on an ephemeral port, with an injectable
clock (the market state follows it), a real Git repository (copies of this project's
pipeline.yaml and apps/) and a temp audit log. `Client` speaks HTTP/1.1 with http.client.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _gitfix import REPO_ROOT, git, init_repo

KARGO_TOKEN = "kargo-token-0123456789abcdef"
CI_TOKEN = "ci-token-fedcba9876543210"

# 2026-08-13 is a Thursday, a full NYSE session (09:30-16:00 EDT = 13:30-20:00 UTC).
MARKET_OPEN = datetime(2026, 8, 13, 15, 0, tzinfo=UTC)  # 11:00 EDT
MARKET_CLOSED = datetime(2026, 8, 13, 21, 0, tzinfo=UTC)  # 17:00 EDT


def console_repo(path: Path) -> Path:
    """A Git repository with copies of this project's pipeline.yaml, apps/ and gitops/ (what
    promotions, stage switches and re-rendering touch)."""
    import shutil

    path.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "pipeline.yaml", path / "pipeline.yaml")
    for tree in ("apps", "gitops"):
        if (REPO_ROOT / tree).is_dir():
            shutil.copytree(
                REPO_ROOT / tree, path / tree, ignore=shutil.ignore_patterns("__pycache__")
            )
    (path / ".gitignore").write_text(".pipectl/\n")
    init_repo(path, files={})
    return path


def head_commit(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def commit_count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD").strip())


class Clock:
    """A settable clock: `clock()` returns `clock.now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, now: datetime) -> None:
        with self._lock:
            self.now = now


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Console:
    url: str
    host: str
    port: int
    repo: Path
    audit_path: Path
    clock: Clock
    api: Any
    server: Any
    tmp: Path
    login_token: str | None
    kargo_token_file: Path | None = None
    ci_token_file: Path | None = None
    htpasswd: Path | None = None
    _session: dict[str, str] = field(default_factory=dict)

    def client(self) -> Client:
        return Client(self.host, self.port)

    def audit_bytes(self) -> bytes:
        return self.audit_path.read_bytes() if self.audit_path.exists() else b""

    def audit_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_bytes().splitlines()]

    def login(self) -> tuple[str, str]:
        """A session for the local user, as the one-time link would create (the link itself
        stays unused for the browser); returns (cookie header value, csrf token)."""
        if self._session:
            return self._session["cookie"], self._session["csrf"]
        from pipectl.console.auth import SESSION_COOKIE

        sid = self.server.app.auth.sessions.create(self.api.local_user)
        cookie = f"{SESSION_COOKIE}={sid}"
        s = self.client().request("GET", "/api/v1/session", headers={"Cookie": cookie})
        assert s.status == 200, s.body
        self._session = {"cookie": cookie, "csrf": s.json()["csrf"]}
        return cookie, s.json()["csrf"]

    def user_headers(self, *, csrf: bool = True) -> dict[str, str]:
        cookie, token = self.login()
        headers = {"Cookie": cookie, "Origin": self.url, "Sec-Fetch-Site": "same-origin"}
        if csrf:
            headers["X-CSRF-Token"] = token
        return headers

    def post_json(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json", **(headers or self.user_headers())}
        return self.client().request("POST", path, headers=h, body=json.dumps(body).encode())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.client().request("GET", path, headers=headers or self.user_headers())


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)

    def close(self) -> None:
        self.conn.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_htpasswd(path: Path, users: dict[str, str], prefix: str = "$2y$") -> Path:
    import bcrypt

    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines.append(f"{user}:{prefix}{hashed[4:]}")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def start_console(
    tmp: Path,
    *,
    now: datetime = MARKET_CLOSED,
    mode: str = "local",
    tokens: bool = True,
    htpasswd_users: dict[str, str] | None = None,
    trusted_proxies: tuple[str, ...] = (),
    public_url: str | None = None,
    cluster: Any = None,
    repo: Path | None = None,
    max_body: int = 1 << 20,
    push: bool = False,
) -> Iterator[Console]:
    from pipectl.console.api import ConsoleAPI
    from pipectl.console.server import make_server, start_in_thread

    repo = repo or console_repo(tmp / "repo")
    audit_path = tmp / "audit" / "audit.jsonl"
    clock = Clock(now)
    kargo_file = ci_file = htpasswd = None
    if tokens:
        kargo_file = tmp / "kargo-token"
        kargo_file.write_text(KARGO_TOKEN + "\n")
        ci_file = tmp / "ci-token"
        ci_file.write_text(CI_TOKEN)
    if htpasswd_users:
        htpasswd = write_htpasswd(tmp / "htpasswd", htpasswd_users)
    api = ConsoleAPI(
        repo=repo,
        config_path=None,
        audit_path=audit_path,
        mode=mode,
        clock=clock,
        local_user="alice@example.com",
        push=push,
        public_url=public_url,
        cluster=cluster,
    )
    server = make_server(
        api,
        host="127.0.0.1",
        port=0,
        htpasswd=htpasswd,
        kargo_token_file=kargo_file,
        ci_token_file=ci_file,
        trusted_proxies=trusted_proxies,
        public_url=public_url,
        max_body=max_body,
        access_log=False,
    )
    thread = start_in_thread(server)
    host, port = server.server_address[:2]
    login = server.app.auth.login_token
    try:
        yield Console(
            url=f"http://{host}:{port}",
            host=host,
            port=port,
            repo=repo,
            audit_path=audit_path,
            clock=clock,
            api=api,
            server=server,
            tmp=tmp,
            login_token=login.token if login else None,
            kargo_token_file=kargo_file,
            ci_token_file=ci_file,
            htpasswd=htpasswd,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
