from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import live


class MessagesConsumer(AsyncJsonWebsocketConsumer):
    """Pushes every new message to every connected browser, on every uvicorn container."""

    async def connect(self):
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.accept()
        # WebSocket handshakes carry no X-Served-By; say which container holds the socket.
        await self.send_json({"type": "hello", "container": settings.CONTAINER_NAME})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """{"type": "resume", "after": ID}: a reconnecting client asks for what it missed."""
        if isinstance(content, dict) and content.get("type") == "resume" and isinstance(content.get("after"), int):
            for message in await live.read_messages_after(content["after"], live.BACKLOG_LIMIT):
                await self.send_json({"type": "message", "message": message})

    async def message_new(self, event):
        await self.send_json({"type": "message", "message": event["message"]})
