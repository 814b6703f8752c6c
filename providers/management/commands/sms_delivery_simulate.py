"""Post realistic, signed Twilio status callbacks to a running server: duplicated and shuffled,
followed by a few STOP replies to the inbound URL.

Watch the support console fill up, or check a deployment end to end::

    python manage.py sms_delivery_simulate --url http://127.0.0.1:8000 --messages 20

Callbacks are signed with the twilio SDK, with the first configured Twilio auth token unless
``--auth-token`` is given, for the URL they are posted to (``--url`` + ``--path``). Message ids
derive from ``--seed``, and delivery receipts carry the carrier's done date ``--done-date`` (this
minute unless given): running it again with both the same only delivers duplicates.
"""

from __future__ import annotations

import hashlib
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from urllib.parse import urlencode

import phonenumbers
from django.core.management.base import BaseCommand, CommandError
from twilio.request_validator import RequestValidator

from delivery.conf import app_settings
from delivery.exceptions import ConfigurationError
from providers.twilio import TwilioProvider, parse_raw_dlr_done_date

#: Outcomes and the MessageStatus sequence Twilio sends for each (weights sum to 100).
SCENARIOS = [
    (55, "sms", [("sent", ""), ("delivered", "")]),
    (8, "sms", [("sent", ""), ("undelivered", "30003")]),
    (6, "sms", [("sent", ""), ("undelivered", "30007")]),
    (4, "sms", [("failed", "30001")]),
    (3, "sms", [("failed", "30034")]),
    (8, "sms", [("sent", "")]),  # no receipt ever comes
    (14, "whatsapp", [("sent", ""), ("delivered", ""), ("read", "")]),
    (2, "whatsapp", [("failed", "63016")]),
]
REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "AU", "MX", "CA"]


def _recipient(rnd: random.Random) -> str:
    region = rnd.choice(REGIONS)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:  # every region of REGIONS has one in phonenumbers' metadata
        raise CommandError(f"phonenumbers has no example mobile number for {region}.")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def build_callbacks(
    messages: int, seed: int, account_sid: str, done_date: str
) -> list[dict[str, str]]:
    """Every callback of ``messages`` messages, with duplicates, in a shuffled order.

    ``done_date`` (``YYMMDDhhmm``) is the ``RawDlrDoneDate`` of the SMS delivery receipts; it is
    part of what tells two receipts apart, so a function of the arguments alone.
    """
    rnd = random.Random(seed)
    weights = [weight for weight, _, _ in SCENARIOS]
    callbacks = []
    for index in range(messages):
        _, channel, steps = rnd.choices(SCENARIOS, weights)[0]
        sid = "SM" + hashlib.sha256(f"simulate:{seed}:{index}".encode()).hexdigest()[:32]
        to = _recipient(rnd)
        sender = "whatsapp:+14155238886" if channel == "whatsapp" else "+15017122661"
        for status, error in steps:
            fields = {
                "AccountSid": account_sid,
                "ApiVersion": "2010-04-01",
                "From": sender,
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": f"whatsapp:{to}" if channel == "whatsapp" else to,
            }
            if channel == "whatsapp":
                fields.update(ChannelPrefix="whatsapp", ChannelToAddress=to)
            if error:
                fields["ErrorCode"] = error
            if status in ("delivered", "undelivered") and channel == "sms":
                fields["RawDlrDoneDate"] = done_date
            callbacks.append(fields)
    duplicates = rnd.sample(callbacks, k=len(callbacks) // 4)  # providers retry
    callbacks += duplicates
    rnd.shuffle(callbacks)  # and deliver out of order
    return callbacks


def build_replies(callbacks: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """Incoming messages: about one SMS recipient in ten texts STOP back (some twice)."""
    rnd = random.Random(seed + 1)
    pairs = sorted({(c["To"], c["From"]) for c in callbacks if "ChannelPrefix" not in c})
    replies = []
    for person, ours in rnd.sample(pairs, k=max(1, len(pairs) // 10)) if pairs else []:
        sid = "SM" + hashlib.sha256(f"simulate-reply:{seed}:{person}".encode()).hexdigest()[:32]
        fields = {"AccountSid": callbacks[0]["AccountSid"], "ApiVersion": "2010-04-01"}
        fields |= {"Body": "STOP", "From": person, "To": ours, "MessageSid": sid, "SmsSid": sid}
        fields |= {"NumMedia": "0", "NumSegments": "1", "SmsStatus": "received"}
        replies += [fields, fields] if rnd.random() < 0.3 else [fields]  # Twilio retries too
    return replies


class Command(BaseCommand):
    help = (
        "Post signed, duplicated, shuffled Twilio status callbacks (and a few STOP replies) "
        "to a running server."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL.")
        parser.add_argument("--path", default="/webhooks/twilio/status/")
        parser.add_argument("--inbound-path", default="/webhooks/twilio/inbound/")
        parser.add_argument("--messages", type=int, default=20)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--auth-token", help="Default: the first configured Twilio token.")
        parser.add_argument(
            "--done-date",
            metavar="YYMMDDhhmm",
            help="Carrier done date of the SMS delivery receipts, UTC. Default: this minute. "
            "A second run with the same --seed and --done-date posts only duplicates.",
        )
        parser.add_argument("--delay", type=float, default=0.0, help="Seconds between posts.")
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Wait up to this long for the server to answer before posting (make demo).",
        )

    def handle(
        self,
        *args,
        url,
        path,
        inbound_path,
        messages,
        seed,
        auth_token,
        done_date,
        delay,
        wait,
        **options,
    ):
        done_date = done_date or time.strftime("%y%m%d%H%M", time.gmtime())
        if parse_raw_dlr_done_date(done_date) is None:
            raise CommandError(f"--done-date {done_date!r} is not YYMMDDhhmm.")
        try:
            twilio = TwilioProvider(app_settings.PROVIDERS.get("twilio"))
        except ConfigurationError as exc:
            raise CommandError(f"{exc} (see manage.py check)") from exc
        tokens = [auth_token] if auth_token else twilio.options.auth_tokens
        if not tokens:
            raise CommandError("No Twilio auth token: pass --auth-token or set TWILIO_AUTH_TOKEN.")
        account_sid = twilio.options.account_sid or "AC" + "0" * 32
        validator = RequestValidator(tokens[0])
        callbacks = build_callbacks(messages, seed, account_sid, done_date)
        replies = build_replies(callbacks, seed)
        outcomes: Counter[int] = Counter()
        self._wait_for(url, wait)
        for target, batch in [
            (url.rstrip("/") + path, callbacks),
            (url.rstrip("/") + inbound_path, replies),
        ]:
            self.stdout.write(f"Posting {len(batch)} signed requests to {target}")
            for fields in batch:
                signature = validator.compute_signature(target, fields)
                outcomes[self._post(target, fields, signature)] += 1
                if delay:
                    time.sleep(delay)
        summary = ", ".join(f"{count} × {status}" for status, count in sorted(outcomes.items()))
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}"))
        if set(outcomes) - {200}:
            raise CommandError(f"Some callbacks were not accepted: {summary}")

    def _wait_for(self, url: str, seconds: float) -> None:
        """Poll ``url`` until anything answers (any HTTP status) or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - operator's server
                return
            except urllib.error.HTTPError:
                return  # it answered
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)

    def _post(self, target: str, fields: dict[str, str], signature: str) -> int:
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own server
            target,
            data=urlencode(fields).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1 (django-sms-delivery simulate)",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except urllib.error.URLError as exc:
            raise CommandError(f"Cannot reach {target}: {exc.reason}") from exc
