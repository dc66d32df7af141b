"""New-message events over the Channels layer (Redis), so every uvicorn
container's WebSocket, SSE and long-poll clients hear about every write,
whichever container accepted it."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

GROUP = "messages"
log = logging.getLogger(__name__)


def publish(message_dict):
    """Called after the write commits. Redis being away degrades live updates
    only: the write has succeeded and must not fail because of it."""
    try:
        async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "message.new", "message": message_dict})
    except Exception:  # noqa: BLE001 - any Redis failure means the same: no live push
        log.warning("could not publish message %s to the channel layer", message_dict.get("id"), exc_info=True)


class Subscription:
    """`async with Subscription() as sub: event = await sub.next(timeout)`."""

    def __init__(self):
        self.layer = get_channel_layer()
        self.channel = None

    async def __aenter__(self):
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(GROUP, self.channel)
        return self

    async def __aexit__(self, *exc):
        try:
            await self.layer.group_discard(GROUP, self.channel)
        except Exception:  # noqa: BLE001 - best effort; the group entry expires anyway
            log.debug("group_discard failed", exc_info=True)

    async def next(self, timeout):
        """The next message dict, or None after `timeout` seconds."""
        try:
            event = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
        except asyncio.TimeoutError:
            return None
        return event.get("message")
