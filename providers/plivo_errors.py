"""Plivo messaging error codes (the ``ErrorCode`` of a status callback), explained for support.

Titles are Plivo's own short "reason" texts. Sources:

- Plivo's error code table, https://www.plivo.com/docs/messaging/troubleshooting/error-codes
  (codes 10-110 and the wording of their descriptions).
- The "Introducing SMS error codes" blog, https://www.plivo.com/blog/introducing-sms-error-codes/
  (updated 2025-04-01), whose table lists 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 200, 201
  and 1000 with descriptions (see ../shared/providers.md section 3).
- 900: https://support.plivo.com/support/solutions/articles/17000088423 ("Outbound messages will
  go into a 'Failed' state with Plivo error code 900" when the balance is insufficient).
- 450: https://docs.plivo.com/docs/faq/messaging/sms ("Error 450 ('destination country barred')
  means the destination country is not enabled in your Geo Permissions").
- 300, 420 and 910 are UNCONFIRMED: their titles were only seen in a third-party copy of Plivo's
  former API reference (api-reference.plivo.com .../sms-error-codes), not on a current Plivo page.
  Their entries say so.
- Codes 120-170 and any 10DLC- or WhatsApp-specific codes the current table may hold could not be
  read; they are not invented here and fall back to the catalogue's ``unknown`` entry, which
  points at Plivo's table.

Plivo sends ``000`` (or nothing) for a successful message; the adapter treats that as no error.
Plivo maps every carrier's own codes onto this small set, and says some carriers report errors
for fewer than 5% of failures, so ``1000`` (unknown) and a missing code are common.
"""

from __future__ import annotations

from delivery.error_codes import ErrorCatalogue, ErrorInfo
from delivery.lifecycle import ErrorCategory

#: Plivo has one page for all codes (no page per code).
DOCS_URL = "https://www.plivo.com/docs/messaging/troubleshooting/error-codes"

_INFOS = (
    # 10: the carrier rejected the content ("invalid message"): blank, or longer than the
    # carrier allows. The network refused the message itself, hence carrier filtering.
    ErrorInfo(
        code="10",
        title="Invalid message",
        category=ErrorCategory.CARRIER_FILTERING,
        note="A carrier rejected the text itself as invalid, usually because it was empty or "
        "too long for that carrier.",
        next_step="Escalate to engineering with the provider message id so the message template "
        "can be checked; resending the same text will fail the same way.",
    ),
    ErrorInfo(
        code="20",
        title="Network error",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The carrier delivering the message had network problems. Plivo describes this as "
        "temporary.",
        next_step="Resend the message a little later. If many messages fail this way, tell "
        "engineering: it is a carrier incident, not the customer's phone.",
    ),
    ErrorInfo(
        code="30",
        title="Spam detected",
        category=ErrorCategory.CARRIER_FILTERING,
        note="A carrier's spam filter blocked the message, because of its content or because too "
        "many messages were sent from one ordinary (long code) number.",
        next_step="Do not resend the same text. Escalate to engineering with the provider message "
        "id so the wording, links and sending number can be reviewed.",
    ),
    # 40: our "src" is malformed, not SMS-enabled or not on our Plivo account: a problem with
    # the sender we configured, hence sender_not_registered.
    ErrorInfo(
        code="40",
        title="Invalid source number",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The number or sender ID we sent from is wrongly formatted, cannot send texts, or is "
        "not part of our Plivo account.",
        next_step="Nothing to ask the customer. Escalate to engineering: the sending number in "
        "our Plivo setup must be fixed before messages can go out.",
    ),
    ErrorInfo(
        code="50",
        title="Invalid destination number",
        category=ErrorCategory.INVALID_NUMBER,
        note="The customer's number is wrongly entered, cannot receive texts, or is a landline.",
        next_step="Ask the customer to check the number and its country code, and to give a "
        "mobile number that can receive texts.",
    ),
    # 60: carriers drop messages bouncing between two auto-responders; the network blocked it.
    ErrorInfo(
        code="60",
        title="Loop detected",
        category=ErrorCategory.CARRIER_FILTERING,
        note="The carrier dropped the message because it looked like part of an endless "
        "exchange between two automatic responders.",
        next_step="Escalate to engineering with the provider message id: an automatic reply on "
        "our side or the customer's may be answering the other.",
    ),
    ErrorInfo(
        code="70",
        title="Destination permanently unavailable",
        category=ErrorCategory.INVALID_NUMBER,
        note="The carrier says the customer's number is not active, with no sign of when it will "
        "be.",
        next_step="Ask the customer to check the number; if it is correct, ask for another "
        "number that currently receives texts.",
    ),
    ErrorInfo(
        code="80",
        title="Destination temporarily unavailable",
        category=ErrorCategory.UNREACHABLE_HANDSET,
        note="The carrier could not reach the phone just now: it was probably switched off or "
        "out of coverage.",
        next_step="Ask the customer whether the phone was on and had signal, then resend once it "
        "is.",
    ),
    ErrorInfo(
        code="90",
        title="No route available",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="Neither Plivo's carrier nor its fallback carriers had a route to the customer's "
        "network.",
        next_step="Resend later. If it keeps failing for the same country or network, escalate "
        "to Plivo with the provider message ids.",
    ),
    # 100: the destination network refused it, e.g. a network that does not support SMS.
    ErrorInfo(
        code="100",
        title="Prohibited by carrier",
        category=ErrorCategory.CARRIER_FILTERING,
        note="The customer's carrier refused this kind of message, for example because the "
        "network does not accept text messages from us.",
        next_step="Ask the customer for another mobile number; escalate to Plivo with the "
        "provider message id if many customers on one network are affected.",
    ),
    # 110: over the length limit (1,600 GSM / 737 Unicode characters): a limit of the SMS
    # channel rather than of the number, hence channel_policy.
    ErrorInfo(
        code="110",
        title="Message too long",
        category=ErrorCategory.CHANNEL_POLICY,
        note="The text was longer than SMS allows (1,600 plain characters, or 737 when it "
        "contains emoji or other special characters).",
        next_step="Escalate to engineering with the provider message id so the message can be "
        "shortened; resending it unchanged will fail again.",
    ),
    ErrorInfo(
        code="200",
        title="Source number blocked by STOP from destination number",
        category=ErrorCategory.OPT_OUT,
        note="The customer replied STOP to our number, so every message from it is blocked until "
        "they opt back in.",
        next_step="Do not resend. If the customer wants these messages again, they can opt back "
        "in by texting the opt-in keyword (usually START) to our number.",
    ),
    ErrorInfo(
        code="201",
        title="Outbound messages from US toll-free numbers to Canadian destination numbers are "
        "blocked",
        category=ErrorCategory.CHANNEL_POLICY,
        note="We sent from a US toll-free number to a Canadian number; carriers only let US "
        "toll-free numbers text US numbers.",
        next_step="Escalate to engineering: Canadian customers must be texted from a different "
        "sending number.",
    ),
    # 300 is UNCONFIRMED: only seen in a third-party copy of Plivo's former API reference.
    ErrorInfo(
        code="300",
        title="Failed to dispatch message (unconfirmed title)",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="Plivo could not hand the message to a carrier. (This code's meaning comes from an "
        "old copy of Plivo's reference and is not confirmed on Plivo's current pages.)",
        next_step="Resend the message. If it happens again, escalate to Plivo with the provider "
        "message id.",
    ),
    # 420 is UNCONFIRMED (same source as 300). "Expired" may mean the message outlived its
    # expiry time in Plivo's queue or the carrier's validity period; both end with the phone
    # not reached in time.
    ErrorInfo(
        code="420",
        title="Message expired (unconfirmed title)",
        category=ErrorCategory.UNREACHABLE_HANDSET,
        note="The message expired before it could be delivered: the phone could not be reached "
        "in time, or the message waited too long to be sent. (Not confirmed on Plivo's current "
        "pages.)",
        next_step="If the phone is now on and has signal, resend (for a login code, send a new "
        "one). If many messages expired at the same time, escalate to engineering.",
    ),
    # 450: Geo Permissions of our account do not include the destination country: a setting of
    # our account, as Twilio's 21408, hence account_billing.
    ErrorInfo(
        code="450",
        title="Destination country barred",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Plivo account is not allowed to send to the customer's country (the country is "
        "not enabled in Plivo's Geo Permissions).",
        next_step="Escalate to whoever owns the Plivo account: the country must be enabled in "
        "Geo Permissions before messages to it can be sent.",
    ),
    ErrorInfo(
        code="900",
        title="Insufficient credit",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Plivo account ran out of credit, so Plivo did not send the message.",
        next_step="Escalate to whoever owns the Plivo account to add credit, then resend.",
    ),
    # 910 is UNCONFIRMED (same source as 300).
    ErrorInfo(
        code="910",
        title="Account disabled (unconfirmed title)",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Plivo account was disabled, so nothing could be sent. (Not confirmed on "
        "Plivo's current pages.)",
        next_step="Escalate to whoever owns the Plivo account; no message can be sent until it "
        "is re-enabled.",
    ),
    ErrorInfo(
        code="1000",
        title="Unknown error",
        category=ErrorCategory.UNKNOWN,
        note="Delivery failed for a reason neither Plivo nor its carriers know.",
        next_step="Resend once. If it fails again, escalate to Plivo with the provider message "
        "id (Plivo asks for messages from the last 72 hours).",
    ),
)

PLIVO_ERRORS = ErrorCatalogue("plivo", {info.code: info for info in _INFOS}, docs_url=DOCS_URL)
