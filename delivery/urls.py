"""Webhook URLs: ``path("webhooks/", include("delivery.urls"))``."""

urlpatterns = []
