"""Drop two indexes nothing reads, so each webhook maintains fewer (docs/performance.md).

- ``sms_evt_status`` (event status, received time): no console page, command or report filters
  events by status; message timelines use ``sms_evt_timeline``.
- On PostgreSQL, the ``varchar_pattern_ops`` index Django adds beside the unique index of
  ``Message.public_id`` (for ``LIKE`` lookups): the console looks a public id up exactly, which
  the unique index serves.
"""

from django.db import migrations


def _public_id_pattern_indexes(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'sms_delivery_message' "
            "AND indexname LIKE %s AND indexdef LIKE %s",
            ["%public_id%_like", "%varchar_pattern_ops%"],
        )
        return [row[0] for row in cursor.fetchall()]


def drop_public_id_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _public_id_pattern_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore_public_id_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS sms_delivery_message_public_id_like "
        "ON sms_delivery_message (public_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("sms_delivery", "0007_rawwebhook_pending"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="messageevent",
            name="sms_evt_status",
        ),
        migrations.RunPython(drop_public_id_pattern_index, restore_public_id_pattern_index),
    ]
