"""The webhook endpoint: one generic DRF view for every provider.

The pipeline is fixed: read the raw body, verify, parse, ingest in one transaction, answer.
Every DRF policy is set here so the host project's ``REST_FRAMEWORK`` defaults (session auth,
``IsAuthenticated``, throttles) never reach providers.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from providers.base import WebhookRequest
from providers.registry import get_provider

from .conf import app_settings
from .exceptions import (
    ConfigurationError,
    MalformedPayload,
    Misconfigured,
    PayloadTooLarge,
    SignatureInvalid,
    SmsDeliveryError,
    StorageUnavailable,
)
from .ingest import RawRequest, ingest, store_unparsed
from .metrics import count_rejection

try:  # Django >= 5.1
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover
    login_not_required = lambda view: view  # noqa: E731

logger = logging.getLogger("delivery.webhooks")

#: Request headers kept as evidence. Cookies and proxies' auth never are.
_DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}


def read_webhook(request) -> WebhookRequest:
    """The raw request, read once; 413 if the body is over ``MAX_BODY_BYTES``."""
    django_request = request._request
    limit = app_settings.MAX_BODY_BYTES
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"Body of {declared} bytes is over the {limit}-byte limit.")
    body = django_request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"Body is over the {limit}-byte limit.")
    base = app_settings.WEBHOOK_BASE_URL
    url = base + django_request.get_full_path() if base else django_request.build_absolute_uri()
    return WebhookRequest(
        method=django_request.method,
        url=url,
        path=django_request.get_full_path(),
        body=body,
        headers=dict(django_request.headers),
        query=django_request.GET,
    )


def _evidence(webhook: WebhookRequest, provider: str, account: str, verified: bool) -> RawRequest:
    return RawRequest(
        provider=provider,
        method=webhook.method,
        path=webhook.path,
        body=webhook.body,
        headers={k: v for k, v in webhook.headers.items() if k.lower() not in _DROPPED_HEADERS},
        content_type=webhook.content_type,
        account=account,
        signature_valid=True if verified else None,
    )


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class ProviderWebhookView(APIView):
    """Receive a provider callback: verify, parse, ingest, then answer 200."""

    authentication_classes = []  # providers sign requests; no session, no CSRF
    permission_classes = []  # authenticity is checked by provider.verify()
    throttle_classes = []  # never throttle a provider's retries
    parser_classes = []  # the body is read raw, before anything parses it
    renderer_classes = [JSONRenderer]
    kind = "status"  #: "status" (delivery reports) or "inbound" (messages people send us)

    def provider(self, provider_name):
        provider = get_provider(provider_name)
        if self.kind == "inbound" and not provider.receives_inbound:
            raise NotFound(f"{provider.name} has no inbound webhook.")
        return provider

    def head(self, request, provider_name):
        self.provider(provider_name)
        return Response(status=status.HTTP_200_OK)

    def get(self, request, provider_name):
        # Some providers (Vonage, Plivo) may call with GET; the pipeline is the same.
        return self.post(request, provider_name)

    def post(self, request, provider_name):
        provider = self.provider(provider_name)
        try:
            webhook = read_webhook(request)
            verified = self._verify(provider, webhook)
            raw = _evidence(webhook, provider.name, provider.account(webhook), verified)
            parse = provider.parse_inbound if self.kind == "inbound" else provider.parse
            try:
                events = parse(webhook)
            except MalformedPayload as exc:
                store_unparsed(raw, str(exc.detail))
                raise
            stored = ingest(events, raw).stored
            answer = provider.inbound_response(stored) if self.kind == "inbound" else None
        except DatabaseError as exc:
            logger.exception("%s webhook could not be stored", provider.name)
            count_rejection(provider.name, "storage_unavailable", type(exc).__name__)
            raise StorageUnavailable() from exc
        except ConfigurationError as exc:
            # Nothing was written; a 5xx makes the provider retry once the settings are fixed.
            logger.error("%s webhook refused, misconfiguration: %s", provider.name, exc)
            count_rejection(provider.name, "misconfigured", str(exc))
            raise Misconfigured() from exc
        except SmsDeliveryError as exc:
            count_rejection(provider.name, exc.default_code, str(getattr(exc, "detail", exc)))
            raise
        return answer or Response({"success": True, "processed": len(events), "new": stored})

    def _verify(self, provider, webhook: WebhookRequest) -> bool:
        """True when verified; False when skipped (development only, see check E004)."""
        if app_settings.SKIP_SIGNATURE_VERIFICATION and settings.DEBUG:
            return False
        try:
            verified = provider.verify(webhook) is not False
        except SignatureInvalid as exc:
            # The URL is logged so a proxy / base-URL mismatch can be diagnosed; never the body.
            logger.warning("%s signature rejected for url %r: %s", provider.name, webhook.url, exc)
            raise
        return verified
