"""Fuzz every webhook endpoint of a live server, then print the figures docs/reliability.md keeps.

Run through ``scripts/fuzz-live.sh`` (it provides a throwaway PostgreSQL): the demo project is
migrated and served by gunicorn with ``DEBUG=False`` and all four providers enabled; hypothesis
sends N requests built by ``tests/fuzzing.py`` over HTTP, one at a time, and each answer is judged
by counting rows before and after it. Afterwards the server's log (access log included) and every
column of every table (our own sender ids aside) are searched for the people's numbers of the
test data; then the database is restarted and a burst of valid callbacks shows whether any
fails.

Exit status 0 when every rule held (no 5xx besides Vonage's documented one, no forged request
accepted, nothing partial, nothing lost, no number leaked).
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment() -> dict[str, str]:
    from tests.fuzzing import PROVIDER_ENVIRONMENT

    return {
        **os.environ,
        **PROVIDER_ENVIRONMENT,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SMS_DELIVERY_HASH_KEY": "fuzz-hash-key",
        "SMS_DELIVERY_ENCRYPTION_KEYS": "fuzz-encryption-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "60",
    }


def start_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-c", "config/gunicorn.conf.py", "config.wsgi"]
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "4"}
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"gunicorn did not start; see {log}")


def send(port: int, request) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(request.method, request.path, request.body, request.headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def fuzz(port: int, requests: int, judge) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzzing import ENDPOINTS, build, detail_of, outcome, specs, table_counts

    base_url = f"http://127.0.0.1:{port}"
    started = time.monotonic()

    @settings(
        max_examples=requests,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=["generate"],  # a broken rule is counted and shown, not shrunk
    )
    @given(spec=st.sampled_from(ENDPOINTS).flatmap(lambda endpoint: specs(*endpoint)))
    def one_request(spec):
        request = build(spec, base_url)
        before = table_counts()
        status, body = send(port, request)
        judge.judge(request, outcome(status, detail_of(body), before, table_counts()))
        done = judge.counts["requests"]
        if done % 500 == 0:
            rate = done / (time.monotonic() - started)
            print(f"  {done}/{requests} requests ({rate:.0f}/s)", file=sys.stderr)

    one_request()


def issue_cases():
    """The requests that once broke a rule, each with the answers it must get now."""
    import json

    from tests.fixtures import plivo, telnyx, twilio, vonage
    from tests.fuzzing import Spec

    deep = b"[" * 2000 + b"1" + b"]" * 2000
    garbage_plivo = (("X-Plivo-Signature-V3", "c2ln"), ("X-Plivo-Signature-V3-Nonce", "1"))
    long_values = {
        **twilio.UNDELIVERED_30003,
        "MessageSid": "SM" + "a" * 100,
        "AccountSid": "AC" + "1" * 100,
        "ErrorCode": "3" * 40,
        "From": "f" * 150,
    }
    other_message = telnyx.event("delivered", message_id="9c0b7e9e-0000-4000-8000-000000000001")
    infinite = (
        json.dumps({**vonage.DLR_DELIVERED, "sig": "0" * 64})[:-1] + ', "timestamp": Infinity}'
    )
    return [
        (
            "Twilio JSON without bodySHA256",
            [
                Spec(
                    "twilio",
                    "status",
                    "json",
                    twilio.DELIVERED,
                    signed=False,
                    headers=(("X-Twilio-Signature", "c2ln"),),
                )
            ],
            [403],
        ),
        (
            "Vonage sig of non-ASCII characters",
            [
                Spec(
                    "vonage",
                    "status",
                    "get",
                    {**vonage.DLR_DELIVERED, "timestamp": "1", "sig": "é" * 64},
                    signed=False,
                )
            ],
            [403],
        ),
        (
            "JSON 2,000 deep, unsigned (Vonage)",
            [Spec("vonage", "status", "raw", None, body=deep, signed=False)],
            [403],
        ),
        (
            "JSON 100 deep, signed (Telnyx)",
            [Spec("telnyx", "status", "raw", None, body=b'{"data": ' * 100 + b"null" + b"}" * 100)],
            [400],
        ),
        (
            "Plivo URL with %FF",
            [
                Spec(
                    "plivo",
                    "status",
                    "form",
                    plivo.SENT,
                    query="x=%FF",
                    signed=False,
                    headers=garbage_plivo,
                )
            ],
            [403],
        ),
        (
            "Vonage timestamp Infinity",
            [Spec("vonage", "status", "raw", None, body=infinite.encode(), signed=False)],
            [403],
        ),
        (
            "Twilio JSON fields of the wrong type",
            [
                Spec(
                    "twilio",
                    "status",
                    "json",
                    {**twilio.DELIVERED, "MessageSid": [1], "SmsSid": {}},
                )
            ],
            [400],
        ),
        (
            "values longer than their columns",
            [Spec("twilio", "status", "form", long_values)],
            [200],
        ),
        (
            "NUL in a status",
            [
                Spec(
                    "twilio",
                    "status",
                    "form",
                    {**twilio.SENT, "MessageStatus": "sent\x00", "SmsStatus": "sent\x00"},
                )
            ],
            [200],
        ),
        (
            "NumSegments 70000",
            [Spec("twilio", "status", "form", {**twilio.SENT, "NumSegments": "70000"})],
            [200],
        ),
        (
            "Twilio inbound with Accept: text/xml",
            [
                Spec(
                    "twilio",
                    "inbound",
                    "form",
                    {"MessageSid": "SM1", "From": "+14155550100", "Body": "STOP"},
                    headers=(("Accept", "text/xml"),),
                )
            ],
            [200],
        ),
        (
            "Twilio GET callback",
            [Spec("twilio", "status", "get", twilio.callback("sent", sid="SM" + "4" * 32))],
            [200],
        ),
        (
            "Plivo V2-only signature",
            [
                Spec(
                    "plivo",
                    "status",
                    "form",
                    plivo.SENT,
                    signed=False,
                    headers=(("X-Plivo-Signature-V2", "c2ln"), ("X-Plivo-Signature-V2-Nonce", "1")),
                )
            ],
            [403],
        ),
        (
            "Telnyx event id reused for another message",
            [
                Spec("telnyx", "status", "json", telnyx.event("sent")),
                Spec("telnyx", "status", "json", other_message),
            ],
            [200, 400],
        ),
    ]


def run_cases(port: int) -> list[tuple[str, list[int], list[int]]]:
    """Each case of :func:`issue_cases`: (name, expected answers, answers)."""
    from tests.fuzzing import build

    results = []
    for name, specs, expected in issue_cases():
        answers = [send(port, build(spec, f"http://127.0.0.1:{port}"))[0] for spec in specs]
        results.append((name, expected, answers))
    return results


def restart_burst(port: int, burst: int = 16) -> Counter:
    """Restart PostgreSQL, then send ``burst`` valid signed callbacks: how were they answered?"""
    from tests.fixtures import twilio
    from tests.fuzzing import Spec, build

    pg_ctl = shlex.split(os.environ["SMS_DELIVERY_PG_CTL"])
    subprocess.run([*pg_ctl, "-m", "fast", "-w", "restart"], check=True, capture_output=True)  # noqa: S603
    statuses = Counter()
    for n in range(burst):
        payload = twilio.callback("sent", sid=f"SM{n:032x}")
        statuses[
            send(
                port, build(Spec("twilio", "status", "form", payload), f"http://127.0.0.1:{port}")
            )[0]
        ] += 1
    return statuses


def health_while_down(port: int) -> tuple[int, int]:
    """Stop PostgreSQL: what does /webhooks/health/ answer? Start it: and now?"""
    pg_ctl = shlex.split(os.environ["SMS_DELIVERY_PG_CTL"])
    subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)  # noqa: S603
    try:
        down = get(port, "/webhooks/health/")
    finally:
        options = ["-o", os.environ["SMS_DELIVERY_PG_OPTIONS"]]
        subprocess.run([*pg_ctl, "-w", "start", *options], check=True, capture_output=True)  # noqa: S603
    return down, get(port, "/webhooks/health/")


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def numbers_at_rest() -> list[str]:
    """The people's numbers found in any column of any table (our sender ids aside)."""
    from tests.privacy import numbers_in, stored_text

    stored = stored_text()
    found = numbers_in(stored)
    for number in sorted(set(found))[:3]:
        at = stored.index(number)
        print(f"  at rest: …{stored[max(0, at - 200) : at + 40]!r}", file=sys.stderr)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    if "SMS_DELIVERY_PG_CTL" not in os.environ:
        raise SystemExit("Run me through scripts/fuzz-live.sh (it starts PostgreSQL).")

    env = server_environment()
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY")})
    os.environ.update(
        {k: env[k] for k in ("SMS_DELIVERY_HASH_KEY", "SMS_DELIVERY_ENCRYPTION_KEYS")}
    )
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    import django

    django.setup()
    from tests.fuzzing import Judge
    from tests.privacy import numbers_in

    judge = Judge()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="sms-delivery-fuzz-")) / "server.log"
    server = start_server(env, port, log)
    started = time.monotonic()
    try:
        cases = run_cases(port)
        fuzz(port, args.requests, judge)
        elapsed = time.monotonic() - started
        burst = restart_burst(port)
        health = health_while_down(port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    logged = numbers_in(log.read_text(errors="replace"))
    from django.db import connections

    connections.close_all()  # the restart ended this process's connection too
    stored = numbers_at_rest()
    counts = judge.counts
    leaked = counts["numbers leaked"] + len(logged) + len(stored)
    statuses = ", ".join(
        f"{k.split()[1]}: {v}" for k, v in sorted(counts.items()) if k.startswith("status ")
    )

    print(f"\nLive fuzz of every webhook endpoint: {args.requests} requests in {elapsed:.0f} s")
    print("(PostgreSQL, gunicorn x 4, demo settings with DEBUG=False, all four providers)\n")
    rows = [
        ("requests fuzzed", counts["requests"]),
        ("signed with the provider's SDK / unsigned", f"{counts['signed']} / {counts['unsigned']}"),
        ("answers", statuses),
        ("5xx (besides the documented one)", counts["5xx"]),
        ("documented 503 (unsigned Vonage Messages API callback)", counts["documented 503"]),
        ("forged accepted", counts["forged accepted"]),
        ("partial writes", counts["partial"]),
        ("lost", counts["lost"]),
        ("numbers leaked (answers, server and access logs, every table)", leaked),
        ("after a database restart, 16 valid callbacks answered", dict(burst)),
        ("/webhooks/health/ with the database stopped, then started", health),
    ]
    print("| Case of issue 8 | Expected | Answered |\n|---|---|---|")
    for name, expected, answers in cases:
        print(f"| {name} | {', '.join(map(str, expected))} | {', '.join(map(str, answers))} |")
    print()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    for problem, request, result in judge.broken[:10]:
        print(f"\nBROKEN: {problem}: {request.method} {request.path} -> {result}")
        print(f"  headers: {request.headers!r}; body: {request.body[:200]!r}")
    if logged or stored:
        print(f"\nNumbers in clear: log {sorted(set(logged))[:5]}, dump {sorted(set(stored))[:5]}")
    broken = counts["5xx"] + counts["forged accepted"] + counts["partial"] + counts["lost"] + leaked
    wrong_cases = [name for name, expected, answers in cases if expected != answers]
    return 1 if broken or wrong_cases or set(burst) != {200} else 0


if __name__ == "__main__":
    sys.exit(main())
