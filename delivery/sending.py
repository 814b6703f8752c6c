"""Sending through the app: :func:`send_sms` records the message, asks the provider and records
its answer, so tracking starts at the send.

The order matters:

1. the settings are checked (the provider enabled, its credentials, ``WEBHOOK_BASE_URL``),
   the number read (``phonenumbers``; ``DEFAULT_REGION`` for national numbers), the values
   fitted to their columns and the suppression list consulted: any refusal raises with
   nothing sent and nothing recorded;
2. the message is recorded **before** the provider is called, under a local id
   (``local:msg_…``) since the provider's own is not known yet, with its consent, its
   ``retry_of`` link and its ``idempotency_key`` (unique: a retried call returns the message
   recorded by the first one and sends nothing). It is ``unknown`` and in the review queue
   until the provider answers, so a process that dies during the call leaves a message
   support can see; a retried call with its key returns it as it is, because sending again
   could send twice;
3. the provider's SDK sends it with the status callback set to this app's status URL;
4. its answer is recorded through the same :func:`~delivery.ingest.ingest` as callbacks
   (``source="send"``): the provider's id and an ``accepted`` event; an API error as a
   ``rejected`` event (4xx) or a ``failed`` one (429, 5xx: not sent this time) with the
   provider's code (an opt-out code puts the recipient on the suppression list); no answer
   (a timeout) or an unexpected exception as an ``unknown`` event, in the review queue,
   because it may have been sent.

A callback that outran the API's answer created a message under the provider's id already, and
``message_status_changed`` receivers were told about that one: the recorded message is folded
into it (the send's details move over, the recorded row goes), so there is one message and it
is the one receivers saw. Those receivers ran before the send's details (template,
``product_reference``) were on it.

The caller gets the :class:`~delivery.models.Message` unless step 1 refused or an unexpected
exception is raised again after it was recorded.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, router, transaction
from django.urls import reverse
from django.utils import timezone

from . import storable
from .conf import app_settings
from .events import EventSource, NormalizedEvent
from .exceptions import (
    ConfigurationError,
    InvalidNumber,
    SendRefused,
    SendUnanswered,
    Suppressed,
)
from .ingest import ingest
from .lifecycle import Status
from .masking import mask_text
from .models import Message
from .outgoing import LOCAL_ID_PREFIX, Consent, Outgoing, Sent
from .recipients import to_e164
from .registry import get_provider
from .suppression import is_suppressed


def send_sms(
    to: str,
    body: str,
    *,
    sender: str = "",
    template_key: str = "",
    product_reference: str = "",
    consent: Consent | None = None,
    retry_of: Message | None = None,
    idempotency_key: str = "",
    provider: str = "twilio",
    **provider_options: Any,
) -> Message:
    """Send ``body`` to ``to`` through ``provider`` and track it; the recorded message.

    Raises InvalidNumber (``to`` is not a phone number) or Suppressed (the recipient opted
    out), before anything is sent or recorded; ConfigurationError when the provider is not
    enabled, cannot send, or ``WEBHOOK_BASE_URL`` is not set; ValueError or TypeError for a
    value its column cannot store. ``provider_options`` go to the
    provider's SDK as they are (e.g. Twilio's ``media_url``).
    """
    adapter = get_provider(provider) if provider in app_settings.PROVIDERS else None
    if adapter is None or not adapter.can_send:
        raise ConfigurationError(f"Provider {provider!r} is not enabled or cannot send.")
    if problem := adapter.send_problem():
        raise ConfigurationError(problem)
    e164 = to_e164(to, app_settings.DEFAULT_REGION)
    if not e164:
        raise InvalidNumber("send_sms(to=...) is not a phone number.")
    if idempotency_key:
        earlier = Message.objects.filter(idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier
    sender = sender or adapter.default_sender()
    _check_columns(
        sender_identity=sender,
        template_key=template_key,
        product_reference=product_reference,
        idempotency_key=idempotency_key,
        consent_source=consent.source if consent else "",
    )
    if is_suppressed(e164, sender=sender):
        raise Suppressed("The recipient opted out (see the suppression list); nothing sent.")
    outgoing = Outgoing(e164, body, sender, status_callback_url(adapter), provider_options)
    try:
        message = _record(
            adapter.name,
            e164,
            sender_identity=sender,
            template_key=template_key,
            product_reference=product_reference,
            consent=consent,
            retry_of=retry_of,
            idempotency_key=idempotency_key or None,
        )
    except IntegrityError:
        if not idempotency_key:
            raise
        return Message.objects.get(idempotency_key=idempotency_key)  # a concurrent call's
    try:
        sent = adapter.send(outgoing)
    except SendRefused as exc:
        # 429 and 5xx: not sent this time, a retry may be (failed); any other 4xx: refused.
        temporary = (exc.http_status or 0) >= 500 or exc.http_status == 429
        code = exc.code or (str(exc.http_status) if exc.http_status else "")
        _settled(message)
        _answer(
            message,
            Status.FAILED if temporary else Status.REJECTED,
            f"api error {exc.http_status or ''}".strip(),
            code,
            str(exc),
        )
    except SendUnanswered as exc:
        _answer(message, Status.UNKNOWN, "no answer", "", f"{exc} It may have been sent.")
    except Exception as exc:
        # A bug, a bad provider option: whether it was sent cannot be known. Recorded for
        # review, then raised.
        _answer(message, Status.UNKNOWN, "send raised", "", f"{type(exc).__name__}; see the logs.")
        raise
    else:
        message = _attach(message, sent)
        _answer(message, adapter.map_status(sent.raw_status), sent.raw_status, "", "", sent)
    message.refresh_from_db()
    return message


def _check_columns(**values: str) -> None:
    """ValueError, before anything is sent, for a value its column cannot store as given."""
    for name, value in values.items():
        limit = storable.column_length(Message, name)
        if not isinstance(value, str):
            raise TypeError(f"send_sms({name}=...) must be a string, not {type(value).__name__}.")
        if len(value) > limit or "\x00" in value:
            raise ValueError(f"send_sms({name}=...) is over {limit} characters or has a NUL.")


def status_callback_url(adapter) -> str:
    """The absolute URL of this app's status webhook for ``adapter``'s provider, with the
    adapter's connection overrides (a URL fragment, for Twilio)."""
    base = app_settings.WEBHOOK_BASE_URL
    if not base:
        raise ConfigurationError(
            "SMS_DELIVERY['WEBHOOK_BASE_URL'] is needed to send: the provider calls it back."
        )
    # The pattern takes the path with or without its final slash; the documented one has it.
    path = reverse("sms_delivery:status", kwargs={"provider_name": adapter.name}).rstrip("/") + "/"
    fragment = adapter.callback_fragment()
    return base.rstrip("/") + path + (f"#{fragment}" if fragment else "")


def _record(provider: str, e164: str, *, consent: Consent | None, **fields: Any) -> Message:
    message = Message(
        provider=provider,
        # Unknown and in the review queue until the provider answers: a process that dies
        # during the call leaves a message support sees, never a silent "accepted".
        current_status=Status.UNKNOWN,
        needs_review=True,
        registered_at=timezone.now(),
        consent_at=(consent.at or timezone.now()) if consent else None,
        consent_source=mask_text(consent.source, typed=True) if consent else "",
        **fields,
    )
    message.provider_message_id = LOCAL_ID_PREFIX + message.public_id
    message.set_recipient(e164)
    message.save(using=router.db_for_write(Message))
    return message


def _settled(message: Message) -> None:
    """The provider answered: the message leaves the review queue it was recorded in."""
    Message.objects.filter(pk=message.pk).update(needs_review=False)


def _attach(message: Message, sent: Sent) -> Message:
    """Give ``message`` the provider's id. A callback that outran the answer created a message
    under that id already, and its receivers were told about that one: ours (which has no
    event yet) is folded into it, so there is one message, the one they saw."""
    try:
        return _merge(message, sent)
    except IntegrityError:
        # A callback inserted its message after we looked and before our id was set: it is
        # committed now, so the second try finds it and merges it.
        return _merge(message, sent)


#: What the send knows and a callback does not: moved onto the callback's message.
_SEND_FIELDS = (
    "recipient_hash",
    "recipient_encrypted",
    "registered_at",
    "sender_identity",
    "template_key",
    "product_reference",
    "consent_at",
    "consent_source",
    "retry_of",
    "idempotency_key",
)


def _merge(message: Message, sent: Sent) -> Message:
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        ours = Message.objects.using(using).select_for_update().get(pk=message.pk)
        theirs = (
            Message.objects.using(using)
            .select_for_update()
            .filter(provider=ours.provider, provider_message_id=sent.provider_message_id)
            .first()
        )
        if theirs is None:
            ours.provider_message_id = sent.provider_message_id
            ours.needs_review = False
            ours.sender_identity = ours.sender_identity or sent.sender_identity
            ours.segments = ours.segments or sent.segments
            ours.save(using=using)
            return ours
        for name in _SEND_FIELDS:
            setattr(theirs, name, getattr(ours, name) or getattr(theirs, name))
        theirs.destination_country = theirs.destination_country or ours.destination_country
        theirs.segments = theirs.segments or sent.segments
        ours.delete()  # first: its idempotency key moves to theirs
        theirs.save(using=using)
        return theirs


def _answer(
    message: Message,
    status: str,
    raw_status: str,
    code: str,
    detail: str,
    sent: Sent | None = None,
) -> None:
    """Record the API's answer as an event of ``message`` (``source="send"``)."""
    catalogue = get_provider(message.provider).errors
    ingest(
        [
            NormalizedEvent(
                provider=message.provider,
                provider_message_id=message.provider_message_id,
                raw_status=raw_status,
                status=Status(status),
                error_code=code,
                error_category=catalogue.category(code) if code and catalogue else "",
                error_detail=mask_text(detail),
                segments=sent.segments if sent else None,
                raw_payload={"answer": raw_status, "error_code": code},
                source=EventSource.SEND,
            )
        ]
    )
