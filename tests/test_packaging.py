"""The built wheel installs into a fresh virtualenv and works in a separate, minimal project.

The project below uses only the README's documented steps: three INSTALLED_APPS, one include()
and the SMS_DELIVERY dict. It also has a shipping app of its own labelled ``delivery`` (the
name our core package has), which must not clash with ours. It migrates, passes `check`, and
accepts a signed Twilio callback.
"""

import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "packaging-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # django-sms-delivery: the three apps
    "delivery",
    "providers",
    "support_console",
    # the host's own app labelled "delivery" (shop/delivery/)
    "shop.delivery",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "static/"
SMS_DELIVERY = {
    "WEBHOOK_BASE_URL": "https://hooks.example.com",
    "HASH_KEY": "a-long-random-string",
    "ENCRYPTION_KEYS": ["another-long-random-string"],
    "PROVIDERS": {"twilio": {"ACCOUNT_SID": "AC00000000000000000000000000000000",
                             "AUTH_TOKENS": ["12345"]}},
}
"""

URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", include("delivery.urls")),
]
"""

SMOKE = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
django.setup()
from urllib.parse import urlencode
from django.test import Client
from twilio.request_validator import RequestValidator
from delivery.models import Message

params = {"AccountSid": "AC00000000000000000000000000000000", "MessageSid": "SM" + "1" * 32,
          "MessageStatus": "delivered", "To": "+14155550100", "From": "+15017122661"}
url = "https://hooks.example.com/webhooks/twilio/status/"
sig = RequestValidator("12345").compute_signature(url, params)
response = Client().post("/webhooks/twilio/status/", urlencode(params),
                         content_type="application/x-www-form-urlencoded",
                         headers={"X-Twilio-Signature": sig})
print(response.status_code, Message.objects.get().current_status)

from django.apps import apps
from shop.delivery.models import Shipment
Shipment.objects.create(reference="order-1")
print(apps.get_app_config("delivery").name, apps.get_app_config("sms_delivery").name)
"""

SHOP_MODELS = """
from django.db import models


class Shipment(models.Model):
    reference = models.CharField(max_length=20)
"""


def run(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_wheel_installs_and_works_in_a_fresh_project(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT), cwd=ROOT)
    wheel = next(dist.glob("django_sms_delivery-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if "/" in name}
    assert {"delivery", "providers", "support_console"} <= top_level
    assert not top_level & {"config", "tests", "templates", "scripts"}
    assert "delivery/migrations/0001_initial.py" in names
    # What a package index shows: valid metadata, and a README whose links and images work
    # there (absolute, not relative to the repository).
    run(sys.executable, "-m", "twine", "check", "--strict", str(wheel), cwd=ROOT)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert not re.search(rb"\]\((?:docs|providers|config|scripts)/", metadata)
    assert b"https://raw.githubusercontent.com/" in metadata  # the screenshots

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        str(wheel),
        cwd=tmp_path,
    )

    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (project / "urls.py").write_text(textwrap.dedent(URLS))
    (project / "smoke.py").write_text(textwrap.dedent(SMOKE))
    shop = project / "shop" / "delivery"
    shop.mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (shop / "__init__.py").write_text("")
    (shop / "models.py").write_text(SHOP_MODELS)
    options = ["--settings", "settings", "--pythonpath", "."]
    run(python, "-m", "django", "makemigrations", "delivery", *options, cwd=project)
    run(python, "-m", "django", "migrate", "--no-input", *options, cwd=project)
    # Passes; the only remark is the documented advice to use PostgreSQL in production.
    checked = run(python, "-m", "django", "check", *options, cwd=project)
    assert "sms_delivery.W002" in checked and "1 issue" in checked
    assert run(python, "smoke.py", cwd=project).split() == [
        "200",
        "delivered",
        "shop.delivery",
        "delivery",
    ]
