"""The console's HTTP layer on the standard library (`http.server.ThreadingHTTPServer`).

Routing, authentication and authorization per route, the same-origin and CSRF checks for
mutations, security headers, a request body limit, static assets and the HTML shell. What a
route *does* lives in `pipectl.console.api`.
"""

from __future__ import annotations

import html
import http.server
import ipaddress
import json
import re
import string
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pipectl.console import auth
from pipectl.console.auth import CI, KARGO, USER, AuthFailure, Principal
from pipectl.errors import ConfigError

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB
CSRF_HEADER = "X-CSRF-Token"

SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)

_CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


class HTTPError(Exception):
    """A request refused with a status and a one-line message (sent as JSON or a page)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, "application/json", headers or [])


@dataclass
class Request:
    method: str
    path: str
    query_string: str
    headers: Any  # http.client.HTTPMessage (case-insensitive get)
    client: str
    body: bytes
    principal: Principal | None = None
    params: dict[str, str] = field(default_factory=dict)

    def query(self) -> dict[str, str]:
        return parse_query(self.query_string)

    def json(self) -> dict[str, Any]:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "send the body as Content-Type: application/json")
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # [[[[… nests too deep
            raise HTTPError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "the body must be a JSON object")
        return data


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: str  # attribute of the api object, or of the server's page handlers
    scopes: frozenset[str]
    mutating: bool = False
    public: bool = False
    records: bool = False  # a GET that writes the audit log (the gate): same-origin for people


def _r(
    method: str,
    path: str,
    handler: str,
    scopes=(USER,),
    *,
    mutating=False,
    public=False,
    records=False,
):
    return Route(
        method, re.compile(path + r"\Z"), handler, frozenset(scopes), mutating, public, records
    )


ROUTES: tuple[Route, ...] = (
    _r("GET", r"/healthz", "healthz", public=True),
    _r("GET", r"/login", "login", public=True),
    _r("POST", r"/logout", "logout", mutating=True),
    _r("GET", r"/", "index"),
    _r("GET", r"/static/(?P<name>[A-Za-z0-9_.-]+)", "static"),
    _r("GET", r"/api/v1/session", "session"),
    _r("GET", r"/api/v1/gate", "gate", (USER, KARGO), records=True),
    _r("POST", r"/api/v1/inttest", "inttest", (CI,), mutating=True),
    _r("GET", r"/api/v1/inttest", "inttest_result", (USER, KARGO)),
    _r("GET", r"/api/v1/status", "status"),
    _r("GET", r"/api/v1/audit", "audit"),
    _r("GET", r"/api/v1/stages", "stages", (USER, CI)),
    _r("POST", r"/api/v1/stages/(?P<name>[A-Za-z0-9-]{1,63})", "set_stage", mutating=True),
    _r("POST", r"/api/v1/promote", "promote", mutating=True),
    _r("POST", r"/api/v1/break-glass", "break_glass", mutating=True),
)


def parse_query(raw: str) -> dict[str, str]:
    """Single-valued query parameters; a repeated or undecodable parameter is a 400."""
    try:
        pairs = urllib.parse.parse_qsl(
            raw, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError):
        raise HTTPError(400, "malformed query string") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise HTTPError(400, f"query parameter {key!r} given more than once")
        out[key] = value
    return out


def _load_asset_dir(name: str) -> dict[str, bytes]:
    root = resources.files("pipectl.console").joinpath(name)
    assets: dict[str, bytes] = {}
    for item in root.iterdir():
        if item.is_file() and not item.name.startswith("."):
            assets[item.name] = item.read_bytes()
    return assets


def _loopback_host(host_header: str) -> bool:
    """`127.0.0.1:8080`, `localhost`, `[::1]:8080` ..."""
    if host_header.startswith("["):
        name = host_header[1:].partition("]")[0]
    else:
        name = host_header.rpartition(":")[0] if ":" in host_header else host_header
    return is_loopback(name)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleApp:
    """Everything one console process holds: the authenticator, the API and the assets."""

    def __init__(
        self,
        api: Any,
        authenticator: auth.Authenticator,
        *,
        public_url: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        access_log: bool = True,
    ) -> None:
        self.api = api
        self.auth = authenticator
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_body = max_body
        self.access_log = access_log
        self.static = _load_asset_dir("static")
        self.templates = {k: v.decode("utf-8") for k, v in _load_asset_dir("templates").items()}
        self.loopback_only = False  # set by ConsoleHTTPServer once bound
        self.secure_cookies = bool(self.public_url and self.public_url.startswith("https://"))

    # -- origin --------------------------------------------------------------------------

    def allowed_origins(self, request: Request) -> set[str]:
        """The public URL's origin, and http://<Host> when Host is one of our loopback names
        (a browser on this machine or through `kubectl port-forward`)."""
        origins = set()
        if self.public_url:
            parts = urllib.parse.urlsplit(self.public_url)
            origins.add(f"{parts.scheme}://{parts.netloc}")
        host = (request.headers.get("Host") or "").strip().lower()
        if host and (not self.public_url or _loopback_host(host)):
            origins.add(f"http://{host}")
        return origins

    def check_host(self, request: Request) -> None:
        """Bound to loopback without a public URL: only loopback Host names are ours (a page
        on another site that re-points its DNS name at 127.0.0.1 must not reach us)."""
        if self.loopback_only and not self.public_url:
            host = (request.headers.get("Host") or "").strip().lower()
            if not _loopback_host(host):
                raise HTTPError(421, f"unexpected Host header {host[:100]!r}")

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        self.check_host(request)
        route, params, allowed = self._match(request)
        if route is None:
            if allowed:
                raise HTTPError(405, f"use {', '.join(sorted(allowed))} for {request.path}")
            raise HTTPError(404, f"no such page: {request.path}")
        request.params = params
        if not route.public:
            try:
                request.principal = self.auth.authenticate(request.client, request.headers)
                auth.authorize(request.principal, route.scopes)
            except AuthFailure as exc:
                headers = []
                if exc.challenge:
                    headers.append(("WWW-Authenticate", 'Basic realm="pipeline console"'))
                raise HTTPError(exc.status, exc.message, _headers=headers) from None
        if route.mutating:
            why = auth.cross_site(request.headers, self.allowed_origins(request))
            if why:
                raise HTTPError(403, f"cross-site request refused ({why})")
            if request.principal is not None and not self.auth.check_csrf(
                request.principal, request.headers.get(CSRF_HEADER)
            ):
                raise HTTPError(403, f"missing or wrong {CSRF_HEADER} header")
        elif route.records and request.principal is not None and request.principal.needs_csrf:
            # A link or <img> on another site must not make a signed-in browser record a
            # decision (and spend a break-glass grant) in its user's name.
            why = auth.cross_site(
                request.headers, self.allowed_origins(request), user_initiated=True
            )
            if why:
                raise HTTPError(403, f"cross-site request refused ({why})")
        page = getattr(self, "page_" + route.handler, None)
        if page is not None:
            return page(request)
        return getattr(self.api, route.handler)(request)

    def _match(self, request: Request) -> tuple[Route | None, dict[str, str], set[str]]:
        allowed: set[str] = set()
        for route in ROUTES:
            m = route.pattern.match(request.path)
            if m is None:
                continue
            if route.method == request.method or (
                route.method == "GET" and request.method == "HEAD"
            ):
                return route, m.groupdict(), allowed
            allowed.add(route.method)
        return None, {}, allowed

    # -- pages ---------------------------------------------------------------------------

    def render(self, name: str, **values: str) -> bytes:
        escaped = {k: html.escape(v, quote=True) for k, v in values.items()}
        return string.Template(self.templates[name]).substitute(escaped).encode("utf-8")

    def page_healthz(self, request: Request) -> Response:
        return json_response(200, {"ok": True})

    def page_index(self, request: Request) -> Response:
        body = self.render("index.html", mode=self.api.mode, user=request.principal.name)
        return Response(200, body, "text/html; charset=utf-8")

    def page_static(self, request: Request) -> Response:
        name = request.params["name"]
        data = self.static.get(name)
        ctype = _CONTENT_TYPES.get(Path(name).suffix)
        if data is None or ctype is None:
            raise HTTPError(404, f"no such asset: {name}")
        return Response(200, data, ctype)

    def page_login(self, request: Request) -> Response:
        token = request.query().get("token", "")
        if self.auth.login_token is None or not token or not self.auth.login_token.redeem(token):
            raise HTTPError(
                401,
                "this login link is not valid (it works once; restart `pipectl serve` for a "
                "new one, or sign in the way this console is configured)",
            )
        sid = self.auth.sessions.create(self.api.local_user)
        return Response(
            303, b"", "text/plain", [("Location", "/"), ("Set-Cookie", self.session_cookie(sid))]
        )

    def page_logout(self, request: Request) -> Response:
        principal = request.principal
        if principal is not None and principal.session_id:
            self.auth.sessions.drop(principal.session_id)
        return json_response(200, {"ok": True}, [("Set-Cookie", self.session_cookie("", 0))])

    def page_session(self, request: Request) -> Response:
        p = request.principal
        return json_response(
            200,
            {
                "user": p.name,
                "via": p.via,
                "csrf": self.auth.csrf_token(p),
                "mode": self.api.mode,
            },
        )

    def session_cookie(self, value: str, max_age: int | None = None) -> str:
        parts = [f"{auth.SESSION_COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        else:
            parts.append(f"Max-Age={int(self.auth.sessions.ttl)}")
        if self.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def error_page(self, status: int, message: str) -> bytes:
        return self.render(
            "error.html", status=str(status), reason=http.HTTPStatus(status).phrase, message=message
        )


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pipectl-console"
    sys_version = ""
    timeout = 60  # idle keep-alive connections and slow clients release their thread
    # Headers and body leave in one segment (flushed after each request) and small answers
    # are not held back by Nagle's algorithm waiting for a delayed ACK (~40 ms).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    server: ConsoleHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        app = self.server.app
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HTTPError(411, "send a Content-Length (chunked bodies are not accepted)")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return b""
        # One plain decimal number: int() would also take "1_7" or "+17", and a second
        # header could be the one a proxy in front framed the request by.
        raw = values[0].strip()
        if len(values) > 1 or not re.fullmatch(r"[0-9]{1,18}", raw):
            self.close_connection = True
            raise HTTPError(400, "bad Content-Length")
        length = int(raw)
        if length > app.max_body:
            self.close_connection = True  # do not read (or keep) the rest
            raise HTTPError(413, f"request body larger than {app.max_body} bytes")
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            body = None
        if body is None or len(body) != length:  # a slow client, or one that hung up
            self.close_connection = True
            raise HTTPError(408, "the request body did not arrive in time")
        return body

    def _serve(self, head: bool = False) -> None:
        app = self.server.app
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        request: Request | None = None
        try:
            if not path.startswith("/") or "\x00" in path:
                raise HTTPError(400, "bad request path")
            body = self._read_body()
            request = Request(
                method="GET" if head else self.command,
                path=urllib.parse.unquote(path, errors="strict") if "%" in path else path,
                query_string=query,
                headers=self.headers,
                client=self.client_address[0],
                body=body,
            )
            response = app.handle(request)
        except HTTPError as exc:
            response = self._error_response(request, exc)
        except UnicodeDecodeError:
            response = self._error_response(request, HTTPError(400, "bad request path"))
        except Exception as exc:  # a bug: log it, answer 500 without details
            print(f"pipectl serve: internal error on {path}: {exc!r}", file=sys.stderr)
            import traceback

            traceback.print_exc(file=sys.stderr)
            response = self._error_response(request, HTTPError(500, "internal error"))
        self._send(response, head)
        if app.access_log:
            took = (time.perf_counter() - started) * 1000
            who = request.principal.name if request and request.principal else "-"
            shown = path if path != "/login" else "/login?token=<redacted>"
            if path != "/login" and query and path.startswith("/api/"):
                shown = f"{path}?{query}"
            sys.stderr.write(
                f"{self.client_address[0]} {who} {self.command} {shown[:300]} "
                f"{response.status} {took:.1f}ms\n"
            )

    def _error_response(self, request: Request | None, exc: HTTPError) -> Response:
        headers = list(exc.extra.pop("_headers", []))
        wants_html = (
            request is not None
            and not request.path.startswith("/api/")
            and request.path != "/healthz"
            and "text/html" in (self.headers.get("Accept") or "")
        )
        if wants_html:
            body = self.server.app.error_page(exc.status, exc.message)
            return Response(exc.status, body, "text/html; charset=utf-8", headers)
        return json_response(exc.status, {"error": exc.message, **exc.extra}, headers)

    def _send(self, response: Response, head: bool) -> None:
        self.send_response(response.status)
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # our own access log above never prints query strings of /login

    def log_error(self, format: str, *args: Any) -> None:
        if self.server.app.access_log:
            sys.stderr.write(f"pipectl serve: {format % args}\n")


class ConsoleHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ConsoleApp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = __import__("socket").AF_INET6
        super().__init__(address, Handler)
        app.loopback_only = is_loopback(address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


def start_in_thread(server: ConsoleHTTPServer, poll_interval: float = 0.05) -> threading.Thread:
    """Serve in a daemon thread (tests, benchmarks); stop with server.shutdown()."""
    thread = threading.Thread(
        target=server.serve_forever, args=(poll_interval,), name="pipectl-console", daemon=True
    )
    thread.start()
    return thread


def build_authenticator(
    *,
    htpasswd: Path | None,
    kargo_token_file: Path | None,
    ci_token_file: Path | None,
    trusted_proxies: tuple[str, ...],
    proxy_user_header: str,
    host: str,
) -> auth.Authenticator:
    """Load every credential source now, so a bad file stops the start with a clear error."""
    if not htpasswd and not is_loopback(host):
        raise ConfigError(
            f"--host {host} is not a loopback address: refusing to serve without --htpasswd "
            "(the one-time login link is for 127.0.0.1 only)"
        )
    ht = None
    if htpasswd:
        ht = auth.Htpasswd(htpasswd)
        ht.load()
    kargo = ci = None
    if kargo_token_file:
        kargo = auth.TokenFile(kargo_token_file, "kargo")
        kargo.load()
    if ci_token_file:
        ci = auth.TokenFile(ci_token_file, "ci")
        ci.load()
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", proxy_user_header):
        raise ConfigError(f"--proxy-user-header {proxy_user_header!r} is not a header name")
    return auth.Authenticator(
        htpasswd=ht,
        kargo_token=kargo,
        ci_token=ci,
        trusted_proxies=auth.parse_networks(trusted_proxies),
        proxy_user_header=proxy_user_header,
        login_token=None if ht else auth.LoginToken(),
    )


def make_server(
    api: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    htpasswd: Path | None = None,
    kargo_token_file: Path | None = None,
    ci_token_file: Path | None = None,
    trusted_proxies: tuple[str, ...] = (),
    proxy_user_header: str = "X-Forwarded-User",
    public_url: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    access_log: bool = True,
) -> ConsoleHTTPServer:
    authenticator = build_authenticator(
        htpasswd=htpasswd,
        kargo_token_file=kargo_token_file,
        ci_token_file=ci_token_file,
        trusted_proxies=trusted_proxies,
        proxy_user_header=proxy_user_header,
        host=host,
    )
    if public_url is not None and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", public_url):
        raise ConfigError(f"--public-url {public_url!r}: expected http(s)://host[/path]")
    app = ConsoleApp(
        api, authenticator, public_url=public_url, max_body=max_body, access_log=access_log
    )
    try:
        return ConsoleHTTPServer((host, port), app)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


Clock = Callable[[], datetime]
