"""Live updates: every new message reaches every waiting client (long-poll, SSE,
WebSocket), whichever container accepted the write. The views only parse requests and
build responses; this module owns the rest:

- `announce()` / `publish()`: a committed write goes out on the Channels layer (Redis);
- `Subscription`: one client's place in the group that hears them;
- `messages_after()`: the one read of "messages newer than id", with `shared_messages_after()`
  gathering the identical reads that one event causes, and the connection released after each;
- `wait_for_messages()` (long-poll) and `follow()` (SSE) on top of them.

Module-level state, per process: the group changes in flight (`_group_changes`) and the
reads about to start (`_pending_reads`)."""

import asyncio
import contextlib
import logging

from asgiref.sync import async_to_sync, sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.db import close_old_connections, transaction

from .models import Message

GROUP = "messages"
PAGE_SIZE = 50      # messages per read by default (the API's page, a woken poll's answer)
BACKLOG_LIMIT = 500  # what a reconnecting stream or socket may catch up on at once
log = logging.getLogger(__name__)


# --- publish ------------------------------------------------------------------------------

def announce(message_dict):
    """Call inside the write's transaction: publishes once it commits, so a client that
    hears of the message and reads it back finds it."""
    transaction.on_commit(lambda: publish(message_dict))


def publish(message_dict):
    """Redis being away degrades live updates only: the write has succeeded and must
    not fail because of it."""
    try:
        async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "message.new", "message": message_dict})
    except Exception:  # noqa: BLE001 - any Redis failure means the same: no live push
        log.warning("could not publish message %s to the channel layer", message_dict.get("id"), exc_info=True)


# --- subscribe ----------------------------------------------------------------------------

# redis-py's pool refuses a command past 100 connections ("Too many connections")
# instead of waiting for one, and a burst of clients joining or leaving the group at
# once needs one each: scripts/bench's long-poll row hit it at 128 waiting clients.
# So at most this many group changes are in flight per uvicorn process.
GROUP_CHANGES_IN_FLIGHT = 32
_group_changes = asyncio.Semaphore(GROUP_CHANGES_IN_FLIGHT)


class Subscription:
    """`async with Subscription() as sub: event = await sub.next(timeout)`."""

    def __init__(self):
        # settings.EVENT_LOOP says how this process runs async code. "shared" (uvicorn):
        # every request on one event loop, so they share the process's layer. "per-request"
        # (gunicorn, manage.py): each request thread runs a loop of its own (async_to_sync),
        # and a channels_redis layer receives on one loop only ("Two event loops are trying
        # to receive()"), so each subscription gets a layer, and a Redis connection, of its
        # own: one per waiting thread, which WSGI caps anyway.
        self.private = settings.EVENT_LOOP != "shared"
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


# --- reads --------------------------------------------------------------------------------

def messages_after(after, limit=PAGE_SIZE):
    """Messages newer than id `after`, oldest first: the API's `?after=`, a woken poll,
    a stream's Last-Event-ID and a socket's resume all ask this."""
    return [m.as_dict() for m in Message.objects.filter(id__gt=after).order_by("id")[:limit]]


# Waiting clients hold no database connection. Under uvicorn each request has a
# thread and a connection of its own (CONN_MAX_AGE=0), held until the request ends,
# so a poll that waits 30 s would hold one that PostgreSQL (max_connections=100)
# cannot give anyone else: scripts/bench's long-poll row saw "too many clients" at
# ~90 waiting clients. Django's own clean-up closes connections past CONN_MAX_AGE,
# which at 0 (uvicorn) is all of them, and leaves gunicorn's persistent ones alone.
# So every read below runs in one sync call with the release, in the same thread.
def _messages_after_then_release(after, limit):
    rows = messages_after(after, limit)
    close_old_connections()
    return rows


def _latest_id_then_release():
    last = Message.objects.order_by("-id").only("id").first()
    close_old_connections()
    return last.id if last else 0


async def read_messages_after(after, limit=PAGE_SIZE):
    """`messages_after` for async code (a stream, a socket), its connection released after."""
    return await sync_to_async(_messages_after_then_release)(after, limit)


# Reads about to start, by `after`: the waiting polls that one event wakes all ask
# the same question at once, so the database answers it once per container. A caller
# joins only a read that has not started yet, so the read cannot predate the event or
# subscription the caller is reacting to. Hand-written because it is a dozen lines;
# without it, every woken poll opened a connection of its own at the same moment.
_pending_reads = {}
READ_GATHER_SECONDS = 0.005  # how long a read waits for others to join it


async def shared_messages_after(after):
    # By event loop too: under "per-request" every request thread runs a loop of its own.
    key = (id(asyncio.get_running_loop()), after)
    read = _pending_reads.get(key)
    if read is None:
        read = _pending_reads[key] = asyncio.ensure_future(_gathered_read(key, after))
    # shield: one client hanging up must not cancel the read the others wait for.
    return await asyncio.shield(read)


async def _gathered_read(key, after):
    await asyncio.sleep(READ_GATHER_SECONDS)
    del _pending_reads[key]  # from here on, a new caller needs a new read
    return await read_messages_after(after, PAGE_SIZE)


async def _current(after):
    """(after, messages newer than it). Without `after`: the latest id, and no messages
    by definition, so one query and one connection per poll."""
    if after is None:
        return await sync_to_async(_latest_id_then_release)(), []
    return after, await shared_messages_after(after)


# --- what the views wait on -----------------------------------------------------------------

async def wait_for_messages(after, timeout):
    """Long-poll: (after, messages newer than it), as soon as there are any, or
    (after, []) after `timeout` seconds. Without `after`: from the latest message on."""
    if timeout == 0:
        return await _current(after)
    # Subscribed first, then read: a write that commits after the read began is
    # announced on the subscription, so nothing falls between the two.
    async with Subscription() as sub:
        after, found = await _current(after)
        if not found and await sub.next(timeout) is not None:
            found = await shared_messages_after(after)
    return after, found


async def follow(after=None, keepalive=15):
    """Stream: the messages newer than `after` (if given; what a reconnecting client
    missed), then each new message as it is written, and None after every `keepalive`
    seconds without one. Close it with contextlib.aclosing, so the subscription ends
    with the client."""
    async with Subscription() as sub:
        if after is not None:
            for message in await read_messages_after(after, BACKLOG_LIMIT):
                yield message
        else:
            # Nothing to read, but the request may hold a connection (a stream may stay open for hours).
            await sync_to_async(close_old_connections)()
        while True:
            yield await sub.next(timeout=keepalive)
