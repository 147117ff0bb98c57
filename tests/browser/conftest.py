"""The browser tests' shared Chromium (one per test session: starting it is the slow part)."""

from __future__ import annotations

import pytest
from tabkit import CHROMIUM_ARGS, chromium_path, unavailable


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    path = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
