"""The console's message pages: the summary with its timeline, the audited reveal, raw payloads.

They are ``ModelAdmin`` views (``admin_site.admin_view`` wrapped, permission-checked each) so a
host project's admin site, login and theme apply.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_POST

from delivery.conf import app_settings
from delivery.masking import Revealed, mask_phone, mask_text, pretty
from delivery.models import REVEAL_RECIPIENT, VIEW_RAW_PAYLOAD, MessageEvent
from delivery.registry import error_info

from . import timeline
from .answers import answer
from .audit import read_reason, record_reveal
from .display import country_label, duration, status_badge
from .models import RevealLog
from .zones import recipient_zone


class MessagePagesMixin(admin.ModelAdmin):
    detail_template = "support_console/message_detail.html"
    raw_template = "support_console/raw_payloads.html"

    # -- permissions ----------------------------------------------------------------------

    def has_reveal_recipient_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(REVEAL_RECIPIENT)

    def has_view_raw_payload_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW_RAW_PAYLOAD)

    # -- urls -----------------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/reveal/",
                wrap(require_POST(self.reveal_view)),
                name=f"{prefix}_reveal",
            ),
            path("<path:object_id>/raw/", wrap(self.raw_view), name=f"{prefix}_raw"),
            *super().get_urls(),
        ]

    def _message(self, request, object_id):
        message = self.get_object(request, unquote(object_id))
        if message is None:
            raise Http404("No such message.")
        if not self.has_view_permission(request, message):
            raise PermissionDenied
        return message

    # -- pages ----------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The message page replaces the change form: delivery records are read-only, so
        nothing can be posted to it (403, even for a superuser)."""
        message = self._message(request, object_id)
        if request.method != "GET":
            raise PermissionDenied
        return self.detail_view(request, message)

    def reveal_view(self, request, object_id):
        message = self._message(request, object_id)
        if not self.has_reveal_recipient_permission(request, message):
            raise PermissionDenied
        reason, _, error = read_reason(request, can_unmask=False)
        if error:
            return self.detail_view(request, message, reveal_error=error, status=400)
        record_reveal(request, message, RevealLog.Kind.RECIPIENT, reason)
        return self.detail_view(request, message, revealed=Revealed(message.recipient))

    def detail_view(self, request, message, revealed="", reveal_error="", status=200):
        number = message.recipient
        zone = recipient_zone(number, message.recipient_time_zone, request.GET.get("tz", ""))
        events = list(MessageEvent.objects.timeline(message))
        info = error_info(message.provider, message.error_code)
        product_url = app_settings.PRODUCT_ACTION_URL
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": message.public_id,
            "subtitle": None,
            "message": message,
            "status_badge": status_badge(message.current_status),
            "country": country_label(message.destination_country),
            "masked_recipient": mask_phone(number),
            "revealed": revealed,
            "reveal_error": reveal_error,
            "can_reveal": self.has_reveal_recipient_permission(request, message),
            "can_view_raw": self.has_view_raw_payload_permission(request, message),
            "zone": zone,
            "rows": timeline.timeline(message, events),
            "latencies": [(label, duration(d)) for label, d in timeline.latencies(message)],
            "answers": answer(message, events),
            "suppression_per_sender": app_settings.SUPPRESSION_PER_SENDER,
            "error": info,
            "product_url": (
                product_url.format(reference=message.product_reference)
                if product_url and message.product_reference
                else ""
            ),
        }
        response = TemplateResponse(request, self.detail_template, context, status=status)
        response["Cache-Control"] = "no-store"
        return response

    def raw_view(self, request, object_id):
        message = self._message(request, object_id)
        if not self.has_view_raw_payload_permission(request, message):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Raw payloads of {message.public_id}",
            "subtitle": None,
            "message": message,
            "can_unmask": self.has_reveal_recipient_permission(request, message),
        }
        if request.method == "POST":
            reason, unmasked, context["reason_error"] = read_reason(request, context["can_unmask"])
            if not context["reason_error"]:
                kind = (
                    RevealLog.Kind.RAW_PAYLOAD_UNMASKED if unmasked else RevealLog.Kind.RAW_PAYLOAD
                )
                record_reveal(request, message, kind, reason)
                context["payloads"] = _payloads(message, unmasked)
                context["unmasked"] = unmasked
        response = TemplateResponse(request, self.raw_template, context)
        response["Cache-Control"] = "no-store"
        return response


#: Shown instead of evidence that no configured key can decrypt any more.
UNREADABLE = "(encrypted with a key that is no longer configured)"


def opened_request(raw, unmasked: bool) -> dict:
    """A stored request's path, headers and body for display, numbers masked unless asked.

    Call only after the view was recorded (:func:`~support_console.audit.record_reveal`).
    """
    sealed = raw.sealed
    if sealed is None:
        return {"path": raw.path, "headers": {}, "body": UNREADABLE}
    show = Revealed if unmasked else mask_text
    return {
        "path": show(sealed.path),
        "headers": {name: show(value) for name, value in sealed.headers.items()},
        "body": show(sealed.text),
    }


def _payloads(message, unmasked: bool) -> list[dict]:
    """Each event's payload and the raw request it came in, numbers masked unless asked."""
    shown = []
    events = MessageEvent.objects.timeline(message).select_related("raw_webhook")
    for event in events:
        raw = event.raw_webhook
        payload = event.raw_payload
        if payload is None:
            payload = UNREADABLE
        elif unmasked:
            payload = Revealed(pretty(payload, masked=False))
        else:
            payload = pretty(payload)
        shown.append(
            {
                "event": event,
                "payload": payload,
                "request": opened_request(raw, unmasked) if raw else None,
                "raw": raw,
            }
        )
    return shown


class RawWebhookPagesMixin(admin.ModelAdmin):
    """The review queue's request page: body and headers behind a reason, audited."""

    raw_webhook_template = "support_console/raw_webhook.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        raw = self.get_object(request, unquote(object_id))
        if raw is None:
            raise Http404("No such request.")
        if not self.has_view_permission(request, raw):
            raise PermissionDenied
        can_unmask = request.user.has_perm(REVEAL_RECIPIENT)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{raw.provider} request of {raw.received_at:%Y-%m-%d %H:%M:%S} UTC",
            "subtitle": None,
            "raw": raw,
            "can_unmask": can_unmask,
        }
        if request.method == "POST":
            reason, unmasked, context["reason_error"] = read_reason(request, can_unmask)
            if not context["reason_error"]:
                kind = (
                    RevealLog.Kind.RAW_PAYLOAD_UNMASKED if unmasked else RevealLog.Kind.RAW_PAYLOAD
                )
                record_reveal(request, None, kind, reason, raw_webhook=raw)
                context["opened"] = opened_request(raw, unmasked)
                context["unmasked"] = unmasked
        response = TemplateResponse(request, self.raw_webhook_template, context)
        response["Cache-Control"] = "no-store"
        return response
