"""The console's replay: a lead reprocesses stored requests after a mapping fix, audited.

An admin action on the raw requests: the first step shows what would change (a dry run); the
second, with a reason, replays them (:mod:`delivery.replay`) and writes one audit record each.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import router, transaction
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from delivery.models import REPLAY_RAW_REQUESTS
from delivery.replay import State, replay

from .audit import read_reason, record_reveal
from .models import RevealLog

#: More than this in one go is a job for ``manage.py sms_delivery_replay``.
MAX_SELECTED = 200


class ReplayActionMixin(admin.ModelAdmin):
    actions = ["replay_selected"]
    replay_template = "support_console/replay_confirmation.html"

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm(REPLAY_RAW_REQUESTS)

    @admin.action(
        permissions=["replay"], description=_("Reprocess with the current mappings (audited)")
    )
    def replay_selected(self, request, queryset):
        raws = list(queryset.order_by("pk")[: MAX_SELECTED + 1])
        if len(raws) > MAX_SELECTED:
            self.message_user(
                request,
                _("Select at most %(n)d requests, or use manage.py sms_delivery_replay.")
                % {"n": MAX_SELECTED},
                messages.ERROR,
            )
            return None
        reason_error = ""
        if request.POST.get("confirm") == "yes":
            reason, _unmasked, reason_error = read_reason(request, can_unmask=False)
            if not reason_error:
                states = [self._replay_one(request, raw, reason) for raw in raws]
                changed = sum(state in (State.CHANGED, State.READ) for state in states)
                self.message_user(
                    request,
                    _("%(changed)d of %(total)d requests changed the records.")
                    % {"changed": changed, "total": len(raws)},
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Reprocess stored requests"),
            "subtitle": None,
            "outcomes": [(raw, replay(raw, dry_run=True)) for raw in raws],
            "selected": [raw.pk for raw in raws],
            "reason_error": reason_error,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.replay_template, context)

    @staticmethod
    def _replay_one(request, raw, reason: str) -> str:
        """The audit record and the replay commit together (on one database, the usual
        setup): no replay without its record, no record of a replay that did not happen."""
        with transaction.atomic(using=router.db_for_write(RevealLog)):
            record_reveal(request, None, RevealLog.Kind.REPLAY, reason, raw_webhook=raw)
            return replay(raw).state
