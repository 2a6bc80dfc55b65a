"""gunicorn's settings for the dashboard, read from the current directory (run gunicorn from
the project root, as README.md and scripts/demo.py do).

gunicorn has no request-body limit: dashboard/bodylimit.py refuses oversized bodies from
their headers, before reading them. These bound what gunicorn itself reads first.
"""

import os

limit_request_line = 4094  # request line (method, path and query): the run filters fit easily
limit_request_fields = 50  # headers per request; browsers and proxies send about twenty
limit_request_field_size = 8190  # bytes per header (session and CSRF cookies included)
# A sync worker busy this long on one request (a body trickled in byte by byte, a stuck view)
# is killed and replaced: one slow client cannot hold a worker for ever. The longest request
# there is, an import through the API, stops itself with a 413 after
# GOLDPATH_WEB_IMPORT_SECONDS (dashboard/settings.py: 150 by default, nearly 4x the 39 s a
# 1,000,000-case file took on PostgreSQL). It checks before each batch of 5,000 cases, so the
# last batch, the run's analysis and the commit come after it (about 15 s for 1,000,000 cases
# on PostgreSQL), and the body was read before it started: 90 s more covers those and an
# upload through a proxy that buffers it; a client trickling 200 MB in directly may not fit.
timeout = int(os.environ.get("GOLDPATH_WEB_IMPORT_SECONDS") or 150) + 90
# gunicorn 25.1+ opens a control socket for `gunicornc` at one path per account
# ($XDG_RUNTIME_DIR/gunicorn.ctl, else ~/.gunicorn/gunicorn.ctl): each gunicorn started
# removes the previous one's socket, and the first to stop removes the path. Goldpath
# never uses gunicornc, so there is none.
control_socket_disable = True
