"""What a webhook worker costs before its first request: memory and start-up, by the providers it
enables (``make bench-footprint``; docs/performance.md, "Memory and start-up").

Each configuration starts a fresh Python (``python -X importtime`` is not used: it slows the
imports it measures) that sets Django up with the demo project's settings and imports what a
gunicorn worker imports before it answers: the URLconf (the webhook view, the console's admin,
autodiscovered) and the enabled providers' adapters. It prints the process's maximum RSS and how
long that took, the median of ``--runs`` starts. The baseline is Django with DRF and the admin
alone (``bench/settings_bare.py``), measured the same way in the same run.

Then, unless ``--no-gunicorn``, gunicorn serves the demo with all four providers, ``--preload``
and 4 workers (config/gunicorn.conf.py), and the workers' RSS and PSS (their fair share of the
pages they share with the master, copy-on-write) are read from /proc after each answered a
webhook.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Test keys only: the adapters need a credential to be enabled (Telnyx: an Ed25519 public key).
PROVIDER_ENV = {
    "twilio": {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "bench-token"},
    "vonage": {"VONAGE_SIGNATURE_SECRET": "bench-vonage-secret"},
    "plivo": {"PLIVO_AUTH_ID": "MA" + "X" * 18, "PLIVO_AUTH_TOKEN": "bench-plivo-token"},
    "telnyx": {"TELNYX_PUBLIC_KEY": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="},
}

PROBE = r"""
import resource, sys, time
started = time.perf_counter()
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # the URLconf: webhook view, admin and its autodiscovered modules
from django.contrib import admin
admin.site.get_urls()
from django.apps import apps
if apps.is_installed("delivery"):
    from delivery.conf import app_settings
    from delivery.registry import provider_class
    for name in app_settings.PROVIDERS:
        provider_class(name)
elapsed = time.perf_counter() - started
print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} {elapsed:.3f}")
"""


def environment(providers: list[str], settings: str = "config.settings") -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "VONAGE_", "PLIVO_"))
    }
    env.pop("TELNYX_PUBLIC_KEY", None)
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        DEBUG="false",
        SECRET_KEY="bench-footprint-secret-key-0123456789",
        SMS_DELIVERY_HASH_KEY="bench-hash-key",
        SMS_DELIVERY_ENCRYPTION_KEYS="bench-encryption-key",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:////tmp/bench-footprint.sqlite3"),
    )
    for name in providers:
        env.update(PROVIDER_ENV[name])
    return env


def probe(env: dict[str, str], runs: int, tree: Path = ROOT) -> tuple[float, float]:
    """Median max RSS (MiB) and start-up (s) of ``runs`` fresh processes in checkout ``tree``."""
    results = []
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        rss, seconds = out.stdout.split()
        results.append((float(rss), float(seconds)))
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
    )


def children_of(pid: int) -> list[int]:
    """A process's children (a gunicorn master's workers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def memory_of(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process, in MiB (/proc/<pid>/smaps_rollup)."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


def post_callback(port: int, n: int) -> None:
    """A Twilio status callback signed with the SDK, for a new message."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    url = f"http://127.0.0.1:{port}/webhooks/twilio/status/"
    sid = f"SMfootprint{n:021d}"
    fields = {"AccountSid": "AC" + "0" * 32, "MessageSid": sid, "MessageStatus": "delivered"}
    fields["To"] = f"+1415555{n % 10000:04d}"
    signature = RequestValidator(PROVIDER_ENV["twilio"]["TWILIO_AUTH_TOKEN"]).compute_signature(
        url, fields
    )
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=urlencode(fields).encode(), headers={"X-Twilio-Signature": signature}
    )
    with urllib.request.urlopen(request) as answer:  # noqa: S310
        answer.read()


def gunicorn_workers(env: dict[str, str], workers: int) -> None:
    from bench.ingest import free_port, start_server  # the ingest bench's: same server

    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    env["GUNICORN_ACCESS_LOG"] = os.devnull
    log = Path(tempfile.mkdtemp(prefix="bench-footprint-")) / "gunicorn.log"
    started = time.perf_counter()
    server = start_server(env, port, log)  # preloads: config/gunicorn.conf.py
    answered = time.perf_counter() - started
    try:
        for n in range(workers * 10):  # every worker answers webhooks, as in production
            post_callback(port, n)
        children = children_of(server.pid)
        master = memory_of(server.pid)
        figures = [memory_of(pid) for pid in children]
        print(
            f"\ngunicorn --preload, {len(children)} workers, all four providers, after "
            f"{workers * 10} webhooks: listening {answered:.1f} s after the start"
        )
        print(f"  master: RSS {master[0]:.0f} MiB, PSS {master[1]:.0f} MiB")
        for n, (rss, pss) in enumerate(figures, 1):
            print(f"  worker {n}: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB")
        print(
            f"worker PSS (all providers, --preload): {statistics.median(p for _, p in figures):.0f} MiB"
        )
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="Starts per configuration (5).")
    parser.add_argument("--no-gunicorn", action="store_true")
    parser.add_argument(
        "--before", type=Path, help="A checkout of an older revision, measured in the same run."
    )
    args = parser.parse_args()
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=environment(["twilio"]),
        check=True,
    )
    configurations = [
        ("bare Django + DRF + admin", environment([], "bench.settings_bare")),
        ("our app, Twilio only", environment(["twilio"])),
        ("our app, Twilio + Vonage + Plivo", environment(["twilio", "vonage", "plivo"])),
        ("our app, all four providers", environment(list(PROVIDER_ENV))),
    ]
    print(f"{'process':<36} {'max RSS':>10} {'start-up':>10}   (median of {args.runs})")
    figures = {}
    for label, env in configurations:
        rss, seconds = probe(env, args.runs)
        figures[label] = (rss, seconds)
        print(f"{label:<36} {rss:>6.0f} MiB {seconds:>8.2f} s")
    if args.before:
        print(f"\nbefore ({args.before}):")
        for label, env in configurations[1:]:
            rss, seconds = probe(env, args.runs, args.before)
            now_rss, now_seconds = figures[label]
            print(
                f"{label:<36} {rss:>6.0f} MiB {seconds:>8.2f} s   now {now_rss / rss:.2f}× the "
                f"memory, {now_seconds / seconds:.2f}× the start-up"
            )
    rss, seconds = figures["our app, all four providers"]
    bare_rss, bare_seconds = figures["bare Django + DRF + admin"]
    print(f"\nworker RSS (all providers): {rss:.0f} MiB")
    print(f"start-up (all providers): {seconds:.1f} s")
    print(
        f"against bare Django: {rss / bare_rss:.2f}× the memory, {seconds / bare_seconds:.1f}× the start-up"
    )
    if not args.no_gunicorn:
        gunicorn_workers(environment(list(PROVIDER_ENV)), workers=4)


if __name__ == "__main__":
    main()
