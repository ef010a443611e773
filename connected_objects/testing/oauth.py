"""A fake OAuth 2.0 authorization server: the refresh grant, rotating refresh tokens, revocation.

Like the token endpoints of QuickBooks Online and Xero, each refresh returns a
new access token and a **new refresh token**, and the old refresh token stops
working: a second refresh with it gets ``400 {"error": "invalid_grant"}``,
which is what a double refresh by two workers would cost a real account.
:attr:`FakeAuthorizationServer.refreshes` counts the successful refreshes.

Example::

    >>> import asyncio, httpx
    >>> from connected_objects.oauth import refresh_grant
    >>> from connected_objects.testing.oauth import FakeAuthorizationServer
    >>> server = FakeAuthorizationServer("client", "s3cret")
    >>> first = server.issue()
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(server.app)) as http:
    ...         creds, _ = await refresh_grant(http, "http://auth/token", "client", "s3cret", first)
    ...         again = await http.post("http://auth/token", auth=("client", "s3cret"),
    ...                                 data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    ...         return creds["refresh_token"] != first["refresh_token"], again.status_code, again.json()
    >>> asyncio.run(main())
    (True, 400, {'error': 'invalid_grant'})
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any
from urllib.parse import parse_qs

__all__ = ["FakeAuthorizationServer"]


class FakeAuthorizationServer:
    """``POST /token`` (form-encoded, HTTP Basic client auth), as an ASGI app in :attr:`app`.

    :param expires_in: seconds an access token lives.
    :param delay: seconds the endpoint takes to answer, like a real one across the internet.
    """

    def __init__(self, client_id: str, client_secret: str, *, expires_in: int = 1800, delay: float = 0.0) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in, self.delay = expires_in, delay
        self.valid: set[str] = set()
        self.access: set[str] = set()
        self.refreshes = 0
        self.refused = 0
        self.app = Starlette(routes=[Route("/token", self._token, methods=["POST"])])

    def __repr__(self) -> str:
        return f"FakeAuthorizationServer(client_id={self.client_id!r}, refreshes={self.refreshes})"

    def issue(self) -> dict[str, str]:
        """Credentials as an authorization would give them (access and refresh token)."""
        refresh, access = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.valid.add(refresh)
        self.access.add(access)
        return {"access_token": access, "refresh_token": refresh}

    def revoke(self, refresh_token: str) -> None:
        """The user disconnected the app at the provider."""
        self.valid.discard(refresh_token)

    async def _token(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        header = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if not secrets.compare_digest(header, f"Basic {expected}"):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if self.delay:
            await asyncio.sleep(self.delay)
        token = str(form.get("refresh_token", ""))
        if token not in self.valid:
            self.refused += 1
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.valid.discard(token)  # rotation: the old refresh token is spent
        self.refreshes += 1
        fresh = self.issue()
        return JSONResponse({**fresh, "token_type": "Bearer", "expires_in": self.expires_in})
