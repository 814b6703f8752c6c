"""The webhook endpoint: one generic DRF view for every provider.

The pipeline is fixed: read the raw body, verify, parse, ingest in one transaction, answer. Its
rules for anything that goes wrong, whatever the provider and whatever the input:

- before the signature is verified, any failure is a 4xx and nothing is written (403 when the
  check itself cannot run on the input: such a request is not provably the provider's);
- once verified, a request the app cannot read (a parser's error, a value of the wrong type, a
  value the database refuses, an event id that belongs to another message) is a 400 with a short
  reason, and the raw request is kept for review;
- only a storage outage or settings that cannot handle the request answer 5xx, so that the
  provider retries.

Every DRF policy is set here, so the host project's ``REST_FRAMEWORK`` defaults (session auth,
``IsAuthenticated``, throttles, versioning, content negotiation, exception handler) never decide
whether a provider's request is processed. A provider's POST or GET is answered without DRF's
request wrapper and negotiation, none of whose policies applies to it (they showed in the
profile of deferred acceptance); an error it raises is answered by DRF, as any other.
"""

from __future__ import annotations

import json
from typing import cast

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, QueryDict, UnreadablePostError
from rest_framework import status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from delivery.adapters import WebhookRequest
from delivery.registry import get_provider

from .conf import app_settings
from .events import InboundEvent
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
from .masking import get_logger, mask_text
from .metrics import count_rejection

logger = get_logger("delivery.webhooks")

#: Request headers kept as evidence. Cookies and proxies' auth never are.
_DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}


class IgnoreAccept(BaseContentNegotiation):
    """Always the view's own parser and renderer: a provider's ``Accept`` header (Twilio sends
    ``Accept: text/xml`` to inbound webhooks) must never turn a webhook into a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _answer(**fields) -> HttpResponse:
    """A provider's 2xx: JSON of plain values (``JsonResponse``'s encoder for dates and
    decimals costs a request more than the answer needs)."""
    return HttpResponse(json.dumps(fields), content_type="application/json")


def read_webhook(django_request: HttpRequest) -> WebhookRequest:
    """The raw request, read once; 413 if the body is over ``MAX_BODY_BYTES``."""
    limit = app_settings.MAX_BODY_BYTES
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"Body of {declared} bytes is over the {limit}-byte limit.")
    try:
        body = django_request.read(limit + 1)
    except UnreadablePostError as exc:
        raise ParseError("The body could not be read.") from exc
    if len(body) > limit:
        raise PayloadTooLarge(f"Body is over the {limit}-byte limit.")
    path = django_request.get_full_path()
    base = app_settings.WEBHOOK_BASE_URL
    url = base + path if base else django_request.build_absolute_uri()
    return WebhookRequest(
        method=cast(str, django_request.method),  # set on every request a server built
        url=url,
        path=path,
        body=body,
        headers=dict(django_request.headers),
        query=_query(django_request),
    )


def _query(django_request) -> QueryDict:
    """The query string, read as UTF-8 as providers encode (and sign) their URLs.

    Django decodes ``request.GET`` with the *body's* charset, so a GET that says
    ``Content-Type: …; charset=utf-16`` would lose every parameter, its signature included.
    Setting ``encoding`` makes Django parse it again from the raw bytes (most callbacks have
    no query string: nothing to parse).
    """
    if not django_request.META.get("QUERY_STRING"):
        return QueryDict(encoding="utf-8")
    django_request.encoding = "utf-8"
    return django_request.GET


def _evidence(webhook: WebhookRequest, provider, verified: bool) -> RawRequest:
    try:
        account = provider.account(webhook)
    except Exception:  # noqa: BLE001 - the claimed account is a label; never a reason to fail
        account = ""
    return RawRequest(
        provider=provider.name,
        method=webhook.method,
        path=webhook.path,
        body=webhook.body,
        headers={k: v for k, v in webhook.headers.items() if k.lower() not in _DROPPED_HEADERS},
        content_type=webhook.content_type,
        account=account if isinstance(account, str) else "",
        signature_valid=True if verified else None,
    )


class ProviderWebhookView(APIView):
    """Receive a provider callback: verify, parse, ingest, then answer 200."""

    authentication_classes = []  # providers sign requests; no session, no CSRF
    permission_classes = []  # authenticity is checked by provider.verify()
    throttle_classes = []  # never throttle a provider's retries
    parser_classes = []  # the body is read raw, before anything parses it
    renderer_classes = [JSONRenderer]
    content_negotiation_class = IgnoreAccept
    versioning_class = None
    kind = "status"  #: "status" (delivery reports) or "inbound" (messages people send us)

    @classmethod
    def as_view(cls, **initkwargs):
        """The view function: CSRF-exempt (DRF's ``as_view`` makes it so), open without a
        login (a host's ``LoginRequiredMiddleware``) and outside a host's ``ATOMIC_REQUESTS``:
        the answer must follow the commit, not precede it. Marked once, here, rather than
        with ``method_decorator``, which decorates ``dispatch`` again on every request."""
        view = super().as_view(**initkwargs)
        return transaction.non_atomic_requests(login_not_required(view))

    def get_exception_handler(self):
        return exception_handler  # DRF's own, whatever the host configured

    def provider(self, provider_name):
        """The enabled adapter (404 otherwise); 503 when its settings or SDK cannot work."""
        try:
            provider = get_provider(provider_name)
        except ConfigurationError as exc:
            # Nothing was written; a 5xx makes the provider retry once the settings are fixed.
            logger.error("%s webhook refused, misconfiguration: %s", provider_name, exc)
            count_rejection(provider_name, "misconfigured", str(exc))
            raise Misconfigured() from exc
        if self.kind == "inbound" and not provider.receives_inbound:
            raise NotFound(f"{provider.name} has no inbound webhook.")
        return provider

    def dispatch(self, request, *args, **kwargs):
        """A provider's POST or GET goes straight to :meth:`receive`; what it raises is
        answered by DRF, as DRF's own ``dispatch`` would; any other method is DRF's."""
        if request.method not in ("POST", "GET"):
            return super().dispatch(request, *args, **kwargs)
        try:
            return self.receive(request, kwargs["provider_name"])
        except Exception as exc:  # noqa: BLE001 - rendered (or re-raised) by DRF's handling
            self.args, self.kwargs = args, kwargs
            self.request = drf_request = self.initialize_request(request, *args, **kwargs)
            self.headers = self.default_response_headers
            self.initial(drf_request, *args, **kwargs)  # negotiation; no auth, no throttles
            answer = self.handle_exception(exc)
            return self.finalize_response(drf_request, answer, *args, **kwargs)

    def head(self, request, provider_name):
        self.provider(provider_name)
        return Response(status=status.HTTP_200_OK)

    # dispatch() calls receive() for these itself; DRF reads them for OPTIONS and ``Allow``.
    def post(self, request, provider_name):
        return self.receive(request._request, provider_name)

    # Twilio, Vonage and Plivo can be set to call with GET; the pipeline is the same.
    get = post

    def receive(self, django_request: HttpRequest, provider_name: str) -> HttpResponse:
        """Verify, parse, ingest (or store for a task, in deferred mode), answer."""
        provider = self.provider(provider_name)
        try:
            webhook = read_webhook(django_request)
            verified = self._verify(provider, webhook)
            return self._process(provider, webhook, _evidence(webhook, provider, verified))
        except DatabaseError as exc:
            # Only what is left once ingest() turned refused values into MalformedPayload: the
            # database is unreachable or failing. The message names the error class only (a
            # database error's text can quote the data it refused).
            logger.error("%s webhook could not be stored: %s", provider.name, type(exc).__name__)
            count_rejection(provider.name, "storage_unavailable", type(exc).__name__)
            raise StorageUnavailable() from exc
        except ConfigurationError as exc:
            # Nothing was written; a 5xx makes the provider retry once the settings are fixed.
            logger.error("%s webhook refused, misconfiguration: %s", provider.name, exc)
            count_rejection(provider.name, "misconfigured", str(exc))
            raise Misconfigured() from exc
        except SmsDeliveryError as exc:
            detail = mask_text(str(getattr(exc, "detail", exc)))
            count_rejection(provider.name, exc.default_code, detail)
            raise

    def _verify(self, provider, webhook: WebhookRequest) -> bool:
        """True when verified; False when skipped (development only, see check E004).

        A check that cannot even run on this input (the adapter or the SDK raised) refuses it:
        a request that is not provably the provider's is a 403, whatever the reason.
        """
        if app_settings.SKIP_SIGNATURE_VERIFICATION and settings.DEBUG:
            return False
        try:
            return provider.verify(webhook) is not False
        except SignatureInvalid as exc:
            # The URL is logged so a proxy / base-URL mismatch can be diagnosed (numbers masked);
            # never the body.
            logger.warning(
                "%s signature rejected for url %r: %s", provider.name, webhook.url, exc.detail
            )
            raise
        except (SmsDeliveryError, ConfigurationError, DatabaseError):
            raise
        except Exception as exc:  # noqa: BLE001 - see the docstring
            logger.warning(
                "%s signature could not be checked for url %r: %s",
                provider.name,
                webhook.url,
                type(exc).__name__,
            )
            raise SignatureInvalid(
                f"Signature could not be verified ({type(exc).__name__})."
            ) from exc

    def _process(self, provider, webhook: WebhookRequest, raw: RawRequest) -> HttpResponse:
        """Parse and ingest a verified request; what cannot be read is kept for review (400).

        In deferred mode a delivery report is only stored, and read by a task
        (``delivery.deferred``): what cannot be read then goes to the review queue. Messages
        people send us are applied before the answer (an opt-out must not wait for a worker;
        some providers read the answer as the reply): where they can arrive on the status URL,
        the request is read first.
        """
        defer = self.kind == "status" and app_settings.PROCESSING == "deferred"
        if defer and not provider.inbound_on_status_url:
            return self._defer(raw)
        parse = provider.parse_inbound if self.kind == "inbound" else provider.parse
        try:
            events = parse(webhook)
            if defer and not any(isinstance(event, InboundEvent) for event in events):
                return self._defer(raw)
            stored = ingest(events, raw).stored
        except MalformedPayload as exc:
            reason = str(exc.detail)
        except (SmsDeliveryError, ConfigurationError, DatabaseError):
            raise
        except Exception as exc:  # noqa: BLE001 - a verified request is never a 500
            logger.exception("%s request could not be read", provider.name)
            reason = f"Unreadable request ({type(exc).__name__})."
        else:
            answer = provider.inbound_response(stored) if self.kind == "inbound" else None
            return answer or _answer(success=True, processed=len(events), new=stored)
        store_unparsed(raw, reason)
        raise MalformedPayload(mask_text(reason))

    @staticmethod
    def _defer(raw: RawRequest) -> HttpResponse:
        try:
            from .deferred import accept  # imports the task framework: only in deferred mode
        except ImportError as exc:  # check E010 says so too; a 503 makes the provider retry
            raise ConfigurationError(
                "PROCESSING is 'deferred' but no task framework is installed."
            ) from exc
        accept(raw)
        return _answer(success=True, deferred=True)
