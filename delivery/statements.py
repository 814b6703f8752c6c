"""The SQL of the ingest path, composed once per database and reused for every request.

A report costs five statements (store the request, look for it as a duplicate, create-or-lock
its message, store the event, update the columns that changed) and a redelivered one two (store
the request, count it). The ORM composed each statement again on every request, locked and read
the message twice when it was new, and wrote every column back.

PostgreSQL and SQLite (>= 3.35) share every statement here (``INSERT … ON CONFLICT … DO
UPDATE … RETURNING``, ``UPDATE … RETURNING``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connections
from django.db.models import Field, Model

from .models import Message, MessageEvent


def _quote(using: str):
    return connections[using].ops.quote_name


@functools.cache
def _fields(model: type[Model]) -> dict[str, Field]:
    """``model``'s columns by attribute name (``message_id``, not ``message``)."""
    return {f.attname: f for f in model._meta.concrete_fields}


def _column(model: type[Model], name: str) -> str:
    return cast(str, _fields(model)[name].column)


@functools.cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key)


@functools.cache
def _insert_sql(using: str, model: type[Model], tail: str) -> str:
    q = _quote(using)
    fields = _insert_fields(model)
    return (
        f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "  # noqa: S608 - names, not input
        f"VALUES ({', '.join(['%s'] * len(fields))}) {tail}"
    )


def _values(record: Model, using: str) -> list[Any]:
    connection = connections[using]
    return [
        f.get_db_prep_save(f.pre_save(record, add=True), connection)
        for f in _insert_fields(type(record))
    ]


def _fetchone(using: str, sql: str, params: Sequence[Any]) -> tuple | None:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def insert(record: Model, using: str) -> int:
    """``INSERT`` every column of ``record``; its new id (also set on it)."""
    tail = f"RETURNING {_quote(using)(record._meta.pk.column)}"
    row = _fetchone(using, _insert_sql(using, type(record), tail), _values(record, using))
    assert row is not None  # noqa: S101 - an INSERT without ON CONFLICT returns its row
    record.pk = row[0]
    return row[0]


def insert_unless_duplicate(record: Model, using: str, conflict: Iterable[str]) -> int | None:
    """``INSERT … ON CONFLICT (<conflict>) DO NOTHING RETURNING id``: the new id, or None."""
    q = _quote(using)
    tail = (
        f"ON CONFLICT ({', '.join(map(q, conflict))}) DO NOTHING "
        f"RETURNING {q(record._meta.pk.column)}"
    )
    row = _fetchone(using, _insert_sql(using, type(record), tail), _values(record, using))
    return row[0] if row else None


def lock_or_create_message(provider: str, provider_message_id: str, using: str) -> Message:
    """The message row, locked until the transaction ends; created if it does not exist yet.

    One statement: ``INSERT … ON CONFLICT (provider, provider_message_id) DO UPDATE`` of a
    column no key uses (``updated_at``), so PostgreSQL takes the same row lock as ``SELECT …
    FOR NO KEY UPDATE``: events of the message inserted by other transactions (a foreign key's
    ``KEY SHARE``) are not blocked by it. The whole row is returned: receivers of
    ``message_status_changed`` read any field of it, and a field loaded later would be a query
    each, after the lock is gone.
    """
    fields = tuple(_fields(Message))
    q = _quote(using)
    updated = q("updated_at")
    tail = (
        f"ON CONFLICT ({q('provider')}, {q('provider_message_id')}) DO UPDATE SET "
        f"{updated} = excluded.{updated} RETURNING "
        + ", ".join(q(_column(Message, name)) for name in fields)
    )
    record = Message(provider=provider, provider_message_id=provider_message_id)
    row = _fetchone(using, _insert_sql(using, Message, tail), _values(record, using))
    assert row is not None  # noqa: S101 - DO UPDATE always returns the row
    connection = connections[using]
    converted = []
    for (field, converters), value in zip(_converters(using, fields), row, strict=True):
        for converter in converters:
            value = converter(value, field, connection)
        converted.append(value)
    return Message.from_db(using, list(fields), converted)


@functools.cache
def _converters(using: str, fields: tuple[str, ...]) -> list[tuple[Any, list]]:
    """What turns each returned column into its Python value (as a query would)."""
    connection = connections[using]
    table = Message._meta.db_table
    result = []
    for name in fields:
        column = _fields(Message)[name].get_col(table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        result.append((column.output_field, converters))
    return result


def insert_event(record: MessageEvent, using: str) -> tuple[int, int, bool]:
    """Store ``record``, or count one more delivery of the event stored under its key.

    ``(event id, its message id, whether it is new)``; one statement either way.
    """
    q = _quote(using)
    table = q(MessageEvent._meta.db_table)
    count = q("duplicate_count")
    tail = (
        f"ON CONFLICT ({q('dedupe_key')}) DO UPDATE SET {count} = {table}.{count} + 1, "
        f"{q('last_duplicate_at')} = excluded.{q('received_at')} "
        f"RETURNING {q('id')}, {q('message_id')}, {count}"
    )
    row = _fetchone(using, _insert_sql(using, MessageEvent, tail), _values(record, using))
    assert row is not None  # noqa: S101 - DO UPDATE always returns the row
    record.pk = row[0]
    return row[0], row[1], row[2] == 0


@functools.cache
def _count_duplicate_sql(using: str) -> str:
    q = _quote(using)
    event, message = q(MessageEvent._meta.db_table), q(Message._meta.db_table)
    return (
        f"UPDATE {event} SET {q('duplicate_count')} = {q('duplicate_count')} + 1, "  # noqa: S608 - names, not input
        f"{q('last_duplicate_at')} = %s WHERE {q('dedupe_key')} = %s AND {q('message_id')} = "
        f"(SELECT {q('id')} FROM {message} WHERE {q('provider')} = %s AND "
        f"{q('provider_message_id')} = %s) RETURNING {q('id')}"
    )


def count_duplicate(
    dedupe_key: str, provider: str, provider_message_id: str, now: datetime, using: str
) -> bool:
    """Count one more delivery of an event we have, for this message; False if we have none
    (the event is new, or its key belongs to another message)."""
    field = _fields(MessageEvent)["last_duplicate_at"]
    when = field.get_db_prep_save(now, connections[using])
    params = [when, dedupe_key, provider, provider_message_id]
    return _fetchone(using, _count_duplicate_sql(using), params) is not None


def update(record: Model, names: Iterable[str], using: str) -> None:
    """``UPDATE`` only the columns ``names`` of ``record``."""
    connection = connections[using]
    q = connection.ops.quote_name
    model = type(record)
    fields = [_fields(model)[name] for name in names]
    if not fields:
        return
    assignments = ", ".join(f"{q(_column(model, f.attname))} = %s" for f in fields)
    table, pk = q(model._meta.db_table), q(_column(model, "id"))
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608 - names, not input
    params = [f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, record.pk])
