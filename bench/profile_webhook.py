"""Where a webhook's time goes: ``cProfile`` of Django's test client posting signed Twilio
status callbacks to the webhook, in one process, on the database of ``DATABASE_URL``:

    scripts/with-postgres.sh .venv/bin/python bench/profile_webhook.py --mode deferred

``--mode sync`` (the default) applies each report before the answer, ``deferred`` only stores
it (no task worker runs); ``--duplicates`` posts requests already stored. Prints the calls that
took the most cumulative time. The test client adds its own overhead (it connects signals on
every request): compare the webhook's own lines, not the total, with a served worker's.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN = "bench-profile-token"
URL = "http://testserver/webhooks/twilio/status/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("sync", "deferred"), default="sync")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duplicates", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DEBUG="false",
        SECRET_KEY="bench-profile-secret-key-0123456789",
        SMS_DELIVERY_HASH_KEY="bench-hash-key",
        SMS_DELIVERY_ENCRYPTION_KEYS="bench-encryption-key",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN=TOKEN,
        ALLOWED_HOSTS="testserver",
        SMS_DELIVERY_PROCESSING=args.mode,
        TASKS_BACKEND="db",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from twilio.request_validator import RequestValidator

    call_command("migrate", "-v0")
    validator = RequestValidator(TOKEN)
    requests = []
    for n in range(args.requests):
        sid = f"SMprofile{n:023x}"
        fields = {
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "From": "+15017122661",
            "MessageSid": sid,
            "MessageStatus": "delivered",
            "SmsSid": sid,
            "SmsStatus": "delivered",
            "To": f"+1415555{n % 10000:04d}",
        }
        requests.append((urlencode(fields), validator.compute_signature(URL, fields)))
    client = Client()

    def post(body: str, signature: str) -> None:
        answer = client.post(
            "/webhooks/twilio/status/",
            body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        if answer.status_code != 200:
            raise SystemExit(f"answered {answer.status_code}: {answer.content[:200]!r}")

    warm = requests[:100]
    for request in warm:  # imports, connections, caches: not what is measured
        post(*request)
    measured = warm * (args.requests // len(warm)) if args.duplicates else requests[100:]
    profile = cProfile.Profile()
    profile.enable()
    for request in measured:
        post(*request)
    profile.disable()
    print(f"{len(measured)} requests, mode {args.mode}{', duplicates' if args.duplicates else ''}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
