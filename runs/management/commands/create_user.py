from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a user (or reset the password of an existing one)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin", action="store_true", help="Give access to the Django admin")

    def handle(self, *args, username, password, admin, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        if admin:
            user.is_staff = user.is_superuser = True
        user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} user {username}")
