"""CPU a webhook request costs, this checkout against another revision and against the bench's
references, measured in one run:

    make bench-cpu BEFORE=<git revision> [CHUNKS=30]

Served throughput (``bench/ingest.py``) moves by up to half within a run on a shared host, so a
change worth a tenth of a request's time drowns in it. Here each revision serves the same signed
Twilio callbacks (``bench/ingest.py``'s mix: new messages, out of order, 20 % sent twice) in a
process of its own, through Django's WSGI handler (middleware, view, ingest; no HTTP server), on a
database of its own on one PostgreSQL server, and again, each round, the chunk it stored the round
before (every report a redelivery). This checkout's process also serves the same bodies to the
floor (one ``INSERT`` of the body in a transaction) and the same requests to the hand-written
report in one statement and to the hand-written acceptance (``bench/urls.py``); a third process,
this checkout's in deferred mode, accepts the same requests; a fourth, on a database of its own (it
writes the app's tables), serves them to the hand-written report through the app's statements. They
take turns, a chunk of requests each, and each chunk's CPU is read where it was spent: the
process's (``time.process_time``) and its PostgreSQL backend's (``/proc/<pid>/schedstat``). It
prints the median of the pairs' ratios (this checkout / the other), web and database, for new
reports and for redeliveries, then each one's CPU a request (web, database) and the floor's over
each of the others': what the served ratios to the floor (``bench/ingest.py``) would read if these
processes were all the host ran (an HTTP server and a load generator add the same to each). It
fails if any answer is not a 2xx. With the throwaway PostgreSQL cluster and the databases'
migrations, a run of 30 rounds takes about half a minute here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = 8000  # what the callbacks are signed for; no server listens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="the other revision's checkout")
    parser.add_argument("--chunks", type=int, default=30, help="rounds of chunks")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # a child: its requests
    parser.add_argument("--references", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:  # in the revision's checkout (the working directory): its code
        sys.path.insert(0, os.getcwd())
        serve(options.serve, options.references)
        return
    if not options.before:
        parser.error("--before is required")
    sys.path.insert(0, str(ROOT))
    from bench.ingest import (
        HAND_ACCEPT_PATH,
        HAND_ONE_PATH,
        HAND_RULES_PATH,
        create_database,
        floor_requests,
        hand_written_requests,
        twilio_requests,
    )

    count = (options.chunks + 1) * options.chunk_size  # a chunk to warm up, one a round
    requests = twilio_requests(PORT, count, "cpu", random.Random(7))  # noqa: S311 - not secret
    kinds = {
        "webhook": requests,
        "floor": floor_requests(PORT, requests),
        "hand": hand_written_requests(requests, HAND_ONE_PATH),
        "hand-accept": hand_written_requests(requests, HAND_ACCEPT_PATH),
        "hand-rules": hand_written_requests(requests, HAND_RULES_PATH),
    }
    size = options.chunk_size
    chunks = {
        kind: [sent[i : i + size] for i in range(0, len(sent), size)]
        for kind, sent in kinds.items()
    }
    # Each round's redeliveries: the chunk the round before stored (the warm-up's, its own).
    webhook = chunks["webhook"]
    chunks["redelivered"] = [webhook[0], *webhook[:-1]]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "requests.pickle"
        path.write_bytes(pickle.dumps(chunks))
        url = os.environ["DATABASE_URL"]
        children = {
            name: start(tree, create_database(url, f"cpu_{name}"), path, references, mode)
            for name, tree, references, mode in (
                ("this", ROOT, True, "sync"),
                ("before", options.before, False, "sync"),
                ("deferred", ROOT, False, "deferred"),
                ("rules", ROOT, False, "sync"),  # writes the app's tables: a database of its own
            )
        }
        try:
            compare(children, min(options.chunks, len(chunks["webhook"]) - 1), size)
        finally:
            for child in children.values():
                child.stdin.close()
                child.wait(timeout=60)


def start(tree: Path, url: str, requests: Path, references: bool, mode: str) -> subprocess.Popen:
    from bench.ingest import server_environment

    env = {**server_environment(PORT), "DATABASE_URL": url, "SMS_DELIVERY_PROCESSING": mode}
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(requests)]
    if references:
        command.append("--references")
    child = subprocess.Popen(  # noqa: S603 - this script
        command, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None  # noqa: S101
    if (said := child.stdout.readline().strip()) != f"ready {mode}":  # its settings' mode
        raise SystemExit(f"bench-cpu: a child to run in {mode} mode said {said!r}")
    return child


def run(child: subprocess.Popen, kind: str, chunk: int) -> dict[str, float]:
    child.stdin.write(f"{kind} {chunk}\n")
    child.stdin.flush()
    answer = json.loads(child.stdout.readline())
    if answer["failed"]:
        raise SystemExit(f"bench-cpu: {answer['failed']} answers of {kind} were not 2xx")
    return answer


#: What each round runs, in turn: (process, requests). In the warm-up, a process's "webhook"
#: runs before its "redelivered", which replays the chunk the "webhook" turn just stored.
_TURNS = [
    ("this", "webhook"),
    ("before", "webhook"),
    ("this", "redelivered"),
    ("before", "redelivered"),
    ("deferred", "webhook"),
    ("this", "floor"),
    ("this", "hand"),
    ("this", "hand-accept"),
    ("rules", "hand-rules"),
]
#: What the floor's CPU is set against, as ``bench/ingest.py`` names the served ratios.
_AGAINST_THE_FLOOR = [
    ("sync ingest", ("this", "webhook")),
    ("duplicates", ("this", "redelivered")),
    ("deferred accept", ("deferred", "webhook")),
    ("hand-written in one statement", ("this", "hand")),
    ("hand-written accept", ("this", "hand-accept")),
    ("hand-written, the app's statements", ("rules", "hand-rules")),
]


def compare(children: dict[str, subprocess.Popen], rounds: int, size: int) -> None:
    for name, kind in _TURNS:
        run(children[name], kind, 0)  # warm: connections, prepared statements, caches
    spent: dict[tuple[str, str], list[dict]] = {turn: [] for turn in _TURNS}
    for i in range(rounds):
        turns = _TURNS[i % len(_TURNS) :] + _TURNS[: i % len(_TURNS)]  # each goes first in turn
        for name, kind in turns:  # the same requests for each, each in its own database
            spent[(name, kind)].append(run(children[name], kind, i + 1))
    print(f"bench-cpu: {rounds} rounds of chunks of {size} Twilio status callbacks")
    for kind, label in (("webhook", "a request"), ("redelivered", "a redelivery")):
        this, before = spent[("this", kind)], spent[("before", kind)]
        for side in ("web", "database"):
            mine = statistics.median(chunk[side] for chunk in this) * 1e3
            other = statistics.median(chunk[side] for chunk in before) * 1e3
            print(
                f"{side} CPU {label}: this {mine:.2f} ms, before {other:.2f} ms; "
                f"this / before: {_paired(this, before, side)}"
            )
    floor = spent[("this", "floor")]
    print(f"{'CPU a request, ms (medians):':<40}web  database  web + database")
    for label, turn in [("floor", ("this", "floor")), *_AGAINST_THE_FLOOR]:
        web, database, total = (
            statistics.median(_cpu(chunk, side) for chunk in spent[turn]) * 1e3
            for side in ("web", "database", "total")
        )
        print(f"  {label + ':':<36}{web:5.2f}{database:10.2f}{total:16.2f}")
    print("the floor's CPU a request over each one's (a served ratio to the floor, in CPU):")
    for label, turn in _AGAINST_THE_FLOOR:
        print(f"  {label}: {_paired(floor, spent[turn], 'total')}")


def _cpu(chunk: dict, side: str) -> float:
    """A chunk's CPU a request: "web", "database" or both ("total")."""
    return chunk["web"] + chunk["database"] if side == "total" else chunk[side]


def _paired(ours: list[dict], theirs: list[dict], side: str) -> str:
    """The median of the rounds' ratios of ``side`` (see :func:`_cpu`), with the quartiles of
    the rounds."""
    ratios = [_cpu(a, side) / _cpu(b, side) for a, b in zip(ours, theirs, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return (
        f"{statistics.median(ratios):.2f} "
        f"(quartiles of the rounds {quartiles[0]:.2f}–{quartiles[-1]:.2f})"
    )


def serve(requests: Path, references: bool) -> None:
    """A child: Django set up on its own database; runs the chunks it is told on stdin and
    answers each with the CPU a request cost, web and database."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if references:  # this checkout's bench/ingest.py
        from bench.ingest import reference_tables

        with connection.cursor() as cursor:
            for sql in reference_tables():
                cursor.execute(sql)
    chunks = pickle.loads(requests.read_bytes())  # noqa: S301 - written by our parent
    handler = WSGIHandler()
    from delivery.conf import app_settings

    # The mode its settings give (a revision older than deferred mode has none: sync).
    print(f"ready {getattr(app_settings, 'PROCESSING', 'sync')}", flush=True)
    statuses: list[str] = []

    def start_response(status: str, headers: list) -> None:
        statuses.append(status)

    for line in sys.stdin:
        kind, index = line.split()
        chunk = chunks[kind][int(index)]
        environs = [environ(request) for request in chunk]
        statuses.clear()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        web, database = time.process_time(), backend_seconds(backend)
        for request in environs:
            b"".join(handler(request, start_response))
        web, database = time.process_time() - web, backend_seconds(backend) - database
        failed = sum(not status.startswith("2") for status in statuses)
        answer = {"web": web / len(chunk), "database": database / len(chunk), "failed": failed}
        print(json.dumps(answer), flush=True)


def backend_seconds(pid: int) -> float:
    """CPU seconds the PostgreSQL backend ``pid`` has run (it runs on this machine), to the
    nanosecond (``/proc/<pid>/stat`` counts in ticks of 10 ms)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def environ(request: bytes) -> dict:
    """The WSGI environ of a raw HTTP request."""
    head, _, body = request.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode().split("\r\n")
    method, target, _ = request_line.split(" ")
    path, _, query = target.partition("?")
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(PORT),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
    }
    for line in header_lines:
        name, _, value = line.partition(": ")
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return env


if __name__ == "__main__":
    main()
