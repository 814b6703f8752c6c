"""The contract between the core and the provider adapters: the request an adapter works on and
the class it implements.

An adapter verifies a request the provider's own way, parses it into normalized events and maps
statuses and error codes. It never touches the database: the generic webhook view stores what it
returns through the ingest service. The core never imports an adapter; it finds them through
:mod:`delivery.registry`, by dotted path, when they are used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from types import UnionType
from typing import (
    Any,
    ClassVar,
    Generic,
    Self,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict

from .error_codes import ErrorCatalogue
from .events import Event, NormalizedEvent
from .exceptions import ConfigurationError, MalformedPayload
from .lifecycle import Status
from .outgoing import Outgoing, Sent

#: Deepest JSON nesting a webhook may have. Real payloads nest a few levels; a bound keeps every
#: recursive step (the parser, masking, serialization) far from Python's recursion limit.
MAX_JSON_DEPTH = 32
#: Seconds an adapter waits for a provider's API when it asks about a message (reconciliation).
POLL_TIMEOUT = 10
#: Seconds to wait for a provider's API to answer a send request (``send_sms``).
SEND_TIMEOUT = 15


def _form_fields(text: str, errors: str) -> MultiValueDict:
    """The fields of a form body, as ``QueryDict`` reads them; ``UnicodeDecodeError`` for a
    %-escape that is not UTF-8 when ``errors`` is "strict"."""
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            errors=errors,
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except UnicodeDecodeError:  # a ValueError too, but not the field limit's
        raise
    except ValueError as exc:  # as QueryDict: too many fields
        raise TooManyFieldsSent(
            "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
        ) from exc
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return MultiValueDict(fields)


def _not_utf8(body: bytes, *, form: bool) -> str:
    """Why ``body`` (or, in a form, one of its %-escapes) is not UTF-8; "" if it is."""
    try:
        text = body.decode("utf-8")
        if form:
            parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        return exc.reason
    return ""


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request, read before anything parsed it."""

    method: str
    url: str  #: the public URL the provider called (what it signed)
    path: str  #: path and query string as received
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  #: HTTP header names, as sent
    query: QueryDict = field(default_factory=QueryDict)

    @cached_property
    def _lower_headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def header(self, name: str, default: str = "") -> str:
        return self._lower_headers.get(name.lower(), default)

    @cached_property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";")[0].strip().lower()

    @cached_property
    def text(self) -> str:
        """The body as text, bytes that are not UTF-8 replaced (as Django's ``request.POST``)."""
        return self.body.decode("utf-8", errors="replace")

    def require_utf8(self) -> None:
        """Raise MalformedPayload if the body, or a %-escape in a form body, is not UTF-8.

        A GET's body is never read (its signature covers the URL only), so it is not checked.
        """
        if self.method == "GET":
            return
        form = self.content_type == "application/x-www-form-urlencoded"
        try:
            reason = self._form[1] if form else _not_utf8(self.body, form=False)
        except TooManyFieldsSent:  # refused when the form is read; this check says only this
            reason = _not_utf8(self.body, form=True)
        if reason:
            raise MalformedPayload(f"Body is not valid UTF-8: {reason}.")

    @property
    def form(self) -> MultiValueDict:
        """Form fields from the body (POST) or the query string (GET), read as Django reads
        ``request.POST`` (blank values kept, at most ``DATA_UPLOAD_MAX_NUMBER_FIELDS``).

        A plain ``MultiValueDict``, not a ``QueryDict``: the same reading API, without the
        per-field bookkeeping of a mutable ``QueryDict`` on every request.
        """
        return self._form[0]

    @cached_property
    def _form(self) -> tuple[MultiValueDict, str]:
        """The form fields, and why the body is not UTF-8 ("" if it is): read strictly first,
        so that reading a form and checking it (:meth:`require_utf8`) is one parse."""
        if self.method == "GET":
            return self.query, ""
        try:
            return _form_fields(self.body.decode("utf-8"), "strict"), ""
        except UnicodeDecodeError as exc:
            return _form_fields(self.text, "replace"), exc.reason

    @cached_property
    def json(self) -> Any:
        """The body as JSON; MalformedPayload if it is not JSON or nests too deep.

        ``NaN`` and ``Infinity`` (not JSON, but Python's parser takes them) stay text.
        """
        if json_depth_exceeds(self.text, MAX_JSON_DEPTH):
            raise MalformedPayload(f"JSON nests deeper than {MAX_JSON_DEPTH} levels.")
        try:
            return json.loads(self.text, parse_constant=str)
        except ValueError as exc:
            reason = getattr(exc, "msg", "too large a number")
            raise MalformedPayload(f"Body is not valid JSON: {reason}.") from exc


@dataclass
class ProviderOptions:
    """A provider's settings, ``SMS_DELIVERY["PROVIDERS"][name]``, as typed fields.

    Each adapter declares its options as a dataclass of these: the settings key of a field is
    its name in capitals (``auth_tokens`` is ``"AUTH_TOKENS"``). A key that names no field is
    reported by the system checks (``sms_delivery.E007``), so a misspelled option is not
    silently ignored; a value of the wrong type is a ConfigurationError.
    """

    #: Reconciliation (``sms_delivery_reconcile``): a message still not final this long after
    #: it was sent is asked about (720 minutes: Twilio suggests polling after 12 hours).
    poll_after_minutes: int = 720
    #: At most this many API calls a second to this provider (its rate limits are per account).
    polls_per_second: float = 2.0

    def poll_problems(self) -> list[str]:
        """Reconciliation options that cannot work (check E008)."""
        problems = []
        if self.poll_after_minutes < 1:
            problems.append(f"POLL_AFTER_MINUTES is {self.poll_after_minutes}; at least 1")
        if self.polls_per_second <= 0:
            problems.append(f"POLLS_PER_SECOND is {self.polls_per_second}; more than 0")
        return problems

    @classmethod
    def setting_names(cls) -> dict[str, str]:
        """Settings key -> field name."""
        return {f.name.upper(): f.name for f in fields(cls)}

    @classmethod
    def from_settings(cls, settings: Any, provider: str) -> Self:
        """The options in ``settings``; ConfigurationError naming the option that is wrong.

        Every value is checked against its field's type after the subclass's
        ``__post_init__`` normalized it (a secret list from a comma-separated string): a
        ``"false"`` where a bool belongs is refused rather than read as true.
        """
        where = f"SMS_DELIVERY['PROVIDERS'][{provider!r}]"
        if not isinstance(settings, Mapping):
            raise ConfigurationError(
                f"{where} is {type(settings).__name__}, not a dict of options."
            )
        known = cls.setting_names()
        values = {known[key]: value for key, value in settings.items() if key in known}
        try:
            options = cls(**values)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"{where} has an option of the wrong type: {exc}") from exc
        hints = get_type_hints(cls)
        for name in values:
            value = getattr(options, name)
            if not _is_a(value, hints[name]):
                raise ConfigurationError(
                    f"{where}[{name.upper()!r}] is {type(value).__name__}, not "
                    f"{_type_name(hints[name])}."
                )
        return options

    @classmethod
    def unknown_keys(cls, settings: Any) -> list[str]:
        if not isinstance(settings, Mapping):
            return []
        return [key for key in settings if key not in cls.setting_names()]


def _is_a(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the (simple) type ``hint``: bool, int, float, str, None, their
    unions, ``list[str]`` and ``dict[str, …]``. A bool is not a number here."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return any(_is_a(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # a whole number is a fine float
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_is_a(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _is_a(k, args[0]) and _is_a(v, args[1]) for k, v in value.items()
        )
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


OptionsT = TypeVar("OptionsT", bound=ProviderOptions)


class BaseProvider(Generic[OptionsT]):
    """One provider's webhooks. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    #: The provider's status words (lower case) -> canonical status. Unknown words map to UNKNOWN.
    statuses: ClassVar[dict[str, Status]]
    errors: ClassVar[ErrorCatalogue]
    #: The dataclass of this provider's options.
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions

    def __init__(self, settings: Mapping[str, Any] | None = None):
        """``settings``: ``SMS_DELIVERY["PROVIDERS"][name]``; ConfigurationError if unusable."""
        self.options: OptionsT = cast(
            OptionsT, self.Options.from_settings(settings or {}, self.name)
        )

    def map_status(self, raw_status: str) -> Status:
        return self.statuses.get(raw_status.strip().lower(), Status.UNKNOWN)

    def account(self, request: WebhookRequest) -> str:
        """The provider account the request claims to come from (unverified until verify())."""
        return ""

    def verify(self, request: WebhookRequest) -> bool | None:
        """Raise :class:`~delivery.exceptions.SignatureInvalid` unless the provider sent this.

        Return False only when the request was accepted unsigned because the options explicitly
        allow it (it is then recorded as "signature not checked").
        """
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> Sequence[Event]:
        """The delivery reports of a verified request (and the messages people sent us, for
        providers that send both to one URL); raise MalformedPayload if it cannot be read."""
        raise NotImplementedError

    #: Whether ``/webhooks/<name>/inbound/`` exists for this provider (see parse_inbound).
    receives_inbound: ClassVar[bool] = False
    #: Whether messages people send us can also arrive on the status URL (Telnyx sends every
    #: event to one URL): deferred processing then reads a request before deciding to defer it.
    inbound_on_status_url: ClassVar[bool] = False

    def parse_inbound(self, request: WebhookRequest) -> Sequence[Event]:
        """Messages people sent us (opt-out keywords), from a verified inbound webhook."""
        raise NotImplementedError

    def inbound_response(self, stored: int) -> HttpResponse | None:
        """What to answer an inbound webhook (None: the JSON success answer)."""
        return None

    #: Whether :meth:`fetch_status` can ask the provider's API about a message.
    can_poll: ClassVar[bool] = False
    #: Why not, when it cannot (shown by ``sms_delivery_reconcile``).
    cannot_poll_because: ClassVar[str] = ""

    def fetch_status(self, provider_message_id: str) -> Sequence[NormalizedEvent]:
        """What the provider's API says now about a message, as ``source="poll"`` events that
        go through :func:`~delivery.ingest.ingest` like a webhook's.

        Raises MessageNotFound (404), RateLimited (429) or PollFailed (any other failure:
        timeout, 5xx, credentials), from :mod:`delivery.exceptions`.
        """
        raise NotImplementedError

    #: Whether :meth:`send` can send a message through the provider's API (``send_sms``).
    can_send: ClassVar[bool] = False

    def send(self, outgoing: Outgoing) -> Sent:
        """Send ``outgoing`` through the provider's SDK; what the provider answered.

        Raises SendRefused (the API answered with an error: nothing was sent) or
        SendUnanswered (no answer: it may have been sent), from :mod:`delivery.exceptions`.
        """
        raise NotImplementedError

    def send_problem(self) -> str | None:
        """Why these settings cannot send (missing credentials), or None: checked before
        anything is recorded."""
        return None

    def default_sender(self) -> str:
        """The sender used when ``send_sms`` names none ("" lets the SDK call fail clearly)."""
        return ""

    def callback_fragment(self) -> str:
        """A fragment for the status callback URL (Twilio's connection overrides), or ""."""
        return ""

    def missing_credentials(self) -> str | None:
        """Why no request could be verified with these settings (check E001), or None."""
        return None

    def configuration_errors(self) -> list[str]:
        """Option values that cannot work, for the system checks (E008; empty: all fine)."""
        return []

    def configuration_warnings(self) -> list[str]:
        """Settings that work but weaken verification, for the system checks (W003)."""
        return []


def secret_list(value: Any) -> list[str]:
    """One secret, a comma-separated string of them, or a list, as a clean list (rotation)."""
    if isinstance(value, str):
        value = value.split(",")
    return [item.strip() for item in value or [] if item and item.strip()]


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``limit`` deep (brackets inside
    strings do not count). Cheap for ordinary bodies: it only scans when there are enough
    brackets to reach the limit at all."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
