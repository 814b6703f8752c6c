"""Interleavings on a real PostgreSQL server that do not depend on how fast the machine is:
instead of sleeping and hoping the other thread got as far as it should, wait until
PostgreSQL shows a connection waiting on a lock."""

import threading
import time

from django.db import connection


def lock_waiters() -> int:
    """Connections of this database waiting on a lock now. The backend statuses are read
    afresh: inside a transaction PostgreSQL keeps the first reading until it ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def wait_for_a_lock_waiter(done: threading.Event | None = None, timeout: float = 60) -> int:
    """Until a connection waits on a lock, or ``done`` is set (the other thread ended without
    waiting), or ``timeout`` seconds: the connections waiting then. A pass is quick; a slow
    machine gets long."""
    give_up = time.monotonic() + timeout
    while True:
        waiting = lock_waiters()
        if waiting or (done is not None and done.is_set()) or time.monotonic() > give_up:
            return waiting
        time.sleep(0.02)
