"""Telnyx Messaging delivery error codes (40xxx), explained for support.

Telnyx reports why a message failed in ``data.payload.errors[]`` (``code``, ``title``, ``detail``)
of ``message.finalized`` webhooks; the v2 statuses that carry them are ``delivery_failed`` and
``expired`` (and ``delivery_unconfirmed`` may carry one too). Titles are Telnyx's own. Sources:

- The current delivery-error table, "Messaging Error Code Reference",
  https://developers.telnyx.com/docs/messaging/messages/error-codes (codes 40001-40015: title,
  cause, action). The table continues past 40015 but the rest of it was not retrievable when this
  was written, so codes after 40015 are not listed here except 40300.
- The page for each code, https://developers.telnyx.com/api/errors/{code} (read for 40002,
  40003, 40009, 40012, 40014 and 40300: description, causes, solutions).
- 40007 ("Loop detected") appears only in the older v1 table,
  https://developers.telnyx.com/docs/v1/messaging/messaging-error-codes, which also says which v2
  statuses carry these codes.
- 40300 ("Blocked due to STOP message") is documented as an HTTP 409 answer to the send request;
  whether it can also arrive in a webhook is UNCONFIRMED. It is listed so that, if it does, support
  sees it as an opt-out.

The ``category`` of each code is this library's reading of Telnyx's cause (a judgment, not a
Telnyx field). Codes not listed fall back to an ``unknown`` entry that links to Telnyx's page.
"""

from __future__ import annotations

from delivery.error_codes import ErrorCatalogue, ErrorInfo
from delivery.lifecycle import ErrorCategory

DOCS_URL = "https://developers.telnyx.com/api/errors/{code}"

_INFOS = (
    # --- carrier rejections (current table) -----------------------------------------------------
    ErrorInfo(
        code="40001",
        title="Not routable",
        category=ErrorCategory.INVALID_NUMBER,
        note="The number cannot receive text messages: Telnyx says it is a landline or a mobile "
        "number that text messages cannot be routed to.",
        next_step="Ask the customer for a mobile number that can receive texts.",
    ),
    ErrorInfo(
        code="40002",
        title="Blocked as spam (temporary)",
        category=ErrorCategory.CARRIER_FILTERING,
        note="A carrier's spam filter blocked the message. Telnyx says this is temporary; it is "
        "usually caused by sending fast from one number for a long time or by the wording.",
        next_step="Resend later. If many messages fail this way, ask engineering to slow down "
        "sending per number or change the wording.",
    ),
    ErrorInfo(
        code="40003",
        title="Blocked as spam (permanent)",
        category=ErrorCategory.CARRIER_FILTERING,
        note="Carriers permanently blocked our sending number as spam; nothing sent from it gets "
        "through.",
        next_step="Escalate to engineering: the sending number must be replaced or appealed with "
        "Telnyx (proof of opt-in is needed). Resending from the same number will not work.",
    ),
    # 40004: the destination carrier refused without saying why; filed with filtering because
    # the network refused the message, not because of the number.
    ErrorInfo(
        code="40004",
        title="Rejected by destination",
        category=ErrorCategory.CARRIER_FILTERING,
        note="The customer's carrier refused the message and gave no reason.",
        next_step="Resend after a while. If it keeps failing for this customer, escalate to "
        "Telnyx with the provider message id.",
    ),
    # 40005: expired after leaving Telnyx, on its way to the handset (v1 table: "expired during
    # transmission"); most often the phone stayed off or out of coverage, sometimes carrier delay.
    ErrorInfo(
        code="40005",
        title="Message expired",
        category=ErrorCategory.UNREACHABLE_HANDSET,
        note="The message left Telnyx but expired before it reached the phone, usually because "
        "the phone was off or out of coverage for too long.",
        next_step="Ask the customer whether the phone was on and had signal, then resend.",
    ),
    ErrorInfo(
        code="40006",
        title="Recipient unavailable",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The customer's carrier was down or not answering when the message was sent; "
        "Telnyx says this may be temporary.",
        next_step="Resend in a few minutes. If many customers on the same network fail, "
        "escalate to Telnyx.",
    ),
    # 40007: only in the v1 table ("Infinite loop detected"): a routing fault between networks.
    ErrorInfo(
        code="40007",
        title="Loop detected",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The message went round in a routing loop between networks and was dropped.",
        next_step="Escalate to Telnyx with the provider message id; resending is unlikely to help "
        "until the route is fixed.",
    ),
    ErrorInfo(
        code="40008",
        title="Undeliverable",
        category=ErrorCategory.UNKNOWN,
        note="The customer's carrier did not accept the message. Telnyx uses this as a general "
        "'undeliverable' code, so the exact reason is not known.",
        next_step="Check the number with the customer and resend once. If it fails again, "
        "escalate to Telnyx with the provider message id.",
    ),
    ErrorInfo(
        code="40009",
        title="Invalid message body",
        category=ErrorCategory.CARRIER_FILTERING,
        note="A carrier rejected the message because of its content (length, characters or "
        "wording); carriers can be stricter than Telnyx.",
        next_step="Escalate to engineering with the template name: the text must be shortened "
        "or changed. Resending the same text will fail again.",
    ),
    # 40011: the v1 table says the upstream rate limit led a spam filter to block the message.
    ErrorInfo(
        code="40011",
        title="Rate limit exceeded (upstream)",
        category=ErrorCategory.CARRIER_FILTERING,
        note="We sent faster than the carrier allows, so the carrier blocked the message.",
        next_step="Resend later. If many messages fail this way, ask engineering to slow down "
        "sending.",
    ),
    ErrorInfo(
        code="40012",
        title="Invalid destination number",
        category=ErrorCategory.INVALID_NUMBER,
        note="The carrier says the number is not valid: it may be unassigned or deactivated, the "
        "customer may have no credit to receive texts, or it cannot receive short codes.",
        next_step="Ask the customer to check the number and its country code; if it is right, "
        "ask whether their line can receive texts.",
    ),
    ErrorInfo(
        code="40013",
        title="Invalid source number",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The carrier rejected our sending number (it may be inactive or not enabled for "
        "messaging). Nothing is wrong with the customer's number.",
        next_step="Escalate to engineering: the sending number's messaging setup must be fixed.",
    ),
    ErrorInfo(
        code="40014",
        title="Expired in queue",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The message waited in Telnyx's sending queue longer than it was valid for and was "
        "dropped before it was sent (we were not billed), usually because too many messages "
        "were sent at once.",
        next_step="Resend the message. If many fail this way, ask engineering to spread sends "
        "out or raise the rate limit with Telnyx.",
    ),
    # 40015: the table row was cut off after "Telnyx internal spam filter tri[ggered]"; its
    # action column is UNCONFIRMED, so the next step stays generic.
    ErrorInfo(
        code="40015",
        title="Internal spam filter",
        category=ErrorCategory.CARRIER_FILTERING,
        note="Telnyx's own spam filter blocked the message before it reached a carrier.",
        next_step="Escalate to engineering with the template name; Telnyx support can say which "
        "rule was triggered.",
    ),
    # --- opt-out -------------------------------------------------------------------------------
    ErrorInfo(
        code="40300",
        title="Blocked due to STOP message",
        category=ErrorCategory.OPT_OUT,
        note="The customer texted STOP (or a word such as END or QUIT) to our number, so Telnyx "
        "blocks every message from that number to them.",
        next_step="Do not resend. If the customer wants texts again, ask them to text START to "
        "our number.",
    ),
)

TELNYX_ERRORS = ErrorCatalogue("telnyx", {info.code: info for info in _INFOS}, docs_url=DOCS_URL)
