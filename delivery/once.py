"""Side effects of a delivery outcome, done once per message.

``message_status_changed`` is sent once per transition, after commit; a receiver that reacts to
"the message ended in failure" with ``status in FAILURE_STATUSES and previous_status not in
FAILURE_STATUSES`` is called once however many failure reports arrive and in whatever order
(``failed`` then ``undelivered`` is a change, but not into failure). What the signal cannot
promise is that the work it starts runs once: a task backend may run a task twice, a worker may
die half-way. :func:`claim` is the rest of the answer: call it in the transaction that does the
work, and only the first claim of ``(message, name)`` wins, however many runs race.

    @task()
    def send_fallback_email(message_id):
        with transaction.atomic():
            if not once.claim(message_id, "order-fallback-email"):
                return  # another run sent it
            send_mail(...)  # if this raises, the claim is rolled back: a retry sends it

An email cannot join a database transaction, so a run that dies after the mail left and
before its commit leaves the claim unmade and a retry sends a second mail: at most one mail in
every other case, and never none for a failure once a run succeeds.
"""

from __future__ import annotations

from django.db import IntegrityError, router, transaction

from .models import Message, SideEffect


def claim(message: Message | int, name: str) -> bool:
    """Record that ``name`` is done for ``message``; ``False`` if it was already (or a
    concurrent claim won). Inside a transaction, a later rollback undoes the claim."""
    if len(name) > 100:
        raise ValueError("A side effect's name is at most 100 characters.")
    message_id = message.pk if isinstance(message, Message) else message
    using = router.db_for_write(SideEffect)
    try:
        with transaction.atomic(using=using):
            SideEffect.objects.using(using).create(message_id=message_id, name=name)
    except IntegrityError:
        return False
    return True
