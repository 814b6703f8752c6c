"""The demo settings plus the floor and hand-written views (``bench/urls.py``), for
``bench/ingest.py`` only. The database settings are the demo's: psycopg's server-side binding
and prepared statements on (``DATABASE_PREPARED_STATEMENTS=false`` turns them off)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
