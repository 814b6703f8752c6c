"""URLs of the demo project: the admin (support console) and the webhooks."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/")),
    path("admin/", admin.site.urls),
    path("webhooks/", include("delivery.urls")),
]
