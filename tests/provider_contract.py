"""The cases every provider adapter must pass, written once (as django-anymail does for its ESPs).

A provider's test module mixes :class:`ProviderContract` into one class and implements its
hooks with the provider's own SDK signer; a new provider gets every case below for free. No
``Test`` prefix, so pytest does not collect the base class itself.
"""

from typing import Any

import pytest
from django.test import Client

from delivery.events import ConsentChange
from delivery.lifecycle import Status
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook


class ProviderContract:
    provider: str
    #: Two configured secrets (rotation) and one that is not configured.
    secret: Any
    rotated_secret: Any
    wrong_secret: Any
    #: The provider's words for these canonical statuses, as its reports carry them.
    sent_word: str
    delivered_word: str
    #: Whether the provider has an inbound-message webhook (``/webhooks/<name>/inbound/``).
    has_inbound = True
    #: What an unsigned report gets: 403, or 503 where the scheme has no signature to check
    #: until it is configured (Vonage's Messages API: a provider's retry is wanted, not a drop).
    unsigned_status = 403
    #: Words the 403's detail carries for a report changed after signing, and for a stale
    #: signature (schemes with a time only).
    tampered_reason = "does not match"
    stale_reason = "stale"

    # -- hooks ------------------------------------------------------------------------------

    def report(self, word: str, message_id: str) -> Any:
        """A delivery report saying ``word`` about message ``message_id``."""
        raise NotImplementedError

    def inbound(self, text: str, message_id: str) -> Any:
        """A message a person (always the same one) texted us."""
        raise NotImplementedError

    def without_message_id(self, payload: Any) -> Any:
        """``payload`` without the field naming the message."""
        raise NotImplementedError

    def send(self, client, payload, *, kind="status", secret=None):
        """POST (or GET, as the provider does) ``payload``, signed with its SDK's signer."""
        raise NotImplementedError

    def send_unsigned(self, client, payload, *, kind="status"):
        raise NotImplementedError

    def send_tampered(self, client, payload, *, kind="status"):
        """``payload`` with a value changed after it was signed."""
        raise NotImplementedError

    def send_stale(self, client, payload):
        """``payload`` signed long ago; ``None`` if the scheme carries no time."""
        return None

    # -- helpers ----------------------------------------------------------------------------

    def nothing_written(self):
        return not (
            RawWebhook.objects.exists()
            or MessageEvent.objects.exists()
            or Message.objects.exists()
            or InboundMessage.objects.exists()
        )

    # -- verification -----------------------------------------------------------------------

    def test_a_signed_report_is_stored(self, client, db):
        response = self.send(client, self.report(self.delivered_word, "contract-1"))
        assert response.status_code == 200, response.content
        event = MessageEvent.objects.get()
        assert (event.status, event.message.provider) == (Status.DELIVERED, self.provider)
        assert RawWebhook.objects.get().signature_valid is True

    def test_every_configured_secret_verifies_and_a_wrong_one_does_not(self, client, db):
        sent = self.report(self.sent_word, "contract-1")
        delivered = self.report(self.delivered_word, "contract-1")
        assert self.send(client, sent, secret=self.secret).status_code == 200
        assert self.send(client, delivered, secret=self.rotated_secret).status_code == 200
        other = self.report(self.delivered_word, "contract-2")
        assert self.send(client, other, secret=self.wrong_secret).status_code == 403
        assert MessageEvent.objects.count() == 2

    def test_an_unsigned_report_is_403_and_writes_nothing(self, client, db):
        response = self.send_unsigned(client, self.report(self.delivered_word, "contract-1"))
        assert response.status_code == self.unsigned_status
        assert self.nothing_written()

    def test_a_wrong_secret_is_403_and_writes_nothing(self, client, db):
        report = self.report(self.delivered_word, "contract-1")
        response = self.send(client, report, secret=self.wrong_secret)
        assert response.status_code == 403
        assert "signature" in response.json()["detail"].lower()
        assert self.nothing_written()

    def test_a_report_changed_after_signing_is_403_and_writes_nothing(self, client, db):
        response = self.send_tampered(client, self.report(self.sent_word, "contract-1"))
        assert response.status_code == 403
        assert self.tampered_reason in response.json()["detail"]
        assert self.nothing_written()

    def test_a_stale_signature_is_403_where_the_scheme_has_a_time(self, client, db):
        response = self.send_stale(client, self.report(self.delivered_word, "contract-1"))
        if response is None:
            pytest.skip(f"{self.provider} signatures carry no time (a replay is a duplicate)")
        assert response.status_code == 403
        assert self.stale_reason in response.json()["detail"]
        assert self.nothing_written()

    def test_works_with_csrf_checks_and_restrictive_host_defaults(self, db, settings):
        settings.REST_FRAMEWORK = {
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "rest_framework.authentication.SessionAuthentication"
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
            "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
            "DEFAULT_THROTTLE_RATES": {"anon": "0/day"},
        }
        settings.MIDDLEWARE = [
            *settings.MIDDLEWARE,
            "django.contrib.auth.middleware.LoginRequiredMiddleware",
        ]
        client = Client(enforce_csrf_checks=True)
        response = self.send(client, self.report(self.delivered_word, "contract-1"))
        assert response.status_code == 200, response.content

    def test_a_provider_not_enabled_is_404(self, client, db, settings):
        settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "PROVIDERS": {}}
        response = self.send(client, self.report(self.delivered_word, "contract-1"))
        assert response.status_code == 404
        assert self.nothing_written()

    @pytest.mark.parametrize("debug, expected", [(True, 200), (False, 403)])
    def test_skipping_verification_works_only_with_debug(
        self, client, db, settings, debug, expected
    ):
        settings.DEBUG = debug
        settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "SKIP_SIGNATURE_VERIFICATION": True}
        response = self.send_unsigned(client, self.report(self.delivered_word, "contract-1"))
        assert response.status_code in ((expected, 503) if expected == 403 else (expected,))
        if debug:
            assert RawWebhook.objects.get().signature_valid is None  # "not checked"

    # -- reading ----------------------------------------------------------------------------

    def test_a_signed_report_without_a_message_id_is_400_and_kept_for_review(self, client, db):
        report = self.without_message_id(self.report(self.delivered_word, "contract-1"))
        response = self.send(client, report)
        assert response.status_code == 400
        raw = RawWebhook.objects.get()
        assert raw.parse_error and raw.signature_valid is True
        assert not MessageEvent.objects.exists() and not Message.objects.exists()

    def test_a_duplicate_is_stored_once_and_counted(self, client, db):
        report = self.report(self.delivered_word, "contract-1")
        first = self.send(client, report)
        second = self.send(client, report)
        assert (first.status_code, second.status_code) == (200, 200)
        event = MessageEvent.objects.get()
        assert event.duplicate_count == 1
        assert RawWebhook.objects.count() == 2  # each request is evidence

    def test_out_of_order_the_final_report_keeps_the_summary(self, client, db):
        self.send(client, self.report(self.delivered_word, "contract-1"))
        self.send(client, self.report(self.sent_word, "contract-1"))
        message = Message.objects.get()
        assert message.current_status == Status.DELIVERED
        late = message.events.get(status=Status.SENT)
        assert not late.applied and message.first_sent_at is not None

    def test_an_unknown_status_is_kept_for_review(self, client, db):
        self.send(client, self.report("brand_new_status", "contract-1"))
        message = Message.objects.get()
        assert (message.current_status, message.needs_review) == (Status.UNKNOWN, True)

    # -- messages people send us ------------------------------------------------------------

    def test_stop_start_and_ordinary_text(self, client, db):
        if not self.has_inbound:
            pytest.skip(f"{self.provider} has no inbound webhook")
        for text, message_id in [("STOP", "in-1"), ("start", "in-2"), ("See you soon", "in-3")]:
            response = self.send(client, self.inbound(text, message_id), kind="inbound")
            assert response.status_code == 200, response.content
        records = {r.keyword: r.consent for r in InboundMessage.objects.all()}
        assert records == {
            "STOP": ConsentChange.OPT_OUT,
            "START": ConsentChange.OPT_IN,
            "": "",
        }
        assert len({r.sender_hash for r in InboundMessage.objects.all()}) == 1

    def test_an_inbound_duplicate_is_one_record(self, client, db):
        if not self.has_inbound:
            pytest.skip(f"{self.provider} has no inbound webhook")
        stop = self.inbound("STOP", "in-1")
        for _ in range(2):
            assert self.send(client, stop, kind="inbound").status_code == 200
        assert InboundMessage.objects.count() == 1

    def test_an_unsigned_stop_is_refused(self, client, db):
        if not self.has_inbound:
            pytest.skip(f"{self.provider} has no inbound webhook")
        response = self.send_unsigned(client, self.inbound("STOP", "in-1"), kind="inbound")
        assert response.status_code in (403, 503)
        assert self.nothing_written()
