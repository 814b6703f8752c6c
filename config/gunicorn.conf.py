"""gunicorn settings of the demo project: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

The access log masks phone numbers like the app's own logs do: providers that call with GET
(Vonage, Plivo, Twilio when set so) put the recipient's number in the query string.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
# Import the app once in the master: the workers share its pages copy-on-write (their PSS is
# about half their RSS; docs/performance.md, "Memory and start-up"). Nothing opens a database
# connection at import, so none is shared across the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() == "true"
# Recycle a worker now and then (a leak in any library stays bounded); the jitter keeps the
# workers from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_numbers": {"()": "delivery.masking.MaskPhoneNumbers"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_numbers"],
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
