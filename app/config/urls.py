from board import health, views
from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

urlpatterns = [
    path("", views.home, name="home"),
    path("messages", views.create_message_form, name="create-message"),
    path("api/messages", views.api_messages, name="api-messages"),
    path("api/messages/poll", views.api_messages_poll, name="api-messages-poll"),
    path("api/messages/stream", views.api_messages_stream, name="api-messages-stream"),
    path("api/whoami", views.whoami, name="whoami"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

if settings.BENCH_STATIC_VIEW:  # scripts/bench's "static split" row; off everywhere else
    urlpatterns += [re_path(r"^django-static/(?P<path>.+)$", serve, {"document_root": settings.STATIC_ROOT})]
