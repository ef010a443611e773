"""The bottom layer: small utilities every other part of the library uses.

One concept per module, none of them importing anything of ours above
:mod:`connected_objects.exceptions`:

- :mod:`~connected_objects.util.db`: the database handle (:data:`DB`), patient retries on a
  lost connection, and which driver errors count as the database being away;
- :mod:`~connected_objects.util.bulk`: ``executemany`` in chunks a driver accepts;
- :mod:`~connected_objects.util.values`: JSON with exact decimals and dates;
- :mod:`~connected_objects.util.hashing`: content hashes and idempotency keys;
- :mod:`~connected_objects.util.redaction`: secrets scrubbed from every error, log line and output;
- :mod:`~connected_objects.util.secrets`: the :class:`~connected_objects.util.secrets.Vault` that
  seals credentials at rest;
- :mod:`~connected_objects.util.http`: helpers for providers' HTTP answers;
- :mod:`~connected_objects.util.retry`: the backoff of both engines (:class:`RetryPolicy`);
- :mod:`~connected_objects.util.settings`: typed settings read from the environment;
- :mod:`~connected_objects.util.suggest`: "did you mean …?" for names.

    >>> from connected_objects.util.values import dumps
    >>> from decimal import Decimal
    >>> dumps({"amount": Decimal("10.10")})
    b'{"amount":10.10}'
"""

from __future__ import annotations

__all__: list[str] = []
