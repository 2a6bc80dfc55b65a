"""The WSGI application (``gunicorn dashboard.wsgi``): the installation is prepared before
Django reads its settings (see dashboard.installation)."""

import os

from django.core.wsgi import get_wsgi_application

from dashboard.installation import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
prepare()
application = get_wsgi_application()
