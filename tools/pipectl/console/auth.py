"""Who is asking: htpasswd (bcrypt), trusted-proxy header, scoped bearer tokens, sessions, CSRF.

Nothing here knows about HTTP handlers; `server` passes in the client address, the headers and
the cookies, and gets back a `Principal` or an `AuthFailure` carrying the status to send.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipectl.errors import ConfigError

SESSION_COOKIE = "pipectl_session"
SESSION_TTL_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
MAX_PROXY_USER_LEN = 256
_ACCEPTED_BCRYPT = ("$2y$", "$2b$")

# Scopes a route may admit. Users are people (htpasswd, proxy header, session cookie).
USER = "user"
KARGO = "kargo"
CI = "ci"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `kind` is user/kargo/ci; `via` says how it proved it."""

    kind: str
    name: str
    via: str  # basic | proxy | session | token
    session_id: str | None = None

    @property
    def actor(self) -> str:
        """What the audit log records as `actor` for this caller."""
        if self.kind == USER:
            return self.name
        return f"token:{self.kind}"

    @property
    def needs_csrf(self) -> bool:
        """Ambient credentials (cookie, cached Basic, proxy header) can be replayed cross-site."""
        return self.via != "token"


class AuthFailure(Exception):
    """Authentication (401) or authorization (403) refused; message is safe to show."""

    def __init__(self, status: int, message: str, *, challenge: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.challenge = challenge


class WatchedFile:
    """A small file re-read only when its stat identity changes (Secret rotation swaps the
    `..data` symlink, so inode, size or mtime move). `parse` turns bytes into the cached value;
    if it raises, the previous value is dropped and `value()` returns None (fail closed)."""

    def __init__(self, path: Path, parse: Callable[[bytes], object]) -> None:
        self.path = Path(path)
        self._parse = parse
        self._lock = threading.Lock()
        self._key: tuple[int, int, int, int] | None = None
        self._value: object | None = None
        self.error: str | None = None

    def load(self) -> object:
        """Read now and raise ConfigError if unreadable or invalid (startup check)."""
        try:
            data = self.path.read_bytes()
            st = os.stat(self.path)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        value = self._parse(data)
        with self._lock:
            self._key = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
            self._value = value
            self.error = None
        return value

    def value(self) -> object | None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            with self._lock:
                self._key, self._value = None, None
                self.error = f"{self.path}: {exc.strerror or exc}"
            return None
        key = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key == self._key:
                return self._value
        try:
            value = self._parse(self.path.read_bytes())
        except (OSError, ConfigError) as exc:
            message = str(exc)
            with self._lock:
                self._key, self._value, self.error = key, None, message
            print(f"pipectl serve: {message}; refusing its credentials", file=sys.stderr)
            return None
        with self._lock:
            self._key, self._value, self.error = key, value, None
        return value


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class TokenFile:
    """A bearer token in a mounted Secret file (surrounding whitespace ignored)."""

    def __init__(self, path: Path, label: str) -> None:
        self.label = label
        self._file = WatchedFile(Path(path), self._parse)

    def _parse(self, data: bytes) -> bytes:
        token = data.strip()
        if not token:
            raise ConfigError(f"{self._file.path}: {self.label} token file is empty")
        if len(token) < 16:
            raise ConfigError(
                f"{self._file.path}: {self.label} token is shorter than 16 characters"
            )
        return _digest(token)

    def load(self) -> None:
        self._file.load()

    def matches(self, presented: str) -> bool:
        expected = self._file.value()
        given = _digest(presented.encode("utf-8", "surrogateescape"))
        if not isinstance(expected, bytes):
            hmac.compare_digest(given, given)  # same work either way
            return False
        return hmac.compare_digest(expected, given)


def parse_htpasswd(data: bytes, path: Path) -> dict[str, bytes]:
    """`user:$2y$...` lines; bcrypt only. Anything else is a ConfigError naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise ConfigError(f"{path}:{number}: expected 'user:hash'")
        if not hashed.startswith(_ACCEPTED_BCRYPT) or len(hashed) != 60:
            kind = hashed.split("$")[1] if hashed.startswith("$") and "$" in hashed[1:] else "?"
            raise ConfigError(
                f"{path}:{number}: user {user!r} has an unsupported hash type ({kind!r}); "
                "only bcrypt ($2y$/$2b$) is accepted — create it with `htpasswd -B`"
            )
        if user in users:
            raise ConfigError(f"{path}:{number}: user {user!r} listed twice")
        # $2y$ (Apache) and $2b$ are the same algorithm; the bcrypt module speaks $2b$.
        users[user] = ("$2b$" + hashed[4:]).encode("ascii")
    if not users:
        raise ConfigError(f"{path}: no users")
    return users


class Htpasswd:
    """HTTP Basic against a bcrypt htpasswd file, re-read when it changes.

    bcrypt costs tens of milliseconds on purpose; a browser sends Basic credentials with every
    request, so successful checks are remembered under a keyed digest of (user, password,
    stored hash) — a changed password or file invalidates the entry by construction.
    """

    _CACHE_SIZE = 1024

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = WatchedFile(self.path, lambda data: parse_htpasswd(data, self.path))
        self._key = secrets.token_bytes(32)
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        import bcrypt  # checked at startup, not on the CLI paths that never serve

        self._bcrypt = bcrypt
        self._dummy = bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(rounds=10))

    def load(self) -> None:
        self._file.load()

    def check(self, user: str, password: str) -> bool:
        users = self._file.value()
        if not isinstance(users, dict):
            return False
        stored = users.get(user)
        pw = password.encode("utf-8", "surrogateescape")
        if stored is None:
            self._bcrypt.checkpw(pw, self._dummy)  # no user-enumeration by timing
            return False
        memo = hmac.new(self._key, b"\0".join((user.encode(), pw, stored)), "sha256").digest()
        with self._lock:
            if memo in self._ok:
                self._ok.move_to_end(memo)
                return True
        try:
            ok = self._bcrypt.checkpw(pw, stored)
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                self._ok[memo] = None
                while len(self._ok) > self._CACHE_SIZE:
                    self._ok.popitem(last=False)
        return ok


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class SessionStore:
    def __init__(self, ttl: float = SESSION_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = Session(user, secrets.token_urlsafe(32), time.time() + self.ttl)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid

    def get(self, sid: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if session.expires <= time.time():
                del self._sessions[sid]
                return None
            return session

    def drop(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)


class LoginToken:
    """The one-time token printed to the terminal in local mode without htpasswd."""

    def __init__(self) -> None:
        self._token: str | None = secrets.token_urlsafe(32)
        self._lock = threading.Lock()

    @property
    def token(self) -> str | None:
        return self._token

    def redeem(self, presented: str) -> bool:
        with self._lock:
            expected = self._token
            if expected is None:
                return False
            ok = hmac.compare_digest(_digest(expected.encode()), _digest(presented.encode()))
            if ok:
                self._token = None
            return ok


def parse_networks(
    cidrs: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"--trusted-proxy {cidr!r}: not an IP network (e.g. 10.42.0.0/16)"
            ) from None
    return tuple(nets)


def _client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_cookies(header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip()
    return cookies


@dataclass
class Authenticator:
    """Resolves a request's credentials to a Principal. Order: Authorization header (Bearer or
    Basic; a bad one is final), the proxy header from a trusted address, the session cookie."""

    htpasswd: Htpasswd | None = None
    kargo_token: TokenFile | None = None
    ci_token: TokenFile | None = None
    trusted_proxies: tuple = ()
    proxy_user_header: str = "X-Forwarded-User"
    sessions: SessionStore | None = None
    login_token: LoginToken | None = None

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = SessionStore()
        self._csrf_key = secrets.token_bytes(32)

    @property
    def realm_challenge(self) -> bool:
        return self.htpasswd is not None

    def authenticate(self, client_address: str, headers: Mapping[str, str]) -> Principal:
        authz = headers.get("Authorization")
        if authz:
            scheme, _, credentials = authz.strip().partition(" ")
            scheme = scheme.lower()
            credentials = credentials.strip()
            if scheme == "bearer" and credentials:
                for token, kind in ((self.kargo_token, KARGO), (self.ci_token, CI)):
                    if token is not None and token.matches(credentials):
                        return Principal(kind, kind, "token")
                raise AuthFailure(401, "invalid bearer token")
            if scheme == "basic" and credentials and self.htpasswd is not None:
                user, password = _decode_basic(credentials)
                if user is not None and self.htpasswd.check(user, password):
                    return Principal(USER, user, "basic")
                raise AuthFailure(401, "invalid user name or password", challenge=True)
            raise AuthFailure(
                401, "unsupported Authorization scheme", challenge=self.realm_challenge
            )
        proxy_user = headers.get(self.proxy_user_header)
        if proxy_user is not None and self.trusted_proxies:
            ip = _client_ip(client_address)
            if ip is not None and any(ip in net for net in self.trusted_proxies):
                get_all = getattr(headers, "get_all", None)
                if get_all is not None and len(get_all(self.proxy_user_header) or ()) > 1:
                    # A proxy that appends leaves the client's own value first: trust neither.
                    raise AuthFailure(401, f"{self.proxy_user_header} header given more than once")
                name = proxy_user.strip()
                if not name or len(name) > MAX_PROXY_USER_LEN or not name.isprintable():
                    raise AuthFailure(401, f"invalid {self.proxy_user_header} header")
                return Principal(USER, name, "proxy")
        sid = parse_cookies(headers.get("Cookie")).get(SESSION_COOKIE)
        if sid:
            session = self.sessions.get(sid)
            if session is not None:
                return Principal(USER, session.user, "session", session_id=sid)
        if self.htpasswd is None and self.login_token is not None:
            raise AuthFailure(
                401, "sign in with the one-time link `pipectl serve` printed in its terminal"
            )
        raise AuthFailure(401, "authentication required", challenge=self.realm_challenge)

    def csrf_token(self, principal: Principal) -> str | None:
        if not principal.needs_csrf:
            return None
        if principal.session_id is not None:
            session = self.sessions.get(principal.session_id)
            return session.csrf if session else None
        # Basic / proxy users have no server session: a keyed token per identity and process.
        msg = f"{principal.via}\0{principal.name}".encode()
        return hmac.new(self._csrf_key, msg, "sha256").hexdigest()

    def check_csrf(self, principal: Principal, presented: str | None) -> bool:
        if not principal.needs_csrf:
            return True
        expected = self.csrf_token(principal)
        if not expected or not presented:
            return False
        return hmac.compare_digest(_digest(expected.encode()), _digest(presented.encode()))


def _decode_basic(credentials: str) -> tuple[str | None, str]:
    import base64
    import binascii

    try:
        raw = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    user, sep, password = raw.partition(":")
    if not sep or not user:
        return None, ""
    return user, password


def authorize(principal: Principal, scopes: frozenset[str]) -> None:
    """403 unless the caller's kind is admitted by the route."""
    if principal.kind not in scopes:
        what = "a user" if principal.kind == USER else f"the {principal.kind} token"
        raise AuthFailure(403, f"{what} may not use this endpoint")


def cross_site(
    headers: Mapping[str, str], allowed_origins: Iterable[str], *, user_initiated: bool = False
) -> str | None:
    """Why a state-changing request looks cross-site, or None. Browsers send Sec-Fetch-Site and
    Origin on POST; clients that send neither (curl, Kargo) are not browsers and carry no
    ambient credentials worth forging — the CSRF token check still applies to them.
    `user_initiated` also admits `Sec-Fetch-Site: none` (a URL typed into the address bar)."""
    site = headers.get("Sec-Fetch-Site")
    ok_sites = ("same-origin", "none") if user_initiated else ("same-origin",)
    if site is not None and site.strip().lower() not in ok_sites:
        return f"Sec-Fetch-Site: {site.strip()[:40]}"
    origin = headers.get("Origin")
    if origin is not None:
        origin = origin.strip().rstrip("/").lower()
        if origin not in {o.rstrip("/").lower() for o in allowed_origins}:
            return f"Origin {origin[:100]} is not this console"
    return None
