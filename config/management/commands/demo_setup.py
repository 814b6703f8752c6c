"""Demo only: load realistic demo data and create the demo users (idempotent)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

from support_console.groups import AGENT, LEAD

# Local demo credentials, printed on purpose; the demo runs with DEBUG on 127.0.0.1 only.
USERS = [
    ("admin", "demo-admin-password", None, True),
    ("lead", "demo-lead-password", LEAD, False),
    ("agent", "demo-agent-password", AGENT, False),
]


class Command(BaseCommand):
    help = "Load demo messages and create the demo users (admin, support lead, support agent)."

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=1500)
        parser.add_argument("--port", type=int, default=8000, help="Where make demo serves.")

    def handle(self, *args, messages, port, **options):
        # GB's route degraded in the last hours: it stands out on "Delivery analytics" and
        # the alert rules report it once.
        call_command("sms_delivery_seed", messages=messages, degraded="GB", stdout=self.stdout)
        call_command("sms_delivery_rollup", days=15, stdout=self.stdout)
        call_command("sms_delivery_alerts", no_rollup=True, stdout=self.stdout)
        User = get_user_model()  # noqa: N806
        for username, password, group, superuser in USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True, "is_superuser": superuser}
            )
            if created:
                user.set_password(password)
                user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))
        self.stdout.write(self.style.SUCCESS(f"\nDemo ready: http://127.0.0.1:{port}/admin/"))
        self.stdout.write(
            "  Live callbacks (signed, duplicated, shuffled) and a few STOP replies are posted "
            "to it once the server is up; post more with sms_delivery_simulate."
        )
        for username, password, group, _ in USERS:
            role = group or "superuser"
            self.stdout.write(f"  {role:<14} username {username:<6} password {password}")
