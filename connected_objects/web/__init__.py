"""Inbound HTTP: a sans-I/O webhook core and thin ASGI and WSGI adapters.

Providers contribute :class:`~connected_objects.web.core.Route` objects; the hub
collects them into a :class:`~connected_objects.web.core.HttpApp`, which you
serve with :class:`~connected_objects.web.asgi.ASGIAdapter` (FastAPI, Starlette)
or :class:`~connected_objects.web.wsgi.WSGIAdapter` (Flask, Django).

Example::

    >>> from connected_objects.web import ASGIAdapter, Response, Route, HttpApp
    >>> app = ASGIAdapter(HttpApp([Route("GET", "/ping", lambda r: Response.json(200, "pong"))]))
    >>> app
    ASGIAdapter(routes=1)
"""

from __future__ import annotations

from .asgi import ASGIAdapter
from .core import HttpApp
from .core import HTTPError
from .core import Request
from .core import Response
from .core import Route
from .wsgi import WSGIAdapter

__all__ = ["ASGIAdapter", "HTTPError", "HttpApp", "Request", "Response", "Route", "WSGIAdapter"]
