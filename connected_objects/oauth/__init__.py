"""OAuth 2.0 in the core: tokens kept fresh, and the flow that connects an account.

:mod:`~connected_objects.oauth.tokens` refreshes a connection's access token before it expires,
once across all workers (a row lock); :func:`keep_alive` (:mod:`~connected_objects.oauth.keepalive`)
renews an idle connection's refresh token before it dies, a worker's periodic chore. The rest is
the "connect an account" flow: the authorization-code flow, reconnect and disconnect.

:class:`ConnectFlow` is the part an application mounts (see
:mod:`connected_objects.oauth.flow`); :mod:`~connected_objects.oauth.state`
signs and checks the ``state`` and its browser binding;
:mod:`~connected_objects.oauth.pending` keeps the authorizations under way;
:mod:`~connected_objects.oauth.pages` renders the picker and the refusals.
The token requests themselves are the provider's, with the helpers in
:mod:`connected_objects.plugin.oauth2`. Providers take part by satisfying
:class:`~connected_objects.plugin.provider.AccountConnector`.

    >>> from connected_objects.oauth import ConnectFlow
    >>> ConnectFlow.callback_path("/connect", "quickbooks")
    '/connect/quickbooks/callback'
"""

from __future__ import annotations

from .flow import ChooseHook
from .flow import ConnectFlow
from .flow import Owner
from .flow import OwnerHook
from .keepalive import KeepAliveReport
from .keepalive import keep_alive

__all__ = ["ChooseHook", "ConnectFlow", "KeepAliveReport", "Owner", "OwnerHook", "keep_alive"]
