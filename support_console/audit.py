"""Writing the reveal audit trail."""

from __future__ import annotations

from django.db import transaction

from delivery.masking import mask_text
from delivery.models import Message, RawWebhook

from .models import RevealLog

MIN_REASON_LENGTH = 5


def client_ip(request) -> str | None:
    """The client address Django sees (REMOTE_ADDR); configure your proxy to set it."""
    return request.META.get("REMOTE_ADDR") or None


REASON_MISSING = "Give a reason (a ticket number or a sentence)."


def read_reason(request, can_unmask: bool) -> tuple[str, bool, str]:
    """``(reason, unmasked, error)`` from a reveal form; ``error`` is "" when the reason is fine."""
    reason = request.POST.get("reason", "").strip()
    unmasked = bool(request.POST.get("unmasked")) and can_unmask
    return reason, unmasked, "" if len(reason) >= MIN_REASON_LENGTH else REASON_MISSING


@transaction.atomic
def record_reveal(
    request, message: Message | None, kind: str, reason: str, raw_webhook: RawWebhook | None = None
) -> RevealLog:
    """Write the audit record; the caller shows the data only after this returned."""
    return RevealLog.objects.create(
        user=request.user,
        username=request.user.get_username(),
        message=message,
        message_public_id=message.public_id if message else "",
        raw_webhook=raw_webhook,
        kind=kind,
        # The reason is free text: a number typed into it is masked, in any common format.
        reason=mask_text(reason.strip(), typed=True),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
    )
