"""Console authentication and request hygiene, against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from _console import CI_TOKEN, KARGO_TOKEN, basic, start_console, write_htpasswd
from pipectl.console import auth
from pipectl.console.server import make_server
from pipectl.errors import ConfigError

SECURITY = {
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
}


@pytest.fixture
def console(tmp_path):
    with start_console(tmp_path) as c:
        yield c


# --- htpasswd parsing and startup refusals ---------------------------------------------------


def test_htpasswd_accepts_bcrypt_2y_and_2b(tmp_path):
    path = write_htpasswd(tmp_path / "a", {"ann": "pw1"}, prefix="$2y$")
    with path.open("a") as f:
        f.write(write_htpasswd(tmp_path / "b", {"bob": "pw2"}, prefix="$2b$").read_text())
    users = auth.parse_htpasswd(path.read_bytes(), path)
    assert sorted(users) == ["ann", "bob"]
    ht = auth.Htpasswd(path)
    ht.load()
    assert ht.check("ann", "pw1") and ht.check("bob", "pw2")
    assert not ht.check("ann", "pw2") and not ht.check("nobody", "pw1")


@pytest.mark.parametrize(
    "line",
    [
        "ann:$apr1$abcdefgh$0123456789abcdefghijkl",  # Apache MD5
        "ann:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=",  # SHA-1
        "ann:plaintext",
        "ann:$2a$04$" + "a" * 53,  # bcrypt, but not the $2y$/$2b$ the contract names
        "ann:$6$salt$hash",  # crypt(3) SHA-512
    ],
)
def test_htpasswd_refuses_other_hash_types_at_startup(tmp_path, line):
    path = tmp_path / "htpasswd"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=r"htpasswd:1: user 'ann' has an unsupported hash"):
        auth.Htpasswd(path).load()


def test_htpasswd_malformed_and_empty(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("no-colon-here\n")
    with pytest.raises(ConfigError, match=r":1: expected 'user:hash'"):
        auth.Htpasswd(path).load()
    path.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match="no users"):
        auth.Htpasswd(path).load()


def _run_cli(*args, cwd):
    env = {**os.environ, "PIPECTL_AUDIT_LOG": str(cwd / "audit.jsonl")}
    return subprocess.run(
        [sys.executable, "-m", "pipectl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_refuses_non_loopback_without_htpasswd(tmp_path):
    from _gitfix import pipeline_repo

    repo = pipeline_repo(tmp_path / "repo")
    out = _run_cli("--repo", str(repo), "serve", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert out.returncode == 2
    assert "refusing to serve without --htpasswd" in out.stderr
    assert "login" not in out.stdout  # no login link was ever printed


def test_cli_refuses_md5_htpasswd_with_clear_error(tmp_path):
    from _gitfix import pipeline_repo

    repo = pipeline_repo(tmp_path / "repo")
    ht = tmp_path / "htpasswd"
    ht.write_text("ann:$apr1$abcdefgh$0123456789abcdefghijkl\n")
    out = _run_cli("--repo", str(repo), "serve", "--port", "0", "--htpasswd", str(ht), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("pipectl: error: ")
    assert "unsupported hash type ('apr1')" in out.stderr and "htpasswd -B" in out.stderr


def test_make_server_refuses_bad_inputs(tmp_path):
    from _console import start_console as _  # noqa: F401  (harness import check)
    from _gitfix import pipeline_repo
    from pipectl.console.api import ConsoleAPI

    repo = pipeline_repo(tmp_path / "repo")
    api = ConsoleAPI(repo=repo, config_path=None, audit_path=tmp_path / "a.jsonl")
    with pytest.raises(ConfigError, match="not a loopback address"):
        make_server(api, host="192.0.2.1", port=0)
    with pytest.raises(ConfigError, match="not an IP network"):
        make_server(api, port=0, trusted_proxies=("10.0.0.0/33",))
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="kargo token file is empty"):
        make_server(api, port=0, kargo_token_file=empty)
    short = tmp_path / "short-token"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="shorter than 16"):
        make_server(api, port=0, ci_token_file=short)
    with pytest.raises(ConfigError, match="cannot read"):
        make_server(api, port=0, ci_token_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="--public-url"):
        make_server(api, port=0, public_url="javascript:alert(1)")


# --- unauthenticated ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/static/console.js"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/stages"),
        ("GET", "/api/v1/session"),
        ("GET", "/api/v1/gate?stage=paper&tag=abcdef1"),
        ("POST", "/api/v1/promote"),
        ("POST", "/api/v1/inttest"),
        ("POST", "/api/v1/stages/beta"),
    ],
)
def test_everything_but_healthz_needs_authentication(console, method, path):
    before = console.audit_bytes()
    r = console.client().request(method, path, headers={"Content-Type": "application/json"})
    assert r.status == 401, (path, r.body)
    assert set(r.headers) >= SECURITY
    assert console.audit_bytes() == before


def test_healthz_is_open_and_has_security_headers(console):
    r = console.client().request("GET", "/healthz")
    assert r.status == 200 and r.json() == {"ok": True}
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_browser_gets_an_html_401_page_without_reflected_markup(console):
    r = console.client().request("GET", "/<script>x</script>", headers={"Accept": "text/html"})
    assert r.status == 404
    assert r.headers["content-type"].startswith("text/html")
    assert b"<script>x" not in r.body and b"&lt;script&gt;x" in r.body


# --- one-time login link and the session cookie -------------------------------------------------


def test_login_link_works_once_and_sets_a_strict_httponly_cookie(console):
    c = console.client()
    bad = c.request("GET", "/login?token=wrong")
    assert bad.status == 401
    r = c.request("GET", f"/login?token={console.login_token}")
    assert r.status == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    session = cookie.split(";")[0]
    page = c.request("GET", "/", headers={"Cookie": session})
    assert page.status == 200 and b"alice@example.com" in page.body
    again = console.client().request("GET", f"/login?token={console.login_token}")
    assert again.status == 401  # used up
    who = c.request("GET", "/api/v1/session", headers={"Cookie": session}).json()
    assert who["user"] == "alice@example.com" and who["via"] == "session" and who["csrf"]


def test_forged_or_expired_session_cookie_is_refused(console):
    c = console.client()
    r = c.request("GET", "/api/v1/status", headers={"Cookie": f"{auth.SESSION_COOKIE}=forged"})
    assert r.status == 401
    cookie, _ = console.login()
    sid = cookie.split("=", 1)[1]
    console.server.app.auth.sessions._sessions[sid].expires = time.time() - 1
    assert c.request("GET", "/api/v1/stages", headers={"Cookie": cookie}).status == 401


def test_logout_ends_the_session(console):
    headers = console.user_headers()
    r = console.post_json("/logout", {}, headers)
    assert r.status == 200
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert console.get("/api/v1/stages", headers).status == 401


def test_dns_rebinding_host_is_refused(console):
    cookie, _ = console.login()
    r = console.client().request(
        "GET", "/api/v1/stages", headers={"Host": "evil.example:8080", "Cookie": cookie}
    )
    assert r.status == 421


# --- HTTP Basic against htpasswd ---------------------------------------------------------------


def test_basic_auth_and_reload_on_change(tmp_path):
    with start_console(tmp_path, htpasswd_users={"ann": "correct horse"}) as c:
        assert c.login_token is None  # no one-time link when htpasswd is configured
        cl = c.client()
        r = cl.request("GET", "/api/v1/stages")
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Basic ")
        ok = cl.request(
            "GET", "/api/v1/stages", headers={"Authorization": basic("ann", "correct horse")}
        )
        assert ok.status == 200
        for user, pw in (("ann", "wrong"), ("bob", "correct horse"), ("", "")):
            bad = cl.request("GET", "/api/v1/stages", headers={"Authorization": basic(user, pw)})
            assert bad.status == 401
        junk = cl.request("GET", "/api/v1/stages", headers={"Authorization": "Basic !!!"})
        assert junk.status == 401
        assert cl.request("GET", "/login?token=x").status == 401
        # Rotation: a new file (new inode, as a Secret update does) replaces the old users.
        new = write_htpasswd(tmp_path / "htpasswd.new", {"ann": "battery staple"})
        os.replace(new, c.htpasswd)
        old = cl.request(
            "GET", "/api/v1/stages", headers={"Authorization": basic("ann", "correct horse")}
        )
        assert old.status == 401
        fresh = cl.request(
            "GET", "/api/v1/stages", headers={"Authorization": basic("ann", "battery staple")}
        )
        assert fresh.status == 200
        # A broken file after start fails closed (nobody gets in) instead of crashing.
        c.htpasswd.write_text("ann:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n")
        os.utime(c.htpasswd, ns=(1, 1))
        broken = cl.request(
            "GET", "/api/v1/stages", headers={"Authorization": basic("ann", "battery staple")}
        )
        assert broken.status == 401


def test_basic_user_gets_a_csrf_token_and_needs_it(tmp_path):
    with start_console(tmp_path, htpasswd_users={"ann": "pw"}) as c:
        cl = c.client()
        h = {"Authorization": basic("ann", "pw")}
        s = cl.request("GET", "/api/v1/session", headers=h).json()
        assert s["user"] == "ann" and s["via"] == "basic" and s["csrf"]
        before = c.audit_bytes()
        r = cl.request(
            "POST",
            "/api/v1/stages/paper",
            headers={**h, "Content-Type": "application/json"},
            body=b'{"enabled": false}',
        )
        assert r.status == 403 and "X-CSRF-Token" in r.json()["error"]
        assert c.audit_bytes() == before


# --- trusted proxy header ----------------------------------------------------------------------


def test_proxy_header_only_from_trusted_addresses(tmp_path):
    with start_console(tmp_path / "t", trusted_proxies=("127.0.0.0/8",)) as c:
        r = c.client().request("GET", "/api/v1/session", headers={"X-Forwarded-User": "carol"})
        assert r.status == 200 and r.json()["user"] == "carol" and r.json()["via"] == "proxy"
        bad = c.client().request("GET", "/api/v1/session", headers={"X-Forwarded-User": " "})
        assert bad.status == 401
    with start_console(tmp_path / "u", trusted_proxies=("10.42.0.0/16",)) as c:
        r = c.client().request("GET", "/api/v1/session", headers={"X-Forwarded-User": "carol"})
        assert r.status == 401
    with start_console(tmp_path / "n") as c:  # no trusted proxies at all
        r = c.client().request("GET", "/api/v1/session", headers={"X-Forwarded-User": "carol"})
        assert r.status == 401


def test_a_repeated_proxy_user_header_is_refused(tmp_path):
    """A proxy that appends its header after the client's leaves two; the first (the client's)
    must not be believed."""
    with start_console(tmp_path, trusted_proxies=("127.0.0.0/8",)) as c:
        conn = c.client().conn
        conn.putrequest("GET", "/api/v1/session")
        conn.putheader("X-Forwarded-User", "mallory-as-admin")
        conn.putheader("X-Forwarded-User", "carol")
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        assert r.status == 401


# --- bearer tokens: scope and rotation ---------------------------------------------------------


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("token", "method", "path"),
    [
        (KARGO_TOKEN, "GET", "/api/v1/status"),
        (KARGO_TOKEN, "GET", "/api/v1/audit"),
        (KARGO_TOKEN, "GET", "/api/v1/stages"),
        (KARGO_TOKEN, "GET", "/"),
        (KARGO_TOKEN, "POST", "/api/v1/inttest"),
        (KARGO_TOKEN, "POST", "/api/v1/promote"),
        (KARGO_TOKEN, "POST", "/api/v1/break-glass"),
        (CI_TOKEN, "GET", "/api/v1/gate?stage=paper&tag=abcdef1"),
        (CI_TOKEN, "GET", "/api/v1/status"),
        (CI_TOKEN, "POST", "/api/v1/stages/beta"),
        (CI_TOKEN, "POST", "/api/v1/promote"),
        (CI_TOKEN, "GET", "/api/v1/session"),
    ],
)
def test_tokens_are_scoped_to_their_endpoints(console, token, method, path):
    before = console.audit_bytes()
    r = console.client().request(
        method, path, headers={**_bearer(token), "Content-Type": "application/json"}, body=b"{}"
    )
    assert r.status == 403, r.body
    assert console.audit_bytes() == before


def test_ci_token_reads_stages(console):
    r = console.client().request("GET", "/api/v1/stages", headers=_bearer(CI_TOKEN))
    assert r.status == 200
    assert [s["name"] for s in r.json()["stages"]] == [
        "ci",
        "integration-test",
        "beta",
        "paper",
        "live",
    ]


def test_user_may_not_post_inttest_results(console):
    r = console.post_json("/api/v1/inttest", {"tag": "abcdef1", "exit_code": 0, "results": {}})
    assert r.status == 403


def test_unknown_bearer_is_401_and_rotation_is_picked_up(console):
    cl = console.client()
    assert cl.request("GET", "/api/v1/stages", headers=_bearer("nope" * 8)).status == 401
    assert cl.request("GET", "/api/v1/stages", headers=_bearer(CI_TOKEN)).status == 200
    # Secret rotation: kubelet swaps a symlink, so the file's identity changes.
    new_token = "rotated-ci-token-0000000000"
    tmp = console.ci_token_file.with_name("ci-token.next")
    tmp.write_text(new_token + "\n")
    os.replace(tmp, console.ci_token_file)
    assert cl.request("GET", "/api/v1/stages", headers=_bearer(CI_TOKEN)).status == 401
    assert cl.request("GET", "/api/v1/stages", headers=_bearer(new_token)).status == 200
    # A vanished token file refuses that token (fail closed), the others keep working.
    console.ci_token_file.unlink()
    assert cl.request("GET", "/api/v1/stages", headers=_bearer(new_token)).status == 401


def test_bearer_takes_no_fallback_to_cookie(console):
    cookie, _ = console.login()
    r = console.client().request(
        "GET", "/api/v1/status", headers={**_bearer("wrong" * 5), "Cookie": cookie}
    )
    assert r.status == 401


# --- CSRF, same-origin, limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "extra"),
    [
        ("X-CSRF-Token", {}),
        (None, {"X-CSRF-Token": "not-the-token"}),
        (None, {"Origin": "https://evil.example"}),
        (None, {"Sec-Fetch-Site": "cross-site"}),
        (None, {"Sec-Fetch-Site": "same-site"}),
        ("Origin", {"Origin": "null"}),
    ],
)
def test_mutations_refuse_cross_site_and_missing_csrf(console, drop, extra):
    headers = console.user_headers()
    if drop:
        headers.pop(drop)
    headers.update(extra)
    before = console.audit_bytes()
    head = console.client().request("GET", "/api/v1/stages", headers=headers)
    for path, body in (
        ("/api/v1/stages/paper", {"enabled": False}),
        ("/api/v1/promote", {"stage": "beta", "tag": "abcdef1", "notes": "x"}),
        ("/api/v1/break-glass", {"stage": "paper", "tag": "abcdef1", "justification": "a b"}),
    ):
        r = console.post_json(path, body, headers)
        assert r.status == 403, (path, r.body)
    assert head.status == 200  # reads stay fine
    assert console.audit_bytes() == before


def test_body_limit_and_chunked_bodies(tmp_path):
    with start_console(tmp_path, max_body=2048) as c:
        headers = {**c.user_headers(), "Content-Type": "application/json"}
        r = c.client().request("POST", "/api/v1/promote", headers=headers, body=b" " * 4096)
        assert r.status == 413
        r = c.client().request(
            "POST", "/api/v1/promote", headers={**headers, "Transfer-Encoding": "chunked"}
        )
        assert r.status == 411


def _raw(console, data: bytes) -> bytes:
    import socket

    with socket.create_connection((console.host, console.port), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    "lengths", [["1_7"], ["+17"], [" 0x11"], ["17", "0"], ["17", "17"]], ids=str
)
def test_content_length_must_be_one_plain_number(console, lengths):
    """Python's int() accepts `1_7` and `+17`, and a second Content-Length was ignored: a front
    proxy reading it differently would frame the next request differently (smuggling)."""
    body = b'{"enabled": false}'[:17]
    headers = {**console.user_headers(), "Content-Type": "application/json"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "".join(f"Content-Length: {n}\r\n" for n in lengths)
    before = console.audit_bytes()
    out = _raw(
        console,
        f"POST /api/v1/stages/beta HTTP/1.1\r\nHost: {console.host}\r\n{head}\r\n".encode() + body,
    )
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert console.audit_bytes() == before


def test_a_body_that_stops_arriving_is_a_408_and_closes(console, monkeypatch):
    import socket

    from pipectl.console.server import Handler

    monkeypatch.setattr(Handler, "timeout", 0.5)
    headers = {**console.user_headers(), "Content-Type": "application/json"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((console.host, console.port), timeout=5) as s:
        s.sendall(
            f"POST /api/v1/stages/beta HTTP/1.1\r\nHost: {console.host}\r\n{head}"
            "Content-Length: 100\r\n\r\n{".encode()
        )
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 408 "), out[:200]
    assert b"Connection: close" in out


def test_deeply_nested_json_is_a_400_not_a_500(console):
    headers = {**console.user_headers(), "Content-Type": "application/json"}
    body = b"[" * 200_000 + b"]" * 200_000
    r = console.client().request("POST", "/api/v1/promote", headers=headers, body=body)
    assert r.status == 400 and "JSON" in r.json()["error"]


def test_static_assets_are_typed_and_listed_only(console):
    headers = console.user_headers()
    js = console.get("/static/console.js", headers)
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript")
    # Everything is rendered with textContent: no HTML-parsing sinks in the page script.
    assert not re.search(
        rb"innerHTML\s*=|outerHTML\s*=|insertAdjacentHTML|document\.write", js.body
    )
    assert console.get("/static/../api.py", headers).status == 404
    assert console.get("/static/nothing.js", headers).status == 404
    page = console.get("/", headers)
    assert b'<script src="/static/console.js"' in page.body
    assert b"<script>" not in page.body  # no inline script (CSP allows none)


def test_unknown_method_and_path(console):
    headers = console.user_headers()
    assert console.client().request("DELETE", "/api/v1/status", headers=headers).status == 405
    assert console.get("/api/v1/nope", headers).status == 404


def test_pipectl_serve_local_mode_prints_one_link_and_serves(tmp_path):
    """The README's main job: `pipectl serve` in this repository, local audit file."""
    import http.client
    import threading

    from _console import console_repo

    repo = console_repo(tmp_path / "repo")
    env = {**os.environ, "PIPECTL_ACTOR": "dana@example.com"}
    env.pop("PIPECTL_AUDIT_LOG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipectl.cli", "--repo", str(repo), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
        )
        reader.start()
        deadline = time.monotonic() + 30
        while not any("login?token=" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            time.sleep(0.05)
        assert "local mode, http://127.0.0.1:" in lines[0]
        assert f"audit {repo}/.pipectl/audit.jsonl" in lines[0]
        link = re.search(r"(http://127\.0\.0\.1:(\d+))(/login\?token=\S+)", lines[-1])
        assert link is not None
        conn = http.client.HTTPConnection("127.0.0.1", int(link.group(2)), timeout=10)
        conn.request("GET", link.group(3))
        r = conn.getresponse()
        r.read()
        assert r.status == 303
        cookie = r.getheader("Set-Cookie").split(";")[0]
        conn.request("GET", "/api/v1/session", headers={"Cookie": cookie})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["user"] == "dana@example.com"
        conn.request("GET", link.group(3))  # the link works once
        r = conn.getresponse()
        r.read()
        assert r.status == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # The token is never written to the access log (stderr).
    err = proc.stderr.read()
    token = link.group(3).split("=", 1)[1]
    assert token not in err and "/login?token=<redacted>" in err
