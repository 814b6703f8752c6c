"""Signals sent by django-sms-delivery."""

from django.dispatch import Signal

#: Sent once per real summary transition, after the transaction commits; never for a duplicate
#: event nor for an event that does not change ``Message.current_status``.
#: kwargs: message (Message), previous_status (str), status (str), event (MessageEvent)
message_status_changed = Signal()
