"""A real browser for tests: Debian's Chromium driven by Playwright, or a skip that says how to get one.

:func:`chromium` launches ``/usr/bin/chromium`` (or ``CO_TEST_CHROMIUM``)
headless with a fresh profile and everything that would phone home switched
off, and yields a Playwright ``BrowserContext`` on a fresh profile
(``--user-data-dir`` in a temporary directory, removed afterwards). Without the browser or the
``playwright`` package the test is skipped with the fix in the reason, or
fails when ``CO_TEST_REQUIRE`` names ``chromium`` (CI sets it). Playwright's
own browser downloads are never used.

Example (a pytest fixture)::

    @pytest.fixture(scope="module")
    def browser():
        with chromium() as launched:
            yield launched
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["CHROMIUM", "FLAGS", "chromium"]

#: Where Debian's ``chromium`` package puts the browser.
CHROMIUM = "/usr/bin/chromium"
#: Headless, no sandbox (containers), and nothing that would reach the network by itself.
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


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium (a Playwright ``BrowserContext``); closed, with its profile removed, afterwards."""
    path = os.environ.get("CO_TEST_CHROMIUM", CHROMIUM)
    if not os.path.exists(path):
        _unavailable(f"browser tests need Chromium at {path}: apt-get install -y chromium (or set CO_TEST_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("browser tests need the playwright package: uv sync (it is in the dev group)")
    profile = tempfile.mkdtemp(prefix="co-chromium-")
    try:
        with sync_playwright() as driver:
            # a persistent context on a fresh, throwaway profile: Playwright passes it as --user-data-dir
            context = driver.chromium.launch_persistent_context(
                profile, executable_path=path, args=list(FLAGS), headless=True
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
