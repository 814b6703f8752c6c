"""Time every support-console page on the database ``DATABASE_URL`` names.

Meant for a PostgreSQL database seeded with ``manage.py sms_delivery_seed --bulk 1000000``
(``make bench-console`` builds one in a throwaway cluster and runs this). Each page is viewed
once right after the cache is cleared (``cold``: what the first view after the filter-choice
cache expires costs), then ``--repeat`` times: median, 95th percentile, the number of SQL queries
and the ratio of the median to the admin index page's (a page that reads no delivery table),
measured in the same run. The requests go through Django's whole stack in this process, as a
single gunicorn worker would serve them, with ``DEBUG`` off. With ten views a page, the p95 is
close to the slowest of them.

It writes to the database it measures: a superuser ``bench-admin`` (no usable password) is
created if missing, and the cache is cleared before each page. Run it on a throwaway database
or a copy of production, never on production itself.

    DATABASE_URL=postgres://… python bench/console.py [--repeat 10] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from delivery.conf import app_settings  # noqa: E402
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook  # noqa: E402


def production_settings() -> None:
    """``DEBUG`` off, with the keys the (demo) data was encrypted with kept explicitly."""
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "HASH_KEY": app_settings.HASH_KEY,
        "ENCRYPTION_KEYS": app_settings.ENCRYPTION_KEYS,
    }
    settings.DEBUG = False
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def admin_url(name: str, *args, **query) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def pages(client: Client) -> list[tuple[str, str]]:
    """(label, URL) of every console page, with realistic objects and filters."""
    newest = Message.objects.order_by("-created_at", "-id").first()
    if newest is None:
        sys.exit("No messages: seed the database first (sms_delivery_seed --bulk 1000000).")
    middle = Message.objects.filter(pk__gte=newest.pk // 2).order_by("pk").first() or newest
    failed = Message.objects.filter(pk__lte=middle.pk, error_category__gt="").order_by("-pk")[0]
    raw = RawWebhook.objects.filter(pk__lte=middle.pk * 2).order_by("-pk").first()
    unreadable = RawWebhook.objects.exclude(parse_error="").order_by("-received_at", "-id")[0]
    inbound = InboundMessage.objects.order_by("-received_at", "-id").first()
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    search = client.post(admin_url("sms_delivery_message_search"), {"q": newest.recipient})
    messages, raws, inbounds = (
        admin_url(f"sms_delivery_{model}_changelist")
        for model in ("message", "rawwebhook", "inboundmessage")
    )
    found = [
        ("admin index", admin_url("index")),
        ("messages", messages),
        ("messages, page 20", f"{messages}?p=20"),
        ("messages: delivered", f"{messages}?current_status__exact=delivered"),
        ("messages: pending", f"{messages}?final=no"),
        ("messages: needs review", f"{messages}?needs_review=yes"),
        ("messages: country GB", f"{messages}?destination_country=GB"),
        ("messages: provider vonage", f"{messages}?provider=vonage"),
        ("messages: sender ACME", f"{messages}?sender_identity=ACME"),
        ("messages: template order_shipped", f"{messages}?template_key=order_shipped"),
        ("messages: unreachable handset", f"{messages}?error_category__exact=unreachable_handset"),
        (
            "messages: today",
            f"{messages}?"
            + urlencode({"created_at__gte": today, "created_at__lt": today + timedelta(days=1)}),
        ),
        ("messages: search a number", search["Location"]),
        ("messages: search a provider id", f"{messages}?q={middle.provider_message_id}"),
        ("message page (newest)", admin_url("sms_delivery_message_change", newest.pk)),
        ("message page (failed)", admin_url("sms_delivery_message_change", failed.pk)),
        ("message raw payloads", admin_url("sms_delivery_message_raw", failed.pk)),
        ("raw requests", raws),
        ("raw requests: unreadable", f"{raws}?parse_failed=yes"),
        ("raw requests: provider plivo", f"{raws}?provider=plivo"),
        ("raw request page", admin_url("sms_delivery_rawwebhook_change", raw.pk if raw else 1)),
        (
            "unreadable request page",
            admin_url("sms_delivery_rawwebhook_change", unreadable.pk),
        ),
        ("inbound messages", inbounds),
        ("inbound: opt-outs", f"{inbounds}?consent__exact=opt_out"),
        ("reveal log", admin_url("sms_delivery_console_reveallog_changelist")),
        ("suppression list", admin_url("sms_delivery_suppression_changelist")),
        ("alerts", admin_url("sms_delivery_alert_changelist")),
    ]
    analytics_page = admin_url("sms_delivery_console_deliveryanalytics_changelist")
    for window in ("24h", "7d", "30d"):
        found.append((f"delivery analytics, {window}", f"{analytics_page}?window={window}"))
    if inbound:
        found.append(
            ("inbound message page", admin_url("sms_delivery_inboundmessage_change", inbound.pk))
        )
    return found


def measure(client: Client, url: str, repeat: int) -> dict:
    cache.clear()
    started = time.perf_counter()
    response = client.get(url)
    cold = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured)  # now: the next request's reset_queries empties the log
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return {
        "median": statistics.median(times) * 1000,
        "p95": statistics.quantiles(times, n=20, method="inclusive")[18] * 1000,
        "cold": cold * 1000,
        "queries": queries,
    }


def table_sizes() -> str:
    return ", ".join(
        f"{model.objects.count():,} {model._meta.verbose_name_plural}"
        for model in (Message, MessageEvent, RawWebhook, InboundMessage)
    )


def build_rollup() -> None:
    """Count every message into the analytics rollup (what ``sms_delivery_rollup --days``
    covering them all does), timed; then time one evaluation of the alert rules."""
    from delivery import alerts
    from delivery.analytics import rebuild

    oldest = Message.objects.order_by("created_at").values_list("created_at", flat=True).first()
    started = time.perf_counter()
    counted = rebuild(oldest, timezone.now())
    print(
        f"analytics rollup: {counted:,} messages counted in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    outcome = alerts.evaluate()
    print(
        f"alert rules evaluated in {time.perf_counter() - started:.2f} s "
        f"({len(outcome.fired)} fired)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="Views per page (default 10).")
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
    args = parser.parse_args()
    production_settings()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin",
        defaults={"is_staff": True, "is_superuser": True, "password": make_password(None)},
    )
    client = Client()
    client.force_login(user)
    print(
        f"{connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}"
    )
    print(table_sizes())
    build_rollup()
    results = [(label, measure(client, url, args.repeat)) for label, url in pages(client)]
    base = results[0][1]["median"]
    if args.markdown:
        print("\n| Page | median ms | p95 ms | cold ms | queries | × index |")
        print("|---|---:|---:|---:|---:|---:|")
        row = "| {} | {median:.0f} | {p95:.0f} | {cold:.0f} | {queries} | {ratio:.1f} |"
    else:
        print(f"\n{'page':<36} {'median':>8} {'p95':>8} {'cold':>8} {'queries':>8} {'×index':>7}")
        row = "{:<36} {median:>6.0f}ms {p95:>6.0f}ms {cold:>6.0f}ms {queries:>8} {ratio:>7.1f}"
    for label, figures in results:
        print(row.format(label, ratio=figures["median"] / base, **figures))
    worst = max(results, key=lambda r: r[1]["p95"])
    print(
        f"\nslowest p95: {worst[0]} {worst[1]['p95']:.0f} ms; "
        f"highest median: {max(r[1]['median'] for r in results):.0f} ms "
        f"({args.repeat} views each)"
    )


if __name__ == "__main__":
    main()
