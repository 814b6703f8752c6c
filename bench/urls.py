"""The demo's URLs plus ``/floor/``: the least a Django view can do with a webhook.

The floor stores the body in one INSERT inside a transaction and answers, on the same gunicorn
workers, middleware and database connection settings as the webhook: what ingest is measured
against (``bench/ingest.py``).
"""

from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as demo_urlpatterns

FLOOR_TABLE = "bench_floor"


@csrf_exempt
def floor(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", [request.body])  # noqa: S608
    return HttpResponse(b'{"success": true}', content_type="application/json")


urlpatterns = [path("floor/", floor), *demo_urlpatterns]
