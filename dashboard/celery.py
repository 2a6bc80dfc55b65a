"""The Celery app: configuration comes from Django settings (CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import beat_init, celeryd_init
from django.conf import settings

from dashboard.installation import prepare, secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
@beat_init.connect
def prepare_installation(**signal: object) -> None:
    """A worker or beat, started before anything else on a fresh installation, creates what
    it needs (the file-system broker's folders, the secret key) as it starts. Not on import:
    the settings' package imports this module, and importing the settings creates nothing.
    Celery's command line read the settings before this signal, when no key file existed
    yet, so the key prepare() wrote is set here: web and worker processes share one key."""
    prepare()
    settings.SECRET_KEY = secret_key()
