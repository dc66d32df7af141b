"""New-message events over the Channels layer (Redis), so every uvicorn
container's WebSocket, SSE and long-poll clients hear about every write,
whichever container accepted it."""

import asyncio
import contextlib
import logging

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings

GROUP = "messages"
log = logging.getLogger(__name__)


def publish(message_dict):
    """Called after the write commits. Redis being away degrades live updates
    only: the write has succeeded and must not fail because of it."""
    try:
        async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "message.new", "message": message_dict})
    except Exception:  # noqa: BLE001 - any Redis failure means the same: no live push
        log.warning("could not publish message %s to the channel layer", message_dict.get("id"), exc_info=True)


# redis-py's pool refuses a command past 100 connections ("Too many connections")
# instead of waiting for one, and a burst of clients joining or leaving the group at
# once needs one each: scripts/bench's long-poll row hit it at 128 waiting clients.
# So at most this many group changes are in flight per uvicorn process.
GROUP_CHANGES_IN_FLIGHT = 32
_group_changes = asyncio.Semaphore(GROUP_CHANGES_IN_FLIGHT)


class Subscription:
    """`async with Subscription() as sub: event = await sub.next(timeout)`."""

    def __init__(self):
        # uvicorn runs every request on one event loop and shares the process's layer.
        # Under WSGI each request thread runs its own loop (async_to_sync), and a
        # channels_redis layer receives on one loop only ("Two event loops are trying
        # to receive()"), so there each subscription gets a layer, and a Redis
        # connection, of its own: one per waiting thread, which WSGI caps anyway.
        self.private = settings.SERVER_KIND != "uvicorn"
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER) if self.private else get_channel_layer()
        self.channel = None

    def _limit(self):
        # A private layer has a pool of its own; the shared one is what needs the limit.
        return contextlib.nullcontext() if self.private else _group_changes

    async def __aenter__(self):
        self.channel = await self.layer.new_channel()
        async with self._limit():
            await self.layer.group_add(GROUP, self.channel)
        return self

    async def __aexit__(self, *exc):
        try:
            async with self._limit():
                await self.layer.group_discard(GROUP, self.channel)
        except Exception:  # noqa: BLE001 - best effort; the group entry expires anyway
            log.debug("group_discard failed", exc_info=True)
        if self.private:
            await self.layer.close_pools()

    async def next(self, timeout):
        """The next message dict, or None after `timeout` seconds."""
        try:
            event = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
        except asyncio.TimeoutError:
            return None
        return event.get("message")
