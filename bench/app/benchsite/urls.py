"""The site's URLs, plus Django serving the collected static files under /django-static/:
the same files nginx serves from /static/, so the bench can measure what nginx saves.
Django's docs call this view inefficient and insecure for production: it exists only here."""

from config.urls import urlpatterns as site_urlpatterns
from django.conf import settings
from django.urls import re_path
from django.views.static import serve

urlpatterns = [
    *site_urlpatterns,
    re_path(r"^django-static/(?P<path>.+)$", serve, {"document_root": settings.STATIC_ROOT}),
]
