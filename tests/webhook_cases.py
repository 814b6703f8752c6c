"""Security cases every provider must pass; a provider's test class mixes this in.

No ``Test`` prefix, so pytest does not collect the base class itself.
"""

import pytest
from django.test import Client

from delivery.models import Message, MessageEvent, RawWebhook


class WebhookSecurityCases:
    provider_name: str
    url = "/webhooks/{provider}/status/"

    def valid_payload(self) -> dict:
        raise NotImplementedError

    def post_signed(self, client, payload, **kwargs):
        """POST ``payload`` signed the provider's way (by its SDK); kwargs tweak the signing."""
        raise NotImplementedError

    def post_unsigned(self, client, payload):
        raise NotImplementedError

    @property
    def path(self):
        return self.url.format(provider=self.provider_name)

    def assert_nothing_written(self):
        assert not RawWebhook.objects.exists()
        assert not MessageEvent.objects.exists()
        assert not Message.objects.exists()

    def test_valid_signature_is_stored(self, client, db):
        response = self.post_signed(client, self.valid_payload())
        assert response.status_code == 200, response.content
        assert MessageEvent.objects.count() == 1

    def test_missing_signature_is_403_and_writes_nothing(self, client, db):
        response = self.post_unsigned(client, self.valid_payload())
        assert response.status_code == 403
        self.assert_nothing_written()

    def test_wrong_secret_is_403_and_writes_nothing(self, client, db):
        response = self.post_signed(client, self.valid_payload(), secret="not-the-token")
        assert response.status_code == 403
        assert "signature" in response.json()["detail"].lower()
        self.assert_nothing_written()

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
        response = self.post_signed(Client(enforce_csrf_checks=True), self.valid_payload())
        assert response.status_code == 200, response.content

    def test_unconfigured_provider_is_404(self, client, db, settings):
        settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "PROVIDERS": {}}
        response = self.post_signed(client, self.valid_payload())
        assert response.status_code == 404
        self.assert_nothing_written()

    @pytest.mark.parametrize("debug, expected", [(True, 200), (False, 403)])
    def test_skip_verification_only_with_debug(self, client, db, settings, debug, expected):
        settings.DEBUG = debug
        settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "SKIP_SIGNATURE_VERIFICATION": True}
        response = self.post_unsigned(client, self.valid_payload())
        assert response.status_code == expected
