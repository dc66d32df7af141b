"""ASGI entry point: uvicorn (bin/start-asgi) serves this. HTTP goes to Django;
WebSockets go to Channels consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

if os.environ.get("SERVER_KIND") == "uvicorn":  # not under bench-cgi or a test's import
    from board import metrics

    metrics.serve()  # Prometheus, on its own port (board/metrics.py)

from board.consumers import MessagesConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Refuses a WebSocket whose Origin is not one of ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(
            URLRouter([path("ws/messages", MessagesConsumer.as_asgi())])
        ),
    }
)
