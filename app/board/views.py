import asyncio
import json
import os
import time

from asgiref.sync import sync_to_async
from config.logs import request_id
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .events import Subscription, publish
from .idempotency import idempotent
from .models import MAX_TEXT, Message

PAGE_SIZE = 50
LONG_POLL_MAX = 30.0  # seconds; nginx's read timeout on this route is longer


def json_error(status, error, detail):
    return JsonResponse({"error": error, "detail": detail, "request_id": request_id.get()}, status=status)


def create(text):
    """Store a message and, once committed, tell every live client."""
    with transaction.atomic():
        message = Message.objects.create(text=text, served_by=settings.CONTAINER_NAME)
        data = message.as_dict()
        transaction.on_commit(lambda: publish(data))
    return data


def clean_text(value):
    if not isinstance(value, str) or not value.strip():
        return None, "text must be a non-empty string"
    if len(value) > MAX_TEXT:
        return None, f"text must be at most {MAX_TEXT} characters"
    return value.strip(), None


def int_param(request, name, default=None):
    try:
        return int(request.GET[name])
    except (KeyError, ValueError):
        return default


def render_board(request, status=200, error=None):
    context = {
        "messages": Message.objects.all()[:20],
        "container": settings.CONTAINER_NAME,
        "server_kind": settings.SERVER_KIND,
        "max_text": MAX_TEXT,
        "error": error,
    }
    return render(request, "board/home.html", context, status=status)


@require_safe
def home(request):
    return render_board(request)


@require_POST
def create_message_form(request):
    text, problem = clean_text(request.POST.get("text"))
    if problem:
        return render_board(request, status=400, error=problem)
    create(text)
    return HttpResponseRedirect("/", status=303)


# The JSON API takes no cookies' authority (anonymous, JSON bodies only, which a
# cross-site form cannot send), so CSRF tokens do not apply to it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@idempotent
def api_messages(request):
    if request.method == "GET":
        after = int_param(request, "after")
        limit = max(1, min(int_param(request, "limit", PAGE_SIZE), 500))
        if after is None:
            rows = Message.objects.all()[:limit]
        else:
            rows = Message.objects.filter(id__gt=after).order_by("id")[:limit]
        return JsonResponse({"messages": [m.as_dict() for m in rows]})
    if request.content_type != "application/json":
        return json_error(400, "unsupported_content_type", "send the message as application/json")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(body, dict):
        return json_error(400, "invalid_body", 'send an object: {"text": "..."}')
    text, problem = clean_text(body.get("text"))
    if problem:
        return json_error(400, "invalid_text", problem)
    return JsonResponse(create(text), status=201)


async def messages_after(after, limit=PAGE_SIZE):
    return [m.as_dict() async for m in Message.objects.filter(id__gt=after).order_by("id")[:limit]]


# Waiting clients hold no database connection. Under uvicorn each request has a
# thread and a connection of its own (CONN_MAX_AGE=0), held until the request ends,
# so a poll that waits 30 s would hold one that PostgreSQL (max_connections=100)
# cannot give anyone else: scripts/bench's long-poll row saw "too many clients" at
# ~90 waiting clients. Django's own clean-up closes connections past CONN_MAX_AGE,
# which at 0 (uvicorn) is all of them, and leaves gunicorn's persistent ones alone.
def release_database_connection_now():
    close_old_connections()


async def release_database_connection():
    """For an async view about to wait: runs in the request's ORM thread."""
    await sync_to_async(release_database_connection_now)()


def _messages_after_then_release(after):
    rows = [m.as_dict() for m in Message.objects.filter(id__gt=after).order_by("id")[:PAGE_SIZE]]
    release_database_connection_now()
    return rows


def _latest_id_then_release():
    last = Message.objects.order_by("-id").only("id").first()
    release_database_connection_now()
    return last.id if last else 0


# Reads about to start, by `after`: the waiting polls that one event wakes all ask
# the same question at once, so the database answers it once per container. A caller
# joins only a read that has not started yet, so the read cannot predate the event or
# subscription the caller is reacting to. Hand-written because it is a dozen lines;
# without it, every woken poll opened a connection of its own at the same moment.
_pending_reads = {}
READ_GATHER_SECONDS = 0.005  # how long a read waits for others to join it


async def shared_messages_after(after):
    # By event loop too: under WSGI every request thread runs a loop of its own.
    key = (id(asyncio.get_running_loop()), after)
    read = _pending_reads.get(key)
    if read is None:
        read = _pending_reads[key] = asyncio.ensure_future(_gathered_read(key, after))
    # shield: one client hanging up must not cancel the read the others wait for.
    return await asyncio.shield(read)


async def _gathered_read(key, after):
    await asyncio.sleep(READ_GATHER_SECONDS)
    del _pending_reads[key]  # from here on, a new caller needs a new read
    return await sync_to_async(_messages_after_then_release)(after)


async def _current(after):
    """(after, messages newer than it). Without `after`: the latest id, and no messages
    by definition, so one query and one connection per poll."""
    if after is None:
        return await sync_to_async(_latest_id_then_release)(), []
    return after, await shared_messages_after(after)


@require_safe
async def api_messages_poll(request):
    """Long-poll: answers as soon as a message newer than `after` exists, or with
    an empty list after `timeout` seconds (default and maximum 30)."""
    after = int_param(request, "after")
    try:
        timeout = min(max(float(request.GET.get("timeout", LONG_POLL_MAX)), 0.0), LONG_POLL_MAX)
    except ValueError:
        return json_error(400, "invalid_timeout", "timeout must be a number of seconds")
    started = time.monotonic()
    if timeout == 0:
        after, found = await _current(after)
    else:
        # Subscribed first, then read: a write that commits after the read began is
        # announced on the subscription, so nothing falls between the two.
        async with Subscription() as sub:
            after, found = await _current(after)
            if not found and await sub.next(timeout) is not None:
                found = await shared_messages_after(after)
    # `waited`: how long the server held this poll (a queued request waited elsewhere).
    return JsonResponse({"after": after, "messages": found, "waited": round(time.monotonic() - started, 3)})


@require_safe
async def api_messages_stream(request):
    """Server-Sent Events: every new message, as it is written. A reconnecting
    EventSource sends Last-Event-ID and first receives what it missed."""
    last_seen = request.headers.get("Last-Event-ID", "")

    def event(message):
        return f"id: {message['id']}\nevent: message\ndata: {json.dumps(message)}\n\n"

    async def stream():
        yield "retry: 1000\n\n"  # reconnect after 1 s if this container goes away
        async with Subscription() as sub:
            if last_seen.isdigit():
                for message in await messages_after(int(last_seen), limit=500):
                    yield event(message)
            await release_database_connection()  # a stream may stay open for hours
            while True:
                message = await sub.next(timeout=15)
                yield event(message) if message else ": keep-alive\n\n"

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@require_safe
def whoami(request):
    return JsonResponse(
        {
            "container": settings.CONTAINER_NAME,
            "server": settings.SERVER_KIND,
            "version": settings.APP_VERSION,
            "pid": os.getpid(),
            "scheme": request.scheme,
            "client_ip": request.META.get("REMOTE_ADDR"),
            "host": request.get_host(),
        }
    )


@require_safe
def healthz(request):
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "alive"})


@require_safe
def readyz(request):
    """Readiness: the database and Redis both answer; otherwise 503 with the reason."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        problems["database"] = type(exc).__name__
    try:
        cache.get("readyz")
    except Exception as exc:  # noqa: BLE001
        problems["redis"] = type(exc).__name__
    if problems:
        reason = ", ".join(f"{name} unavailable ({kind})" for name, kind in problems.items())
        response = JsonResponse({"status": "unavailable", "reason": reason, "checks": problems}, status=503)
        response["Retry-After"] = "2"
        return response
    return JsonResponse({"status": "ready"})
