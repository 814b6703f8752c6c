"""Writing the reveal audit trail."""

from __future__ import annotations

from django.db import transaction

from delivery.models import Message

from .models import RevealLog

MIN_REASON_LENGTH = 5


def client_ip(request) -> str | None:
    """The client address Django sees (REMOTE_ADDR); configure your proxy to set it."""
    return request.META.get("REMOTE_ADDR") or None


@transaction.atomic
def record_reveal(request, message: Message, kind: str, reason: str) -> RevealLog:
    """Write the audit record; the caller shows the data only after this returned."""
    return RevealLog.objects.create(
        user=request.user,
        username=request.user.get_username(),
        message=message,
        message_public_id=message.public_id,
        kind=kind,
        reason=reason.strip(),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
    )
