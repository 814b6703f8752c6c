"""Ingest throughput against the floor (one INSERT of the body) and against the same work
written by hand, on the same server, in the same run.

``make bench-ingest`` runs this inside a throwaway PostgreSQL cluster (``scripts/with-postgres.sh``
sets ``DATABASE_URL``). It

1. migrates, creates the references' tables, and starts gunicorn on loopback (the demo project with
   ``bench.settings``: ``DEBUG`` off, persistent connections) and prints its setup;
2. builds the requests: Twilio status callbacks for distinct messages, signed with Twilio's SDK,
   each message's reports shuffled (out of order) and about 20 % of them sent twice;
3. drives the server with wrk (``bench/ingest.lua``), alternating the floor (``/floor/``, the same
   bodies), the webhook and the hand-written view (``/hand-written/``, the same requests;
   ``bench/urls.py`` says what it does), ``--pairs`` times each way round, then the floor and
   the webhook with only duplicates (requests already stored); prints requests a second, p50 /
   p95 / p99 and errors of each run, and the medians;
4. sends, open loop (a fixed schedule, latency counted from when a request was due), at 70 % of
   the webhook's peak (the lower of its median and a run just before: the host's speed
   drifts), for p99 under a load the server keeps up with;
5. checks the database: every request answered 2xx stored once as a raw request, one event or
   one counted duplicate per request, each message's summary the one its events decide.

Nothing here asserts a time: it prints figures. The ratios it prints (``sync ingest / floor``,
``duplicates / floor``, ``deferred accept / floor``, and ``hand-written / floor`` with ``sync
ingest / hand-written``: how much of the gap is the work itself) are what docs/performance.md
keeps: each the median of its pairs' ratios (two runs of the same round, at most one run apart).

    scripts/with-postgres.sh .venv/bin/python bench/ingest.py [--pairs 3] [--seconds 10]
    .venv/bin/python bench/ingest.py --smoke   # a second per run: does it all work?
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-twilio-auth-token"  # noqa: S105 - a throwaway server's signing secret
WORKERS = 4
CONNECTIONS = 8
THREADS = 2
STATUS_PATH = "/webhooks/twilio/status/"
FLOOR_PATH = "/floor/"
HAND_PATH = "/hand-written/"
HAND_ACCEPT_PATH = "/hand-written/accept/"
HAND_ONE_PATH = "/hand-written/one-statement/"
HAND_RULES_PATH = "/hand-written/rules/"
#: ``bench_hand_<name>``, made ``LIKE sms_delivery_<model>``: bench/urls.py's hand-written view.
HAND_TABLES = {"raw": "rawwebhook", "message": "message", "event": "messageevent"}
#: A message's reports, by how it ends (weights: most are delivered).
LIVES = [
    (["queued", "sent", "delivered"], 70),
    (["sent", "delivered"], 10),
    (["queued", "sent", "undelivered:30003"], 8),
    (["queued", "failed:30001"], 5),
    (["sent"], 7),  # still waiting for its receipt
]
DUPLICATES = 0.2
#: The server settings the bench prints: what a commit costs, and the buffer cache's size.
DURABILITY = ("fsync", "full_page_writes", "synchronous_commit", "shared_buffers")


def server_environment(port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SMS_DELIVERY_HASH_KEY": "bench-hash-key",
        "SMS_DELIVERY_ENCRYPTION_KEYS": "bench-encryption-key",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "600",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_ACCESS_LOG": os.devnull,
        # No recycling during a run: a new worker would reset the CPU counters read from /proc
        # and pay its warm-up inside the measurement.
        "GUNICORN_MAX_REQUESTS": "0",
        # Tasks of deferred processing are stored for db_worker (django-tasks-db).
        "TASKS_BACKEND": "db",
    }


def drain(env: dict, workers: int) -> tuple[int, float]:
    """Run ``workers`` ``db_worker --batch`` processes until no task is left; how many
    requests they applied and how long it took."""
    from delivery.models import RawWebhook

    pending = RawWebhook.objects.filter(pending=True).count()
    command = [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"]
    started = time.perf_counter()
    running = [
        subprocess.Popen(  # noqa: S603 - our own manage.py
            [*command, "--worker-id", f"bench-{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    for process in running:
        process.wait()
    return pending, time.perf_counter() - started


# -- requests ---------------------------------------------------------------------------------


def twilio_requests(port: int, count: int, tag: str, rng: random.Random) -> list[bytes]:
    """About ``count`` signed status callbacks for new messages, shuffled per message, ~20 %
    sent twice."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    url = f"http://127.0.0.1:{port}{STATUS_PATH}"
    lives, weights = zip(*LIVES, strict=True)
    reports: list[dict[str, str]] = []
    n = 0
    while len(reports) < count * (1 - DUPLICATES):
        sid = f"SM{tag}{n:0{32 - len(tag)}x}"
        to = f"+1415555{n % 100:04d}" if n % 3 else f"+447700900{n % 1000:03d}"
        life = list(rng.choices(lives, weights)[0])
        if len(life) > 1 and rng.random() < 0.3:  # out of order: a later report first
            i = rng.randrange(len(life) - 1)
            life[i], life[i + 1] = life[i + 1], life[i]
        for word in life:
            status, _, code = word.partition(":")
            fields = {
                "AccountSid": "AC" + "0" * 32,
                "ApiVersion": "2010-04-01",
                "From": "+15017122661",
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": to,
            }
            if code:
                fields["ErrorCode"] = code
            reports.append(fields)
        n += 1
    stream = [r for r in reports]
    for _ in range(int(len(reports) * DUPLICATES / (1 - DUPLICATES))):
        at = rng.randrange(len(stream))
        stream.insert(rng.randrange(at, len(stream) + 1), stream[at])  # a retry comes later
    return [
        http_request(
            port,
            STATUS_PATH,
            urlencode(fields).encode(),
            {"X-Twilio-Signature": validator.compute_signature(url, fields)},
        )
        for fields in stream
    ]


def floor_requests(port: int, webhook_requests: list[bytes]) -> list[bytes]:
    """The same bodies, to the floor view."""
    return [
        http_request(port, FLOOR_PATH, raw.partition(b"\r\n\r\n")[2], {})
        for raw in webhook_requests
    ]


def hand_written_requests(webhook_requests: list[bytes], path: str = HAND_PATH) -> list[bytes]:
    """The same requests, signature included, to a hand-written view (``path``)."""
    old, new = f"POST {STATUS_PATH} ".encode(), f"POST {path} ".encode()
    return [new + raw.removeprefix(old) for raw in webhook_requests]


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def write_requests(requests: list[bytes], path: Path) -> Path:
    with path.open("wb") as file:
        for raw in requests:
            file.write(b"%d\n" % len(raw) + raw)
    return path


# -- load -------------------------------------------------------------------------------------


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time used so far by each web worker (gunicorn) and database (postgres) process, from
    /proc (Linux), by process id: what one request costs each side (:func:`cpu_used`)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        side = "app" if "gunicorn" in name else "database" if name.startswith("postgres") else ""
        if side:
            used[int(stat.parent.name)] = (side, (int(fields[11]) + int(fields[12])) / tick)
    return used


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """Seconds each side used between two readings, process by process: one that ended in
    between (a database backend closing) is not counted, rather than counted negative."""
    used = {"app": 0.0, "database": 0.0}
    for pid, (side, seconds) in after.items():
        earlier = before.get(pid)
        used[side] += seconds - (earlier[1] if earlier and earlier[0] == side else 0.0)
    return used


def wrk(port: int, requests_file: Path, seconds: float) -> dict:
    """One closed-loop run: wrk's requests a second, percentiles, errors, and CPU a request."""
    before = cpu_seconds()
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(ROOT / "bench" / "ingest.lua"),
        f"http://127.0.0.1:{port}/",
        "--",
        str(requests_file),
        str(THREADS),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    result = json.loads(output.strip().splitlines()[-1])
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    result["ok"] = result["requests"] - result["non_2xx"]
    for side, seconds in cpu_used(before, cpu_seconds()).items():
        result[f"{side}_ms"] = seconds / max(1, result["requests"]) * 1000
    return result


async def _open_loop(port: int, requests: list[bytes], rate: float, seconds: float) -> dict:
    """Send at ``rate`` a second on a fixed schedule; latency from when each was due."""
    latencies: list[float] = []
    statuses: dict[int, int] = defaultdict(int)
    errors = 0

    async def send(raw: bytes, due: float) -> None:
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.close()
            statuses[int(head.split(b" ")[1])] += 1
            latencies.append(time.perf_counter() - due)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1

    start = time.perf_counter() + 0.1
    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(send(requests[i % len(requests)], due)))
    await asyncio.gather(*tasks)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0

    sent = len(tasks)
    return {
        "sent": sent,
        "ok": sum(n for status, n in statuses.items() if 200 <= status < 300),
        "non_2xx": sum(n for status, n in statuses.items() if not 200 <= status < 300),
        "socket_errors": errors,
        "achieved": sent / (time.perf_counter() - start),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
    }


def describe_open_loop(held: dict) -> str:
    return (
        f"achieved {held['achieved']:.0f}: p50 {held['p50_ms']:.1f} ms, p95 "
        f"{held['p95_ms']:.1f} ms, p99 {held['p99_ms']:.1f} ms; non-2xx {held['non_2xx']}, "
        f"socket errors {held['socket_errors']}; the generator's own CPU "
        f"{held['client_ms']:.2f} ms a request"
    )


def open_loop(port: int, requests: list[bytes], rate: float, seconds: float) -> dict:
    """As ``_open_loop``, with the CPU the generator itself used a request: it shares the
    machine with the server, and what it takes is not the server's to use."""
    started = time.process_time()
    result = asyncio.run(_open_loop(port, requests, rate, seconds))
    result["client_ms"] = (time.process_time() - started) / max(1, result["sent"]) * 1000
    return result


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_memory(master: int) -> tuple[float, float]:
    """Median RSS and PSS (MiB) of a gunicorn master's workers, from /proc."""
    from bench.footprint import children_of, memory_of

    figures = [memory_of(pid) for pid in children_of(master)] or [(0.0, 0.0)]
    return (
        statistics.median(rss for rss, _ in figures),
        statistics.median(pss for _, pss in figures),
    )


def start_server(env: dict, port: int, log: Path, tree: Path = ROOT) -> subprocess.Popen:
    """gunicorn serving the checkout ``tree`` (this one, or an older revision's)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-c", "config/gunicorn.conf.py", "config.wsgi"]
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn
        command, cwd=tree, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"gunicorn did not start; see {log}")


def reference_tables() -> list[str]:
    """The statements that create the references' tables (``bench/urls.py``): the floor's, and
    the hand-written views' copies of the app's (same columns, indexes and foreign keys)."""
    statements = [
        "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, "
        "received_at timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)"
    ]
    for name, model in HAND_TABLES.items():
        statements.append(
            f"CREATE TABLE IF NOT EXISTS bench_hand_{name} "
            f"(LIKE sms_delivery_{model} INCLUDING ALL)"
        )
    return [
        *statements,
        "ALTER TABLE bench_hand_event ADD FOREIGN KEY (message_id) REFERENCES "
        "bench_hand_message (id) DEFERRABLE INITIALLY DEFERRED",
        "ALTER TABLE bench_hand_event ADD FOREIGN KEY (raw_webhook_id) REFERENCES "
        "bench_hand_raw (id) DEFERRABLE INITIALLY DEFERRED",
    ]


def prepare_database(env: dict) -> str:
    """Migrate and create the references' tables; the server's durability settings."""
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)  # noqa: S603
    statements = reference_tables()
    script = (
        "from django.db import connection\n"
        f"for sql in {statements!r}:\n    connection.cursor().execute(sql)\n"
        f"for name in {DURABILITY!r}:\n"
        "    cursor = connection.cursor()\n"
        "    cursor.execute('SHOW ' + name)\n"
        "    print(name, cursor.fetchone()[0])"
    )
    command = [python, "manage.py", "shell", "-v0", "-c", script]
    shown = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    return ", ".join(line.strip() for line in shown.splitlines() if line.strip())


# -- the check --------------------------------------------------------------------------------


def table_counts() -> dict[str, int]:
    from django.db.models import Max, Sum

    from delivery.models import Message, MessageEvent, RawWebhook

    return {
        "raws": RawWebhook.objects.count(),
        "unread": RawWebhook.objects.exclude(parse_error="").count(),
        "events": MessageEvent.objects.count(),
        "duplicates": MessageEvent.objects.aggregate(n=Sum("duplicate_count"))["n"] or 0,
        "last_message": Message.objects.aggregate(n=Max("pk"))["n"] or 0,
    }


def check_database(
    env: dict, answered_ok: int, runs: int, seeded: dict[str, int] | None = None
) -> list[str]:
    """What the database says about the runs; problems, if any. ``seeded``: what the bulk
    seed added (its counts, and the range of its message ids), left out."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("SMS_", "TWILIO_"))})
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.db.models import Sum

    from delivery.lifecycle import precedence_key
    from delivery.models import Message, MessageEvent, RawWebhook

    seeded = seeded or {}
    raws = RawWebhook.objects.count() - seeded.get("raws", 0)
    unread = RawWebhook.objects.exclude(parse_error="").count() - seeded.get("unread", 0)
    events = MessageEvent.objects.count() - seeded.get("events", 0)
    duplicates = (MessageEvent.objects.aggregate(n=Sum("duplicate_count"))["n"] or 0) - (
        seeded.get("duplicates", 0)
    )
    lo, hi = seeded.get("first_message", 0), seeded.get("last_message", -1)
    problems = []
    # A run stops with requests in flight: stored, never counted as answered.
    if not 0 <= raws - answered_ok <= runs * CONNECTIONS:
        problems.append(f"{raws:,} raw requests stored for {answered_ok:,} answered 2xx")
    if unread:
        problems.append(f"{unread:,} requests could not be read")
    if waiting := RawWebhook.objects.filter(pending=True).count():
        problems.append(f"{waiting:,} stored requests were never applied by a worker")
    if events + duplicates != raws - unread:
        problems.append(
            f"{events:,} events + {duplicates:,} duplicates for {raws - unread:,} requests"
        )
    wrong = 0
    best: dict[int, tuple] = {}
    for message_id, status, occurred, code, key in MessageEvent.objects.values_list(
        "message_id", "status", "provider_occurred_at", "error_code", "dedupe_key"
    ).iterator(chunk_size=5000):
        if lo <= message_id <= hi:
            continue  # a seeded copy
        candidate = precedence_key(status, occurred, code, key)
        if message_id not in best or candidate > best[message_id]:
            best[message_id] = candidate
    for message in Message.objects.only(
        "pk", "current_status", "status_occurred_at", "error_code", "status_event_key"
    ).iterator(chunk_size=5000):
        if not lo <= message.pk <= hi and message.summary_key() != best.get(message.pk):
            wrong += 1
    if wrong:
        problems.append(f"{wrong:,} message summaries differ from what their events decide")
    print(
        f"database: {raws:,} raw requests for {answered_ok:,} answered 2xx (in flight when a "
        f"run stopped: {raws - answered_ok:,}); {events:,} events + {duplicates:,} counted "
        f"duplicates; {Message.objects.count():,} messages, summaries checked"
    )
    return problems


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # a constant, not input
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def in_database(env: dict, *arguments: str) -> list[str]:
    """Run this script with ``arguments`` against ``env``'s database (Django set up for one
    database a process); the lines it printed."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(  # noqa: S603 - this script
        command, cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.splitlines()


def report_on_database(options: argparse.Namespace) -> None:
    """``--counts``: the tables' counts, as JSON. ``--check ANSWERED RUNS SEEDED``: the check's
    report, then its problems as JSON."""
    if options.counts:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        counts = table_counts()
        print(json.dumps({**counts, "first_message": 0, "last_message": counts["last_message"]}))
        return
    answered, runs, seeded = options.check
    print(
        json.dumps(check_database(dict(os.environ), int(answered), int(runs), json.loads(seeded)))
    )


# -- main -------------------------------------------------------------------------------------


def alternate(pair: int, runs: list[tuple], work: Path, seconds: float) -> None:
    """One wrk run of each ``(label, results, port, requests)``, in the other order than the
    last pair; each result appended to its ``results``."""
    for label, results, port, requests in runs if pair % 2 == 0 else runs[::-1]:
        result = wrk(port, write_requests(requests, work / "run.req"), seconds)
        results.append(result)
        show(f"{label} #{pair + 1}", result)


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def paired(runs: list[dict], references: list[dict]) -> float:
    """The median of ``runs[i]``'s rate over ``references[i]``'s: runs of one round."""
    pairs = zip(runs, references, strict=True)
    return statistics.median(r["rate"] / reference["rate"] for r, reference in pairs)


def show(label: str, result: dict) -> None:
    print(
        f"  {label:<22} {result['rate']:8.1f} req/s   p50 {result['p50_us'] / 1000:6.1f} ms   "
        f"p95 {result['p95_us'] / 1000:6.1f} ms   p99 {result['p99_us'] / 1000:6.1f} ms   "
        f"CPU/request: app {result['app_ms']:.2f} ms, database {result['database_ms']:.2f} ms   "
        f"non-2xx {result['non_2xx']}   socket errors {result['socket_errors']}"
        + (f"   (request list wrapped {result['wrapped']}×)" if result["wrapped"] else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--smoke", action="store_true", help="1 pair of 1 s runs, no figures")
    parser.add_argument(
        "--before",
        type=Path,
        help="A checkout of an older revision (with bench/settings.py and bench/urls.py copied "
        "in): its webhook is measured too, in the same run, on its own gunicorn.",
    )
    parser.add_argument(
        "--bulk",
        type=int,
        default=0,
        help="At the end, seed this many messages (sms_delivery_seed --bulk) and measure the "
        "webhook again against the floor: does the rate hold at production size?",
    )
    parser.add_argument("--counts", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.counts or options.check:  # in_database(): the second database's own process
        report_on_database(options)
        return
    if options.smoke:
        options.pairs, options.seconds = 1, 1
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("DATABASE_URL must name a PostgreSQL database (scripts/with-postgres.sh)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    rng = random.Random(12)  # noqa: S311 - a reproducible test data set, not a secret
    port = free_port()
    env = server_environment(port)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    database = prepare_database(env)
    started = time.perf_counter()
    server = start_server(env, port, work / "gunicorn.log")
    start_up = time.perf_counter() - started
    deferred_port = free_port()
    deferred_env = {
        **server_environment(deferred_port),
        "SECRET_KEY": env["SECRET_KEY"],
        "SMS_DELIVERY_PROCESSING": "deferred",
    }
    deferred_server = start_server(deferred_env, deferred_port, work / "gunicorn-deferred.log")
    old_server = old_port = bulk_server = None
    if options.before:
        old_port = free_port()
        old_env = {**server_environment(old_port), "SECRET_KEY": env["SECRET_KEY"]}
        old_server = start_server(old_env, old_port, work / "gunicorn-before.log", options.before)
    per_run = int(options.seconds * 3000)  # more than a run can send: no request repeats
    try:
        print(
            f"server: gunicorn {WORKERS} sync workers (config/gunicorn.conf.py), bench.settings "
            f"(DEBUG off, CONN_MAX_AGE=600, CONN_HEALTH_CHECKS on), PostgreSQL on loopback "
            f"({database})\n"
            f"load: wrk {THREADS} threads, {CONNECTIONS} connections, {options.seconds:g} s per "
            f"run, {options.pairs} pairs alternating floor and webhook; Twilio status callbacks "
            f"signed with the SDK, out of order, {DUPLICATES:.0%} sent twice"
        )
        warm = twilio_requests(port, 200, "w", rng)
        warm_up = wrk(port, write_requests(warm, work / "warm.req"), 1)
        deferred_warm = twilio_requests(deferred_port, 200, "dw", rng)
        deferred_warm_up = wrk(deferred_port, write_requests(deferred_warm, work / "warm.req"), 1)
        if old_port:
            warm = twilio_requests(old_port, 200, "x", rng)
            before_warm_up = wrk(old_port, write_requests(warm, work / "warm.req"), 1)
        wrk(port, write_requests(floor_requests(port, warm), work / "warm-floor.req"), 1)

        floor_runs, sync_runs, dup_floor_runs, dup_runs, before_runs = [], [], [], [], []
        hand_runs: list[dict] = []
        one_runs: list[dict] = []
        stored: list[bytes] = []
        print("\nmixed (new messages, out of order, 20 % duplicates):")
        for pair in range(options.pairs):
            webhook = twilio_requests(port, per_run, f"{pair:02d}", rng)
            stored += webhook
            runs = [
                ("floor", floor_runs, port, floor_requests(port, webhook)),
                ("sync ingest", sync_runs, port, webhook),
                ("hand-written", hand_runs, port, hand_written_requests(webhook)),
                (
                    "hand, one statement",
                    one_runs,
                    port,
                    hand_written_requests(webhook, HAND_ONE_PATH),
                ),
            ]
            if old_port:
                old = twilio_requests(old_port, per_run, f"b{pair:02d}", rng)
                runs.append(("before", before_runs, old_port, old))
            alternate(pair, runs, work, options.seconds)
        print("\nduplicates only (requests already stored):")
        for pair in range(options.pairs):
            again = rng.sample(stored, min(len(stored), per_run))
            runs = [
                ("floor", dup_floor_runs, port, floor_requests(port, again)),
                ("duplicates", dup_runs, port, again),
            ]
            alternate(pair, runs, work, options.seconds)

        peak = median_of(sync_runs, "rate")
        # The host's speed drifts within a run: the peak is measured again just before the
        # open loop, and the lower of the two is the one the server can be held to.
        now_requests = twilio_requests(port, per_run, "pk", rng)
        peak_now = wrk(port, write_requests(now_requests, work / "peak.req"), options.seconds)
        rate = 0.7 * min(peak, peak_now["rate"])
        fresh = twilio_requests(port, int(rate * options.seconds) + 10, "ol", rng)
        held = open_loop(port, fresh, rate, options.seconds)
        print(
            f"\nopen loop at 70 % of the webhook's peak (the lower of the median, "
            f"{peak:.0f} req/s, and a run just before, {peak_now['rate']:.0f}): {rate:.0f} "
            f"req/s for {options.seconds:g} s, {describe_open_loop(held)}"
        )
        held_before = None
        if old_port:  # the same schedule against the older revision, right after
            old_fresh = twilio_requests(old_port, int(rate * options.seconds) + 10, "ob", rng)
            held_before = open_loop(old_port, old_fresh, rate, options.seconds)
            print(f"  before, same rate: {describe_open_loop(held_before)}")

        print("\ndeferred processing: acceptance (no worker running), then the workers' drain:")
        accept_floor_runs, accept_runs, hand_accept_runs = [], [], []
        for pair in range(options.pairs):
            deferred_requests = twilio_requests(deferred_port, per_run, f"d{pair:02d}", rng)
            by_hand = hand_written_requests(deferred_requests, HAND_ACCEPT_PATH)
            runs = [
                ("floor", accept_floor_runs, port, floor_requests(port, deferred_requests)),
                ("deferred accept", accept_runs, deferred_port, deferred_requests),
                ("hand-written accept", hand_accept_runs, deferred_port, by_hand),
            ]
            alternate(pair, runs, work, options.seconds)
        os.environ.update(deferred_env)
        import django

        django.setup()
        applied, took = drain(deferred_env, WORKERS)
        drained = applied / took if took else 0.0
        print(
            f"  {WORKERS} db_worker processes applied {applied:,} stored requests in "
            f"{took:.1f} s: {drained:.1f} req/s"
        )

        bulk_runs, bulk_floor_runs, small_runs = [], [], []
        bulk_warm_up: dict | None = None
        if options.bulk:
            bulk_port = free_port()
            bulk_env = {  # the sync server's settings (os.environ is deferred mode's by now)
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{bulk_port}",
                "DATABASE_URL": create_database(env["DATABASE_URL"], "bench_bulk"),
            }
            manage = [sys.executable, "manage.py"]
            subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=bulk_env, check=True)  # noqa: S603
            started = time.perf_counter()
            subprocess.run(  # noqa: S603 - our own manage.py
                [*manage, "sms_delivery_seed", "--bulk", str(options.bulk)],
                cwd=ROOT,
                env=bulk_env,
                check=True,
                capture_output=True,
            )
            seeded = json.loads(in_database(bulk_env, "--counts")[-1])
            print(
                f"\nat production size: a second database seeded with {options.bulk:,} messages "
                f"({seeded['events']:,} events, {seeded['raws']:,} raw requests) in "
                f"{time.perf_counter() - started:.0f} s, served by its own gunicorn; each round "
                f"runs the floor, the webhook on the bench's database and the webhook on it:"
            )
            bulk_server = start_server(bulk_env, bulk_port, work / "gunicorn-bulk.log")
            warm = twilio_requests(bulk_port, 200, "mw", rng)
            bulk_warm_up = wrk(bulk_port, write_requests(warm, work / "warm.req"), 1)
            for pair in range(options.pairs):
                webhook = twilio_requests(port, per_run, f"s{pair:02d}", rng)
                at_size = twilio_requests(bulk_port, per_run, f"m{pair:02d}", rng)
                runs = [
                    ("floor", bulk_floor_runs, port, floor_requests(port, webhook)),
                    ("sync ingest", small_runs, port, webhook),
                    ("sync ingest at size", bulk_runs, bulk_port, at_size),
                ]
                alternate(pair, runs, work, options.seconds)
        footprint = worker_memory(server.pid)
    finally:
        for running in (server, old_server, deferred_server, bulk_server):
            if running:
                running.terminate()
                running.wait(timeout=30)

    webhook_runs = [warm_up, deferred_warm_up, *sync_runs, *dup_runs, peak_now, *accept_runs]
    webhook_runs += small_runs
    if old_port:
        webhook_runs += [before_warm_up, *before_runs]
    webhook_runs += [held] + ([held_before] if held_before else [])
    answered_ok = sum(r["ok"] for r in webhook_runs)
    problems = check_database(env, answered_ok, len(webhook_runs))
    if bulk_warm_up:  # the second database: what the runs added to what the seed made
        at_size_runs = [bulk_warm_up, *bulk_runs]
        answered = str(sum(r["ok"] for r in at_size_runs))
        check = [answered, str(len(at_size_runs)), json.dumps(seeded)]
        *report, found = in_database(bulk_env, "--check", *check)
        print("\n".join(report))
        problems += json.loads(found)
    errors = sum(r["non_2xx"] + r["socket_errors"] for r in webhook_runs)
    if errors:
        problems.append(f"{errors} webhook requests failed (non-2xx or socket errors)")
    references = hand_runs + one_runs + hand_accept_runs
    if failed := sum(r["non_2xx"] + r["socket_errors"] for r in references):
        problems.append(f"{failed} requests to the hand-written view failed")

    floor = median_of(floor_runs, "rate")
    print(
        f"\nmedians: floor {floor:.1f} req/s, sync ingest {peak:.1f} req/s, floor (duplicates "
        f"run) {median_of(dup_floor_runs, 'rate'):.1f} req/s, duplicates "
        f"{median_of(dup_runs, 'rate'):.1f} req/s"
    )
    if before_runs:
        before = median_of(before_runs, "rate")
        print(f"before: {before:.1f} req/s; before / floor: {paired(before_runs, floor_runs):.2f}")
    hand = median_of(hand_runs, "rate")
    print(f"hand-written: {hand:.1f} req/s")
    if not options.smoke:
        # Each ratio is the median of its pairs' (a run and the floor's of the same round, at
        # most one run apart): the host's speed drifts within a run, by half at times, and a
        # ratio of two medians can pair a fast run with a slow one.
        sync = paired(sync_runs, floor_runs)
        print(f"sync ingest / floor: {sync:.2f}")
        print(f"duplicates / floor: {paired(dup_runs, dup_floor_runs):.2f}")
        print(f"deferred accept / floor: {paired(accept_runs, accept_floor_runs):.2f}")
        print(f"deferred workers / sync ingest: {drained / peak:.2f}")
        print(f"hand-written / floor: {paired(hand_runs, floor_runs):.2f}")
        print(f"sync ingest / hand-written: {paired(sync_runs, hand_runs):.2f}")
        print(f"hand-written in one statement / floor: {paired(one_runs, floor_runs):.2f}")
        print(f"hand-written accept / floor: {paired(hand_accept_runs, accept_floor_runs):.2f}")
        for name, runs, floors in [
            ("sync ingest", sync_runs, floor_runs),
            ("duplicates", dup_runs, dup_floor_runs),
            ("deferred accept", accept_runs, accept_floor_runs),
            ("hand-written", hand_runs, floor_runs),
            ("hand-written in one statement", one_runs, floor_runs),
            ("hand-written accept", hand_accept_runs, accept_floor_runs),
        ]:
            pairs = ", ".join(
                f"{r['rate'] / f['rate']:.2f}" for r, f in zip(runs, floors, strict=True)
            )
            print(f"  {name} / floor, pair by pair: {pairs}")
        if bulk_runs:
            at_size = paired(bulk_runs, bulk_floor_runs)
            print(f"sync ingest / floor at {options.bulk:,} messages: {at_size:.2f}")
            kept = paired(bulk_runs, small_runs)
            print(f"rate at {options.bulk:,} messages / the bench's database: {kept:.2f}")
            pairs = ", ".join(
                f"{r['rate'] / s['rate']:.2f}" for r, s in zip(bulk_runs, small_runs, strict=True)
            )
            print(f"  at size / the bench's database, pair by pair: {pairs}")
        print(f"p99 at 70 % of peak: {held['p99_ms']:.0f} ms")
        if held_before:
            print(f"p99 at the same rate, before: {held_before['p99_ms']:.0f} ms")
    rss, pss = footprint
    print(
        f"sync server (Twilio, gunicorn --preload): ready {start_up:.1f} s after its start; "
        f"after the runs a worker's RSS {rss:.0f} MiB, PSS {pss:.0f} MiB (medians; "
        "make bench-footprint measures every provider)"
    )
    shutil.rmtree(work, ignore_errors=True)
    if problems:
        raise SystemExit("PROBLEMS: " + "; ".join(problems))
    print("database check: OK")


if __name__ == "__main__":
    main()
