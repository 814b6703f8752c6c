"""The SQL of the ingest path, composed once per database and reused for every request.

On PostgreSQL a lone report (the webhook's usual request) costs one statement,
:func:`apply_report`: one data-modifying ``WITH`` locks its message, stores the event (or
counts a redelivery) and the request, and folds the report into the summary, its own
transaction (no ``BEGIN`` or ``COMMIT`` round trips). A report of a message we did not know
costs two: that one finds nothing and writes nothing, :func:`insert_report_of_new_message`
inserts the message with its summary decided, the request and the event. Each message row
gets one new version per report.

A request of several reports takes a transaction: :func:`lock_message` locks each message
(on PostgreSQL the same statement counts a redelivery and stores the request), then
:func:`insert_event` and :func:`update` of the columns that changed. SQLite (>= 3.35) has no
row locks and no data-modifying ``WITH``: every request takes that path, the lock is an
``UPDATE`` that changes nothing (the transaction's first statement is a write, so a concurrent
one waits for it), and the count and the request are statements of their own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import IntegrityError, connections, models
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


def _fetchone(using: str, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple | None:
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


def _message_from_json(using: str, row: str | dict[str, Any]) -> Message:
    """The message in ``row`` (``row_to_json``), by column name: a column the model does not
    know (added by a newer release's migration during a rolling deploy) is left out, and the
    statement's result keeps its type when one is added (a prepared statement would fail)."""
    values = json.loads(row) if isinstance(row, str) else row
    known = [(name, f) for name, f in _fields(Message).items() if _column(Message, name) in values]
    return Message.from_db(
        using,
        [name for name, _ in known],
        [f.to_python(values[_column(Message, name)]) for name, f in known],
    )


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


# One report, one statement: the webhook's usual request on PostgreSQL (delivery.ingest).


@dataclass(frozen=True, slots=True)
class Reported:
    """What :func:`apply_report` did with one report of a message we know."""

    ready: bool  #: False: the message has no number and the report names one; nothing written
    applies: bool  #: the report takes over the summary
    counted: bool  #: a redelivery of an event of this message, counted
    key_taken: bool  #: the report's key belongs to another message's event; nothing written
    previous: str  #: the message's status before
    message: Message | None  #: the message after the report, when its event was stored


def apply_report(
    record: MessageEvent, raw: RawWebhook, fold: dict[str, Any], using: str
) -> Reported | None:
    """Lock the report's message, store the report and its request and fold it into the
    message's summary, in one statement (PostgreSQL); None when there is no such message.

    ``record`` is the event to store (its ``message``, ``raw_webhook`` and ``applied`` are
    decided here, and set with its id when it is stored), ``raw`` the request (its
    ``recipient_hash`` too). ``fold`` names what the report says, as :func:`_report_sql` reads
    it: ``provider``, ``message_id``, ``precedence`` (:data:`delivery.lifecycle.PRECEDENCE`'s
    values as a ``text[]`` literal), ``status``, ``occurred``, ``code``, ``key``,
    ``category``, ``now``, ``when`` (the time it proves), ``implies_sent``,
    ``implies_delivered``, ``unknown``, ``sender``, ``country`` and ``segments`` (None when
    the report does not say), ``needs_person`` (it names a number the message may not have)
    and the number read from it when the message has none: ``person_hash``,
    ``person_encrypted``, ``person_country``.

    Nothing is written when the key is another message's (``key_taken``), when the message
    needs the report's number read first (not ``ready``), or when an event under the key was
    stored by a transaction that committed after this statement began (no ``message``, not
    ``counted`` nor ``key_taken``): the caller runs it again, and then sees it.
    """
    params = {
        **fold,
        **_named("e", record, using, skip=("message_id", "raw_webhook_id", "applied")),
        **_named("r", raw, using, skip=("recipient_hash",)),
    }
    row = _fetchone(using, _report_sql(using), params)
    if row is None:
        return None
    ready, applies, event_id, counted, raw_id, person, key_taken, previous, updated = row
    message = None
    if updated is not None:  # the message was updated: its row as it is now
        message = _message_from_json(using, updated)
        record.message, record.applied = message, applies
        _stored(record, event_id, using)
    if raw_id is not None:
        raw.recipient_hash = person
        _stored(raw, raw_id, using)
        record.raw_webhook = raw
    return Reported(
        ready=ready,
        applies=applies,
        counted=counted is not None,
        key_taken=key_taken,
        previous=previous,
        message=message,
    )


@functools.cache
def _report_sql(using: str) -> str:
    """:func:`apply_report`'s statement. Its parts, in the order their results are needed:

    - ``m`` locks the message (``FOR NO KEY UPDATE``, as :func:`lock_message`): always the
      message first, then its event, so two reports cannot wait on each other;
    - ``k`` decides, against the row as locked, whether the report can be applied without
      reading its number and whether it takes over the summary: its precedence key greater
      than the summary's, compared as :func:`delivery.lifecycle.supersedes` compares them
      (the status's place in the precedence list, the provider's time, the error code and the
      key, text by code point);
    - ``e`` stores the event unless its key is stored already, ``d`` counts a redelivery of
      this message's event, ``u`` folds a new event into the summary (the earliest time sent
      and delivered, what was empty filled in, the deciding event's fields when it applies);
    - ``r`` stores the request under an id drawn first (the event names it), linked to the
      message's person, when the event was stored or counted.
    """
    connection = connections[using]
    q = connection.ops.quote_name
    message, event, raw = (q(model._meta.db_table) for model in (Message, MessageEvent, RawWebhook))
    # What the statement reads of the message as locked.
    columns = "id, recipient_hash, current_status, status_occurred_at, error_code, status_event_key"

    event_fields = _insert_fields(MessageEvent)
    event_select = _select(
        using, "e", event_fields, message_id="k.id", raw_webhook_id="raw_id.id", applied="k.applies"
    )
    raw_fields = [f for f in _insert_fields(RawWebhook) if f.attname != "recipient_hash"]
    raw_select = _select(using, "r", raw_fields)
    c = 'COLLATE "C"'  # text compared by code point, as Python compares it
    no_time = "'0001-01-01 00:00:00+00'"  # lifecycle's for a report without a time
    # Filled in only when empty (and the report says).
    sender = "COALESCE(NULLIF(sender_identity, ''), %(sender)s, sender_identity)"
    segments = "COALESCE(NULLIF(segments, 0), %(segments)s, segments)"
    return (
        f"WITH m AS (SELECT {columns} FROM {message} "  # noqa: S608 - names, not input
        "WHERE provider = %(provider)s AND provider_message_id = %(message_id)s "
        "FOR NO KEY UPDATE), "
        "k AS (SELECT m.id, (m.recipient_hash <> '' OR NOT %(needs_person)s) AS ready, "
        "(m.status_event_key = '' OR ("
        "array_position(%(precedence)s::text[], %(status)s::text), "
        f"COALESCE(%(occurred)s::timestamptz, {no_time}), "
        f"%(code)s::text {c}, %(key)s::text {c}) > ("
        "array_position(%(precedence)s::text[], m.current_status), "
        f"COALESCE(m.status_occurred_at, {no_time}), "
        f"m.error_code {c}, m.status_event_key {c})) AS applies FROM m), "
        f"raw_id AS (SELECT nextval(pg_get_serial_sequence('{raw}', 'id')) AS id "
        "FROM k WHERE k.ready), "
        f"e AS (INSERT INTO {event} ({', '.join(q(f.column) for f in event_fields)}) "
        f"SELECT {event_select} FROM k, raw_id "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), "
        f"d AS (UPDATE {event} SET duplicate_count = duplicate_count + 1, "
        "last_duplicate_at = %(now)s WHERE dedupe_key = %(key)s "
        "AND message_id = (SELECT id FROM k WHERE k.ready) "
        "AND NOT EXISTS (SELECT FROM e) RETURNING id), "
        f"u AS (UPDATE {message} t SET last_event_at = %(now)s, updated_at = %(now)s, "
        "first_sent_at = CASE WHEN %(implies_sent)s "
        "THEN LEAST(first_sent_at, %(when)s) ELSE first_sent_at END, "
        "delivered_at = CASE WHEN %(implies_delivered)s "
        "THEN LEAST(delivered_at, %(when)s) ELSE delivered_at END, "
        "needs_review = needs_review OR %(unknown)s, "
        "recipient_hash = CASE WHEN recipient_hash = '' "
        "THEN %(person_hash)s ELSE recipient_hash END, "
        "recipient_encrypted = CASE WHEN recipient_hash = '' "
        "THEN %(person_encrypted)s ELSE recipient_encrypted END, "
        "destination_country = COALESCE(NULLIF(destination_country, ''), "
        "CASE WHEN recipient_hash = '' THEN %(person_country)s END, "
        "%(country)s, destination_country), "
        f"sender_identity = {sender}, segments = {segments}, "
        "current_status = CASE WHEN k.applies THEN %(status)s ELSE current_status END, "
        "status_occurred_at = CASE WHEN k.applies "
        "THEN %(occurred)s ELSE status_occurred_at END, "
        "status_event_key = CASE WHEN k.applies THEN %(key)s ELSE status_event_key END, "
        "error_code = CASE WHEN k.applies THEN %(code)s ELSE error_code END, "
        "error_category = CASE WHEN k.applies THEN %(category)s ELSE error_category END "
        "FROM k WHERE t.id = k.id AND EXISTS (SELECT FROM e) "
        "RETURNING t.*), "
        f"r AS (INSERT INTO {raw} (id, {', '.join(q(f.column) for f in raw_fields)}, "
        f"recipient_hash) SELECT raw_id.id, {raw_select}, "
        "CASE WHEN m.recipient_hash <> '' THEN m.recipient_hash ELSE %(person_hash)s END "
        "FROM raw_id, m WHERE EXISTS (SELECT FROM e) OR EXISTS (SELECT FROM d) "
        "RETURNING id, recipient_hash) "
        "SELECT k.ready, k.applies, (SELECT id FROM e), (SELECT id FROM d), "
        "(SELECT id FROM r), (SELECT recipient_hash FROM r), "
        f"(SELECT NOT EXISTS (SELECT FROM e) AND NOT EXISTS (SELECT FROM d) AND EXISTS ("
        f"SELECT FROM {event} WHERE dedupe_key = %(key)s)), m.current_status, "
        "row_to_json(u) FROM m CROSS JOIN k LEFT JOIN u ON true"
    )


def _select(using: str, prefix: str, fields: Iterable[Field], **given: str) -> str:
    """A SELECT list of named placeholders (``%(<prefix>_<attname>)s``) for ``fields``, but
    the expressions ``given`` by attribute name. In a SELECT list a parameter has no column to
    take its type from: text is assigned to its column as it is, other types are cast."""
    connection = connections[using]

    def placeholder(f: Field) -> str:
        name = f"%({prefix}_{f.attname})s"
        if _plain_type(f) is str:
            return name
        return f"{name}::{f.cast_db_type(connection)}".replace(  # shorter: see apply_report
            "timestamp with time zone", "timestamptz"
        )

    return ", ".join(given.get(f.attname) or placeholder(f) for f in fields)


def _named(prefix: str, record: Model, using: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    """``record``'s insert values as :func:`_select`'s parameters, but those named in ``skip``
    (psycopg parses a statement of more than 50 parameters again on every call)."""
    fields = _insert_fields(type(record))
    return {
        f"{prefix}_{f.attname}": value
        for f, value in zip(fields, _values(record, using), strict=True)
        if f.attname not in skip
    }


def _as_json(record: Model, using: str) -> str:
    """``record``'s insert values as one JSON object by column, for ``json_populate_record``:
    one parameter for a whole row."""
    fields = _insert_fields(type(record))
    values = zip(fields, _values(record, using), strict=True)
    return json.dumps({f.column: value for f, value in values}, default=datetime.isoformat)


def insert_report_of_new_message(
    message: Message, record: MessageEvent, raw: RawWebhook, using: str
) -> tuple[bool, bool]:
    """Insert ``message`` (its summary decided by ``record``), the request ``raw`` and the
    event ``record`` in one statement (PostgreSQL); ``(created, key taken)``. Each gets its
    id. Nothing is written when the message exists by now (a concurrent report created it:
    apply the report to it; its event may be this one) or when ``record``'s key is another
    message's event's: one stored before the statement began, or one a concurrent
    transaction committed while the statement waited on it (the event is inserted only with
    a message this statement created, which no other transaction's event can name)."""
    params = {
        "message": _as_json(message, using),
        "provider": message.provider,
        "message_id": message.provider_message_id,
        **_named("e", record, using, skip=("message_id", "raw_webhook_id")),
        **_named("r", raw, using),
    }
    try:
        row = _fetchone(using, _new_message_sql(using), params)
    except IntegrityError as exc:
        if _constraint(exc) != _EVENT_KEY:
            raise
        return False, True
    assert row is not None  # noqa: S101 - a SELECT without FROM returns its row
    message_id, raw_id, event_id, key_taken = row
    if message_id is None:
        return False, key_taken
    _stored(message, message_id, using)
    _stored(raw, raw_id, using)
    _stored(record, event_id, using)
    record.message, record.raw_webhook = message, raw
    return True, False


#: The constraint an event's key is unique under.
_EVENT_KEY = next(
    c.name
    for c in MessageEvent._meta.constraints
    if list(getattr(c, "fields", ())) == ["dedupe_key"]
)


def _constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint PostgreSQL says ``exc`` broke."""
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


@functools.cache
def _new_message_sql(using: str) -> str:
    """:func:`insert_report_of_new_message`'s statement: the message first (``ON CONFLICT DO
    NOTHING``, unless the event's key is taken; its row one JSON parameter), then the request
    and the event, which name it. A key taken by a concurrent transaction since the statement
    began fails the event's insert, and with it the whole statement (``IntegrityError`` on
    the key's constraint)."""
    q = _quote(using)
    message, event, raw = (q(model._meta.db_table) for model in (Message, MessageEvent, RawWebhook))

    def names(fields: Iterable[Field]) -> str:
        return ", ".join(q(f.column) for f in fields)

    message_fields = _insert_fields(Message)
    raw_fields = _insert_fields(RawWebhook)
    event_fields = _insert_fields(MessageEvent)
    stored = f"SELECT FROM {event} WHERE dedupe_key = %(e_dedupe_key)s"  # noqa: S608
    # Stored for a message other than this one (created since by a concurrent report).
    taken = (
        f"EXISTS ({stored} AND message_id <> ALL (SELECT id FROM {message} "  # noqa: S608
        "WHERE provider = %(provider)s AND provider_message_id = %(message_id)s))"
    )
    return (
        f"WITH mm AS (INSERT INTO {message} ({names(message_fields)}) "  # noqa: S608
        f"SELECT {names(message_fields)} "
        f"FROM json_populate_record(NULL::{message}, %(message)s::json) "
        f"WHERE NOT EXISTS ({stored}) "
        "ON CONFLICT (provider, provider_message_id) DO NOTHING RETURNING id), "
        f"r AS (INSERT INTO {raw} ({names(raw_fields)}) "
        f"SELECT {_select(using, 'r', raw_fields)} FROM mm RETURNING id), "
        f"e AS (INSERT INTO {event} ({names(event_fields)}) "
        f"SELECT {_select(using, 'e', event_fields, message_id='mm.id', raw_webhook_id='r.id')} "
        "FROM mm, r RETURNING id) "
        f"SELECT (SELECT id FROM mm), (SELECT id FROM r), (SELECT id FROM e), {taken}"
    )
