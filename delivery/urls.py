"""Webhook URLs: ``path("webhooks/", include("delivery.urls"))``.

The trailing slash is optional: a provider configured without it must not be redirected (a
redirect turns its POST into a GET and changes the URL it signed).
"""

from django.urls import re_path

from .health import health_view
from .prometheus import metrics_view
from .views import ProviderWebhookView

app_name = "sms_delivery"

urlpatterns = [
    re_path(r"^health/?$", health_view, name="health"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    re_path(
        r"^(?P<provider_name>[a-z0-9_-]+)/inbound/?$",
        ProviderWebhookView.as_view(kind="inbound"),
        name="inbound",
    ),
    re_path(
        r"^(?P<provider_name>[a-z0-9_-]+)/status/?$", ProviderWebhookView.as_view(), name="status"
    ),
]
