"""Time the operations commands on the database ``DATABASE_URL`` names (docs/operations.md).

Meant for a PostgreSQL database seeded with ``manage.py sms_delivery_seed --bulk 1000000``
(``make bench-operations`` builds one in a throwaway cluster and runs this). It changes the
database: the purge blanks half of it. Never run it on data you need.

- ``sms_delivery_health``: the whole report;
- ``sms_delivery_reconcile``: choosing what to ask about, then asking about 2,000 messages with
  the Twilio API faked in this process by ``responses`` (no network; every answer "delivered"),
  at an unlimited rate: our side of the cost, the provider's API time and rate limit aside;
- ``sms_delivery_replay``: 2,000 stored requests of the review queue, then 2,000 ordinary ones
  (marked verified first: the seed's requests were never verified, and replay refuses those);
- ``sms_delivery_erase``: the person with the most messages;
- ``sms_delivery_purge``: a dry run, then blanking everything older than 7 days (half of the 14
  days seeded), then a second run that finds nothing (from the checkpoint the first one left,
  then with ``--from-start``), then the next day's run (6 days: one more day's rows).

    DATABASE_URL=postgres://… python bench/operations.py
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import responses  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.db.models import Count  # noqa: E402

from delivery.lifecycle import Status  # noqa: E402
from delivery.models import Message, MessageEvent, RawWebhook  # noqa: E402

ROWS: list[tuple[str, int, float]] = []
TWILIO_API = re.compile(r"https://api\.twilio\.com/2010-04-01/Accounts/[^/]+/Messages/[^/]+\.json")


def timed(label: str, rows: int, command: str, *args, **options) -> str:
    out = io.StringIO()
    started = time.perf_counter()
    try:
        call_command(command, *args, stdout=out, **options)
    except CommandError as exc:  # a health check over its thresholds, a stopped run
        out.write(f"\n(exit 1: {exc})")
    ROWS.append((label, rows, time.perf_counter() - started))
    return out.getvalue()


def recount(rows: int) -> None:
    """Set the row count of the last measurement, known only once it ran."""
    label, _, seconds = ROWS.pop()
    ROWS.append((label, rows, seconds))


def main() -> None:
    print(
        f"{Message.objects.count():,} messages, {MessageEvent.objects.count():,} events, "
        f"{RawWebhook.objects.count():,} raw requests"
    )
    timed("sms_delivery_health", 1, "sms_delivery_health")

    providers = settings.SMS_DELIVERY.setdefault("PROVIDERS", {})
    providers["twilio"] = {
        **providers.get("twilio", {}),
        "ACCOUNT_SID": "AC" + "d3" * 16,
        "AUTH_TOKENS": ["bench-token"],
        "POLLS_PER_SECOND": 100_000,
    }
    timed(
        "sms_delivery_reconcile: choose (dry run, none asked)",
        1,
        "sms_delivery_reconcile",
        "--provider",
        "twilio",
        "--dry-run",
        "--limit",
        "0",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.get(
            TWILIO_API,
            json={
                "status": "delivered",
                "error_code": None,
                "date_updated": "Mon, 30 Nov 2026 01:00:42 +0000",
            },
        )
        out = timed(
            "sms_delivery_reconcile: ask and record",
            0,
            "sms_delivery_reconcile",
            "--provider",
            "twilio",
            "--limit",
            "2000",
        )
    recount(int(re.search(r"asked ([\d,]+);", out)[1].replace(",", "")))

    # The seed's requests were never verified (it made them up), and replay refuses those: the
    # ones replayed here are marked verified first, as the webhook view would have marked them.
    for label, requests in [
        ("sms_delivery_replay: review queue", RawWebhook.objects.exclude(parse_error="")),
        ("sms_delivery_replay: read, nothing new", RawWebhook.objects.filter(parse_error="")),
    ]:
        ids = list(requests.order_by("-pk").values_list("pk", flat=True)[:2000])
        RawWebhook.objects.filter(pk__in=ids).update(signature_valid=True)
        timed(label, len(ids), "sms_delivery_replay", "--ids", ",".join(map(str, ids)))

    busiest = (
        Message.objects.values("recipient_hash").annotate(n=Count("pk")).order_by("-n").first()
    )
    person = Message.objects.filter(recipient_hash=busiest["recipient_hash"]).first()
    timed(
        f"sms_delivery_erase ({busiest['n']} messages)",
        busiest["n"],
        "sms_delivery_erase",
        "--number",
        person.recipient,
        "--reason",
        "bench",
    )

    timed(
        "sms_delivery_purge: dry run",
        1,
        "sms_delivery_purge",
        "--dry-run",
        raw_requests_days=7,
        event_payloads_days=7,
        recipients_days=7,
    )
    blanked = (
        RawWebhook.objects.exclude(request_encrypted="").count()
        + MessageEvent.objects.exclude(payload_encrypted="").count()
        + Message.objects.exclude(recipient_encrypted="").count()
    )
    out = timed(
        "sms_delivery_purge: blank older than 7 days",
        0,
        "sms_delivery_purge",
        raw_requests_days=7,
        event_payloads_days=7,
        recipients_days=7,
    )
    left = (
        RawWebhook.objects.exclude(request_encrypted="").count()
        + MessageEvent.objects.exclude(payload_encrypted="").count()
        + Message.objects.exclude(recipient_encrypted="").count()
    )
    recount(blanked - left)
    timed(
        "sms_delivery_purge: again (nothing left, from the checkpoint)",
        0,
        "sms_delivery_purge",
        raw_requests_days=7,
        event_payloads_days=7,
        recipients_days=7,
    )
    timed(
        "sms_delivery_purge --from-start: again, walking every blanked row",
        0,
        "sms_delivery_purge",
        from_start=True,
        raw_requests_days=7,
        event_payloads_days=7,
        recipients_days=7,
    )
    before = left
    timed(
        "sms_delivery_purge: the next day's run (one more day)",
        0,
        "sms_delivery_purge",
        raw_requests_days=6,
        event_payloads_days=6,
        recipients_days=6,
    )
    recount(
        before
        - RawWebhook.objects.exclude(request_encrypted="").count()
        - MessageEvent.objects.exclude(payload_encrypted="").count()
        - Message.objects.exclude(recipient_encrypted="").count()
    )
    if "blanked" not in out or not Message.objects.filter(current_status=Status.DELIVERED).exists():
        sys.exit("The purge did not run as expected:\n" + out)

    print("\n| Operation | Rows | Seconds | Rows a second |")
    print("|---|---:|---:|---:|")
    for label, rows, seconds in ROWS:
        rate = f"{rows / seconds:,.0f}" if rows > 1 else "—"
        print(f"| {label} | {rows:,} | {seconds:.2f} | {rate} |")


if __name__ == "__main__":
    main()
