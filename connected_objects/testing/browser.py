"""A real browser for tests: Playwright driving the system's Chromium, headless, in a fresh profile.

Playwright's own browser download needs the internet; here Debian's
``chromium`` package is used (``apt-get install chromium``, ``/usr/bin/chromium``),
launched with the flags that keep it off the network except for the loopback
servers under test. Without Chromium (or the ``playwright`` package) the test
is skipped, or fails when ``CO_TEST_REQUIRE`` names ``chromium`` (as CI sets it).

Example::

    def test_the_button(live_app_url):
        with chromium() as browser:
            page = browser.new_page()
            page.goto(live_app_url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["CHROMIUM", "FLAGS", "chromium"]

#: Where Debian's package puts the browser (``CO_TEST_CHROMIUM`` names another).
CHROMIUM = "/usr/bin/chromium"
#: Headless, no sandbox (containers), no GPU, and nothing that would reach the network by itself.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _unavailable(reason: str) -> None:
    wanted = {b.strip() for b in os.environ.get("CO_TEST_REQUIRE", "").split(",")}
    if "chromium" in wanted:
        pytest.fail(f"CO_TEST_REQUIRE names chromium but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of a fresh Chromium profile (closed, and its profile removed, after)."""
    path = os.environ.get("CO_TEST_CHROMIUM", CHROMIUM)
    if not (os.path.exists(path) or shutil.which(path)):
        _unavailable(f"the browser tests need Chromium at {path}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the browser tests need the playwright package (the dev group has it: uv sync)")
    profile = tempfile.mkdtemp(prefix="co-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=path, headless=True, args=list(FLAGS)
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
