"""Smoke test of the browser-test setup: a superuser logs in to the admin in real Chromium."""

import pytest
from django.contrib.auth import get_user_model


@pytest.mark.django_db(transaction=True)
def test_superuser_logs_in_and_sees_the_admin_index(page, live_server, login, tmp_path):
    get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin-123")

    login(page, live_server, "admin", "pw-admin-123")

    assert page.url == live_server.url + "/admin/"
    assert "Site administration" in page.locator("#content h1").inner_text()
    screenshot = tmp_path / "index.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
