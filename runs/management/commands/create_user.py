from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser

from runs.roles import ROLES


class Command(BaseCommand):
    help = "Create a user with a role (or update an existing one's password and role)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", choices=ROLES, help="Manager (read-only), DevOps or Engineer")
        parser.add_argument("--admin", action="store_true", help="Superuser: every role and the Django admin")

    def handle(self, *args: Any, username: str, password: str, role: str | None, admin: bool, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        if admin:
            user.is_staff = user.is_superuser = True
        user.save()
        if role:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.remove(*Group.objects.filter(name__in=ROLES))
            user.groups.add(group)
        described = "administrator" if admin else (role or "no role")
        self.stdout.write(f"{'Created' if created else 'Updated'} user {username} ({described})")
