"""A stored raw request as its adapter reads it: for replay and for deferred processing."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.http import QueryDict

from .adapters import BaseProvider, WebhookRequest
from .conf import app_settings
from .models import RawWebhook
from .registry import PROVIDERS, provider_class


class Unopenable(Exception):
    """The request cannot be read again; the message says why."""


@dataclass(frozen=True)
class StoredRequest:
    adapter: BaseProvider
    request: WebhookRequest
    inbound: bool  #: sent to the inbound URL (messages people send us)

    def parse(self):
        """The adapter's events (raises what the adapter raises)."""
        return (self.adapter.parse_inbound if self.inbound else self.adapter.parse)(self.request)


def open_stored(raw: RawWebhook) -> StoredRequest:
    """``raw`` decrypted and rebuilt as the request its adapter reads; Unopenable if it
    cannot be, ConfigurationError if the provider's settings cannot read it."""
    sealed = raw.sealed
    if sealed is None:
        raise Unopenable("it cannot be opened (purged, or its key was rotated out)")
    if raw.provider not in PROVIDERS:
        raise Unopenable(f"no adapter is registered for {raw.provider!r}")
    # ConfigurationError (the provider's settings or SDK) is raised as is: it is not the
    # request's fault, and a fix of the settings makes it readable.
    adapter = provider_class(raw.provider)(app_settings.PROVIDERS.get(raw.provider) or {})
    path = urlsplit(sealed.path)
    request = WebhookRequest(
        method=raw.method,
        url=(app_settings.WEBHOOK_BASE_URL or "https://replay.invalid") + sealed.path,
        path=sealed.path,
        body=sealed.body,
        headers=sealed.headers,
        query=QueryDict(path.query, encoding="utf-8"),
    )
    return StoredRequest(adapter, request, path.path.rstrip("/").endswith("/inbound"))
