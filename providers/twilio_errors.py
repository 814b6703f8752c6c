"""Twilio Programmable Messaging error codes, explained for support.

Titles are Twilio's own short titles. Sources:

- Twilio's error and warning dictionary, https://www.twilio.com/docs/api/errors, and the page for
  each code, https://www.twilio.com/docs/api/errors/{code}.
- The rows of ``providers.md`` section 1.8 ("Error codes (official short descriptions)"), which
  take the titles from Twilio's error dictionary JSON (snapshot of 2023-05-15 mirrored in
  ``men232/twilio-error-codes``) and cross-check them against the individual pages. For 21612 the
  current page title is used, as providers.md advises.
- 30044 ("Trial Message Length Exceeded") is marked UNCONFIRMED in providers.md; its title and
  meaning come from https://www.twilio.com/docs/api/errors/30044.
- 30037 is still unconfirmed: it is in neither the 2023 dictionary snapshot nor any page found, so
  its entry says so rather than guessing.
- The extra codes 21635, 30500, 63014 and 63038 come from their pages on the same site (21635 also
  from the 2024-07-10 changelog that providers.md cites).

Twilio advises against program logic keyed on error codes (they are adjusted over time), so this
is data for people: ``note`` says what happened, ``next_step`` what support should do. Codes not
listed here fall back to an ``unknown`` entry that links to Twilio's page for the code.
"""

from __future__ import annotations

from delivery.error_codes import ErrorCatalogue, ErrorInfo
from delivery.lifecycle import ErrorCategory

DOCS_URL = "https://www.twilio.com/docs/api/errors/{code}"

_INFOS = (
    # --- 300xx: delivery errors reported in status callbacks -----------------------------------
    # 30001: Twilio's docs say the message sat in the queue too long (over 10 hours) or hit the
    # sender's throughput (MPS) limit; support treats it as a provider-side delay.
    ErrorInfo(
        code="30001",
        title="Queue overflow",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The message waited too long in Twilio's sending queue and was dropped, usually "
        "because too many messages were sent at once from the same number.",
        next_step="Resend the message. If many messages fail this way, ask engineering to spread "
        "sends out or add sending capacity.",
    ),
    ErrorInfo(
        code="30002",
        title="Account suspended",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Twilio account was suspended (for example an unpaid balance or a policy review) "
        "before the message could be sent.",
        next_step="Escalate to whoever owns the Twilio account: billing or the suspension notice "
        "must be resolved before any message can be sent.",
    ),
    ErrorInfo(
        code="30003",
        title="Unreachable destination handset",
        category=ErrorCategory.UNREACHABLE_HANDSET,
        note="The customer's carrier could not reach the phone: it was probably switched off, "
        "out of coverage or roaming abroad.",
        next_step="Ask the customer whether the phone was on and had signal (and can receive texts "
        "from other numbers), then resend once it is.",
    ),
    # 30004: the carrier or the recipient blocked the message (e.g. a number or short-code block
    # on the customer's line); filed with filtering, since the network refused the message.
    ErrorInfo(
        code="30004",
        title="Message blocked",
        category=ErrorCategory.CARRIER_FILTERING,
        note="The customer's carrier or the customer blocked the message, for example because "
        "our number is blocked on their phone or their line blocks this type of sender.",
        next_step="Ask the customer whether they have blocked our number or have a message-"
        "blocking setting with their carrier; resend once it is removed.",
    ),
    ErrorInfo(
        code="30005",
        title="Unknown destination handset",
        category=ErrorCategory.INVALID_NUMBER,
        note="The carrier says the number does not exist or is no longer in service.",
        next_step="Ask the customer to check the number and its country code, and to give a "
        "number that is currently active.",
    ),
    ErrorInfo(
        code="30006",
        title="Landline or unreachable carrier",
        category=ErrorCategory.INVALID_NUMBER,
        note="The number is a landline or belongs to a carrier that cannot receive text "
        "messages, so the message could not be delivered.",
        next_step="Ask the customer for a mobile number that can receive texts.",
    ),
    ErrorInfo(
        code="30007",
        title="Message filtered",
        category=ErrorCategory.CARRIER_FILTERING,
        note="The carrier or Twilio filtered the message because its content or sending pattern "
        "looked like spam (the older name of this error is 'Carrier violation').",
        next_step="Do not resend the same text. Escalate to engineering with the provider message "
        "id so the wording or links can be reviewed.",
    ),
    ErrorInfo(
        code="30008",
        title="Unknown error",
        category=ErrorCategory.UNKNOWN,
        note="The carrier reported a failure without saying why.",
        next_step="Resend once. If it fails again, escalate to Twilio with the provider message "
        "id.",
    ),
    # 30009 concerns inbound multi-part messages: a segment never reached Twilio, i.e. a
    # network problem rather than anything about the customer's number.
    ErrorInfo(
        code="30009",
        title="Missing inbound segment",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="Part of a long message sent to us never arrived, so the message is incomplete.",
        next_step="Ask the customer to send the message again, in shorter parts if it was long.",
    ),
    ErrorInfo(
        code="30010",
        title="Message price exceeds max price",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="The message would have cost more than the maximum price set for it, so Twilio did "
        "not send it (Twilio no longer applies this limit to messages sent after 2024-06-03).",
        next_step="Resend the message. If this appears on a recent message, escalate to Twilio "
        "with the provider message id, since the limit should no longer apply.",
    ),
    # 30011: the handset or its region cannot receive MMS. No category fits exactly; it is a
    # limit of the channel at that destination, not a bad number, hence channel_policy.
    ErrorInfo(
        code="30011",
        title="MMS not supported by the receiving phone number in this region",
        category=ErrorCategory.CHANNEL_POLICY,
        note="The message had a picture or other media, and the customer's number or country "
        "cannot receive picture messages.",
        next_step="Resend the content as plain text without media.",
    ),
    # 30012: the message's time-to-live / validity period is too short to send it at all. A
    # setting of our account, like 30010's max price, hence account_billing.
    ErrorInfo(
        code="30012",
        title="TTL is too small",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="The message was set to expire too soon for Twilio to send it.",
        next_step="Ask engineering to lengthen the message's validity period (TTL), then resend.",
    ),
    # 30022/30023: the sender IS registered; these are sending limits attached to our A2P 10DLC
    # registration (campaign throughput, T-Mobile's daily brand cap). They are filed with the
    # other account-level limits (30010, 21611, 63038) rather than sender_not_registered, which
    # would send support looking for a missing registration. The fix is pacing or higher limits.
    ErrorInfo(
        code="30022",
        title="US A2P 10DLC - Rate Limits Exceeded",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="US carriers rejected the message because we sent faster than our registered 10DLC "
        "campaign allows (or sent too many messages to this number in a short time).",
        next_step="Resend later. If it keeps happening, ask engineering to slow the sending rate "
        "or request higher limits for the 10DLC campaign.",
    ),
    ErrorInfo(
        code="30023",
        title="US A2P 10DLC - Daily Message Cap Reached",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="We reached the daily number of messages US carriers allow for our registered 10DLC "
        "brand, so the message was not delivered.",
        next_step="Resend tomorrow (the cap resets daily). If it recurs, ask engineering to "
        "request a higher daily cap for the 10DLC brand.",
    ),
    ErrorInfo(
        code="30024",
        title="Numeric Sender ID Not Provisioned on Carrier",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="Our sending number is not (yet) set up with the customer's carrier, which this "
        "destination requires, so the carrier refused it.",
        next_step="Ask engineering to check the sender's registration and provisioning with "
        "Twilio; if it looks complete, escalate to Twilio with the provider message id.",
    ),
    ErrorInfo(
        code="30032",
        title="Toll-Free Number Has Not Been Verified",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The message was sent from a toll-free number that has not completed Twilio's "
        "toll-free verification, so carriers blocked it.",
        next_step="Ask engineering to finish toll-free verification for the sending number, then "
        "resend.",
    ),
    ErrorInfo(
        code="30033",
        title="US A2P 10DLC - Campaign Suspended",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The US 10DLC campaign our sending number belongs to has been suspended, so carriers "
        "block its messages.",
        next_step="Ask engineering to resolve the 10DLC campaign suspension with Twilio; messages "
        "cannot be resent from this number until then.",
    ),
    ErrorInfo(
        code="30034",
        title="US A2P 10DLC - Message from an Unregistered Number",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The message came from a US local number that is not registered to an approved "
        "10DLC campaign, so US carriers blocked it.",
        next_step="Ask engineering to finish 10DLC registration for the sending number, then "
        "resend.",
    ),
    ErrorInfo(
        code="30035",
        title="US A2P 10DLC - Message from a number still being configured",
        category=ErrorCategory.SENDER_NOT_REGISTERED,
        note="The sending number was recently registered for 10DLC and carriers have not finished "
        "setting it up yet.",
        next_step="Resend later; if it still fails after a few days, ask engineering to check the "
        "10DLC registration status.",
    ),
    # 30036: the message sat in Twilio's queue past its validity period (usually because of a
    # large burst); the same family as 30001, hence provider_outage.
    ErrorInfo(
        code="30036",
        title="Validity Period Expired",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="The message waited in Twilio's queue longer than its validity period allowed, so "
        "Twilio did not send it.",
        next_step="Resend if the message is still useful. If this happens often, ask engineering "
        "to pace large sends or lengthen the validity period.",
    ),
    # 30037: not in the 2023 dictionary snapshot and no page found (providers.md section 11).
    ErrorInfo(
        code="30037",
        title="Undocumented error (title unconfirmed)",
        category=ErrorCategory.UNKNOWN,
        note="Twilio reported error 30037. We could not confirm its title or meaning in Twilio's "
        "documentation, so this library does not guess what happened.",
        next_step="Look the code up at https://www.twilio.com/docs/api/errors/30037, then "
        "escalate to Twilio with the provider message id.",
    ),
    # 30038: Twilio redacts one-time passcodes in messages sent TO our numbers; Twilio's own
    # filter rather than the carrier's, filed with filtering.
    ErrorInfo(
        code="30038",
        title="OTP Message Body Filtered",
        category=ErrorCategory.CARRIER_FILTERING,
        note="A message sent to our number contained a one-time passcode; Twilio blocks such "
        "messages, removed the code and failed the message.",
        next_step="Nothing to resend. If we need to receive such codes, ask engineering to raise "
        "it with Twilio support.",
    ),
    # 30044: Twilio page https://www.twilio.com/docs/api/errors/30044 (UNCONFIRMED in
    # providers.md). A restriction of trial accounts, hence account_billing.
    ErrorInfo(
        code="30044",
        title="Trial Message Length Exceeded",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="The message was too long for a Twilio trial account, which limits how many parts "
        "one message may have.",
        next_step="Ask engineering to upgrade the Twilio account (or shorten the message), then "
        "resend.",
    ),
    ErrorInfo(
        code="30410",
        title="Provider Timeout Error",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="A network provider Twilio uses was having problems or timed out; Twilio failed the "
        "message rather than risk sending it twice.",
        next_step="Resend later. If many messages fail this way, check Twilio's status page and "
        "escalate to Twilio with the provider message ids.",
    ),
    # 30450: Twilio's SMS Pumping Protection (fraud filter) temporarily blocks the destination.
    ErrorInfo(
        code="30450",
        title="Message delivery blocked",
        category=ErrorCategory.CARRIER_FILTERING,
        note="Twilio's SMS fraud protection flagged traffic to this destination and blocked it "
        "temporarily (usually for 15-30 minutes).",
        next_step="Wait about 30 minutes, then resend. If it keeps happening, escalate to "
        "Twilio with the provider message id.",
    ),
    # 30453: title from the Twilio Health Score doc; no page with causes was found, so the meaning
    # beyond the title is unconfirmed and the category is unknown.
    ErrorInfo(
        code="30453",
        title="Message couldn't be delivered",
        category=ErrorCategory.UNKNOWN,
        note="Twilio reports that the message could not be delivered, without a more specific "
        "reason.",
        next_step="Resend once. If it fails again, escalate to Twilio with the provider message "
        "id.",
    ),
    ErrorInfo(
        code="30500",
        title="Twilio Internal Error",
        category=ErrorCategory.PROVIDER_OUTAGE,
        note="Twilio had an internal problem while processing the message.",
        next_step="Resend once; if it fails again, check Twilio's status page and escalate to "
        "Twilio with the provider message id.",
    ),
    # --- 630xx: channel (WhatsApp and other non-SMS channels) errors ---------------------------
    ErrorInfo(
        code="63003",
        title="Channel could not find To address",
        category=ErrorCategory.INVALID_NUMBER,
        note="The recipient address (for example the WhatsApp number) is invalid or no longer "
        "active on that channel.",
        next_step="Ask the customer to check the number and its country code, and whether they "
        "use it on WhatsApp.",
    ),
    # 63014: the recipient blocked our sender or withdrew consent on the channel: an opt-out.
    ErrorInfo(
        code="63014",
        title="Channel message blocked by user action",
        category=ErrorCategory.OPT_OUT,
        note="The customer blocked us or opted out on this channel (for example blocked our "
        "WhatsApp business account).",
        next_step="Do not resend: the customer must unblock us or opt in again before we message "
        "them on this channel.",
    ),
    ErrorInfo(
        code="63016",
        title="Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
        category=ErrorCategory.CHANNEL_POLICY,
        note="WhatsApp only allows free-form messages within 24 hours of the customer's last "
        "message to us; that window had closed.",
        next_step="Send an approved WhatsApp message template instead, or wait for the customer "
        "to message us first.",
    ),
    # 63024 maps WhatsApp errors 1002 / 1026 (recipient invalid or unable to receive): the
    # number is not a usable WhatsApp recipient, hence invalid_number.
    ErrorInfo(
        code="63024",
        title="Invalid message recipient",
        category=ErrorCategory.INVALID_NUMBER,
        note="The number cannot receive this message on the channel, for example it is not a "
        "WhatsApp account or its WhatsApp app cannot receive it.",
        next_step="Ask the customer to check the number and that they use WhatsApp on it (with "
        "an up-to-date app), or reach them by SMS instead.",
    ),
    ErrorInfo(
        code="63032",
        title="We cannot send this message to this user because of a WhatsApp limitation.",
        category=ErrorCategory.CHANNEL_POLICY,
        note="WhatsApp refused to deliver the message to this user because of its own rules "
        "(WhatsApp error 472), not because of the number or the content.",
        next_step="Reach the customer another way (for example SMS) or try again later; do not "
        "resend repeatedly on WhatsApp.",
    ),
    ErrorInfo(
        code="63038",
        title="Account exceeded the daily messages limit",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Twilio account sent more messages than it may in 24 hours, so this one was not "
        "sent.",
        next_step="Resend after the 24-hour window resets; ask the Twilio account owner to "
        "request a higher limit if this recurs.",
    ),
    # --- 21xxx: API-time errors (the send request was refused; normally not a callback) --------
    ErrorInfo(
        code="21211",
        title="Invalid 'To' Phone Number",
        category=ErrorCategory.INVALID_NUMBER,
        note="The phone number we tried to send to is not a valid phone number, so Twilio "
        "refused to send it.",
        next_step="Ask the customer to check the number and its country code.",
    ),
    # 21408: the destination country is not enabled in our account's messaging geo permissions.
    ErrorInfo(
        code="21408",
        title="Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Our Twilio account is not allowed to send texts to the customer's country.",
        next_step="Check the number's country code with the customer; if it is right, ask "
        "engineering to enable that country in Twilio's messaging geographic permissions.",
    ),
    ErrorInfo(
        code="21610",
        title="Attempt to send to unsubscribed recipient",
        category=ErrorCategory.OPT_OUT,
        note="The customer replied STOP to our number, so Twilio will not send them messages.",
        next_step="Do not resend: the customer replied STOP; they must text START to opt back in.",
    ),
    ErrorInfo(
        code="21611",
        title="This 'From' number has exceeded the maximum number of queued messages",
        category=ErrorCategory.ACCOUNT_BILLING,
        note="Too many messages were waiting to be sent from our number, so Twilio refused new "
        "ones.",
        next_step="Resend later; if it recurs, ask engineering to pace sends or add sending "
        "numbers.",
    ),
    # 21612: current page title (providers.md: the 2023 title "The 'To' phone number is not
    # currently reachable via SMS" changed). Causes mix number format, sender restrictions and
    # unsupported networks; the destination is the first thing support can check.
    ErrorInfo(
        code="21612",
        title='Message cannot be sent with the current combination of "To" and/or "From" '
        "parameters.",
        category=ErrorCategory.INVALID_NUMBER,
        note="Twilio cannot send from our number to this number, for example because the number "
        "is badly formatted, or our sender is not allowed in that country or on that network.",
        next_step="Ask the customer to check the number and its country code; if it is right, "
        "ask engineering to check the sender for that country.",
    ),
    ErrorInfo(
        code="21614",
        title="'To' number is not a valid mobile number",
        category=ErrorCategory.INVALID_NUMBER,
        note="The number is not a mobile number that can receive texts (for example a landline).",
        next_step="Ask the customer for a mobile number that can receive texts.",
    ),
    ErrorInfo(
        code="21635",
        title="'To' number cannot be a landline",
        category=ErrorCategory.INVALID_NUMBER,
        note="The number is a landline, which cannot receive text messages.",
        next_step="Ask the customer for a mobile number that can receive texts.",
    ),
)

TWILIO_ERRORS = ErrorCatalogue("twilio", {info.code: info for info in _INFOS}, docs_url=DOCS_URL)
