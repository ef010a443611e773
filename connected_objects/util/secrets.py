"""Credentials at rest: a :class:`Vault` encrypts them with Fernet keys you hold.

``co_connection.credentials`` never holds plain text. Give the vault one or more
Fernet keys (newest first): it encrypts with the first and decrypts with any,
so keys rotate without downtime (cryptography's ``MultiFernet``). A vault
never shows its keys, and errors never quote a secret.

Example::

    >>> from connected_objects.util.secrets import Vault
    >>> vault = Vault([Vault.generate_key()])
    >>> token = vault.seal({"access_token": "s3cret"})
    >>> b"s3cret" in token
    False
    >>> vault.open(token)
    {'access_token': 's3cret'}
    >>> vault
    Vault(keys=1)

Every value the vault opens or seals is registered with
:func:`connected_objects.util.redaction.register_credentials`, so an error page or
log line that quotes a connection's token shows ``[redacted]`` instead::

    >>> from connected_objects.util.redaction import redact
    >>> redact("upstream echoed: " + vault.open(vault.seal({"access_token": "at-9f8e7d6c"}))["access_token"])
    'upstream echoed: [redacted]'

Keys usually come from the environment: ``Vault.from_env()`` reads
``CONNECTED_OBJECTS_SECRET_KEYS`` (comma-separated, newest first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet

from ..exceptions import ConfigurationError
from .redaction import register_credentials

__all__ = ["SECRET_KEYS_ENV", "Vault"]

SECRET_KEYS_ENV = "CONNECTED_OBJECTS_SECRET_KEYS"  # noqa: S105 - a variable name


class Vault:
    """Encrypts and decrypts credential mappings with rotating Fernet keys."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ConfigurationError(
                f"a Vault needs at least one Fernet key; make one with Vault.generate_key() and set {SECRET_KEYS_ENV}"
            )
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "a Vault key is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                "make one with Vault.generate_key()"
            ) from exc
        self._count = len(keys)

    @classmethod
    def from_env(cls, variable: str = SECRET_KEYS_ENV) -> Vault:
        """A vault from comma-separated keys in an environment variable."""
        raw = os.environ.get(variable, "")
        return cls([k.strip() for k in raw.split(",") if k.strip()])

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key."""
        return Fernet.generate_key().decode()

    def seal(self, credentials: Mapping[str, Any]) -> bytes:
        """Encrypt a JSON-serialisable mapping; its values become known secrets (:mod:`.redaction`)."""
        register_credentials(credentials)
        return self._fernet.encrypt(json.dumps(dict(credentials), separators=(",", ":")).encode())

    def open(self, token: bytes) -> dict[str, Any]:
        """Decrypt what :meth:`seal` made."""
        try:
            value = json.loads(self._fernet.decrypt(token))
        except InvalidToken as exc:
            raise ConfigurationError(
                "stored credentials cannot be decrypted with the configured keys; "
                f"add the key they were sealed with to {SECRET_KEYS_ENV}"
            ) from exc
        if not isinstance(value, dict):  # pragma: no cover - only seal() writes these
            raise ConfigurationError("stored credentials are not a mapping")
        register_credentials(value)
        return value

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt ``token`` with the newest key."""
        return self._fernet.rotate(token)

    def __repr__(self) -> str:
        return f"Vault(keys={self._count})"
