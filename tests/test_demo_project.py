"""The demo project's own templates (templates/): the console's branding and its error pages."""

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string

pytestmark = pytest.mark.django_db


def test_the_console_is_branded(client):
    User.objects.create_superuser("admin", password="x")
    client.force_login(User.objects.get())
    page = client.get("/admin/").content.decode()
    assert "SMS delivery console" in page and "Django administration" not in page


def test_a_missing_page_is_the_demo_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


def test_the_500_page_renders_without_a_context():
    assert "Server error" in render_to_string("500.html")
