"""Vonage error codes of both delivery products, explained for support.

The two products number their errors differently and the ranges do not overlap, so one
catalogue holds both:

- **SMS API delivery receipts**: ``err-code`` 1–15 and 99. Titles and meanings from the
  delivery-receipts guide, https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts
  (mirror: ``mheap/nexmo-developer`` ``_documentation/en/messaging/sms/guides/delivery-receipts.md``;
  table copied in ../shared/providers.md §2.1). ``err-code`` 0 means "Delivered" and is not an
  error: the adapter stores no error code for it. The current page may list more codes than this
  table (UNCONFIRMED); an unlisted code falls back to an ``unknown`` entry.
- **Messages API status callbacks**: the code in the ``error`` object (``error.type`` ends in
  ``#<code>``, and Vonage's Java SDK documents ``error.title`` as "the error code"). Titles from
  https://developer.vonage.com/en/api-errors/messages (1000–1120 read there) and the older
  "messages-olympus" table it replaced (``Nexmo/nexmo-oas-renderer``
  ``_open_api/errors/messages-olympus.md``), which has the delivery codes 1180–1370. Codes above
  1120 are UNCONFIRMED against the current page. Only codes that can plausibly arrive in a
  *status callback* (rather than as a synchronous send error) are described.

Many Messages codes mirror a DLR code (1180 = 2 "Absent Subscriber Temporary", …, 1290 = 15); they
share a category and a note. ``note`` says what happened in plain language, ``next_step`` what
support should do or tell the customer.
"""

from __future__ import annotations

from delivery.error_codes import ErrorCatalogue, ErrorInfo
from delivery.lifecycle import ErrorCategory

DOCS_URL = (
    "https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts (SMS API err-code) "
    "or https://developer.vonage.com/en/api-errors/messages (Messages API)"
)

C = ErrorCategory

# Shared wording for the failures both products report (DLR code, Messages code).
_ABSENT_TEMPORARY = (
    "The customer's phone could not be reached: it was probably switched off or out of coverage.",
    "Ask the customer to check the phone is on and has signal, then resend.",
)
_ABSENT_PERMANENT = (
    "The carrier says this number is no longer active.",
    "Ask the customer for their current number; stop sending to this one.",
)
_PORTABILITY = (
    "The number recently moved to another carrier and the message could not be routed to it.",
    "Resend later. If it keeps failing, escalate to Vonage with the provider message id; the "
    "customer can also ask their carrier to check the transfer.",
)
_ANTI_SPAM = (
    "The customer's carrier blocked the message with its spam filter (often because of the "
    "sender name or the wording).",
    "Escalate to engineering with the provider message id: the sender or the message text may "
    "need to change. Resending the same message will likely be blocked again.",
)
_BUSY = (
    "The customer's phone was busy and could not take the message at that moment.",
    "Resend in a few minutes.",
)
_NETWORK = (
    "A network problem between Vonage and the customer's carrier stopped the message.",
    "Resend in a few minutes; if many messages fail this way, escalate to Vonage.",
)
_OPTED_OUT = (
    "The customer has asked not to receive messages from this sender (for example by replying "
    "STOP), so the carrier or Vonage refused it.",
    "Do not resend. If the customer wants the messages, they must opt back in (e.g. reply START).",
)
_UNROUTABLE = (
    "Vonage had no route to the customer's network for this sender.",
    "Escalate to Vonage support with the provider message id and the destination country.",
)
_UNREACHABLE = (
    "The message could not be delivered to the customer's phone: the network found no way to "
    "reach it.",
    "Ask the customer to check the number and that the phone can receive texts, then resend.",
)
_AGE = (
    "The carrier blocked the message because the customer's line has an age restriction on "
    "this kind of content.",
    "The customer must ask their carrier to lift the restriction; escalate to engineering if "
    "the content should not be age-restricted.",
)
_CARRIER_BLOCK = (
    "The customer's carrier blocked the message for this line, for example because the plan "
    "does not include texts or the line is suspended.",
    "Ask the customer to contact their carrier to enable text messages, then resend.",
)
_PREPAID = (
    "The customer's prepaid balance was too low to receive the message (some networks charge "
    "to receive). This is the customer's balance, not ours.",
    "Ask the customer to top up their prepaid credit, then resend.",
)


def _info(code: str, title: str, category: ErrorCategory, note_and_step: tuple[str, str]):
    note, next_step = note_and_step
    return ErrorInfo(code=code, title=title, category=category, note=note, next_step=next_step)


_INFOS = (
    # --- SMS API delivery receipts: err-code --------------------------------------------------
    _info(
        "1",
        "Unknown",
        C.UNKNOWN,
        (
            "The carrier did not deliver the message and gave no reason.",
            "Resend once. If it fails again, escalate to Vonage with the provider message id.",
        ),
    ),
    _info("2", "Absent Subscriber - Temporary", C.UNREACHABLE_HANDSET, _ABSENT_TEMPORARY),
    _info("3", "Absent Subscriber - Permanent", C.INVALID_NUMBER, _ABSENT_PERMANENT),
    # 4: the bar is set on the customer's own line (asked of their operator), so the network
    # refuses it; filed with carrier filtering, like Twilio's "Message blocked".
    _info(
        "4",
        "Call Barred by User",
        C.CARRIER_FILTERING,
        (
            "The customer's line has a bar that stops these messages (set with their carrier).",
            "Ask the customer to ask their carrier to remove the bar, then resend.",
        ),
    ),
    _info("5", "Portability Error", C.PROVIDER_OUTAGE, _PORTABILITY),
    _info("6", "Anti-Spam Rejection", C.CARRIER_FILTERING, _ANTI_SPAM),
    _info("7", "Handset Busy", C.UNREACHABLE_HANDSET, _BUSY),
    _info("8", "Network Error", C.PROVIDER_OUTAGE, _NETWORK),
    # 9: the guide: "the user has requested not to receive messages from this service".
    _info("9", "Illegal Number", C.OPT_OUT, _OPTED_OUT),
    # 10: a parameter of our request (e.g. the encoding flag) was wrong: nothing the customer
    # can change. No category names "our request"; unknown sends it to engineering.
    _info(
        "10",
        "Illegal Message",
        C.UNKNOWN,
        (
            "The message itself was refused because one of its settings (for example its "
            "character encoding) was invalid.",
            "Escalate to engineering with the provider message id; resending will fail the "
            "same way.",
        ),
    ),
    _info("11", "Unroutable", C.PROVIDER_OUTAGE, _UNROUTABLE),
    _info("12", "Destination Unreachable", C.UNREACHABLE_HANDSET, _UNREACHABLE),
    _info("13", "Subscriber Age Restriction", C.CARRIER_FILTERING, _AGE),
    _info("14", "Number Blocked by Carrier", C.CARRIER_FILTERING, _CARRIER_BLOCK),
    # 15: the *recipient's* prepaid credit; the carrier refuses the line, hence filtering and
    # not account_billing (which is about our account).
    _info("15", "Prepaid Insufficient Funds", C.CARRIER_FILTERING, _PREPAID),
    _info(
        "99",
        "General Error",
        C.PROVIDER_OUTAGE,
        (
            "Vonage hit an error on the route to the customer's carrier.",
            "Escalate to Vonage support with the provider message id.",
        ),
    ),
    # --- Messages API: error code of a rejected / undeliverable status ------------------------
    _info(
        "1000",
        "Throttled",
        C.PROVIDER_OUTAGE,
        (
            "We sent more messages than our Vonage account's sending capacity allows, so this "
            "one was not sent.",
            "Resend. If many fail this way, ask engineering to spread sends out or raise the "
            "account's capacity.",
        ),
    ),
    # 1022: WhatsApp templates are approved by Meta; a bad one is a channel rule.
    _info(
        "1022",
        "Invalid template",
        C.CHANNEL_POLICY,
        (
            "The WhatsApp template, or the values filled into it, was not accepted.",
            "Escalate to engineering: the template name, language or parameters need fixing.",
        ),
    ),
    _info(
        "1030",
        "Internal error",
        C.PROVIDER_OUTAGE,
        (
            "Vonage had an internal error while processing the message.",
            "Resend. If it persists, escalate to Vonage with the provider message id.",
        ),
    ),
    _info(
        "1040",
        "Invalid message",
        C.INVALID_NUMBER,
        (
            "Vonage could not process the message, for example because the number's prefix is "
            "not recognised.",
            "Ask the customer to check the number and its country code.",
        ),
    ),
    # 1050: on Vonage's block list; in practice usually an earlier STOP (UNCONFIRMED which).
    _info(
        "1050",
        "Number barred",
        C.OPT_OUT,
        (
            "The number is on a block list and may not receive messages, usually because the "
            "customer opted out earlier.",
            "Do not resend. If the customer wants messages, they must opt back in; otherwise "
            "escalate to Vonage to ask why the number is barred.",
        ),
    ),
    _info(
        "1060",
        "Partner account barred",
        C.ACCOUNT_BILLING,
        (
            "Our Vonage account has been barred from sending messages.",
            "Escalate to whoever owns the Vonage account; nothing can be sent until it is "
            "resolved.",
        ),
    ),
    _info(
        "1070",
        "Partner quota exceeded",
        C.ACCOUNT_BILLING,
        (
            "Our prepaid Vonage account did not have enough credit to send the message.",
            "Escalate to whoever owns the Vonage account to top it up, then resend.",
        ),
    ),
    _info(
        "1120",
        "Illegal Sender Address - rejected",
        C.SENDER_NOT_REGISTERED,
        (
            "Local rules in the customer's country did not accept our sender name or number.",
            "Escalate to engineering: the sender must be registered or changed for that country.",
        ),
    ),
    # 1160: a trial/demo account may only send to pre-approved numbers: an account limit.
    _info(
        "1160",
        "Non White-listed Destination",
        C.ACCOUNT_BILLING,
        (
            "Our Vonage account may only send to pre-approved numbers, and this one is not "
            "on the list.",
            "Escalate to whoever owns the Vonage account (trial accounts have this limit).",
        ),
    ),
    _info(
        "1170",
        "Invalid or Missing Msisdn Param",
        C.INVALID_NUMBER,
        (
            "The customer's number was missing or not a valid phone number.",
            "Ask the customer to check the number and its country code.",
        ),
    ),
    _info("1180", "Absent Subscriber Temporary", C.UNREACHABLE_HANDSET, _ABSENT_TEMPORARY),
    _info("1190", "Absent Subscriber Permanent", C.INVALID_NUMBER, _ABSENT_PERMANENT),
    _info("1200", "Portability Error", C.PROVIDER_OUTAGE, _PORTABILITY),
    _info("1210", "Anti-Spam Rejection", C.CARRIER_FILTERING, _ANTI_SPAM),
    _info("1220", "Handset Busy", C.UNREACHABLE_HANDSET, _BUSY),
    _info("1230", "Network Error", C.PROVIDER_OUTAGE, _NETWORK),
    _info("1240", "Illegal Number", C.OPT_OUT, _OPTED_OUT),
    _info("1250", "Unroutable", C.PROVIDER_OUTAGE, _UNROUTABLE),
    _info("1260", "Destination unreachable", C.UNREACHABLE_HANDSET, _UNREACHABLE),
    _info("1270", "Subscriber Age Restriction", C.CARRIER_FILTERING, _AGE),
    _info("1280", "Number Blocked by Carrier", C.CARRIER_FILTERING, _CARRIER_BLOCK),
    _info("1290", "Pre-Paid - Insufficent funds", C.CARRIER_FILTERING, _PREPAID),  # [sic]
    # 1300: e.g. the number has no WhatsApp / Viber account (Twilio's 63003 is filed the same).
    _info(
        "1300",
        "Not part of the provider network",
        C.INVALID_NUMBER,
        (
            "The number is not registered with this messaging app (for example it has no "
            "WhatsApp account).",
            "Ask the customer whether they use the app with this number; otherwise send by SMS.",
        ),
    ),
    _info(
        "1310",
        "Not suitable device",
        C.CHANNEL_POLICY,
        (
            "The customer's device cannot receive this kind of message.",
            "Send the content another way (for example plain SMS).",
        ),
    ),
    _info(
        "1330",
        "Unknown",
        C.UNKNOWN,
        (
            "The carrier reported an error without a reason; often the number is not valid.",
            "Ask the customer to check the number; if it is right, escalate to Vonage with the "
            "provider message id.",
        ),
    ),
    # 1340: WhatsApp's customer-service window: free-form messages only within 24 h of the
    # customer's last message.
    _info(
        "1340",
        "Outside of the allowed window",
        C.CHANNEL_POLICY,
        (
            "The message was sent outside the app's reply window (WhatsApp allows free-form "
            "messages only within 24 hours of the customer's last message).",
            "Resend with an approved template, or wait for the customer to message us first.",
        ),
    ),
    # 1360: the message's time-to-live ran out before it could be delivered; in practice the
    # recipient was unreachable for that long (the status page lists TTL expiry as "rejected").
    _info(
        "1360",
        "TTL was activated",
        C.UNREACHABLE_HANDSET,
        (
            "The message expired before it could be delivered (its time-to-live ran out), "
            "usually because the customer's phone or app was offline all that time.",
            "Resend once the customer is reachable; ask engineering if the expiry is too short.",
        ),
    ),
    # 1370: our Facebook page's connection to Vonage expired: a setup problem on our side.
    _info(
        "1370",
        "Expired access Token",
        C.SENDER_NOT_REGISTERED,
        (
            "Our Facebook Messenger connection expired, so the message could not be sent.",
            "Escalate to engineering: the Facebook page must be reconnected to Vonage.",
        ),
    ),
)

VONAGE_ERRORS = ErrorCatalogue("vonage", {info.code: info for info in _INFOS}, docs_url=DOCS_URL)
