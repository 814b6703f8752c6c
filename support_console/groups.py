"""The two support roles, created (or completed) after every ``migrate``.

"Support agent": browse messages and timelines, numbers masked.
"Support lead": also reveal numbers and read raw provider payloads (both audited), and
reprocess stored requests after a mapping fix (audited), add numbers to the suppression list
and lift entries (audited).
"""

from django.contrib.auth.models import Group, Permission

AGENT = "Support agent"
LEAD = "Support lead"

AGENT_PERMISSIONS = [
    ("sms_delivery", "view_message"),
    ("sms_delivery", "view_messageevent"),
    ("sms_delivery", "view_inboundmessage"),
    ("sms_delivery", "view_suppression"),
    ("sms_delivery_console", "view_deliveryanalytics"),
    ("sms_delivery", "view_alert"),
]
LEAD_PERMISSIONS = [
    *AGENT_PERMISSIONS,
    ("sms_delivery", "reveal_recipient"),
    ("sms_delivery", "view_raw_payload"),
    ("sms_delivery", "view_rawwebhook"),
    ("sms_delivery", "replay_rawwebhook"),
    ("sms_delivery", "add_suppression"),
    ("sms_delivery", "change_suppression"),  # lifts an entry; nothing on it can be edited
]


def ensure_groups(**kwargs) -> None:
    """Create the groups and add any missing permission; never removes what an admin added."""
    for name, wanted in [(AGENT, AGENT_PERMISSIONS), (LEAD, LEAD_PERMISSIONS)]:
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission:  # absent only while the delivery app is not migrated yet
                group.permissions.add(permission)
