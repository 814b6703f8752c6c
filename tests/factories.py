"""factory-boy factories for delivery records and normalized events."""

import factory

from delivery.events import NormalizedEvent
from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message
        skip_postgeneration_save = True  # the recipient hook saves what it changes

    provider = "twilio"
    provider_message_id = factory.Sequence(lambda n: f"SM{n:032x}")
    sender_identity = "+15017122661"
    template_key = "otp_login"

    @factory.post_generation
    def recipient(obj, create, extracted, **kwargs):
        if extracted:
            obj.set_recipient(extracted)
            if create:
                obj.save()


class MessageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageEvent

    message = factory.SubFactory(MessageFactory)
    status = Status.SENT
    raw_status = "sent"
    dedupe_key = factory.Sequence(lambda n: f"twilio:test:{n}")


class NormalizedEventFactory(factory.Factory):
    class Meta:
        model = NormalizedEvent

    provider = "twilio"
    provider_message_id = "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    raw_status = factory.LazyAttribute(lambda o: str(o.status))
    status = Status.SENT
