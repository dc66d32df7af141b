#!/opt/venv/bin/python
"""scripts/bench only: the app as CGI, the model WSGI replaced. fcgiwrap (bin/start-cgi)
runs this file once per request, so every request pays for a new Python process and a
fresh import of Django; the stdlib's CGIHandler then calls the same WSGI application
that gunicorn keeps loaded."""

import os
import sys
from wsgiref.handlers import CGIHandler

sys.path.insert(0, "/app")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
os.environ["SERVER_KIND"] = "cgi"

from config.wsgi import application  # noqa: E402 - the path and settings above come first

CGIHandler().run(application)
