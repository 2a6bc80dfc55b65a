from django.core.management.base import BaseCommand, CommandError

from probes.suite_loader import SuiteFileError, load_all_suites


class Command(BaseCommand):
    help = "Load every suite file in GOLDPATH_SUITES_DIR into the database."

    def handle(self, *args, **options):
        try:
            suites = load_all_suites()
        except SuiteFileError as exc:
            raise CommandError(str(exc)) from None
        for suite in suites:
            self.stdout.write(
                f"Loaded {suite.name} (version {suite.version}, {suite.test_cases.filter(active=True).count()} checks)"
            )
