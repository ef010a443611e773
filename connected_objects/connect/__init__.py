"""Connect an account: the OAuth 2.0 authorization-code flow, reconnect and disconnect, in the core.

:class:`ConnectFlow` is the part an application mounts (see
:mod:`connected_objects.connect.flow`); :mod:`~connected_objects.connect.state`
signs and checks the ``state`` and its browser binding;
:mod:`~connected_objects.connect.pending` keeps the authorizations under way;
:mod:`~connected_objects.connect.pages` renders the picker and the refusals.
Providers take part by satisfying :class:`~connected_objects.provider.AccountConnector`.

    >>> from connected_objects.connect import ConnectFlow
    >>> ConnectFlow.callback_path("/connect", "quickbooks")
    '/connect/quickbooks/callback'
"""

from __future__ import annotations

from .flow import ChooseHook
from .flow import ConnectFlow
from .flow import Owner
from .flow import OwnerHook

__all__ = ["ChooseHook", "ConnectFlow", "Owner", "OwnerHook"]
