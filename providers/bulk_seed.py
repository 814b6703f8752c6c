"""``sms_delivery_seed --bulk N``: a production-size database in minutes, to measure the console.

Seeding through the ingest service runs at a few hundred messages a second, so a million would
take over an hour. Instead, a pool of template messages is seeded the ordinary way (their
summaries, events and raw requests are what the pipeline makes of their callbacks), and set-based
SQL on PostgreSQL copies the pool until N messages exist, one short transaction per batch. A copy
gets its own ids, send time, recipient (a generated person of the template's country), product
reference and dedupe keys; its events and raw requests are the template's, moved in time. Message
n gets the provider message id the ordinary seed would give message n, in its template's
provider's format, so runs add only what is missing (a later ``--messages`` run beyond the
templates adds its own messages beside the copies). The encrypted payloads and requests are the
template's too: revealing one shows the template's number. That is fine for measuring and wrong
for a demo of evidence, which the ordinary seed is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from django.db import connection, transaction
from django.db.models import DateTimeField, Model

from delivery.events import ConsentChange
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from delivery.progress import Progress
from delivery.recipients import protect

from .seeding import COUNTRIES, LONG_CODES, UNREADABLE_EVERY

#: Template messages seeded the ordinary way; copies cycle through them.
TEMPLATES = 2000
#: One inbound opt-out (or opt-in) per this many messages.
MESSAGES_PER_INBOUND = 500
#: Generated people: one per this many messages, at most PEOPLE_MAX.
MESSAGES_PER_PERSON = 5
PEOPLE_MAX = 200_000


@dataclass
class BulkCounts:
    messages: int = 0
    events: int = 0
    raw: int = 0
    inbound: int = 0


def _digest(prefix: str) -> str:
    """SQL: the hex SHA-256 of ``"<prefix>:<seed>:<n>"`` (seed a parameter, n the series)."""
    return f"encode(sha256(convert_to('{prefix}:' || %(seed)s::text || ':' || s.n, 'UTF8')), 'hex')"


# The provider message id the ordinary seed gives message n (providers.seeding.Generator).
_MESSAGE_ID = """
    CASE tm.provider
        WHEN 'twilio' THEN 'SM' || left(d.hex, 32)
        WHEN 'vonage' THEN upper(left(d.hex, 16))
        WHEN 'plivo' THEN left(d.hex, 8) || '-' || substr(d.hex, 9, 4) || '-'
            || substr(d.hex, 13, 4) || '-' || substr(d.hex, 17, 4) || '-' || substr(d.hex, 21, 12)
        ELSE 'bulk-' || left(d.hex, 32)
    END
"""


def _columns(
    model: type[Model], source: str, overrides: dict[str, str], shift: str
) -> tuple[str, str]:
    """Column list and SELECT list copying ``model`` rows from ``source``: datetimes moved by
    ``shift``, ``overrides`` (column -> SQL) for the rest that differs."""
    names, values = [], []
    for field in model._meta.concrete_fields:
        column = str(field.column)
        names.append(connection.ops.quote_name(column))
        if column in overrides:
            values.append(overrides[column])
        elif isinstance(field, DateTimeField):
            values.append(f"{source}.{column} + {shift}")
        else:
            values.append(f"{source}.{column}")
    return ", ".join(names), ", ".join(values)


class BulkSeeder:
    """Copies the template messages in batches; ``progress`` gets a line per batch."""

    def __init__(self, seed: int, days: int, batch_size: int, progress: Callable[[str], None]):
        self.seed, self.days, self.batch_size, self.progress = seed, days, batch_size, progress
        self.tables = {
            model: connection.ops.quote_name(model._meta.db_table)
            for model in (Message, MessageEvent, RawWebhook, InboundMessage)
        }

    def run(self, template_ids: list[int], total: int) -> BulkCounts:
        counts = BulkCounts()
        with connection.cursor() as cursor:
            self._load_templates(cursor, template_ids)
            self._load_people(cursor, max(1, min(PEOPLE_MAX, total // MESSAGES_PER_PERSON)))
        first = len(template_ids)
        progress = Progress(self.progress, max(total - first, 0), "messages copied")
        for start in range(len(template_ids), total, self.batch_size):
            stop = min(start + self.batch_size, total)
            with transaction.atomic(), connection.cursor() as cursor:
                self._copy_batch(cursor, start, stop, len(template_ids), counts)
                cursor.execute("DROP TABLE bulk_m, bulk_e, bulk_r")
            progress.update(stop - first, f"{counts.events:,} events · {counts.raw:,} raw requests")
        with transaction.atomic(), connection.cursor() as cursor:
            counts.inbound = self._inbound(cursor, total // MESSAGES_PER_INBOUND)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bulk_tm, bulk_te, bulk_tu, bulk_people, bulk_countries")
            for table in self.tables.values():
                cursor.execute(f"ANALYZE {table}")  # the planner must know the new size
        return counts

    def _load_templates(self, cursor, template_ids: list[int]) -> None:
        message, event, raw = (self.tables[m] for m in (Message, MessageEvent, RawWebhook))
        cursor.execute(
            "DROP TABLE IF EXISTS bulk_tm, bulk_te, bulk_tu, bulk_people, bulk_countries"
        )
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_tm AS
                SELECT row_number() OVER (ORDER BY m.id) - 1 AS t, m.*,
                       extract(epoch FROM greatest(m.created_at, m.last_event_at, (
                           SELECT max(e.last_duplicate_at) FROM {event} e
                           WHERE e.message_id = m.id)) - m.created_at) AS span
                FROM {message} m WHERE m.id = ANY(%s)""",
            [template_ids],
        )
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_te AS
                SELECT tm.t, tm.provider_message_id AS template_message_id, e.*,
                       r.provider AS r_provider, r.account AS r_account, r.method AS r_method,
                       r.path AS r_path, r.content_type AS r_content_type,
                       r.request_encrypted AS r_request, r.signature_valid AS r_signature_valid
                FROM {event} e JOIN bulk_tm tm ON tm.id = e.message_id
                LEFT JOIN {raw} r ON r.id = e.raw_webhook_id"""
        )
        cursor.execute("CREATE INDEX ON bulk_te (t)")
        # The review queue: requests that could not be read belong to no message.
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_tu AS
                SELECT row_number() OVER (ORDER BY r.id) - 1 AS u, r.*
                FROM {raw} r WHERE r.parse_error <> '' AND r.received_at >= (
                    SELECT min(created_at) FROM bulk_tm)"""
        )
        cursor.execute("ANALYZE bulk_tm; ANALYZE bulk_te; ANALYZE bulk_tu")

    def _load_people(self, cursor, how_many: int) -> None:
        """``how_many`` people spread over the seed's countries: number hash and ciphertext."""
        rng = random.Random(f"bulk-people:{self.seed}")
        cursor.execute("CREATE TEMP TABLE bulk_people (country text, i int, hash text, enc text)")
        weight = sum(COUNTRIES.values())
        with cursor.cursor.copy("COPY bulk_people (country, i, hash, enc) FROM STDIN") as copy:
            for country, share in COUNTRIES.items():
                for i, e164 in enumerate(_numbers(country, how_many * share // weight + 1, rng)):
                    protected = protect(e164)
                    hashed, ciphertext = (
                        (protected.hash, protected.encrypted) if protected else ("", "")
                    )
                    copy.write_row((country, i, hashed, ciphertext))
        cursor.execute(
            "CREATE TEMP TABLE bulk_countries AS "
            "SELECT country, count(*) AS n FROM bulk_people GROUP BY country"
        )
        cursor.execute("CREATE INDEX ON bulk_people (country, i); ANALYZE bulk_people")

    def _copy_batch(self, cursor, start: int, stop: int, templates: int, counts: BulkCounts):
        """Messages ``start`` to ``stop - 1`` that do not exist yet, with their events, raw
        requests and unreadable requests."""
        self._plan_batch(cursor, start, stop, templates)
        counts.messages += self._copy_messages(cursor)
        raw, events = self._copy_events(cursor)
        counts.raw += raw + self._copy_unreadable(cursor)
        counts.events += events

    def _plan_batch(self, cursor, start: int, stop: int, templates: int) -> None:
        """``bulk_m``: which template each new message copies, its ids, time shift and person.

        The shift puts the send at a time drawn from the message's digest within --days, and
        never so late that any of the template's times (its last report, a provider's retry)
        would move into the future.
        """
        message = self.tables[Message]
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_m AS
                SELECT s.n, tm.t, nextval(pg_get_serial_sequence('{message}', 'id')) AS id,
                       {_MESSAGE_ID} AS provider_message_id,
                       'msg_' || left(p.hex, 20) AS public_id,
                       date_trunc('second', now()) - make_interval(secs => greatest(
                           ('x' || substr(d.hex, 33, 8))::bit(32)::bigint %% %(seconds)s,
                           tm.span + 60)) - tm.created_at AS shift,
                       coalesce(person.hash, tm.recipient_hash) AS recipient_hash,
                       coalesce(person.enc, tm.recipient_encrypted) AS recipient_encrypted
                FROM generate_series(%(start)s::bigint, %(stop)s - 1) AS s(n)
                JOIN bulk_tm tm ON tm.t = s.n %% %(templates)s
                CROSS JOIN LATERAL (SELECT {_digest("sms_delivery_seed")}) AS d(hex)
                CROSS JOIN LATERAL (SELECT {_digest("bulk-public-id")}) AS p(hex)
                LEFT JOIN bulk_countries c ON c.country = tm.destination_country
                LEFT JOIN bulk_people person ON person.country = tm.destination_country
                    AND person.i = (s.n * 7919) %% c.n
                WHERE NOT EXISTS (
                    SELECT 1 FROM {message} x
                    WHERE x.provider = tm.provider AND x.provider_message_id = {_MESSAGE_ID}
                )""",
            {
                "start": start,
                "stop": stop,
                "templates": templates,
                "seed": self.seed,
                "seconds": self.days * 86400,
            },
        )

    def _copy_messages(self, cursor) -> int:
        names, values = _columns(
            Message,
            "tm",
            {
                "id": "bm.id",
                "public_id": "bm.public_id",
                "provider_message_id": "bm.provider_message_id",
                "recipient_hash": "bm.recipient_hash",
                "recipient_encrypted": "bm.recipient_encrypted",
                # The template's key names the template's id; the copy's names its own (the
                # seed's keys are never in their sha256 form: its ids are short).
                "status_event_key": "replace(tm.status_event_key, tm.provider_message_id, "
                "bm.provider_message_id)",
                # Its own product action ("order:4711"); a few share one, as resends do.
                "product_reference": "CASE WHEN tm.product_reference = '' THEN '' ELSE "
                "split_part(tm.product_reference, ':', 1) || ':' || "
                "mod(('x' || substr(bm.public_id, 5, 8))::bit(32)::bigint, 10000000)::text END",
                # The template's row was last written when the seed ran, not at a moved time.
                "updated_at": "coalesce(tm.last_event_at, tm.created_at) + bm.shift",
            },
            "bm.shift",
        )
        cursor.execute(
            f"INSERT INTO {self.tables[Message]} ({names}) SELECT {values} "
            "FROM bulk_m bm JOIN bulk_tm tm ON tm.t = bm.t"
        )
        return cursor.rowcount

    def _copy_events(self, cursor) -> tuple[int, int]:
        """The copies' events, and one raw request per receipt (the event's first request, then
        one per duplicate the provider sent); (raw requests, events) inserted."""
        event, raw = self.tables[MessageEvent], self.tables[RawWebhook]
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_e AS
                SELECT nextval(pg_get_serial_sequence('{event}', 'id')) AS id,
                       te.id AS template_event_id, bm.id AS message_id, bm.shift,
                       bm.provider_message_id, bm.recipient_hash
                FROM bulk_m bm JOIN bulk_te te ON te.t = bm.t"""
        )
        cursor.execute(
            f"""CREATE TEMP TABLE bulk_r AS
                SELECT nextval(pg_get_serial_sequence('{raw}', 'id')) AS id, be.id AS event_id,
                       te.id AS template_event_id, k, be.shift
                FROM bulk_e be JOIN bulk_te te ON te.id = be.template_event_id
                CROSS JOIN generate_series(0, te.duplicate_count) AS k
                WHERE te.r_request IS NOT NULL"""
        )
        names, values = _columns(
            RawWebhook,
            "te",
            {
                "id": "br.id",
                "provider": "te.r_provider",
                "account": "te.r_account",
                "method": "te.r_method",
                "path": "te.r_path",
                "content_type": "te.r_content_type",
                "request_encrypted": "te.r_request",
                "signature_valid": "te.r_signature_valid",
                "parse_error": "''",
                "received_at": "CASE WHEN br.k = 0 THEN te.received_at ELSE coalesce("
                "te.last_duplicate_at, te.received_at) + (br.k - 1) * interval '1 second' END "
                "+ br.shift",
                "recipient_hash": "be.recipient_hash",  # the copy's person
                "pending": "false",
            },
            "br.shift",
        )
        cursor.execute(
            f"INSERT INTO {raw} ({names}) SELECT {values} "
            "FROM bulk_r br JOIN bulk_te te ON te.id = br.template_event_id "
            "JOIN bulk_e be ON be.id = br.event_id"
        )
        raw_count = cursor.rowcount
        names, values = _columns(
            MessageEvent,
            "te",
            {
                "id": "be.id",
                "message_id": "be.message_id",
                "raw_webhook_id": "br.id",
                # Keys keep the template's provider time; the message id makes them unique.
                "dedupe_key": "replace(te.dedupe_key, te.template_message_id, "
                "be.provider_message_id)",
                "provider_event_id": "replace(te.provider_event_id, te.template_message_id, "
                "be.provider_message_id)",
            },
            "be.shift",
        )
        cursor.execute(
            f"INSERT INTO {event} ({names}) SELECT {values} "
            "FROM bulk_e be JOIN bulk_te te ON te.id = be.template_event_id "
            "LEFT JOIN bulk_r br ON br.event_id = be.id AND br.k = 0"
        )
        return raw_count, cursor.rowcount

    def _copy_unreadable(self, cursor) -> int:
        """As many unreadable requests as the ordinary seed makes (one per UNREADABLE_EVERY)."""
        raw = self.tables[RawWebhook]
        names, values = _columns(
            RawWebhook,
            "tu",
            {
                "id": f"nextval(pg_get_serial_sequence('{raw}', 'id'))",
                "received_at": "tm.created_at + bm.shift + interval '2 seconds'",
            },
            "bm.shift",
        )
        cursor.execute(
            f"INSERT INTO {raw} ({names}) SELECT {values} "
            "FROM bulk_m bm JOIN bulk_tm tm ON tm.t = bm.t "
            "JOIN bulk_tu tu ON tu.u = (bm.n / %(every)s) %% "
            "NULLIF((SELECT count(*) FROM bulk_tu), 0) "
            "WHERE bm.n %% %(every)s = %(every)s / 2",
            {"every": UNREADABLE_EVERY},
        )
        return cursor.rowcount

    def _inbound(self, cursor, how_many: int) -> int:
        """Opt-outs (one in ten an opt-in) from generated people to our long codes."""
        inbound = self.tables[InboundMessage]
        cursor.execute(
            f"""INSERT INTO {inbound} (provider, provider_message_id, sender_hash,
                    sender_encrypted, our_identity, keyword, consent, received_at)
                SELECT 'twilio', 'SM' || left(d.hex, 32), p.hash, p.enc,
                       (%(identities)s::text[])[1 + s.n %% 3],
                       CASE WHEN s.n %% 10 = 0 THEN 'START' ELSE 'STOP' END,
                       CASE WHEN s.n %% 10 = 0 THEN %(opt_in)s ELSE %(opt_out)s END,
                       date_trunc('second', now()) - make_interval(
                           secs => ('x' || substr(d.hex, 33, 8))::bit(32)::bigint %% %(seconds)s)
                FROM generate_series(0::bigint, %(count)s - 1) AS s(n)
                CROSS JOIN LATERAL (SELECT {_digest("bulk-inbound")}) AS d(hex)
                JOIN (SELECT row_number() OVER (ORDER BY country, i) - 1 AS r, hash, enc
                      FROM bulk_people) p ON p.r = (s.n * 7919) %% %(people)s
                ON CONFLICT DO NOTHING""",
            {
                "identities": list(LONG_CODES),
                "opt_in": ConsentChange.OPT_IN.value,
                "opt_out": ConsentChange.OPT_OUT.value,
                "seconds": self.days * 86400,
                "count": how_many,
                "seed": self.seed,
                "people": self._people_count(cursor),
            },
        )
        return cursor.rowcount

    @staticmethod
    def _people_count(cursor) -> int:
        cursor.execute("SELECT count(*) FROM bulk_people")
        return cursor.fetchone()[0]


def _numbers(country: str, how_many: int, rng: random.Random):
    """Up to ``how_many`` distinct valid mobile numbers of ``country`` (E.164)."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None or example.national_number is None:
        return
    base = example.national_number // 1_000_000 * 1_000_000
    seen: set[str] = set()
    for _ in range(how_many * 4):
        if len(seen) >= how_many:
            break
        candidate = phonenumbers.PhoneNumber(
            country_code=example.country_code, national_number=base + rng.randrange(1_000_000)
        )
        if phonenumbers.is_valid_number(candidate):
            number = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
            if number not in seen:
                seen.add(number)
                yield number
