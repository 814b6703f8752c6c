"""The demo settings plus the floor view (``bench/urls.py``), for ``bench/ingest.py`` only."""

import os

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_SERVER_SIDE_BINDING"):
    # psycopg binds parameters on the server and prepares statements a connection runs often.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True  # noqa: F405
