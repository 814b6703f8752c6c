"""Erasure: remove every clear-text trace of one person's number (``sms_delivery_erase``).

The number is found through its keyed hash, never by decrypting the tables: the messages to it
(``Message.recipient_hash``), the messages from it (``InboundMessage.sender_hash``) and the raw
requests about it (``RawWebhook.recipient_hash``, set when a request is read, and the requests
behind those messages' events). Decrypted and searched: only the review queue and the requests
still waiting for their task (deferred processing), both unread so linked to no one, and few;
and the requests of the people who shared a group message with this one (a group request is
linked to its first recipient, and its repeated deliveries to no event).

Blanked: the encrypted numbers, the providers' payloads of the events (and of every event read
from the same requests: a group message names its other recipients too), the raw requests.
Kept: statuses, timelines, error codes, the keyed hash. One :class:`~delivery.models.Erasure`
record says who asked, why, and what was blanked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from django.db import router, transaction
from django.db.models import Q

from . import crypto
from .conf import app_settings
from .exceptions import InvalidNumber
from .masking import mask_text
from .models import Erasure, InboundMessage, Message, MessageEvent, RawWebhook
from .recipients import recipient_hash, to_e164

#: Separators people and providers write inside numbers, ignored when the review queue is
#: searched.
_SEPARATORS = re.compile(r"[\s\-().]|%20|%2B|\+")


@dataclass
class Found:
    """What an erasure blanks (or, in a dry run, would)."""

    messages: list[int]
    inbound: list[int]
    events: list[int]
    raw_requests: list[int]
    unreadable_searched: int  #: requests decrypted and searched (review queue, group members)

    def counts(self) -> dict[str, int]:
        return {
            "messages": len(self.messages),
            "inbound_messages": len(self.inbound),
            "event_payloads": len(self.events),
            "raw_requests": len(self.raw_requests),
            "requests_searched": self.unreadable_searched,
        }


def find(number: str) -> tuple[str, Found]:
    """The keyed hash of ``number`` and every row holding it in clear text (once decrypted)."""
    e164 = to_e164(number, app_settings.DEFAULT_REGION)
    if not e164:
        raise InvalidNumber("Not a phone number (without a country code, set DEFAULT_REGION).")
    person = recipient_hash(e164)
    messages = list(Message.objects.filter(recipient_hash=person).values_list("pk", flat=True))
    inbound = InboundMessage.objects.filter(sender_hash=person)
    raw_ids = set(RawWebhook.objects.filter(recipient_hash=person).values_list("pk", flat=True))
    raw_ids |= set(inbound.exclude(raw_webhook=None).values_list("raw_webhook", flat=True))
    raw_ids |= set(
        MessageEvent.objects.filter(message__in=messages)
        .exclude(raw_webhook=None)
        .values_list("raw_webhook", flat=True)
    )
    # Requests that name the number but are linked to someone else: a group message's requests
    # are linked to its first recipient, and its repeated deliveries to no event. Only that
    # person's requests are searched, and the review queue (requests read by no one).
    others = set(
        RawWebhook.objects.filter(pk__in=raw_ids)
        .exclude(recipient_hash__in=["", person])
        .values_list("recipient_hash", flat=True)
    )
    candidates = RawWebhook.objects.exclude(request_encrypted="").exclude(pk__in=raw_ids)
    candidates = candidates.filter(
        Q(recipient_hash__in=others) | ~Q(parse_error="") | Q(pending=True)
    )
    searched = 0
    for pk, token in candidates.values_list("pk", "request_encrypted").iterator():
        searched += 1
        if _mentions(crypto.decrypt_bytes(token), e164):
            raw_ids.add(pk)
    events = MessageEvent.objects.filter(Q(message__in=messages) | Q(raw_webhook__in=raw_ids))
    return person, Found(
        messages=messages,
        inbound=list(inbound.values_list("pk", flat=True)),
        events=sorted(events.values_list("pk", flat=True)),
        raw_requests=sorted(raw_ids),
        unreadable_searched=searched,
    )


def erase(number: str, *, actor: str, reason: str = "") -> Erasure:
    """Blank every clear-text trace of ``number``, in one transaction, and record it.

    Raises InvalidNumber, erasing nothing, when ``number`` is not one.
    """
    with transaction.atomic(using=router.db_for_write(Message)):
        person, found = find(number)
        Message.objects.filter(pk__in=found.messages).update(recipient_encrypted="")
        InboundMessage.objects.filter(pk__in=found.inbound).update(sender_encrypted="")
        MessageEvent.objects.filter(pk__in=found.events).update(payload_encrypted="")
        RawWebhook.objects.filter(pk__in=found.raw_requests).update(request_encrypted="")
        return Erasure.objects.create(
            recipient_hash=person,
            actor=actor,
            # Free text: a number typed into it ("asked by +1 312…") is masked.
            reason=mask_text(reason, typed=True),
            touched=found.counts(),
        )


def _mentions(data: bytes | None, e164: str) -> bool:
    """Whether a decrypted request names the number, in any common spelling."""
    if not data:
        return False
    text = _SEPARATORS.sub("", data.decode("utf-8", errors="replace"))
    national = phonenumbers.national_significant_number(phonenumbers.parse(e164))
    return any(
        re.search(rf"(?<!\d){re.escape(spelling)}(?!\d)", text)
        for spelling in {e164.lstrip("+"), national}
    )
