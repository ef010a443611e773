"""The sans-I/O web core: strict paths, no exception escapes, bounded bodies; the same through both adapters."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from connected_objects.web import ASGIAdapter
from connected_objects.web import WSGIAdapter
from connected_objects.web.core import HttpApp
from connected_objects.web.core import HTTPError
from connected_objects.web.core import Request
from connected_objects.web.core import Response
from connected_objects.web.core import Route
from connected_objects.web.core import parse_json_object

SECRET = "s3cr3t-in-an-exception-message"


def echo(request: Request) -> Response:
    return Response.json(200, {"params": dict(request.params), "body": parse_json_object(request)})


def test_a_route_that_leaves_a_path_parameter_unchecked_cannot_be_built():
    with pytest.raises(ValueError, match=r"does not check its path parameter\(s\) account"):
        Route("POST", "/{marketplace}/{account}", echo, params={"marketplace": bool})
    with pytest.raises(ValueError, match="has no path parameter"):
        Route("POST", "/fixed", echo, params={"marketplace": bool})


def test_a_refused_path_parameter_never_reaches_the_handler():
    reached = []

    def handler(request: Request) -> Response:
        reached.append(request.params)
        return Response.empty(204)

    denied = Response.json(401, {"error": "invalid credentials"})
    app = HttpApp(
        [
            Route("POST", "/{m}/open", handler, params={"m": {"known"}.__contains__}),
            Route("POST", "/{m}/closed", handler, params={"m": {"known"}.__contains__}, refusal=denied),
        ]
    )
    assert app.handle(Request("POST", "/known/open", {}, b"")).status == 204
    assert app.handle(Request("POST", "/other/open", {}, b"")).status == 404
    assert app.handle(Request("POST", "/other/closed", {}, b"")) == denied
    assert app.handle(Request("GET", "/other/open", {}, b"")).status == 405  # as for a known name
    assert reached == [{"m": "known"}]


def test_an_unexpected_exception_is_a_generic_500_with_the_traceback_logged(caplog):
    def broken(request: Request) -> Response:
        raise RuntimeError(f"database password was {SECRET}")

    app = HttpApp([Route("POST", "/broken", broken)])
    with caplog.at_level(logging.ERROR, logger="connected_objects.web.core"):
        response = app.handle(Request("POST", "/broken", {}, b"{}"))
    assert response.status == 500
    assert SECRET.encode() not in response.body and b"RuntimeError" not in response.body
    assert b"server's log" in response.body
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_a_recursion_error_from_a_handler_is_a_500_not_an_escape():
    def deep(request: Request) -> Response:
        raise RecursionError("maximum recursion depth exceeded")

    assert HttpApp([Route("POST", "/deep", deep)]).handle(Request("POST", "/deep", {}, b"")).status == 500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "deeper than 64 levels"),
        (b'{"a":' * 100_000, "deeper than 64 levels"),
        (b"1" * 5000, "not JSON"),
        (b'{"n": NaN}', "not JSON"),
        (b'{"n": -Infinity}', "not JSON"),
        (b'{"n": 1e400}', "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        (b'{"id": "\\u0000"}', "NUL character or an unpaired surrogate"),
        (b'{"\\ud800": 1}', "NUL character or an unpaired surrogate"),
    ],
)
def test_bodies_the_bounded_reader_refuses_are_400_with_a_generic_message(body, message):
    response = HttpApp([Route("POST", "/echo", echo)]).handle(Request("POST", "/echo", {}, body))
    assert response.status == 400
    assert message in response.body.decode()
    assert len(response.body) < 100  # the body is never quoted back


def test_depth_is_counted_outside_strings_only():
    nested = b'{"a": "' + b"[" * 1000 + b'", "b": [[[1]]], "c": "\\"]]]{{{"}'
    response = HttpApp([Route("POST", "/echo", echo)]).handle(Request("POST", "/echo", {}, nested))
    assert response.status == 200


def asgi_call(app: HttpApp, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": headers}
    asyncio.run(ASGIAdapter(app)(scope, receive, send))
    return sent[0]["status"]


def wsgi_call(app: HttpApp, content_length: str, body: bytes) -> int:
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/echo",
        "CONTENT_LENGTH": content_length,
        "wsgi.input": io.BytesIO(body),
    }
    WSGIAdapter(app)(environ, lambda status, headers: statuses.append(status))
    return int(statuses[0].split()[0])


@pytest.mark.parametrize("declared", ["\u00b3", "\u0663", "9" * 5000, "-1", "1 2"])
def test_a_content_length_that_is_not_ascii_digits_is_400_or_413_in_both_adapters(declared):
    app = HttpApp([Route("POST", "/echo", echo)])
    # ASGI header bytes decode as latin-1: b"\xb3" is "³", which int() accepts and HTTP does not.
    raw = declared.encode("latin-1", "replace")
    assert asgi_call(app, [(b"content-length", raw)], b"{}") in (400, 413)
    assert wsgi_call(app, declared, b"{}") in (400, 413)


def test_http_errors_keep_their_status_and_headers():
    def refuse(request: Request) -> Response:
        raise HTTPError(401, "invalid credentials", [("www-authenticate", "Basic")])

    response = HttpApp([Route("GET", "/x", refuse)]).handle(Request("GET", "/x", {}, b""))
    assert (response.status, dict(response.headers)["www-authenticate"]) == (401, "Basic")


def test_the_logged_traceback_of_a_failed_request_holds_no_registered_secret(caplog):
    from connected_objects.util.redaction import register_secrets

    token = "s3cr3t-verifier-token-0042"
    register_secrets(token)

    def broken(request: Request) -> Response:
        raise RuntimeError(f"the verifier {token} was refused")

    app = HttpApp([Route("POST", "/broken", broken)])
    with caplog.at_level(logging.ERROR, logger="connected_objects.web.core"):
        assert app.handle(Request("POST", "/broken", {}, b"{}")).status == 500
    assert token not in caplog.text and "RuntimeError" in caplog.text
