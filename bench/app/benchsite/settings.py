"""The site's settings, plus what only the benchmark's containers need."""

from config.settings import *  # noqa: F403 - the site's settings, unchanged but for the lines below

# The bench containers take plain HTTP on loopback ports (compose.bench.yaml), without
# nginx's X-Forwarded-Proto: redirecting them to HTTPS would measure redirects.
SECURE_SSL_REDIRECT = False
# /django-static/: Django's static view, for the "static split" row (nginx ÷ Django).
ROOT_URLCONF = "benchsite.urls"
