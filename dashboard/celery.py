"""The Celery app: configuration comes from Django settings (CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import beat_init, celeryd_init

from dashboard.installation import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
@beat_init.connect
def prepare_installation(**signal: object) -> None:
    """A worker or beat, started before anything else on a fresh installation, creates what
    it needs (the file-system broker's folders) as it starts. Not on import: the settings'
    package imports this module, and importing the settings creates nothing."""
    prepare()
