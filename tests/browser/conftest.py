"""Real-browser tests of the Django admin: Playwright's sync API driving Debian's Chromium.

Fixtures:

* ``browser`` (session): one headless Chromium for the whole run. Skips the test when Chromium
  or the ``playwright`` package is missing, and fails it instead when ``CI=true``.
  ``scripts/install-browser.sh`` installs Chromium from Debian's packages; never run
  ``playwright install`` (it downloads a browser build, which this network cannot reach).
* ``page`` (function): a fresh context (1440x900, en-US, Europe/Berlin so an agent's own time
  zone differs from the server's UTC, clipboard permissions) and a page; closed after the test.
* ``login``: ``login(page, live_server, username, password)`` logs in through the admin login
  form and asserts that it worked.

Every test under ``tests/browser`` gets the ``browser`` marker and runs after the rest of the
suite (see ``pytest_collection_modifyitems``).
"""

import os
import re
from pathlib import Path

import pytest

# The Debian package's real binary; /usr/bin/chromium is a shell wrapper around it that adds
# flags from /etc/chromium.d (extensions, GPU rasterization) we don't want under Playwright.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused by this
# closed network (and slow the start); --no-sandbox because the tests run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    """Mark the tests of this folder ``browser`` and move them to the end of the run.

    The hook sees the whole session's items, so it filters on the path. Moving them last
    matters: while Playwright's sync API is started it keeps an asyncio loop running in the
    main thread (see ``browser``), which every test after the first browser test would see.
    """
    browser_items, other_items = [], []
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            browser_items.append(item)
        else:
            other_items.append(item)
    items[:] = other_items + browser_items


def _unavailable(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("browser tests need the 'playwright' package: pip install playwright")
    executable = next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None)
    if executable is None:
        _unavailable(
            "browser tests need Debian's Chromium at /usr/bin/chromium: "
            "run scripts/install-browser.sh (never 'playwright install')"
        )

    # Playwright's sync API runs an asyncio event loop in the main thread from start() to
    # stop(), so Django raises SynchronousOnlyOperation for ORM calls made by the test (and by
    # pytest-django's database fixtures) meanwhile. DJANGO_ALLOW_ASYNC_UNSAFE is the documented
    # way out for this case (Django docs, "Async safety"; Playwright + Django guides): nothing
    # here is actually async, the loop is only Playwright's. It is set only while Playwright
    # runs, so a run that selects no browser test keeps Django's async-safety checks.
    set_here = "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if set_here:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
        locale="en-US",
        timezone_id="Europe/Berlin",
    )
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def admin_login(page, live_server, username, password):
    """Log in through the admin login form and assert that it worked; returns the page."""
    from playwright.sync_api import expect

    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.wait_for_load_state()
    error = page.locator(".errornote, .errorlist")
    if error.count():
        raise AssertionError(f"admin login as {username!r} failed: {error.first.inner_text()}")
    expect(page).not_to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator("#user-tools")).to_be_visible()
    return page


@pytest.fixture
def login():
    """``login(page, live_server, username, password)``: see ``admin_login``."""
    return admin_login
