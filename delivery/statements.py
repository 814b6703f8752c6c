"""The SQL of the ingest path, composed once per database and reused for every request.

On PostgreSQL a report of a message we know costs three statements: lock its message, count
the report if it is a redelivery and store the request (one data-modifying ``WITH``), store
the event, update the columns of the message that changed. A redelivered report costs the
first alone. A report of a message we did not know costs four: the lock finds nothing, the
message is inserted with its summary already decided, then the request (whose person the
report's number decides) and the event. Each message row gets one new version per report,
not two. The ORM composed each statement again on every request, locked and read the message
twice when it was new, and wrote every column back.

SQLite (>= 3.35) has no row locks and no data-modifying ``WITH``: there the lock is an
``UPDATE`` that changes nothing (the transaction's first statement is a write, so a concurrent
one waits for it), and the count and the request are statements of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connections, models
from django.db.models import Field, Model

from .models import Message, MessageEvent, RawWebhook


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


#: Fields whose database value is the Python value itself when it has the type named here:
#: Django's conversions return such a value unchanged, so they are skipped on the hot path.
_PLAIN_TYPES: dict[type[Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.BooleanField: bool,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BigAutoField: int,
    models.AutoField: int,
}


@functools.cache
def _preparers(model: type[Model]) -> tuple[tuple[Field, str, type | None, bool], ...]:
    """Per insert column: the field, its attribute, the type whose values need no conversion
    (None: always convert) and whether ``pre_save`` decides the value (``auto_now``)."""
    result = []
    for f in _insert_fields(model):
        computed = bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
        result.append((f, f.attname, _plain_type(f), computed))
    return tuple(result)


def _plain_type(f: Field) -> type | None:
    target = cast(Field, f.target_field) if f.is_relation else f  # type: ignore[attr-defined]
    return _PLAIN_TYPES.get(type(target))


def _values(record: Model, using: str) -> list[Any]:
    """What ``save()`` would send for each insert column of ``record``."""
    connection = connections[using]
    values = []
    for f, attname, plain, computed in _preparers(type(record)):
        value = f.pre_save(record, add=True) if computed else getattr(record, attname)
        if value is None or type(value) is not plain:
            value = f.get_db_prep_save(value, connection)
        values.append(value)
    return values


def insert_columns(model: type[Model], values: dict[str, Any], using: str) -> int:
    """``INSERT`` a row of ``model`` from ``values`` (by attribute name; a column not named
    takes its database default, so it needs one: Python-side defaults are not applied): its
    new id. No model instance is built: deferred mode's acceptance stores a request this way."""
    connection = connections[using]
    params = []
    for f, plain in _columns_of(model, tuple(values)):
        value = values[f.attname]
        params.append(value if type(value) is plain else f.get_db_prep_save(value, connection))
    row = _fetchone(using, _insert_columns_sql(using, model, tuple(values)), params)
    assert row is not None  # noqa: S101 - an INSERT without ON CONFLICT returns its row
    return row[0]


@functools.cache
def _columns_of(
    model: type[Model], names: tuple[str, ...]
) -> tuple[tuple[Field, type | None], ...]:
    return tuple((_fields(model)[name], _plain_type(_fields(model)[name])) for name in names)


@functools.cache
def _insert_columns_sql(using: str, model: type[Model], names: tuple[str, ...]) -> str:
    q = _quote(using)
    return (
        f"INSERT INTO {q(model._meta.db_table)} "  # noqa: S608 - names, not input
        f"({', '.join(q(_column(model, name)) for name in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING {q(model._meta.pk.column)}"
    )


def _fetchone(using: str, sql: str, params: Sequence[Any]) -> tuple | None:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def insert(record: Model, using: str) -> int:
    """``INSERT`` every column of ``record``; its new id (also set on it)."""
    tail = f"RETURNING {_quote(using)(record._meta.pk.column)}"
    row = _fetchone(using, _insert_sql(using, type(record), tail), _values(record, using))
    assert row is not None  # noqa: S101 - an INSERT without ON CONFLICT returns its row
    _stored(record, row[0], using)
    return row[0]


def _stored(record: Model, pk: int, using: str) -> None:
    """Mark ``record`` as the row ``pk`` of ``using``, as ``save()`` would."""
    record.pk = pk
    record._state.adding = False
    record._state.db = using


def insert_unless_duplicate(record: Model, using: str, conflict: Iterable[str]) -> int | None:
    """``INSERT … ON CONFLICT (<conflict>) DO NOTHING RETURNING id``: the new id, or None."""
    q = _quote(using)
    tail = (
        f"ON CONFLICT ({', '.join(map(q, conflict))}) DO NOTHING "
        f"RETURNING {q(record._meta.pk.column)}"
    )
    row = _fetchone(using, _insert_sql(using, type(record), tail), _values(record, using))
    if row is None:
        return None
    _stored(record, row[0], using)
    return row[0]


def lock_or_create_message(provider: str, provider_message_id: str, using: str) -> Message:
    """The message row, locked until the transaction ends; created (with its defaults) if it
    does not exist yet."""
    message, _ = lock_message(provider, provider_message_id, using)
    while message is None:
        created = Message(provider=provider, provider_message_id=provider_message_id)
        if insert_unless_duplicate(created, using, ("provider", "provider_message_id")):
            return created  # our own insert: locked until we commit
        # Another transaction created it meanwhile (the insert waited for its commit).
        message, _ = lock_message(provider, provider_message_id, using)
    return message


def lock_message(
    provider: str,
    provider_message_id: str,
    using: str,
    *,
    count_key: str = "",
    now: datetime | None = None,
    raw: RawWebhook | None = None,
) -> tuple[Message | None, bool]:
    """The message row, locked until the transaction ends (``None``: there is none yet), and
    whether its event ``count_key`` is stored already, in which case one more delivery of it
    (a provider's retry) was counted at ``now``. ``raw``: the request, not stored yet; where
    the statement can carry it (PostgreSQL) it is stored by it when the message is known
    with its person, linked to that person (``raw.pk`` is then set), else left to the caller.

    On PostgreSQL the lock is ``FOR NO KEY UPDATE``: events of the message inserted by other
    transactions (a foreign key's ``KEY SHARE``) are not blocked by it, and no row version is
    written; the lock, the count and the request are one statement (a data-modifying
    ``WITH``). Always the message first, then its event. SQLite has no row locks: the statement
    is an ``UPDATE`` that changes nothing, so the transaction holds the database's write lock
    from its first statement and a concurrent one waits for it (a ``SELECT`` first would let
    two transactions read, then fail with "database is locked" when both write). The whole row
    is returned: receivers of ``message_status_changed`` read any field of it, and a field
    loaded later would be a query each, after the lock is gone.
    """
    connection = connections[using]
    fields = tuple(_fields(Message))
    params: list[Any] = [provider, provider_message_id]
    # The count and the request ride on the lock where there are row locks (PostgreSQL).
    rides = connection.features.has_select_for_no_key_update
    counts = bool(count_key) and rides
    stored = raw if rides else None  # None: the caller stores the request
    if counts:
        when = _fields(MessageEvent)["last_duplicate_at"].get_db_prep_save(now, connection)
        params += [when, count_key]
    if stored is not None:
        params += [
            value
            for f, value in zip(_insert_fields(RawWebhook), _values(stored, using), strict=True)
            if f.attname != "recipient_hash"
        ]
    row = _fetchone(using, _lock_sql(using, counts, stored is not None), params)
    if row is None:
        return None, False
    message = _message_from_row(using, fields, row[: len(fields)])
    if stored is not None and (raw_id := row[-1]) is not None:
        stored.recipient_hash = message.recipient_hash
        _stored(stored, raw_id, using)
    if counts:
        return message, bool(row[len(fields)])
    if count_key:
        return message, _count_duplicate(count_key, message.pk, now, using)
    return message, False


@functools.cache
def _lock_sql(using: str, counts: bool, stores: bool) -> str:
    connection = connections[using]
    q = connection.ops.quote_name
    message, event = q(Message._meta.db_table), q(MessageEvent._meta.db_table)
    columns = ", ".join(q(_column(Message, name)) for name in _fields(Message))
    where = f"WHERE {q('provider')} = %s AND {q('provider_message_id')} = %s"
    if not connection.features.has_select_for_no_key_update:  # SQLite: see lock_message
        updated = q("updated_at")
        return f"UPDATE {message} SET {updated} = {updated} {where} RETURNING {columns}"  # noqa: S608
    select = f"SELECT {columns} FROM {message} {where} FOR NO KEY UPDATE"  # noqa: S608
    if not (counts or stores):
        return select
    parts, results = [f"m AS ({select})"], ["m.*"]
    if counts:
        count = q("duplicate_count")
        parts.append(
            f"d AS (UPDATE {event} SET {count} = {count} + 1, "  # noqa: S608
            f"{q('last_duplicate_at')} = %s WHERE {q('dedupe_key')} = %s AND "
            f"{q('message_id')} = (SELECT {q('id')} FROM m) RETURNING 1)"
        )
        results.append("EXISTS (SELECT 1 FROM d)")
    if stores:
        # Typed placeholders: in a SELECT list a parameter has no column to take its type from.
        person = q("recipient_hash")
        raw_fields = _insert_fields(RawWebhook)
        values = [
            f"m.{person}" if f.attname == "recipient_hash" else f"%s::{f.cast_db_type(connection)}"
            for f in raw_fields
        ]
        parts.append(
            f"r AS (INSERT INTO {q(RawWebhook._meta.db_table)} "  # noqa: S608
            f"({', '.join(q(f.column) for f in raw_fields)}) SELECT {', '.join(values)} "
            f"FROM m WHERE m.{person} <> '' RETURNING {q('id')})"
        )
        results.append(f"(SELECT {q('id')} FROM r)")  # noqa: S608 - names, not input
    return f"WITH {', '.join(parts)} SELECT {', '.join(results)} FROM m"  # noqa: S608


def _message_from_row(using: str, fields: tuple[str, ...], row: Sequence[Any]) -> Message:
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
    return (
        f"UPDATE {q(MessageEvent._meta.db_table)} SET {q('duplicate_count')} = "  # noqa: S608
        f"{q('duplicate_count')} + 1, {q('last_duplicate_at')} = %s "
        f"WHERE {q('dedupe_key')} = %s AND {q('message_id')} = %s RETURNING {q('id')}"
    )


def _count_duplicate(dedupe_key: str, message_id: int, now: datetime | None, using: str) -> bool:
    """Count one more delivery of an event of this message we have; False if we have none."""
    when = _fields(MessageEvent)["last_duplicate_at"].get_db_prep_save(now, connections[using])
    params = [when, dedupe_key, message_id]
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
