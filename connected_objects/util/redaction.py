"""Redaction: the one step every error text, log line and CLI field passes through before it leaves.

Credentials live sealed in the :class:`~connected_objects.util.secrets.Vault`. They
escape when something *quotes a request*: a provider, proxy or web firewall
whose error page echoes the headers and body it was sent, an exception that
repeats a URL with a token in it, a debug log of a form body. Whatever text
is about to be **stored** (``co_outbox.last_error``, ``co_inbox.last_error``,
``co_connection.status_reason``), **raised** (every
:class:`~connected_objects.exceptions.ConnectedObjectsError` redacts its
message when it is made), **logged** (:class:`RedactingFilter`) or
**printed** (the CLI) goes through :func:`redact` first. It removes:

- values of ``Authorization`` / ``Proxy-Authorization`` / ``Cookie`` headers,
  whatever the scheme, in header, JSON, form and Python-repr forms, and
  ``Bearer …`` / ``Basic …`` credentials wherever they stand;
- values of secret-looking keys (``access_token``, ``refresh_token``,
  ``id_token``, ``client_secret``, ``password``, ``api_key``, ``api_secret``,
  ``webhook_key``, ``verifier_token``, …) in JSON (``"access_token": "…"``),
  form and query bodies (``refresh_token=…``), headers (``X-Api-Key: …``) and
  XML (``<password>…</password>``);
- PEM private keys, JSON web tokens, passwords in URLs (``https://u:p@host``);
- every **known secret value**, wherever it appears, also URL-, JSON- and
  HTML-escaped: the values the vault opened or sealed, the client secrets,
  webhook keys and verifier tokens the providers were built with, the
  marketplaces' API keys (and the Basic credentials made of them). Register
  more with :func:`register_secrets` (process-wide) or :func:`secrets_scope`
  (for the current task only).

Example::

    >>> from connected_objects.util.redaction import redact, register_secrets
    >>> redact('401 from proxy. Request was: Authorization: Bearer eyJ0eXAi.abc.def')
    '401 from proxy. Request was: Authorization: [redacted]'
    >>> redact('{"access_token": "at-123", "expires_in": 1800}')
    '{"access_token": "[redacted]", "expires_in": 1800}'
    >>> redact("grant_type=refresh_token&refresh_token=rt-456&scope=accounting")
    'grant_type=refresh_token&refresh_token=[redacted]&scope=accounting'
    >>> register_secrets("tenant-key-7d1f9e", owner=None)
    >>> redact("echo: tenant-key-7d1f9e")
    'echo: [redacted]'
    >>> redact("create Customer failed with HTTP 400: Duplicate Name Exists Error (code 6240)")
    'create Customer failed with HTTP 400: Duplicate Name Exists Error (code 6240)'

Values shorter than :data:`MIN_SECRET_LENGTH` characters are not registered
(they would blank out ordinary words); the patterns above still catch them
where they stand after a key. Logging: :func:`install_log_filter` puts a
:class:`RedactingFilter` on the ``connected_objects``, ``httpx`` and
``httpcore`` loggers; the worker and the CLI call it when they start.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import json
import logging
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import overload
from urllib.parse import quote
from urllib.parse import quote_plus

__all__ = [
    "DEFAULT_LOGGERS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingFilter",
    "basic_credentials",
    "install_log_filter",
    "redact",
    "register_basic",
    "register_credentials",
    "register_secrets",
    "secrets_scope",
]

#: What a removed secret is replaced with.
REDACTED = "[redacted]"
#: Known values shorter than this are not registered (they would blank out ordinary words).
MIN_SECRET_LENGTH = 8
#: Credential keys whose values are not secret (so they stay readable in errors).
PUBLIC_CREDENTIAL_KEYS = frozenset(
    {"token_type", "scope", "expires_in", "expires_at", "x_refresh_token_expires_in", "realm_id", "tenant_id"}
)
#: The loggers :func:`install_log_filter` covers by default (and their existing children).
DEFAULT_LOGGERS = ("connected_objects", "httpx", "httpcore")
#: Unowned registrations kept at most (oldest forgotten first): rotated tokens stay redacted for a while.
MAX_REMEMBERED = 10_000

# -- the known values ------------------------------------------------------------------------


class _Registry:
    """Secret values known to this process: owned ones live as long as their owner, others in a bounded LRU.

    The look-up index (values by their first :data:`MIN_SECRET_LENGTH` characters) is kept up to date
    value by value, so registering or forgetting one costs the same with ten or ten thousand known.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[str, int] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._index: dict[str, tuple[str, ...]] = {}

    def add(self, values: Iterable[str], owner: object | None) -> None:
        variants = {v for value in values for v in _variants(value)}
        if not variants:
            return
        with self._lock:
            if owner is None:
                for v in variants:
                    self._recent[v] = None
                    self._recent.move_to_end(v)
                    self._indexed(v)
                while len(self._recent) > MAX_REMEMBERED:
                    self._forget(self._recent.popitem(last=False)[0])
            else:
                for v in variants:
                    self._owned[v] = self._owned.get(v, 0) + 1
                    self._indexed(v)
                weakref.finalize(owner, self._release, frozenset(variants))

    def _release(self, variants: frozenset[str]) -> None:
        with self._lock:
            for v in variants:
                left = self._owned.get(v, 0) - 1
                if left > 0:
                    self._owned[v] = left
                else:
                    self._owned.pop(v, None)
                    self._forget(v)

    def _indexed(self, value: str) -> None:
        """Add ``value`` to its bucket (longest first); the bucket is replaced, never changed in place."""
        key = value[:MIN_SECRET_LENGTH]
        bucket = self._index.get(key, ())
        if value not in bucket:
            self._index[key] = tuple(sorted((*bucket, value), key=len, reverse=True))

    def _forget(self, value: str) -> None:
        """Take ``value`` out of the index once neither an owner nor the recent list holds it."""
        if value in self._owned or value in self._recent:
            return
        key = value[:MIN_SECRET_LENGTH]
        rest = tuple(v for v in self._index.get(key, ()) if v != value)
        if rest:
            self._index[key] = rest
        else:
            self._index.pop(key, None)

    def index(self) -> Mapping[str, tuple[str, ...]]:
        """Known values by their first :data:`MIN_SECRET_LENGTH` characters, longest first."""
        return self._index


def _replace_known(text: str, index: Mapping[str, tuple[str, ...]]) -> str:
    """Replace every known value; one dictionary look-up per position, whatever the number of values."""
    if not index:
        return text
    parts: list[str] = []
    start = i = 0
    end = len(text) - MIN_SECRET_LENGTH
    get = index.get
    while i <= end:
        candidates = get(text[i : i + MIN_SECRET_LENGTH])
        hit = next((v for v in candidates if text.startswith(v, i)), None) if candidates else None
        if hit is None:
            i += 1
            continue
        parts += (text[start:i], REDACTED)
        i = start = i + len(hit)
    return "".join(parts) + text[start:] if parts else text


def _variants(value: object) -> set[str]:
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return set()
    found = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], html.escape(value)}
    return {v for v in found if len(v) >= MIN_SECRET_LENGTH}


def _alternation(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(values), key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


_registry = _Registry()
_scoped: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("connected_objects_secrets", default=())


def register_secrets(*values: str | None, owner: object | None = None) -> None:
    """Make :func:`redact` remove these exact values (and their URL/JSON/HTML-escaped forms) anywhere.

    With an ``owner`` (a provider, a marketplace configuration), the values are
    forgotten when the owner is garbage-collected; without one they are kept in
    a bounded most-recent list, so the tokens of every connection a worker used
    lately stay covered. ``None`` and values shorter than
    :data:`MIN_SECRET_LENGTH` are ignored.
    """
    _registry.add((v for v in values if v), owner)


def basic_credentials(user: str, password: str) -> str:
    """The base64 ``user:password`` of an HTTP Basic ``Authorization`` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def register_basic(user: str, password: str, *, owner: object | None = None) -> None:
    """Register an HTTP Basic password, its ``user:password`` pair and that pair's base64 form."""
    if password:
        register_secrets(password, f"{user}:{password}", basic_credentials(user, password), owner=owner)


def register_credentials(credentials: Mapping[str, Any], *, owner: object | None = None) -> None:
    """Register every string value of a credential mapping (nested too), except public keys such as ``expires_in``."""
    register_secrets(*_credential_values(credentials), owner=owner)


def _credential_values(credentials: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key, value in credentials.items():
        if str(key).lower() in PUBLIC_CREDENTIAL_KEYS:
            continue
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            found.extend(_credential_values(value))
    return found


@contextlib.contextmanager
def secrets_scope(*values: str | None) -> Iterator[None]:
    """Redact these values too, for the current thread or asyncio task, until the block ends.

    >>> with secrets_scope("only-in-this-call-1234"):
    ...     redact("saw only-in-this-call-1234")
    'saw [redacted]'
    >>> redact("saw only-in-this-call-1234")
    'saw only-in-this-call-1234'
    """
    extra = tuple(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH)
    token = _scoped.set(_scoped.get() + extra)
    try:
        yield
    finally:
        _scoped.reset(token)


# -- the patterns ----------------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)
# a value after a separator: an (escaped) quoted string, a bytes repr, or a bare run
_QUOTED = r"""\\"[^"\\]*\\"|b?"(?:[^"\\]|\\.)*"|b?'(?:[^'\\]|\\.)*'"""
_VALUE = r"""(?:""" + _QUOTED + r"""|[^\s&"',;<>\\(){}\[\]]+)"""
_SEP = r"""(?:\\?["']?\s*[:=]\s*|\\?["']\s*,\s*)"""
_AUTH_PARAM = r"""[\w-]+=(?:"[^"]*"|[^\s,"'<>\\]*)"""
# an Authorization value: quoted whole, or [scheme] (token68 | auth-params), as RFC 9110 §11.4 spells it
_HEADER = re.compile(
    r"(?<![\w-])(?P<key>(?:proxy-)?authorization)(?P<sep>"
    + _SEP
    + r")(?P<value>"
    + _QUOTED
    + r"|(?:[A-Za-z][\w.-]*[ \t]+)?(?:"
    + _AUTH_PARAM
    + r"""|[^\s"'<>\\,;&]+)(?:\s*,\s*"""
    + _AUTH_PARAM
    + r")*)",
    re.IGNORECASE,
)
# a cookie header: every cookie, up to the end of the line or the closing quote
_COOKIE = re.compile(
    r"(?<![\w-])(?P<key>set-cookie|cookie)(?P<sep>" + _SEP + r")(?P<value>" + _QUOTED + r"""|[^\r\n"'<>\\]+)""",
    re.IGNORECASE,
)
_KEY_NAMES = (
    r"[\w.-]*(?:token|secret|password|passwd|pwd|apikey|api[_.-]?key|private[_.-]?key|access[_.-]?key"
    r"|webhook[_.-]?key|signing[_.-]?key|assertion|verifier|credentials?)"
)
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<key>" + _KEY_NAMES + r")(?P<sep>" + _SEP + r")(?P<value>" + _VALUE + r")", re.IGNORECASE
)
_XML = re.compile(r"<(?P<tag>" + _KEY_NAMES + r")>[^<]*</(?P=tag)>", re.IGNORECASE)
# a credential after its scheme anywhere: 8+ token characters, one at least not a letter (so prose stays)
_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic|Digest|Negotiate|NTLM)\s+(?=[A-Za-z]*[0-9\-._~+/])[A-Za-z0-9\-._~+/]{8,}=*"
)
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_URL_PASSWORD = re.compile(r"(?P<head>://[^/\s:@]+):[^/\s@]+@")


def _quoted(value: str) -> str:
    """A redacted value in the same quotes as the original (so JSON and reprs stay well-formed)."""
    if value.startswith('\\"'):
        return f'\\"{REDACTED}\\"'
    prefix = value[:2] if value[:2] in ('b"', "b'") else value[:1]
    if prefix and prefix[-1] in "\"'" and len(value) > len(prefix):
        return f"{prefix}{REDACTED}{prefix[-1]}"
    return REDACTED


def _keep_key(match: re.Match[str]) -> str:
    return f"{match['key']}{match['sep']}{_quoted(match['value'])}"


@overload
def redact(text: str, *, secrets: Iterable[str] = ()) -> str: ...
@overload
def redact(text: None, *, secrets: Iterable[str] = ()) -> None: ...
def redact(text: str | None, *, secrets: Iterable[str] = ()) -> str | None:
    """``text`` with every credential it quotes replaced by :data:`REDACTED` (None stays None).

    ``secrets`` are extra exact values for this call only.
    """
    if not text:
        return text
    out = _PEM.sub("[redacted private key]", text)
    out = _replace_known(out, _registry.index())
    extra = _alternation(v for v in (*_scoped.get(), *secrets) if v)
    if extra is not None:
        out = extra.sub(REDACTED, out)
    out = _HEADER.sub(_keep_key, out)
    out = _COOKIE.sub(_keep_key, out)
    out = _KEY_VALUE.sub(_keep_key, out)
    out = _XML.sub(lambda m: f"<{m['tag']}>{REDACTED}</{m['tag']}>", out)
    out = _SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", out)
    out = _JWT.sub(REDACTED, out)
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", out)


# -- logging ---------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Redacts a record's message (with its arguments), exception text and stack text in place.

    A filter on a logger sees only the records logged *on that logger*, not its
    children's; :func:`install_log_filter` therefore puts one on each.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_co_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, "_co_redacted", True)  # noqa: B010 - LogRecord has no such attribute declared
        return True


_installed = RedactingFilter()


def install_log_filter(names: Iterable[str] = DEFAULT_LOGGERS) -> RedactingFilter:
    """Put the :class:`RedactingFilter` on these loggers and on every child logger they have now.

    Idempotent; call it again after importing modules that make new child
    loggers. Returns the filter (add it to your own handlers too if you like).
    """
    wanted = tuple(names)
    manager = logging.Logger.manager
    children = [n for n in list(manager.loggerDict) if any(n.startswith(f"{w}.") for w in wanted)]
    for name in (*wanted, *children):
        logger = logging.getLogger(name)
        if _installed not in logger.filters:
            logger.addFilter(_installed)
    return _installed
