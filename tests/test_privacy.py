"""No phone number in clear outside an audited reveal: not in logs, URLs, pages or at rest.

The people's numbers of the test data (tests/privacy.py) are searched in every common spelling.
Every test of the suite also fails on one written to a log (conftest ``no_numbers_in_logs``).
"""

import json
import logging
import re
import sys
from collections import deque
from html import unescape
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from delivery import statements
from delivery.ingest import register_outbound
from delivery.masking import MaskPhoneNumbers, Revealed
from delivery.models import Message, RawWebhook
from support_console.groups import AGENT, LEAD
from support_console.models import RevealLog
from tests.fixtures import plivo, telnyx, twilio, vonage
from tests.fuzzing import PROVIDER_SETTINGS, Spec, build
from tests.privacy import PEOPLE, numbers_in, stored_text
from tests.test_fuzz import send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def every_provider(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"] = {name: dict(o) for name, o in PROVIDER_SETTINGS.items()}


def deliver(provider, payload, kind="status", transport="form", signed=True):
    spec = Spec(provider, kind, transport, payload, signed=signed)
    return send(Client(), build(spec, "http://testserver"))


#: Signed callbacks of every provider: numbers in bodies, query strings, error texts and ids.
CALLBACKS = [
    ("twilio", "status", "form", twilio.UNDELIVERED_30003),
    ("twilio", "status", "get", twilio.callback("sent")),
    (
        "twilio",
        "status",
        "form",
        twilio.callback(
            "failed",
            sid="SM" + "2" * 32,  # no ErrorCode: the page shows the provider's own words
            ErrorMessage="Invalid 'To' Phone Number: +1 (415) 555-0100",
            To="+14155550100",
        ),
    ),
    ("twilio", "status", "form", twilio.WHATSAPP_FAILED_63016),
    ("twilio", "inbound", "form", {"MessageSid": "SM9", "From": "+14155550100", "Body": "STOP"}),
    ("vonage", "status", "get", vonage.dlr("failed", **{"err-code": "2"})),
    (
        "vonage",
        "status",
        "get",
        vonage.dlr("delivered", message_id="0B000001DK", msisdn="4532123456"),
    ),
    ("vonage", "status", "json", vonage.MESSAGES_DELIVERED),
    ("vonage", "inbound", "get", vonage.inbound_sms("STOP")),
    ("plivo", "status", "form", plivo.callback("undelivered", ErrorCode="200")),
    ("plivo", "inbound", "get", plivo.incoming("STOP")),
    ("telnyx", "status", "json", telnyx.GROUP_FINALIZED),
    ("telnyx", "status", "json", telnyx.event("delivery_failed")),
    ("telnyx", "inbound", "json", telnyx.inbound("STOP")),
]


@pytest.fixture
def traffic(django_capture_on_commit_callbacks):
    """Every callback above delivered, a message registered at send time, and one unparseable
    request in the review queue."""
    for provider, kind, transport, payload in CALLBACKS:
        response = deliver(provider, payload, kind, transport)
        assert response.status_code == 200, (provider, payload, response.content)
    register_outbound(provider="twilio", provider_message_id="SM" + "7" * 32, to="+14155550123")
    bad = {**twilio.SENT, "MessageSid": None, "SmsSid": None, "To": "+15558675310"}
    assert deliver("twilio", {k: v for k, v in bad.items() if v}).status_code == 400


# -- logs ----------------------------------------------------------------------------------


def test_signature_rejections_log_the_url_with_numbers_masked(caplog):
    danish = vonage.dlr("delivered", msisdn="4532123456")
    with caplog.at_level(logging.WARNING, logger="delivery.webhooks"):
        assert deliver("vonage", vonage.DLR_DELIVERED, transport="get", signed=False).status_code
        assert deliver("vonage", danish, transport="get", signed=False).status_code
        assert deliver("twilio", twilio.DELIVERED, transport="get", signed=False).status_code
    assert "msisdn=••••••••0001" in caplog.text  # the URL is logged, to diagnose proxies
    assert "msisdn=••••••3456" in caplog.text  # ten digits, no "+": masked by its field name
    assert "To=%2B•••••••5310" in caplog.text
    assert not numbers_in(caplog.text)


def test_storage_errors_are_logged_without_the_data_they_quote(monkeypatch, caplog):
    def down(*args, **kwargs):
        raise OperationalError('insert failed\nCONTEXT: JSON data, "To": "+15558675310"')

    for storing in ("insert_event", "insert_report_of_new_message"):  # SQLite, PostgreSQL
        monkeypatch.setattr(statements, storing, down)
    with caplog.at_level(logging.ERROR, logger="delivery.webhooks"):
        assert deliver("twilio", twilio.UNDELIVERED_30003).status_code == 503
    assert "could not be stored: OperationalError" in caplog.text
    assert "CONTEXT" not in caplog.text


def test_the_log_filter_masks_messages_and_tracebacks():
    try:
        raise ValueError("invalid literal for int(): '+14155550100'")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "to %s", ("447700900001",), sys.exc_info()
        )
    MaskPhoneNumbers().filter(record)
    text = logging.Formatter().format(record)
    assert "to ••••••••0001" in text and "+1 ••• ••• 0100" in text
    assert record.exc_info is None and not numbers_in(text)


def test_revealed_values_print_in_clear_but_represent_themselves_masked():
    revealed = Revealed("+14155550100")
    assert str(revealed) == "+14155550100"
    assert "+14155550100" not in repr({"revealed": revealed})


# -- at rest ---------------------------------------------------------------------------------


def test_no_number_is_stored_in_clear(traffic, client):
    lead = User.objects.create_user("lead", password="x", is_staff=True)
    lead.groups.add(Group.objects.get(name=LEAD))
    client.force_login(lead)
    message = Message.objects.exclude(recipient_encrypted="").first()
    url = reverse("admin:sms_delivery_message_reveal", args=[message.pk])
    client.post(url, {"reason": "customer on +1 (415) 555-0100 called, ticket 7"})
    assert RevealLog.objects.count() == 1
    dump = stored_text()
    assert Message.objects.count() >= 10 and "gAAAAA" in dump  # the data is there, encrypted
    assert numbers_in(dump) == []


# -- pages and URLs ----------------------------------------------------------------------------


def staff(username, group):
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def test_the_raw_request_page_masks_its_path_and_records_nothing_until_a_reason(traffic):
    client = staff("lead", LEAD)
    raw = RawWebhook.objects.filter(method="GET", provider="vonage").first()
    page = client.get(reverse("admin:sms_delivery_rawwebhook_change", args=[raw.pk]))
    html = page.content.decode()
    assert "msisdn=••••••••0001" in unescape(html) and not numbers_in(unescape(html))
    assert not RevealLog.objects.exists()


def test_provider_error_text_is_masked_on_the_message_page(traffic):
    client = staff("agent", AGENT)
    message = Message.objects.get(provider_message_id="SM" + "2" * 32)
    html = unescape(
        client.get(reverse("admin:sms_delivery_message_change", args=[message.pk])).text
    )
    assert "Invalid 'To' Phone Number: +1 ••• ••• 0100" in html
    assert not numbers_in(html)


def test_reveal_reasons_are_stored_with_numbers_masked(traffic):
    client = staff("lead", LEAD)
    message = Message.objects.exclude(recipient_encrypted="").first()
    for reason in ["ticket 88: +14155550100 asked", "called from (415) 555-0100", "4155550100"]:
        client.post(
            reverse("admin:sms_delivery_message_reveal", args=[message.pk]), {"reason": reason}
        )
    reasons = list(RevealLog.objects.values_list("reason", flat=True))
    assert len(reasons) == 3 and "ticket 88" in " ".join(reasons)
    assert not numbers_in(" ".join(reasons))


#: Links the crawl does not follow: they change state or leave the console.
_SKIP = re.compile(r"/(logout|password_change|jsi18n)/|/reveal/$|^/$")


def _page(link: str) -> str | None:
    """The page a link shows, or None to skip it: filter combinations are endless, so a link
    with more than one list parameter is skipped (each filter value is still visited alone)."""
    parts = urlsplit(link)
    query = [p for p in parts.query.split("&") if p and not p.startswith("_changelist_filters")]
    if len(query) > 1:
        return None
    return parts.path + ("?" + query[0] if query else "")


def crawl(client, start="/admin/", limit=500) -> dict[str, str]:
    """Every console page reachable from ``start`` by GET links: {url: html}."""
    seen, pages, queue = {start}, {}, deque([start])
    while queue:
        assert len(pages) < limit, "the crawl did not end"
        url = queue.popleft()
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code == 302:
            queue.append(response["Location"])
            continue
        html = response.content.decode()
        pages[url] = html
        for href in re.findall(r'href="([^"#]+)"', html):
            absolute = urljoin(url, unescape(href))
            assert not numbers_in(unquote(absolute)), absolute
            link = _page(absolute)
            if not link or not link.startswith("/admin/") or _SKIP.search(link):
                continue
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return pages


@pytest.mark.parametrize("group", [AGENT, LEAD])
def test_an_agent_crawl_of_every_console_page_finds_no_number(traffic, group):
    client = staff("someone", group)
    for number in PEOPLE[:3]:  # searches move the number out of the URL
        response = client.post(reverse("admin:sms_delivery_message_search"), {"q": number})
        assert not numbers_in(unquote(response["Location"]))
    pages = crawl(client)
    visited = {int(m) for url in pages for m in re.findall(r"/message/(\d+)/change/", url)}
    assert visited == set(Message.objects.values_list("pk", flat=True))
    assert any("/rawwebhook/" in url for url in pages) == (group == LEAD)
    for url, html in pages.items():
        assert not numbers_in(unquote(url)), url
        assert not numbers_in(unescape(html)), (url, numbers_in(unescape(html)))


def test_raw_payload_pages_show_odd_stored_values_without_failing(traffic):
    """A signed payload may hold a lone surrogate or NUL; its page must still render."""
    body = json.dumps(telnyx.event("delivered", message_id="odd-1", event_id="odd-event"))[:-1]
    body += ', "x": ["\\ud800", "\\u0000", "\\u202e"]}'
    assert (
        send(
            Client(),
            build(Spec("telnyx", "status", "raw", None, body=body.encode()), "http://testserver"),
        ).status_code
        == 200
    )
    message = Message.objects.get(provider_message_id="odd-1")
    client = staff("lead", LEAD)
    url = reverse("admin:sms_delivery_message_raw", args=[message.pk])
    for unmasked in ("", "1"):
        response = client.post(url, {"reason": "ticket 12, odd data", "unmasked": unmasked})
        assert response.status_code == 200
        assert "\\ud800" in response.content.decode()
