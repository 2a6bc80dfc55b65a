#!/usr/bin/env python3
"""One command for the whole test suite: install the test dependencies, then run pytest.

    python3 scripts/test.py [pytest arguments]

Without DATABASE_URL / CELERY_BROKER_URL the tests use SQLite and the file-system broker;
.ci/run points them at PostgreSQL and Redis. Browser tests need Debian's chromium
(/usr/bin/chromium); on a machine without it they are skipped with a note.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import BASE_DIR, ensure_venv  # noqa: E402

NO_TESTS_COLLECTED = 5


def main() -> int:
    python = ensure_venv("requirements-dev.txt")
    args = sys.argv[1:]
    code = subprocess.run([str(python), "-m", "pytest", *args], cwd=BASE_DIR).returncode
    if code == NO_TESTS_COLLECTED:
        # A selection (-k, -m, a path) that matches nothing is not a failure; a bare run is.
        print("pytest collected no tests (exit code 5).", file=sys.stderr)
        return 0 if args else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
