from board import health, views
from django.contrib import admin
from django.urls import path

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
