#!/usr/bin/env python
"""Django's command-line utility for Goldpath."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from dashboard.installation import prepare

    prepare()  # the data directory, the broker's folders, the secret key: before the settings read them
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
