"""Pages and the JSON API. Views parse the request and build the response; live
updates (publish, subscribe, the shared reads) are board.live's, liveness and
readiness board.health's, and every JSON error comes from board.errors."""

import contextlib
import json
import math
import os
import time

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import live
from .errors import error_response
from .idempotency import idempotent
from .models import MAX_TEXT, Message

MAX_PAGE = 500
LONG_POLL_MAX = 30.0  # seconds; nginx's read timeout on this route is longer
STREAM_KEEPALIVE = 15  # seconds between an idle stream's comments; nginx's read timeout is 1 h


def create(text):
    """Store a message and, once committed, tell every live client."""
    with transaction.atomic():
        message = Message.objects.create(text=text, served_by=settings.CONTAINER_NAME)
        data = message.as_dict()
        live.announce(data)
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


def number_param(request, name, default):
    """A number of seconds (absent: `default`), or None if it is not one."""
    try:
        value = float(request.GET.get(name, default))
    except ValueError:
        return None
    return None if math.isnan(value) else value


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
        limit = max(1, min(int_param(request, "limit", live.PAGE_SIZE), MAX_PAGE))
        if after is None:
            messages = [m.as_dict() for m in Message.objects.all()[:limit]]
        else:
            messages = live.messages_after(after, limit)
        return JsonResponse({"messages": messages})
    if request.content_type != "application/json":
        return error_response(400, "unsupported_content_type", "send the message as application/json")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "invalid_body", 'send an object: {"text": "..."}')
    text, problem = clean_text(body.get("text"))
    if problem:
        return error_response(400, "invalid_text", problem)
    return JsonResponse(create(text), status=201)


@require_safe
async def api_messages_poll(request):
    """Long-poll: answers as soon as a message newer than `after` exists, or with
    an empty list after `timeout` seconds (default and maximum 30)."""
    timeout = number_param(request, "timeout", LONG_POLL_MAX)
    if timeout is None:
        return error_response(400, "invalid_timeout", "timeout must be a number of seconds")
    started = time.monotonic()
    after, found = await live.wait_for_messages(int_param(request, "after"), min(max(timeout, 0.0), LONG_POLL_MAX))
    # `waited`: how long the server held this poll (a queued request waited elsewhere).
    return JsonResponse({"after": after, "messages": found, "waited": round(time.monotonic() - started, 3)})


def sse_event(message):
    return f"id: {message['id']}\nevent: message\ndata: {json.dumps(message)}\n\n"


@require_safe
async def api_messages_stream(request):
    """Server-Sent Events: every new message, as it is written. A reconnecting
    EventSource sends Last-Event-ID and first receives what it missed."""
    last_seen = request.headers.get("Last-Event-ID", "")
    after = int(last_seen) if last_seen.isdigit() else None

    async def stream():
        yield "retry: 1000\n\n"  # reconnect after 1 s if this container goes away
        # aclosing: the subscription ends when the client goes, not when the GC gets to it.
        async with contextlib.aclosing(live.follow(after, keepalive=STREAM_KEEPALIVE)) as messages:
            async for message in messages:
                yield sse_event(message) if message else ": keep-alive\n\n"

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
            "event_loop": settings.EVENT_LOOP,
            "version": settings.APP_VERSION,
            "pid": os.getpid(),
            "scheme": request.scheme,
            "client_ip": request.META.get("REMOTE_ADDR"),
            "host": request.get_host(),
        }
    )
