"""System checks return exact, stable messages for each misconfiguration."""

import pytest
from django.core.checks import Error, Warning

from delivery.checks import Codes, check_keys, check_providers
from delivery.registry import PROVIDERS


def ids(messages):
    return [m.id for m in messages]


def test_a_correct_configuration_passes():
    assert check_keys() == [] and check_providers() == []


def test_missing_keys_are_errors_without_debug(settings):
    settings.SMS_DELIVERY = {"PROVIDERS": {}}
    assert ids(check_keys()) == [Codes.NO_HASH_KEY, Codes.NO_ENCRYPTION_KEYS]
    assert all(isinstance(m, Error) and m.hint for m in check_keys())


def test_keys_are_derived_with_debug(settings):
    settings.SMS_DELIVERY = {}
    settings.DEBUG = True
    assert check_keys() == []


def test_skipping_verification_is_an_error_without_debug(settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "SKIP_SIGNATURE_VERIFICATION": True}
    assert check_keys() == [
        Error(
            "SMS_DELIVERY['SKIP_SIGNATURE_VERIFICATION'] is on with DEBUG=False: anyone could "
            "forge delivery reports.",
            hint="Remove the setting. It exists for local development only.",
            id="sms_delivery.E004",
        )
    ]
    settings.DEBUG = True
    assert check_keys() == []


def test_plain_http_base_url_warns(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "WEBHOOK_BASE_URL": "http://hooks.example.com",
    }
    [message] = check_keys()
    assert isinstance(message, Warning) and message.id == Codes.BASE_URL_NOT_HTTPS


def test_provider_without_tokens_and_unknown_provider(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"twilio": {}, "carrier-pigeon": {}},
    }
    assert check_providers() == [
        Error(
            "SMS_DELIVERY['PROVIDERS']['twilio'] has no AUTH_TOKENS; every Twilio callback would "
            "be rejected.",
            hint="Set the twilio credentials (see the README section for twilio).",
            id="sms_delivery.E001",
        ),
        Error(
            "SMS_DELIVERY['PROVIDERS'] names 'carrier-pigeon', which is not a known provider.",
            hint=f"Known providers: {', '.join(sorted(PROVIDERS))}.",
            id="sms_delivery.E005",
        ),
    ]


def test_missing_provider_sdk_names_the_extra(settings, monkeypatch):
    from delivery import registry

    monkeypatch.setitem(registry.PROVIDERS, "acme", "providers.acme_not_installed.AcmeProvider")
    registry.provider_class.cache_clear()
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "PROVIDERS": {"acme": {}}}
    [error] = check_providers()
    assert error.id == Codes.PROVIDER_SDK_MISSING
    assert "pip install 'django-sms-delivery[acme]'" in error.msg


def test_a_misspelled_provider_option_has_its_own_id_and_a_suggestion(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"twilio": {"AUTH_TOKEN": "t", "AUTH_TOKENS": "t", "SHAREDKEYS": {}}},
    }
    assert check_providers() == [
        Error(
            "SMS_DELIVERY['PROVIDERS']['twilio'] has an unknown option 'AUTH_TOKEN'; it is "
            "ignored.",
            hint="Did you mean 'AUTH_TOKENS'?",
            id="sms_delivery.E007",
        ),
        Error(
            "SMS_DELIVERY['PROVIDERS']['twilio'] has an unknown option 'SHAREDKEYS'; it is "
            "ignored.",
            hint="Did you mean 'SHARED_KEYS'?",
            id="sms_delivery.E007",
        ),
    ]


def test_an_option_of_the_wrong_type_is_its_own_error_and_answers_503(settings, client, db):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"twilio": {"AUTH_TOKENS": "t", "SUBACCOUNTS": ["AC1", "t"]}},
    }
    [error] = check_providers()
    assert error.id == "sms_delivery.E008" and "wrong type" in error.msg
    response = client.post("/webhooks/twilio/status/", {"MessageSid": "SM1"})
    assert response.status_code == 503


def test_an_invalid_option_value_is_e008_and_missing_credentials_e001(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"vonage": {"SIGNATURE_METHOD": "sha384"}},
    }
    assert [e.id for e in check_providers()] == ["sms_delivery.E001", "sms_delivery.E008"]


@pytest.mark.parametrize(
    "provider, options, reason",
    [
        ("vonage", {"SIGNATURE_SECRETS": "s", "UNSIGNED_DLRS_ALLOWED": "false"}, "not bool"),
        ("plivo", {"AUTH_TOKENS": "t", "ACCEPT_V2_SIGNATURES": "no"}, "not bool"),
        ("plivo", {"AUTH_TOKENS": "t", "AUTH_ID": 123}, "not str"),
        ("plivo", {"AUTH_TOKENS": "t", "V2_NONCE_TTL": "abc"}, "not int"),
        ("twilio", {"AUTH_TOKENS": "t", "SHARED_KEYS": {"k": ["a"]}}, "not dict"),
        ("twilio", "the-token", "not a dict of options"),
        ("telnyx", ["key"], "not a dict of options"),
    ],
)
def test_an_option_of_the_wrong_type_is_e008_and_the_webhook_answers_503(
    settings, client, db, provider, options, reason
):
    """A "false" where a bool belongs must not be read as true (it would turn checks off)."""
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "PROVIDERS": {provider: options}}
    [error] = check_providers()
    assert error.id == "sms_delivery.E008" and reason in error.msg
    assert client.post(f"/webhooks/{provider}/status/", {"x": "1"}).status_code == 503
    assert client.head(f"/webhooks/{provider}/status/").status_code == 503


def test_unsigned_vonage_switches_warn(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"vonage": {"UNSIGNED_DLRS_ALLOWED": True, "UNSIGNED_INBOUND_ALLOWED": True}},
    }
    assert [e.id for e in check_providers()] == ["sms_delivery.W003", "sms_delivery.W003"]


def test_an_undefined_nonce_cache_is_e008(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "PROVIDERS": {"plivo": {"AUTH_TOKENS": "t", "V2_NONCE_CACHE": "nope"}},
    }
    [error] = check_providers()
    assert error.id == "sms_delivery.E008" and "'nope'" in error.msg


def test_error_codes_are_explained_without_the_providers_sdk(monkeypatch):
    """The console explains a stored Vonage error even where the vonage extra is missing."""
    from delivery import registry

    monkeypatch.setitem(registry.PROVIDERS, "vonage", "providers.vonage_not_installed.X")
    registry.provider_class.cache_clear()
    try:
        assert registry.error_info("vonage", "2").title == "Absent Subscriber - Temporary"
    finally:
        registry.provider_class.cache_clear()
