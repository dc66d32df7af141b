from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import GROUP


class MessagesConsumer(AsyncJsonWebsocketConsumer):
    """Pushes every new message to every connected browser, on every uvicorn container."""

    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def message_new(self, event):
        await self.send_json({"type": "message", "message": event["message"]})
