"""Signals sent by django-sms-delivery."""

from django.dispatch import Signal

#: Sent once per real summary transition, after the transaction commits; never for a duplicate
#: event nor for an event that does not change ``Message.current_status``.
#: kwargs: message (Message), previous_status (str), status (str), event (MessageEvent)
message_status_changed = Signal()

#: Sent after commit when a person texts an opt-out or opt-in keyword (STOP, START…) for the first
#: time in that inbound message (never for a duplicate delivery of it).
#: kwargs: inbound (InboundMessage), opted_out (bool)
consent_changed = Signal()
