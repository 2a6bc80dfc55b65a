"""What one Goldpath installation keeps on disk, and ``prepare()``, the one step that creates it.

``dashboard.settings`` only computes paths from here: importing the settings (as mypy's
Django plugin, an editor or ``django-admin`` does) writes nothing. Every process that runs
Goldpath calls ``prepare()`` first thing, before Django reads its settings: ``manage.py``
(every command — ``migrate`` on a fresh clone, ``runserver``, ``run_suite`` …), the WSGI
application (gunicorn), the Celery worker and beat (``dashboard.celery``) and the tests'
conftest. Those are the entry points a user starts, so nothing needs a manual step. A
process that starts otherwise (a script of one's own calling ``django.setup()``) on a data
directory never prepared has no generated key: Django refuses the empty SECRET_KEY when it
first needs it; call ``prepare()`` first, or set GOLDPATH_SECRET_KEY.

Plain Python, no Django: it runs before the settings exist.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_ENV = "GOLDPATH_SECRET_KEY"
DEFAULT_BROKER_URL = "filesystem://localhost/"  # no server: messages are files under the data directory


def data_dir() -> Path:
    """GOLDPATH_DATA_DIR, else var/ in the project: the SQLite file, the file-system broker's
    folders, the file cache, the secret key."""
    return Path(os.environ.get("GOLDPATH_DATA_DIR") or BASE_DIR / "var")


def secret_key_file() -> Path:
    return data_dir() / "secret_key"


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL


def broker_dir() -> Path | None:
    """The file-system broker's folder, or None for a broker with a server (Redis)."""
    return data_dir() / "broker" if broker_url().startswith("filesystem://") else None


def secret_key() -> str:
    """GOLDPATH_SECRET_KEY, else the key ``prepare()`` generated for this installation (every
    web and worker process of it reads the same file, so sessions signed by one are valid in
    all), else "" if none was prepared."""
    return os.environ.get(SECRET_KEY_ENV) or _read(secret_key_file())


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def prepare() -> None:
    """Create the data directory, the file-system broker's folders (if that is the broker)
    and, unless GOLDPATH_SECRET_KEY is set, a random secret key kept in the data directory
    so logins survive restarts. Idempotent, and safe when processes start at once (the demo
    starts the web server and the worker together): the key is written to a file of its
    own, then linked into place only if no key is there yet, so every process reads the
    one that won, never half a key."""
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    if broker := broker_dir():
        for folder in ("queue", "control"):
            (broker / folder).mkdir(parents=True, exist_ok=True)
    if os.environ.get(SECRET_KEY_ENV) or secret_key_file().exists():
        return
    candidate = data / f"secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as output:
        output.write(secrets.token_urlsafe(50))
    try:
        os.link(candidate, secret_key_file())
    except FileExistsError:
        pass  # another process prepared it first: its key is the installation's
    finally:
        candidate.unlink()
