"""The application's own login: a signed session cookie naming the user. SSO ends here too."""

from __future__ import annotations

import hashlib
import hmac
import os

COOKIE = "session"


def key() -> bytes:
    """The application's signing key (``INVOICING_SECRET``)."""
    return _key()


def _key() -> bytes:
    return os.environ.get("INVOICING_SECRET", "change-me-in-production").encode()


def session_cookie(user_id: int) -> str:
    """The cookie value that signs ``user_id`` in."""
    signature = hmac.new(_key(), str(user_id).encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{signature}"


def user_from_cookie(value: str | None) -> int | None:
    """The signed-in user's id, or None for a missing or forged cookie."""
    user_id, _, signature = (value or "").partition(".")
    if not user_id.isdigit():
        return None
    expected = hmac.new(_key(), user_id.encode(), hashlib.sha256).hexdigest()
    return int(user_id) if hmac.compare_digest(signature, expected) else None
